"""``deepcharge test``: errors of a frozen model on density files, per file and overall."""

import logging
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..analysis.metrics import DensityErrors
from ..data.sampler import sample_grid_indices
from ..infer.predictor import Predictor
from ..io import read_density
from ..utils import atomic_path, write_json

log = logging.getLogger("deepcharge")


def evaluate_file(predictor: Predictor, path: str, numb_points: int = 0, seed: int = 0, block: str = "total"):
    """(metrics dict, positions, reference, prediction) for one density file; all points when numb_points ≤ 0."""
    snapshot = read_density(path, block)
    reference = snapshot.density.reshape(-1)
    if numb_points > 0:
        index = np.sort(sample_grid_indices(reference.size, numb_points, torch.Generator().manual_seed(seed)))
        prediction = predictor.predict_points(snapshot, snapshot.grid_points(index))
    else:
        index = np.arange(reference.size)
        prediction = predictor.predict_grid(snapshot, snapshot.grid_shape).reshape(-1)
    reference = reference[index]
    errors = DensityErrors().add(reference, prediction)
    # the mean over (a uniform sample of) the grid times the volume: exact for all points, an estimate otherwise
    metrics = {"file": str(path), **errors.summary(),
               "electrons_ref": float(reference.mean() * snapshot.volume),
               "electrons_pred": float(prediction.mean() * snapshot.volume),
               "electrons_estimated_from_sample": bool(numb_points > 0 and len(index) < snapshot.density.size)}
    return metrics, errors, snapshot.grid_points(index), reference, prediction


def write_detail(prefix: str, path: str, positions, reference, prediction):
    """Per-point detail: ``<prefix>.<file stem>.out`` with columns x y z (Å) rho_ref rho_pred (e/Å³)."""
    stem = Path(path).name.split(".")[0]
    target = f"{prefix}.{stem}.out"
    with atomic_path(target) as tmp:
        np.savetxt(tmp, np.column_stack([positions, reference, prediction]), fmt="%.6f %.6f %.6f %.8e %.8e",
                   header="x y z rho_ref rho_pred")
    return target


def run_test(model: str, systems: List[str], numb_points: int = 0, detail: Optional[str] = None,
             json_out: Optional[str] = None, device: str = "auto", seed: int = 0) -> dict:
    """Evaluate ``model`` on every file of ``systems``; print a table, optionally write detail and JSON."""
    predictor = Predictor.from_file(model, device)
    files, overall = [], DensityErrors()
    electrons_ref = electrons_pred = 0.0
    for path in systems:
        metrics, errors, positions, reference, prediction = evaluate_file(predictor, path, numb_points, seed)
        files.append(metrics)
        overall.merge(errors)
        electrons_ref += metrics["electrons_ref"]
        electrons_pred += metrics["electrons_pred"]
        if detail:
            write_detail(detail, path, positions, reference, prediction)
    result = {"model": str(model),
              "overall": {**overall.summary(), "electrons_ref": electrons_ref, "electrons_pred": electrons_pred},
              "files": files}
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
