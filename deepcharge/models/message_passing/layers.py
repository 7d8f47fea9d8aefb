"""Small pieces shared by the message-passing backends: radial bases, cutoffs, edges, scatter sums."""

import math
from typing import Dict, Tuple

import torch
from torch import nn


class ShiftedSoftplus(nn.Module):
    """softplus(x) − ln 2, SchNet's activation (zero at zero)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x) - math.log(2.0)


def two_layer(n_in: int, n_hidden: int, n_out: int, activation: nn.Module, dtype: torch.dtype) -> nn.Sequential:
    """Linear → activation → Linear."""
    return nn.Sequential(nn.Linear(n_in, n_hidden, dtype=dtype), activation,
                         nn.Linear(n_hidden, n_out, dtype=dtype))


class GaussianBasis(nn.Module):
    """exp(−(r − μ_k)² / 2Δ²) with centres μ_k = kΔ covering [0, cutoff) (DeepDFT invariant, Eq. 2)."""

    def __init__(self, cutoff: float, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.width = cutoff / num_basis
        self.register_buffer("centres", torch.arange(num_basis, dtype=dtype) * self.width)

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((distance.unsqueeze(-1) - self.centres) ** 2) / (2.0 * self.width ** 2))


class SincBasis(nn.Module):
    """sin(nπr/r_c)/r for n = 1..num_basis (PaiNN), finite at r = 0 (written with torch.sinc)."""

    def __init__(self, cutoff: float, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("n", torch.arange(1, num_basis + 1, dtype=dtype))

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        # sin(nπr/rc)/r = (nπ/rc)·sinc(nr/rc), with sinc(x) = sin(πx)/(πx)
        return (self.n * math.pi / self.cutoff) * torch.sinc(distance.unsqueeze(-1) * self.n / self.cutoff)


def cosine_cutoff(distance: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5(cos(πr/r_c) + 1) inside the cutoff, 0 beyond."""
    inside = (distance < cutoff).to(distance.dtype)
    return 0.5 * (torch.cos(distance * (math.pi / cutoff)) + 1.0) * inside


def soft_cutoff(distance: torch.Tensor, cutoff: float) -> torch.Tensor:
    """1 − sigmoid(5(r − (r_c − 1.5))) inside the cutoff, 0 beyond (DeepDFT invariant, Eq. 3)."""
    inside = (distance < cutoff).to(distance.dtype)
    return (1.0 - torch.sigmoid(5.0 * (distance - (cutoff - 1.5)))) * inside


def atom_edges(inputs: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(receiving atom, sending atom, vector receiver → sender) of the atom graph."""
    return inputs["atom_edge_center"], inputs["atom_edge_neighbour"], inputs["atom_edge_vectors"]


def probe_edges(inputs: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(receiving probe, sending atom, vector probe → atom) from the padded per-probe neighbour slots."""
    nlist = inputs["probe_nlist"]
    found = torch.nonzero(nlist >= 0)
    probe, slot = found[:, 0], found[:, 1]
    return probe, nlist[probe, slot], inputs["probe_vectors"][probe, slot]


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Rows of ``values`` summed into ``size`` rows by ``index``."""
    out = torch.zeros((size,) + values.shape[1:], dtype=values.dtype, device=values.device)
    return out.index_add_(0, index, values)
