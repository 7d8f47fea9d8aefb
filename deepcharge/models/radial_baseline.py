"""A smooth superposition of per-species radial profiles, fitted to the training density by least squares.

ρ₀(r) = Σ_atoms f_type(|r − R|) with f_t(d) = w(d) Σ_k c_tk exp(−(d − μ_k)²/2σ²), w the se_e2_a switch.
It captures the spherical part of the density around each atom, so the network only has to learn the much
smaller remainder.
"""

from typing import List

import torch
from torch import nn

from deepcharge.models.descriptor.env_mat import smooth_weight


class RadialBaseline(nn.Module):
    """Per-type radial profiles on probe neighbour slots grouped by type (block sizes ``sel``)."""

    def __init__(self, sel: List[int], rcut: float, rcut_smth: float, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.sel = list(sel)
        self.rcut = float(rcut)
        self.rcut_smth = float(rcut_smth)
        self.num_basis = int(num_basis)
        self.width = self.rcut / max(self.num_basis - 1, 1)
        self.register_buffer("centres", torch.linspace(0.0, self.rcut, self.num_basis, dtype=dtype))
        self.coefficients = nn.Parameter(torch.zeros(len(sel), self.num_basis, dtype=dtype))

    def features(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(P, ntypes, num_basis): each type's neighbours' basis functions summed per probe."""
        distance = torch.linalg.norm(vectors, dim=-1)
        weight = smooth_weight(distance, self.rcut_smth, self.rcut) * mask.to(distance.dtype)
        basis = torch.exp(-((distance.unsqueeze(-1) - self.centres) ** 2) / (2.0 * self.width ** 2))
        basis = basis * weight.unsqueeze(-1)
        per_type = [block.sum(dim=1) for block in torch.split(basis, self.sel, dim=1)]
        return torch.stack(per_type, dim=1)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.from_features(self.features(vectors, mask))

    def from_features(self, features: torch.Tensor) -> torch.Tensor:
        """ρ₀ from :meth:`features` (which no trainable weight enters) and the profiles' coefficients."""
        return (features * self.coefficients).sum(dim=(1, 2))


class LeastSquaresMoments:
    """Weighted sums of F, y, FᵀF, Fᵀy and y² accumulated in float64 over chunks of rows, so a least-squares fit
    (:meth:`solve`, the same as :func:`least_squares`) can use more rows than fit in memory at once."""

    def __init__(self):
        self.sums = None

    def add(self, features: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
        features, target, weight = (t.to(torch.float64) for t in (features, target, weight))
        weighted = features * weight.unsqueeze(1)
        parts = [weight.sum(), weighted.sum(0), (weight * target).sum(), weighted.T @ features,
                 weighted.T @ target, (weight * target * target).sum()]
        self.sums = parts if self.sums is None else [a + b for a, b in zip(self.sums, parts)]

    def solve(self, ridge: float = 1e-8):
        """Coefficients c (see :func:`least_squares`), and the weighted mean and standard deviation of the
        residual y − F·c."""
        total, feature_sum, target_sum, gram, cross, square = self.sums
        mean_f, mean_y = feature_sum / total, target_sum / total
        covariance = gram / total - torch.outer(mean_f, mean_f)
        scale = covariance.diagonal().clamp_min(0).sqrt().clamp_min(1e-12)
        standard = covariance / torch.outer(scale, scale)
        standard.diagonal().add_(ridge * standard.diagonal().mean().clamp_min(1e-30))
        coefficients = torch.linalg.solve(standard, (cross / total - mean_f * mean_y) / scale) / scale
        residual_mean = mean_y - mean_f @ coefficients
        residual_square = (square / total - 2 * coefficients @ (cross / total)
                           + coefficients @ (gram / total) @ coefficients)
        return coefficients, float(residual_mean), float((residual_square - residual_mean ** 2).clamp_min(0).sqrt())


def least_squares(features: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                  ridge: float = 1e-8) -> torch.Tensor:
    """Coefficients c minimising Σ w (target − mean − (F − F̄)·c)² in float64, the mean left to the caller's
    bias. Columns are scaled to unit variance first and a ridge of ``ridge`` × the mean diagonal keeps
    nearly dependent columns (and columns that are constant, e.g. zero) from blowing up."""
    features, target = features.to(torch.float64), target.to(torch.float64)
    weight = (weight.to(torch.float64) / weight.to(torch.float64).sum()).unsqueeze(1)
    centred = features - (weight * features).sum(0)
    scale = (weight * centred * centred).sum(0).sqrt().clamp_min(1e-12)
    centred = centred / scale
    gram = centred.T @ (weight * centred)
    gram.diagonal().add_(ridge * gram.diagonal().mean().clamp_min(1e-30))
    residual = target - (weight[:, 0] * target).sum()
    return torch.linalg.solve(gram, centred.T @ (weight[:, 0] * residual)) / scale
