"""A frozen model's errors on a density file's grid points: the evaluation ``test`` and ``compare`` share."""

import logging
from typing import List, Optional

import numpy as np
import torch

from deepcharge.analysis.electrons import rescale_factor
from deepcharge.analysis.hartree import hartree_energy
from deepcharge.analysis.metrics import DensityErrors
from deepcharge.data.sampler import sample_grid_indices
from deepcharge.data.systems import load_system
from deepcharge.errors import DeepChargeError
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.snapshot import Snapshot

log = logging.getLogger("deepcharge")


def sample_index(snapshot: Snapshot, numb_points: int = 0, seed: int = 0) -> np.ndarray:
    """Sorted flat indices of ``numb_points`` random grid points of ``snapshot`` (all points when ≤ 0)."""
    if numb_points > 0:
        return np.sort(sample_grid_indices(snapshot.density.size, numb_points, torch.Generator().manual_seed(seed)))
    return np.arange(snapshot.density.size)


def file_metrics(path: str, snapshot: Snapshot, index: np.ndarray, prediction: np.ndarray):
    """(metrics dict, DensityErrors) of ``prediction`` at flat grid ``index`` of ``snapshot``; with every point of a
    total density, also the Hartree energy of the error, ``hartree_error_ev`` (see :mod:`deepcharge.analysis.hartree`:
    what a plane-wave SCF started from the prediction feels)."""
    reference = snapshot.density.reshape(-1)[index]
    errors = DensityErrors().add(reference, prediction)
    # the mean over (a uniform sample of) the grid times the volume: exact for all points, an estimate otherwise
    metrics = {"file": str(path), **errors.summary(),
               "electrons_ref": float(reference.mean() * snapshot.volume),
               "electrons_pred": float(prediction.mean() * snapshot.volume),
               "electrons_estimated_from_sample": bool(len(index) < snapshot.density.size)}
    if len(index) == snapshot.density.size and snapshot.block == "total":
        # the error's Hartree energy needs the whole grid (index is then every point, in order)
        delta = (np.asarray(prediction, dtype=float) - reference).reshape(snapshot.density.shape)
        metrics["hartree_error_ev"] = hartree_energy(delta, snapshot.cell)
    return metrics, errors


def overall_metrics(errors: List[DensityErrors]) -> dict:
    """Errors over all points of several files (no electron count: the files' counts do not add up to one)."""
    overall = DensityErrors()
    for part in errors:
        overall.merge(part)
    return overall.summary()


# a reference whose electrons differ from the training data's count by more than this share is named
ELECTRONS_MISMATCH = 0.02


def check_reference(predictor: DensityPredictor, snapshot: Snapshot, path: str) -> Optional[float]:
    """The electrons ``snapshot``'s composition should hold by the training data's electrons per atom (None for
    a magnetisation model or species without a count); a warning, with both figures, when the file's own
    density holds more than :data:`ELECTRONS_MISMATCH` more or less: different PAW valences, another code or
    another kind of density (pseudo against all-electron), and a score of unlike densities."""
    if predictor.density_block != "total":
        return None
    try:
        expected = predictor.expected_electrons(snapshot)
    except DeepChargeError:
        return None
    held = snapshot.electrons()
    if abs(held / expected - 1) > ELECTRONS_MISMATCH:
        log.warning("%s holds %.3f electrons (%.3f per atom) where the training data's electrons per atom give "
                    "%.3f: another PAW valence, code or kind of density? Its errors compare unlike densities",
                    path, held, held / snapshot.natoms, expected)
    return expected


def evaluate_file(predictor: DensityPredictor, path: str, numb_points: int = 0, seed: int = 0, block: str = "total",
                  conserve: bool = False):
    """(metrics, errors, positions, reference, prediction) of one system; all points when numb_points ≤ 0.

    ``conserve``: the prediction is rescaled to the electrons the structure should hold (from the training
    data's electrons per atom; with a sample of points its integral is estimated from the sample); the
    metrics then also give the raw integral, ``electrons_pred_raw``.
    """
    snapshot = load_system(path, block)
    expected = check_reference(predictor, snapshot, path)
    index = sample_index(snapshot, numb_points, seed)
    prediction = predictor.eval_index(snapshot, index)
    raw = float(prediction.mean() * snapshot.volume)
    if conserve:
        prediction = prediction * rescale_factor(raw, predictor.expected_electrons(snapshot), path)
    metrics, errors = file_metrics(path, snapshot, index, prediction)
    metrics["electrons_expected"] = expected
    metrics["extrapolation"] = predictor.extrapolation(snapshot)
    if conserve:
        metrics["electrons_pred_raw"] = raw
    return metrics, errors, snapshot.grid_points(index), snapshot.density.reshape(-1)[index], prediction
