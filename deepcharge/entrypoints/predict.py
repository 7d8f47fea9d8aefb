"""``deepcharge predict``: the density of a structure on a grid, written in the format the output name chooses."""

import logging
import os
import tempfile
import time
from typing import Iterable, Iterator, List, Optional

import numpy as np
from tqdm import tqdm

from deepcharge import distributed
from deepcharge.analysis.electrons import rescale_factor
from deepcharge.data.systems import load_frames
from deepcharge.errors import DeepChargeError
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.infer.grid import bare_structure, check_writable, grid_values, output_grid, spooled, write_grid
from deepcharge.io import output_format
from deepcharge.io.chgcar import Augmentation, check_augmentation_fits, read_augmentation
from deepcharge.io.formats import density_format
from deepcharge.reading import current_read_options
from deepcharge.snapshot import Snapshot
from deepcharge.utils import numbered_names

log = logging.getLogger("deepcharge")


def run_predict(model: str, structure: str, output: str, grid=None, spacing=None, device: str = "auto",
                fmt: Optional[str] = None, electrons: Optional[float] = None, conserve: bool = False,
                augmentation_from: Optional[str] = None, ecutrho: Optional[float] = None) -> List[dict]:
    """Predict the density of every structure ``structure`` holds on a grid; write one file per frame
    (``output`` itself for a single frame, else ``<name>_<frame>.<suffixes>``; format from the name).

    ``electrons`` N, or ``conserve`` (N from the training data's electrons per atom of each species):
    the density is rescaled to integrate to N; the raw integral is reported beside it. ``augmentation_from``:
    a VASP CHGCAR of the same atoms whose augmentation occupancies (and magnetisation, when it has one) are
    written after the predicted grid, for VASP's ICHARG = 1. ``ecutrho``: the cut-off (Ry) of a QE
    charge-density.dat output (else that of the data-file-schema.xml beside it).
    """
    check_writable(output)
    augmentation = augmentation_source(augmentation_from, output)
    if ecutrho is not None and output_format(output).name != "qe":
        raise DeepChargeError(f"{output}: --ecutrho is the cut-off of QE's charge-density.dat; name the output "
                              f"{density_format('qe').patterns}")
    predictor = DensityPredictor(model, distributed.setup(device))
    if predictor.density_block != "total" and (electrons is not None or conserve):
        raise DeepChargeError(f"{model} predicts the {predictor.density_block} density (spin up minus down), "
                              f"whose integral is a magnetic moment, not an electron count: drop "
                              f"--electrons/--conserve-electrons")
    frames = load_frames(structure, fmt, predictor.type_map)
    outputs = numbered_names(output, len(frames))
    shapes = [output_grid(frame, path, grid, spacing, ecutrho) for frame, path in zip(frames, outputs)]
    if augmentation is not None:
        for frame, shape in zip(frames, shapes):
            check_augmentation_fits(augmentation, frame, shape)
    targets = [predictor.target_electrons(frame, electrons, conserve) for frame in frames]
    return [predict_frame(predictor, frame, path, shape, target, augmentation, ecutrho)
            for frame, path, shape, target in zip(frames, outputs, shapes, targets)]


def augmentation_source(path: Optional[str], output: str) -> Optional[Augmentation]:
    """The augmentation part of the CHGCAR ``path`` (None for None), once ``output`` is known to be a CHGCAR."""
    if path is None:
        return None
    if output_format(output).name != "chgcar":
        raise DeepChargeError(f"{output}: --augmentation-from writes the occupancies into a CHGCAR; name the output "
                              f"{density_format('chgcar').patterns}")
    return read_augmentation(path, current_read_options().species)


