"""Which grid points a model sees: uniform draws without replacement, reproducible from a generator."""

from typing import Optional

import numpy as np
import torch

from deepcharge.snapshot import Snapshot


def sample_grid_indices(npoints: int, count: int, generator: torch.Generator) -> np.ndarray:
    """``count`` distinct flat (C-order) grid indices drawn uniformly; all of them when ``count`` < 0."""
    if count < 0 or count >= npoints:
        return np.arange(npoints)
    return torch.randperm(npoints, generator=generator)[:count].numpy()


def draw_probes(snapshot: Snapshot, count: int, generator: torch.Generator, alpha: float = 0.0,
                weighted: bool = False, points: Optional[np.ndarray] = None):
    """Positions (P, 3) in Å, densities (P,) in e/Å³ and loss weights (P,) of ``count`` grid points.

    ``alpha`` = 0: distinct points drawn uniformly, weights 1. ``alpha`` > 0: importance sampling as in
    Deep Density, points drawn (with replacement) with probability p ∝ |ρ|^α; weights 1 (Deep Density:
    the loss favours where the density is), or with ``weighted`` 1/(M p), M the number of grid points, so
    that a weighted mean over the drawn points is an unbiased estimate of the mean over the whole grid.
    ``points``: flat grid indices to draw from (e.g. outside a held-out slab); all of them by default.
    """
    density = snapshot.density.reshape(-1)
    candidates = density if points is None else density[points]
    if alpha == 0:
        index = sample_grid_indices(candidates.size, count, generator)
    else:
        importance = torch.as_tensor(np.abs(candidates), dtype=torch.float64).pow(alpha)
        probability = importance / importance.sum()
        count = candidates.size if count < 0 else count
        index = torch.multinomial(probability, count, replacement=True, generator=generator).numpy()
    weight = np.ones(len(index))
    if alpha != 0 and weighted:
        weight = 1.0 / (candidates.size * probability[index].numpy())
    grid_index = index if points is None else points[index]
    return snapshot.grid_points(grid_index), density[grid_index], weight


def batch_indices(system_sizes: torch.Tensor, total: int, batch_size: int, structures_per_step: int,
                  generator: torch.Generator) -> torch.Tensor:
    """Indices of one training batch into a probe set stored structure by structure.

    ``system_sizes``: probes per structure (on the device), ``total`` their sum.
    ``structures_per_step`` ≤ 0: ``batch_size`` probes drawn uniformly from all structures together.
    Otherwise DeepDFT's policy: that many distinct structures drawn at random, and the batch split
    evenly among them (2 structures × 1000 probes in the paper). Everything stays on the sizes' device.
    """
    device = system_sizes.device
    if structures_per_step <= 0:
        return torch.randint(total, (batch_size,), generator=generator, device=device)
    count = min(structures_per_step, len(system_sizes))
    chosen = torch.randperm(len(system_sizes), generator=generator, device=device)[:count]
    share = torch.full((count,), batch_size // count, dtype=torch.long, device=device)
    share[: batch_size % count] += 1
    starts = torch.cumsum(system_sizes, 0) - system_sizes
    owner = torch.repeat_interleave(chosen, share, output_size=batch_size)
    offset = (torch.rand(batch_size, generator=generator, device=device, dtype=torch.float64)
              * system_sizes[owner]).long()
    return starts[owner] + offset
