"""Compressed se_e2_a (DeePMD-kit's ``dp compress``): each embedding net, a function of the normalised radial
entry ŝ = (s − mean)/std alone, becomes a table of quintic polynomials, evaluated fused with the contraction Rᵀ G.

The table covers [lower, upper] with stride ``step`` and [upper, extrapolate·upper] with stride 10·``step``, as
DeePMD-kit's; beyond it ŝ is clamped to the last knot. On each interval the polynomial matches the net's value,
first and second derivative at both knots (derivatives by automatic differentiation), so the table is C².
"""

import copy
import math
from typing import List, Tuple

import torch
from torch import nn

from deepcharge.models.descriptor.env_mat import environment_matrix, smooth_weight
from deepcharge.models.descriptor.se_e2_a import DescriptorSeA, contract_orders

# neighbour slots per table evaluation: the gathered coefficients are (probes, BLOCK, 6, M). On one CPU core
# (shipped Si model: 128 probes per call, sel 36, M 80; µs per probe) 1: 32, 2: 10, 4: 6.7, 8: 6.1, 9-36: 5.5,
# the net itself 16: 12 is as fast as whole types and bounds the memory
BLOCK = 12


def embedding_input_range(descriptor: DescriptorSeA, min_distance: float) -> Tuple[float, float]:
    """[lower, upper] of ŝ over all types, widened to integers as DeePMD-kit does.

    lower is an empty slot or an atom beyond rcut (s = 0); upper an atom at ``min_distance`` from the probe,
    s = w(r)/(r + env_protection). With env_protection > 0, ``min_distance`` 0 bounds every possible input.
    """
    r = torch.tensor(float(min_distance), dtype=torch.float64)
    s_max = float(smooth_weight(r, descriptor.rcut_smth, descriptor.rcut) / (r + descriptor.env_protection))
    mean, std = descriptor.mean[:, 0].to(torch.float64), descriptor.stddev[:, 0].to(torch.float64)
    lower = float((-mean / std).min())
    upper = float(((s_max - mean) / std).max())
    return math.floor(lower), math.ceil(upper)


def table_knots(lower: float, upper: float, step: float, extrapolate: float) -> Tuple[torch.Tensor, int]:
    """Knots (float64) of the two uniform parts of the table, and how many intervals the first part has."""
    fine = math.ceil((upper - lower) / step - 1e-9)
    upper = lower + fine * step
    coarse = max(0, math.ceil((extrapolate * upper - upper) / (10 * step) - 1e-9))
    knots = torch.cat([lower + step * torch.arange(fine, dtype=torch.float64),
                       upper + 10 * step * torch.arange(coarse + 1, dtype=torch.float64)])
    return knots, fine


