"""Training losses on the density, scaled by the training density's spread so magnitudes are O(1)."""

import torch


def density_loss(kind: str, prediction: torch.Tensor, reference: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``mse``: mean((ρ̂−ρ)²)/scale²; ``mae``: mean|ρ̂−ρ|/scale."""
    error = (prediction - reference) / scale
    if kind == "mse":
        return error.pow(2).mean()
    if kind == "mae":
        return error.abs().mean()
    raise ValueError(f"unknown loss type {kind}")