def predict_frame(predictor: DensityPredictor, snapshot: Snapshot, output: str, shape,
                  electrons: Optional[float] = None, augmentation: Optional[Augmentation] = None,
                  ecutrho: Optional[float] = None) -> dict:
    """Predict one structure's density on the grid ``shape`` and write it chunk by chunk as it is computed (a
    density rescaled to ``electrons`` waits in a temporary file until its integral is known); ``augmentation``
    goes after a CHGCAR's grid; ``ecutrho`` is a QE output's cut-off. Under torchrun every rank computes its share
    and rank 0 writes; the other ranks return {}."""
    structure = bare_structure(snapshot, output)
    comment = title(predictor, structure)
    start = time.perf_counter()
    values = grid_values(predictor, snapshot, shape, order=output_format(output).order)
    if not distributed.is_main():
        for _ in values:  # this rank's share goes to rank 0, which writes
            pass
        return {}
    integral = RunningIntegral(shape, structure.volume)
    values = integral.over(with_progress(values, integral.points))
    if electrons is None:
        write_grid(output, structure, shape, values, augmentation, comment, ecutrho)
    else:
        write_rescaled(output, structure, shape, values, integral, electrons, augmentation, ecutrho)
    return {**frame_summary(output, shape, time.perf_counter() - start, integral.electrons, electrons,
                            predictor.density_block),
            "extrapolation": predictor.extrapolation(snapshot)}


def title(predictor: DensityPredictor, structure: Snapshot) -> Optional[str]:
    """The output's title line when the writer's own would mislead: a magnetisation is not a charge density."""
    if predictor.density_block == "total":
        return None
    return (f"{structure.to_ase().get_chemical_formula()} {predictor.density_block} density (spin up minus down, "
            f"not a charge density) by deepcharge")


class RunningIntegral:
    """∫ρ dV over the cell of the grid values that have passed :meth:`over` so far (all of them, once consumed)."""

    def __init__(self, shape, volume: float):
        self.points = int(np.prod(shape))
        self.volume = volume
        self.total = 0.0

    def over(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for values in blocks:
            self.total += float(values.sum())
            yield values

    @property
    def electrons(self) -> float:
        return self.total / self.points * self.volume


def with_progress(blocks: Iterable[np.ndarray], points: int) -> Iterator[np.ndarray]:
    """``blocks``, counted on a progress bar (on a terminal only)."""
    with tqdm(total=points, unit="pt", unit_scale=True, desc="predict", disable=None, leave=False) as bar:
        for values in blocks:
            bar.update(len(values))
            yield values


def write_rescaled(output: str, structure: Snapshot, shape, blocks: Iterable[np.ndarray],
                   integral: RunningIntegral, electrons: float, augmentation: Optional[Augmentation] = None,
                   ecutrho: Optional[float] = None):
    """Write ``blocks`` scaled to integrate to ``electrons``: they wait in a temporary file beside ``output``
    (8 bytes a grid point) while ``integral`` sums them, then go to the writer a chunk at a time."""
    with tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(output))) as spool:
        for values in blocks:
            spool.write(values.tobytes())
        spool.seek(0)
        scale = rescale_factor(integral.electrons, electrons, output)
        write_grid(output, structure, shape, (values * scale for values in spooled(spool)), augmentation,
                   ecutrho=ecutrho)


def frame_summary(output: str, shape, seconds: float, raw: float, electrons: Optional[float],
                  block: str = "total") -> dict:
    """What :func:`predict_frame` returns and logs: the grid, the time, the electrons (raw and rescaled), or for
    a magnetisation model the moment."""
    npoints = int(np.prod(shape))
    summary = {"output": str(output), "grid": list(shape), "points": npoints, "seconds": seconds,
               "points_per_second": npoints / max(seconds, 1e-9), "electrons_raw": raw,
               "electrons": raw if electrons is None else electrons}
    integrated = "integrated electrons" if block == "total" else f"{block} density; integrated moment (μB)"
    log.info("%s: %d points (%dx%dx%d) in %.2f s (%.3g points/s); %s %.4f%s", output, npoints, *shape, seconds,
             summary["points_per_second"], integrated, summary["electrons"],
             "" if electrons is None else f" (rescaled from {raw:.4f})")
    return summary


