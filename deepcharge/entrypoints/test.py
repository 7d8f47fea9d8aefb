"""``deepcharge test``: errors of a frozen model on density files, per file and overall."""

import logging
from pathlib import Path
from typing import List, Optional

import numpy as np

from deepcharge.data.systems import expand_systems, system_label
from deepcharge.errors import DeepChargeError
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.infer.evaluate import evaluate_file, overall_metrics
from deepcharge.utils import atomic_path, write_json

log = logging.getLogger("deepcharge")


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
    predictor = DensityPredictor(model, device)
    block = predictor.density_block
    if block != "total":
        if conserve:
            raise DeepChargeError(f"{model} predicts the {block} density, whose integral is a moment, not an "
                                  f"electron count: drop --conserve-electrons")
        log.info("%s learnt the %s density: it is compared with each file's %s block", model, block, block)
    files, errors = [], []
    for path in expand_systems(systems, ".", "-s"):
        metrics, file_errors, positions, reference, prediction = evaluate_file(predictor, path, numb_points, seed,
                                                                               block, conserve)
        files.append(metrics)
        errors.append(file_errors)
        if detail:
            write_detail(detail, path, positions, reference, prediction)
    result = {"model": str(model), "density_block": block, "overall": overall_metrics(errors), "files": files}
    _print_table(result)
    if json_out:
        write_json(json_out, result)
    return result


def _print_table(result: dict):
    header = (f"{'file':40s} {'points':>9s} {'eps_mae%':>9s} {'MAE':>10s} {'RMSE':>10s} {'N_ref':>10s} {'N_pred':>10s} "
              f"{'E_H[δρ]':>10s}")
    print(header)
    rows = [(Path(m["file"]).name, m) for m in result["files"]] + [("overall", result["overall"])]
    for name, m in rows:
        electrons = (f"{m['electrons_ref']:10.4f} {m['electrons_pred']:10.4f}" if "electrons_ref" in m
                     else f"{'-':>10s} {'-':>10s}")
        hartree = f"{1000 * m['hartree_error_ev']:10.4g}" if "hartree_error_ev" in m else f"{'-':>10s}"
        print(f"{name[:40]:40s} {m['points']:9d} {m['eps_mae_percent']:9.4f} {m['mae']:10.3e} {m['rmse']:10.3e} "
              f"{electrons} {hartree}")
    print("(MAE, RMSE in e/Å³; N = integrated electrons; E_H[δρ] = the error's Hartree energy in meV, all points only)")
