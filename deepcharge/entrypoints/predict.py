"""``deepcharge predict``: the density of a structure on a grid, written as CHGCAR or cube."""

import logging
import math
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..data.snapshot import Snapshot
from ..data.systems import load_structure
from ..errors import DeepChargeError
from ..infer.predictor import Predictor
from ..io import write_density

log = logging.getLogger("deepcharge")


def grid_shape_for(snapshot: Snapshot, grid: Optional[Sequence[int]], spacing: Optional[float]):
    """``grid`` as given, else ⌈|a_i|/spacing⌉ per axis, else the structure file's own grid."""
    if grid:
        if len(grid) != 3 or min(grid) <= 0:
            raise DeepChargeError(f"--grid needs three positive integers, got {list(grid)}")
        return tuple(int(n) for n in grid)
    if spacing:
        if spacing <= 0:
            raise DeepChargeError(f"--spacing must be positive, got {spacing}")
        return tuple(max(1, math.ceil(np.linalg.norm(a) / spacing)) for a in snapshot.cell)
    if snapshot.grid_shape:
        return snapshot.grid_shape
    raise DeepChargeError(f"{snapshot.source}: carries no grid; give --grid NX NY NZ or --spacing H (Å)")


def check_writable(output: str):
    """Fail before the expensive work when the output cannot be written."""
    folder = Path(output).resolve().parent
    if not folder.is_dir():
        raise DeepChargeError(f"{output}: cannot write (directory {folder} does not exist)")
    if not os.access(folder, os.W_OK):
        raise DeepChargeError(f"{output}: cannot write (directory {folder} is not writable)")


def run_predict(model: str, structure: str, output: str, grid=None, spacing=None, device: str = "auto") -> dict:
    """Predict the density of ``structure`` on a grid and write it to ``output`` (format from its name)."""
    check_writable(output)
    predictor = Predictor.from_file(model, device)
    snapshot = load_structure(structure)
    shape = grid_shape_for(snapshot, grid, spacing)
    npoints = int(np.prod(shape))
    start = time.perf_counter()
    density = np.empty(npoints)
    with tqdm(total=npoints, unit="pt", unit_scale=True, desc="predict", disable=None, leave=False) as bar:
        for index, values in predictor.iter_grid(snapshot, shape):
            density[index] = values
            bar.update(len(index))
    elapsed = time.perf_counter() - start
    result = Snapshot(symbols=list(snapshot.symbols), positions=snapshot.positions, cell=snapshot.cell,
                      pbc=snapshot.pbc, density=density.reshape(shape), origin=snapshot.origin,
                      source=str(output))
    write_density(output, result)
    summary = {"output": str(output), "grid": list(shape), "points": npoints, "seconds": elapsed,
               "points_per_second": npoints / max(elapsed, 1e-9), "electrons": result.electrons()}
    log.info("%s: %d points (%dx%dx%d) in %.2f s (%.3g points/s); integrated electrons %.4f", output, npoints,
             *shape, elapsed, summary["points_per_second"], summary["electrons"])
    return summary
