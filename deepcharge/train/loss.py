"""Training losses on the density, scaled by the training density's spread so magnitudes are O(1)."""

import torch


def density_loss(kind: str, prediction: torch.Tensor, reference: torch.Tensor, scale: float,
                 weight: torch.Tensor) -> torch.Tensor:
    """``mse``: mean(w (ρ̂−ρ)²)/scale²; ``mae``: mean(w |ρ̂−ρ|)/scale; w are the probes' sampling weights."""
    error = (prediction - reference) / scale
    if kind == "mse":
        return (weight * error.pow(2)).mean()
    if kind == "mae":
        return (weight * error.abs()).mean()
    raise ValueError(f"unknown loss type {kind}")
