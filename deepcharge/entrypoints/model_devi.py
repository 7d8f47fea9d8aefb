"""``deepcharge model-devi``: an ensemble's mean density and per-point deviation on grids, and a table of both.

As ``dp model-devi`` does for forces: σ is the standard deviation over the models (ddof 0) at every grid point.
For ``-o rho.CHGCAR`` the files are ``rho_mean.CHGCAR``, ``rho_devi.CHGCAR`` and the table ``rho_model_devi.out``;
several structures (or frames) number them in order: ``rho_mean_0.CHGCAR``, ``rho_devi_0.CHGCAR``, ...
"""

import logging
import os
import tempfile
from typing import Iterator, List, Optional, Tuple

import numpy as np

from deepcharge.data.systems import load_frames
from deepcharge.errors import DeepChargeError
from deepcharge.infer.grid import bare_structure, check_writable, grid_shape_for, spooled, write_grid
from deepcharge.infer.predictor import Predictor
from deepcharge.io import output_format
from deepcharge.snapshot import Snapshot
from deepcharge.utils import atomic_path, numbered_names, tagged_name

log = logging.getLogger("deepcharge")

TABLE_COLUMNS = ["frame", "max_devi_rho", "min_devi_rho", "avg_devi_rho", "int_devi_rho", "electrons"]


def table_name(output: str) -> str:
    """The table beside the density files: ``rho.CHGCAR`` → ``rho_model_devi.out``."""
    folder, name = os.path.split(output)
    return os.path.join(folder, f"{name.partition('.')[0]}_model_devi.out")


def run_model_devi(models: List[str], structures: List[str], output: str, grid=None, spacing=None,
                   device: str = "auto", fmt: Optional[str] = None) -> List[dict]:
    """Mean and deviation of ``models`` on the grid of every structure (every frame) ``structures`` hold; write
    them as density files named after ``output`` and one table row per structure. Returns the rows."""
    if len(models) < 2:
        raise DeepChargeError(f"-m: give at least two models (got {len(models)}); one model has no deviation")
    check_writable(output)
    predictors = load_ensemble(models, device)
    frames = []
    for structure in structures:
        found = load_frames(structure, fmt, predictors[0].type_map)
        frames += [(structure if len(found) == 1 else f"{structure}[{number}]", frame)
                   for number, frame in enumerate(found)]
    means = numbered_names(tagged_name(output, "mean"), len(frames))
    devis = numbered_names(tagged_name(output, "devi"), len(frames))
    rows = []
    for number, ((label, frame), mean, devi) in enumerate(zip(frames, means, devis)):
        row = deviation_files(predictors, frame, mean, devi, grid, spacing)
        rows.append({"frame": number, **row, "structure": label})
        log.info("%s: max σ %.3e e/Å³, ∫σ dV %.4f e, electrons %.4f → %s, %s", label, row["max_devi_rho"],
                 row["int_devi_rho"], row["electrons"], mean, devi)
    write_table(table_name(output), rows)
    return rows


def load_ensemble(models: List[str], device: str = "auto") -> List[Predictor]:
    """The frozen ``models`` of one ensemble; an error when they do not share one type_map."""
    predictors = [Predictor.from_file(model, device) for model in models]
    for model, predictor in zip(models[1:], predictors[1:]):
        if predictor.type_map != predictors[0].type_map:
            raise DeepChargeError(f"{model}: type_map {predictor.type_map} differs from {models[0]}'s "
                                  f"{predictors[0].type_map}; an ensemble's models must share one type_map")
    return predictors


def ensemble_chunks(predictors: List[Predictor], snapshot: Snapshot, shape, order: str = "C"
                    ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(mean, σ) over the models, σ with ddof 0, in consecutive chunks of the grid ``shape`` (``order`` as
    :meth:`Predictor.iter_grid`'s)."""
    for results in zip(*(predictor.iter_grid(snapshot, shape, order=order) for predictor in predictors)):
        values = np.stack([values for _, values in results])
        yield values.mean(axis=0), values.std(axis=0)


def deviation_files(predictors: List[Predictor], snapshot: Snapshot, mean_output: str, devi_output: str,
                    grid=None, spacing=None) -> dict:
    """Write the ensemble mean and deviation of one structure's grid, computed chunk by chunk with every model;
    the deviation waits in a temporary file while the mean is written. Returns its table row."""
    shape = grid_shape_for(snapshot, grid, spacing)
    chunks = ensemble_chunks(predictors, snapshot, shape, output_format(mean_output).order)
    totals = {"max": 0.0, "min": np.inf, "devi": 0.0, "mean": 0.0}

    def mean_blocks(spool) -> Iterator[np.ndarray]:
        for mean, devi in chunks:
            totals.update(max=max(totals["max"], devi.max()), min=min(totals["min"], devi.min()),
                          devi=totals["devi"] + devi.sum(), mean=totals["mean"] + mean.sum())
            spool.write(devi.tobytes())
            yield mean

    with tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(devi_output))) as spool:
        write_grid(mean_output, bare_structure(snapshot, mean_output), shape, mean_blocks(spool))
        spool.seek(0)
        write_grid(devi_output, bare_structure(snapshot, devi_output), shape, spooled(spool))
    npoints = int(np.prod(shape))
    return {"max_devi_rho": float(totals["max"]), "min_devi_rho": float(totals["min"]),
            "avg_devi_rho": totals["devi"] / npoints, "int_devi_rho": totals["devi"] / npoints * snapshot.volume,
            "electrons": totals["mean"] / npoints * snapshot.volume, "grid": list(shape)}


def write_table(path: str, rows: List[dict]):
    """``model_devi.out``-like: a ``#`` header naming the columns (``numpy.genfromtxt(path, names=True)`` reads
    it), one row per structure, its name after a ``#``. Deviations in e/Å³, ``int_devi_rho`` and ``electrons``
    (∫σ dV and ∫ρ_mean dV over the cell) in electrons."""
    lines = ["#" + "".join(f"{name:>15s}" for name in TABLE_COLUMNS)]
    for row in rows:
        lines.append(f" {row['frame']:15d}" + "".join(f"{row[name]:15.6e}" for name in TABLE_COLUMNS[1:])
                     + f"  # {row['structure']}")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write("\n".join(lines) + "\n")