def value_and_derivatives(net: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y, dy/dx and d²y/dx² (each (len(x), M), float64) of a scalar-input net, by forward-mode differentiation."""
    net = copy.deepcopy(net).to(torch.float64)
    x = x.to(torch.float64).reshape(-1, 1)
    ones = torch.ones_like(x)
    (y, dy), (_, d2y) = torch.func.jvp(lambda z: torch.func.jvp(net, (z,), (ones,)), (x,), (ones,))
    return y.detach(), dy.detach(), d2y.detach()


def quintic_coefficients(knots: torch.Tensor, y: torch.Tensor, dy: torch.Tensor, d2y: torch.Tensor) -> torch.Tensor:
    """(intervals, 6, M) coefficients a_k of Σ a_k t^k, t = x − knot, matching y, y', y'' at both knots."""
    h = (knots[1:] - knots[:-1]).unsqueeze(1)
    y0, y1, d0, d1, dd0, dd1 = y[:-1], y[1:], dy[:-1], dy[1:], d2y[:-1], d2y[1:]
    rise = y1 - y0
    a3 = (20 * rise - (8 * d1 + 12 * d0) * h - (3 * dd0 - dd1) * h**2) / (2 * h**3)
    a4 = (-30 * rise + (14 * d1 + 16 * d0) * h + (3 * dd0 - 2 * dd1) * h**2) / (2 * h**4)
    a5 = (12 * rise - 6 * (d1 + d0) * h + (dd1 - dd0) * h**2) / (2 * h**5)
    return torch.stack([y0, d0, dd0 / 2, a3, a4, a5], dim=1)


class TabulatedSeA(nn.Module):
    """The se_e2_a descriptor of ``descriptor`` with its embedding nets replaced by quintic tables.

    Same input and output as :class:`DescriptorSeA`; the (probes, nnei, M) embedding matrix is never formed:
    blocks of ``block`` slots are evaluated (gather + Horner) and contracted into Rᵀ G one after the other.
    """

    def __init__(self, descriptor: DescriptorSeA, lower: float, upper: float, step: float, extrapolate: float,
                 block: int = BLOCK):
        super().__init__()
        dtype = descriptor.mean.dtype
        self.ntypes = descriptor.ntypes
        self.sel: List[int] = list(descriptor.sel)
        self.nnei = descriptor.nnei
        self.rcut = descriptor.rcut
        self.rcut_smth = descriptor.rcut_smth
        self.env_protection = descriptor.env_protection
        self.axis_neuron = descriptor.axis_neuron
        self.lmax = descriptor.lmax
        self.embedding_width = descriptor.embedding_width
        self.block = int(block)
        self.register_buffer("mean", descriptor.mean.clone())
        self.register_buffer("stddev", descriptor.stddev.clone())
        knots, fine = table_knots(lower, upper, step, extrapolate)
        self.lower, self.upper, self.maximum = float(knots[0]), float(knots[fine]), float(knots[-1])
        self.step, self.coarse_step = float(step), 10 * float(step)
        self.fine_intervals = fine
        self.intervals = len(knots) - 1
        tables = []
        for net in descriptor.embeddings:
            tables.append(quintic_coefficients(knots, *value_and_derivatives(net, knots)).reshape(self.intervals, -1))
        self.register_buffer("knots", knots[:-1].to(dtype))
        self.register_buffer("tables", torch.stack(tables).to(dtype))  # (ntypes, intervals, 6 * M)

    @property
    def dim_out(self) -> int:
        return self.embedding_width * self.axis_neuron * self.lmax

    def locate(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Interval index of each ŝ (clamped to the table) and its offset from the interval's knot."""
        x = x.clamp(self.lower, self.maximum)
        fine = torch.floor((x - self.lower) / self.step)
        coarse = self.fine_intervals + torch.floor((x - self.upper) / self.coarse_step)
        index = torch.where(x < self.upper, fine, coarse).long().clamp(0, self.intervals - 1)
        return index, x - self.knots[index]

    def embed(self, table: torch.Tensor, index: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """G (P, b, M) of slots with interval ``index`` and ``offset`` (P, b), by Horner's scheme."""
        coefficients = table.index_select(0, index.reshape(-1)).view(index.shape[0], index.shape[1], 6, -1)
        t = offset.unsqueeze(-1)
        g = coefficients[:, :, 5]
        for k in [4, 3, 2, 1, 0]:
            g = torch.addcmul(coefficients[:, :, k], g, t)
        return g

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Descriptor of each probe from its neighbour vectors (P, nnei, 3) and slot mask (P, nnei)."""
        env = environment_matrix(vectors, mask, self.rcut_smth, self.rcut, self.env_protection, lmax=self.lmax)
        env = (env - self.mean) / self.stddev
        index, offset = self.locate(env[:, :, 0])
        rows = env.transpose(1, 2)  # (P, columns, nnei)
        xyz_scatter = torch.zeros(env.shape[0], env.shape[2], self.embedding_width, dtype=env.dtype, device=env.device)
        start = 0
        for type_index in range(self.ntypes):
            stop = start + self.sel[type_index]
            table = self.tables[type_index]
            for first in range(start, stop, self.block):
                last = min(first + self.block, stop)
                g = self.embed(table, index[:, first:last], offset[:, first:last])
                xyz_scatter = torch.baddbmm(xyz_scatter, rows[:, :, first:last], g)
            start = stop
        return contract_orders(xyz_scatter / self.nnei, self.axis_neuron, self.lmax)
