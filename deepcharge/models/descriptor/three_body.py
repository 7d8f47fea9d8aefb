"""An explicit three-body descriptor: the angular resolution se_e2_a lacks.

se_e2_a's D = Gᵀ R Rᵀ G< sees the angle between two neighbours only through cos θ to first order (the
rows of R are s·(1, r̂)); Σ_jk φ_a(r_j) φ_b(r_k) P_l(cos θ_jk) resolves it to order ``lmax``, so the fitting net
gets both.
"""

import math
from typing import List

import torch
from torch import nn

from deepcharge.models.descriptor.env_mat import smooth_weight


class ThreeBodyDescriptor(nn.Module):
    """F[t_j, t_k, l, a, b] = Σ_{j∈t_j, k∈t_k} φ_a(r_j) φ_b(r_k) P_l(c_jk) over each type's nearest slots.

    φ_a are Gaussians on [0, rcut] times the 5th-order switch; c_jk = r_j·r_k / ((r_j + p)(r_k + p)) is the
    cosine of the angle at the probe, damped near an atom (p = ``protection``) so the features stay smooth
    when a probe crosses a nucleus.
    """

    def __init__(self, sel: List[int], sel_three_body: List[int], rcut: float, rcut_smth: float, num_radial: int,
                 lmax: int, protection: float, dtype: torch.dtype):
        super().__init__()
        self.rcut = float(rcut)
        self.rcut_smth = float(rcut_smth)
        self.lmax = int(lmax)
        self.protection = float(protection)
        self.ntypes = len(sel)
        starts = [sum(sel[:t]) for t in range(len(sel))]
        self.counts = [min(int(n), int(s)) for n, s in zip(sel_three_body, sel)]
        slots = [torch.arange(start, start + count) for start, count in zip(starts, self.counts)]
        self.register_buffer("slots", torch.cat(slots))
        self.register_buffer("centres", torch.linspace(0.0, self.rcut, num_radial, dtype=dtype))
        self.width = self.rcut / max(num_radial - 1, 1)
        self.dim_out = self.ntypes * self.ntypes * (self.lmax + 1) * num_radial * num_radial

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vectors = vectors.index_select(1, self.slots)
        mask = mask.index_select(1, self.slots)
        distance = torch.linalg.norm(vectors, dim=-1)
        weight = smooth_weight(distance, self.rcut_smth, self.rcut) * mask.to(distance.dtype)
        radial = torch.exp(-((distance.unsqueeze(-1) - self.centres) ** 2) / (2.0 * self.width ** 2))
        radial = radial * weight.unsqueeze(-1)  # (P, K, R)
        damped = vectors / (distance + self.protection).unsqueeze(-1)
        cosine = torch.matmul(damped, damped.transpose(1, 2))  # (P, K, K)
        legendre = [torch.ones_like(cosine), cosine]
        for l in range(1, self.lmax):
            previous_weight, scale = l / (2.0 * l + 1.0), (2.0 * l + 1.0) / (l + 1.0)
            legendre.append((cosine * legendre[l] - previous_weight * legendre[l - 1]) * scale)
        angular = torch.stack(legendre[: self.lmax + 1], dim=2)  # (P, K, L, K)
        nprobes, nradial, nl = radial.shape[0], radial.shape[2], self.lmax + 1
        blocks = []
        radial_blocks = torch.split(radial, self.counts, dim=1)
        angular_rows = torch.split(angular, self.counts, dim=1)
        for first, row in zip(radial_blocks, angular_rows):
            for second, block in zip(radial_blocks, torch.split(row, self.counts, dim=3)):
                # Σ_jk φ_a(r_j) P_l(c_jk) φ_b(r_k) as two batched products, every order l in one go
                left = torch.bmm(first.transpose(1, 2), block.reshape(nprobes, block.shape[1], -1))  # (P, R, L·K_b)
                pair = torch.bmm(left.reshape(nprobes, nradial * nl, -1), second)  # (P, R·L, R)
                blocks.append(pair.reshape(nprobes, nradial, nl, nradial).transpose(1, 2).flatten(1))  # (P, L·R·R)
        return torch.cat(blocks, dim=1) / math.sqrt(float(sum(self.counts)))
