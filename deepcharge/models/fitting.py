"""The fitting net: descriptor → density, a ResNet whose output is shifted and scaled by data statistics."""

from typing import List

import torch
from torch import nn

from .network import ResidualMLP


class DensityFitting(nn.Module):
    """ρ̂ = bias + scale · MLP((D − D̄)/σ_D); all four are statistics of the training data.

    Standardising the descriptor changes nothing the first layer could not absorb, but it conditions
    training: raw se_e2_a descriptors of probes vary over orders of magnitude (probes near nuclei).
    """

    def __init__(self, dim_in: int, neuron: List[int], resnet_dt: bool, activation_function: str,
                 generator: torch.Generator, dtype: torch.dtype):
        super().__init__()
        self.net = ResidualMLP(dim_in, neuron, activation_function, resnet_dt, generator, dtype, n_out=1)
        self.register_buffer("input_mean", torch.zeros(dim_in, dtype=dtype))
        self.register_buffer("input_std", torch.ones(dim_in, dtype=dtype))
        self.register_buffer("bias", torch.zeros((), dtype=dtype))
        self.register_buffer("scale", torch.ones((), dtype=dtype))

    @torch.jit.ignore
    def set_statistics(self, descriptor: torch.Tensor, density: torch.Tensor):
        """Input standardisation from training descriptors; output shift and scale from their densities."""
        descriptor = descriptor.to(torch.float64)
        self.input_mean.copy_(descriptor.mean(dim=0))
        self.input_std.copy_(descriptor.std(dim=0, unbiased=False).clamp_min(1e-6))
        density = density.to(torch.float64)
        self.bias.fill_(float(density.mean()))
        self.scale.fill_(float(density.std(unbiased=False).clamp_min(1e-6)))

    def forward(self, descriptor: torch.Tensor) -> torch.Tensor:
        return self.net((descriptor - self.input_mean) / self.input_std).squeeze(-1) * self.scale + self.bias
