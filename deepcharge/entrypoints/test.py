"""``deepcharge test``: errors of a frozen model on density files, per file and overall."""

import logging
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..analysis.metrics import DensityErrors
from ..data.sampler import sample_grid_indices
from ..snapshot import Snapshot
from ..data.systems import expand_systems, load_system, system_label
from ..infer.predictor import Predictor
from ..utils import atomic_path, write_json

log = logging.getLogger("deepcharge")


def sample_index(snapshot: Snapshot, numb_points: int = 0, seed: int = 0) -> np.ndarray:
    """Sorted flat indices of ``numb_points`` random grid points of ``snapshot`` (all points when ≤ 0)."""
    if numb_points > 0:
        return np.sort(sample_grid_indices(snapshot.density.size, numb_points, torch.Generator().manual_seed(seed)))
    return np.arange(snapshot.density.size)


def predict_index(predictor: Predictor, snapshot: Snapshot, index: np.ndarray) -> np.ndarray:
    """The prediction at flat grid ``index``: the whole grid in one pass when ``index`` covers it."""
    if len(index) == snapshot.density.size:
        return predictor.predict_grid(snapshot, snapshot.grid_shape).reshape(-1)
    return predictor.predict_points(snapshot, snapshot.grid_points(index))


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


def evaluate_file(predictor: Predictor, path: str, numb_points: int = 0, seed: int = 0, block: str = "total",
                  conserve: bool = False):
    """(metrics, errors, positions, reference, prediction) of one system; all points when numb_points ≤ 0.

    ``conserve``: the prediction is rescaled to the electrons the structure should hold (from the training
    data's electrons per atom; with a sample of points its integral is estimated from the sample); the
    metrics then also give the raw integral, ``electrons_pred_raw``.
    """
    snapshot = load_system(path, block)
    index = sample_index(snapshot, numb_points, seed)
    prediction = predict_index(predictor, snapshot, index)
    raw = float(prediction.mean() * snapshot.volume)
    if conserve:
        prediction = prediction * (predictor.expected_electrons(snapshot) / raw)
    metrics, errors = file_metrics(path, snapshot, index, prediction)
    if conserve:
        metrics["electrons_pred_raw"] = raw
    return metrics, errors, snapshot.grid_points(index), snapshot.density.reshape(-1)[index], prediction


def write_detail(prefix: str, path: str, positions, reference, prediction):
    """Per-point detail: ``<prefix>.<system label>.out`` with columns x y z (Å) rho_ref rho_pred (e/Å³)."""
    target = f"{prefix}.{system_label(path)}.out"
    with atomic_path(target) as tmp:
        np.savetxt(tmp, np.column_stack([positions, reference, prediction]), fmt="%.6f %.6f %.6f %.8e %.8e",
                   header="x y z rho_ref rho_pred")
    return target


def run_test(model: str, systems: List[str], numb_points: int = 0, detail: Optional[str] = None,
             json_out: Optional[str] = None, device: str = "auto", seed: int = 0, conserve: bool = False) -> dict:
    """Evaluate ``model`` on every system ``systems`` names (files, globs, directories, stores); print a table,
    optionally write detail and JSON."""
    predictor = Predictor.from_file(model, device)
    files, errors = [], []
    for path in expand_systems(systems, ".", "-s"):
        metrics, file_errors, positions, reference, prediction = evaluate_file(predictor, path, numb_points, seed,
                                                                               conserve=conserve)
        files.append(metrics)
        errors.append(file_errors)
        if detail:
            write_detail(detail, path, positions, reference, prediction)
    result = {"model": str(model), "overall": overall_metrics(files, errors), "files": files}
    _print_table(result)
    if json_out:
        write_json(json_out, result)
    return result


def _print_table(result: dict):
    header = f"{'file':40s} {'points':>9s} {'eps_mae%':>9s} {'MAE':>10s} {'RMSE':>10s} {'N_ref':>10s} {'N_pred':>10s}"
    print(header)
    rows = [(Path(m["file"]).name, m) for m in result["files"]] + [("overall", result["overall"])]
    for name, m in rows:
        print(f"{name[:40]:40s} {m['points']:9d} {m['eps_mae_percent']:9.4f} {m['mae']:10.3e} {m['rmse']:10.3e} "
              f"{m['electrons_ref']:10.4f} {m['electrons_pred']:10.4f}")
    print("(MAE, RMSE in e/Å³; N = integrated electrons)")
