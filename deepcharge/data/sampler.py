"""Which grid points a model sees: uniform draws without replacement, reproducible from a generator."""

import numpy as np
import torch

from .snapshot import Snapshot


def sample_grid_indices(npoints: int, count: int, generator: torch.Generator) -> np.ndarray:
    """``count`` distinct flat (C-order) grid indices drawn uniformly; all of them when ``count`` < 0."""
    if count < 0 or count >= npoints:
        return np.arange(npoints)
    return torch.randperm(npoints, generator=generator)[:count].numpy()


def draw_probes(snapshot: Snapshot, count: int, generator: torch.Generator):
    """Positions (P, 3) in Å and densities (P,) in e/Å³ of ``count`` random grid points of ``snapshot``."""
    index = sample_grid_indices(snapshot.density.size, count, generator)
    return snapshot.grid_points(index), snapshot.density.reshape(-1)[index]
