"""A frozen model's errors on a density file's grid points: the evaluation ``test`` and ``compare`` share."""

from typing import List

import numpy as np
import torch

from deepcharge.analysis.metrics import DensityErrors
from deepcharge.data.sampler import sample_grid_indices
from deepcharge.data.systems import load_system
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.snapshot import Snapshot


def sample_index(snapshot: Snapshot, numb_points: int = 0, seed: int = 0) -> np.ndarray:
    """Sorted flat indices of ``numb_points`` random grid points of ``snapshot`` (all points when ≤ 0)."""
    if numb_points > 0:
        return np.sort(sample_grid_indices(snapshot.density.size, numb_points, torch.Generator().manual_seed(seed)))
    return np.arange(snapshot.density.size)


def file_metrics(path: str, snapshot: Snapshot, index: np.ndarray, prediction: np.ndarray):
    """(metrics dict, DensityErrors) of ``prediction`` at flat grid ``index`` of ``snapshot``."""
    reference = snapshot.density.reshape(-1)[index]
    errors = DensityErrors().add(reference, prediction)
    # the mean over (a uniform sample of) the grid times the volume: exact for all points, an estimate otherwise
    metrics = {"file": str(path), **errors.summary(),
               "electrons_ref": float(reference.mean() * snapshot.volume),
               "electrons_pred": float(prediction.mean() * snapshot.volume),
               "electrons_estimated_from_sample": bool(len(index) < snapshot.density.size)}
    return metrics, errors


def overall_metrics(files: List[dict], errors: List[DensityErrors]) -> dict:
    """Metrics over all points of several files; electrons summed over the files."""
    overall = DensityErrors()
    for part in errors:
        overall.merge(part)
    return {**overall.summary(), "electrons_ref": sum(m["electrons_ref"] for m in files),
            "electrons_pred": sum(m["electrons_pred"] for m in files)}


def evaluate_file(predictor: DensityPredictor, path: str, numb_points: int = 0, seed: int = 0, block: str = "total",
                  conserve: bool = False):
    """(metrics, errors, positions, reference, prediction) of one system; all points when numb_points ≤ 0.

    ``conserve``: the prediction is rescaled to the electrons the structure should hold (from the training
    data's electrons per atom; with a sample of points its integral is estimated from the sample); the
    metrics then also give the raw integral, ``electrons_pred_raw``.
    """
    snapshot = load_system(path, block)
    index = sample_index(snapshot, numb_points, seed)
    prediction = predictor.eval_index(snapshot, index)
    raw = float(prediction.mean() * snapshot.volume)
    if conserve:
        prediction = prediction * (predictor.expected_electrons(snapshot) / raw)
    metrics, errors = file_metrics(path, snapshot, index, prediction)
    if conserve:
        metrics["electrons_pred_raw"] = raw
    return metrics, errors, snapshot.grid_points(index), snapshot.density.reshape(-1)[index], prediction
