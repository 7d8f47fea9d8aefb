"""``deepcharge predict``: the density of a structure on a grid, written in the format the output name chooses."""

import logging
import time
from typing import List, Optional

import numpy as np
from tqdm import tqdm

from .. import distributed
from ..data.snapshot import Snapshot
from ..data.systems import load_frames
from ..errors import DeepChargeError
from ..infer.grid import bare_structure, check_writable, grid_shape_for, grid_values, write_grid
from ..infer.predictor import Predictor
from ..io import output_format
from ..io.chgcar import Augmentation, check_augmentation_fits, read_augmentation
from ..io.formats import density_format
from ..reading import current_read_options
from ..utils import numbered_names

log = logging.getLogger("deepcharge")


def run_predict(model: str, structure: str, output: str, grid=None, spacing=None, device: str = "auto",
                fmt: Optional[str] = None, electrons: Optional[float] = None, conserve: bool = False,
                augmentation_from: Optional[str] = None) -> List[dict]:
    """Predict the density of every structure ``structure`` holds on a grid; write one file per frame
    (``output`` itself for a single frame, else ``<name>_<frame>.<suffixes>``; format from the name).

    ``electrons`` N, or ``conserve`` (N from the training data's electrons per atom of each species):
    the density is rescaled to integrate to N; the raw integral is reported beside it. ``augmentation_from``:
    a VASP CHGCAR of the same atoms whose augmentation occupancies (and magnetisation, when it has one) are
    written after the predicted grid, for VASP's ICHARG = 1.
    """
    check_writable(output)
    augmentation = augmentation_source(augmentation_from, output)
    predictor = Predictor.from_file(model, distributed.setup(device))
    frames = load_frames(structure, fmt, predictor.type_map)
    if augmentation is not None:
        for frame in frames:
            check_augmentation_fits(augmentation, frame, grid_shape_for(frame, grid, spacing))
    targets = [electrons if electrons is not None else predictor.expected_electrons(frame) if conserve else None
               for frame in frames]
    return [predict_frame(predictor, frame, path, grid, spacing, target, augmentation)
            for frame, path, target in zip(frames, numbered_names(output, len(frames)), targets)]


def augmentation_source(path: Optional[str], output: str) -> Optional[Augmentation]:
    """The augmentation part of the CHGCAR ``path`` (None for None), once ``output`` is known to be a CHGCAR."""
    if path is None:
        return None
    if output_format(output).name != "chgcar":
        raise DeepChargeError(f"{output}: --augmentation-from writes the occupancies into a CHGCAR; name the output "
                              f"{density_format('chgcar').patterns}")
    return read_augmentation(path, current_read_options().species)


def predict_frame(predictor: Predictor, snapshot: Snapshot, output: str, grid=None, spacing=None,
                  electrons: Optional[float] = None, augmentation: Optional[Augmentation] = None) -> dict:
    """Predict one structure's density and write it as it is computed (for formats that stream: a density
    rescaled to ``electrons`` is assembled first); ``augmentation`` goes after a CHGCAR's grid."""
    shape = grid_shape_for(snapshot, grid, spacing)
    npoints = int(np.prod(shape))
    structure = bare_structure(snapshot, output)
    order = output_format(output).order
    total = [0.0]

    def blocks():
        with tqdm(total=npoints, unit="pt", unit_scale=True, desc="predict", disable=None, leave=False) as bar:
            for values in grid_values(predictor, snapshot, shape, order=order):
                total[0] += float(values.sum())
                bar.update(len(values))
                yield values

    start = time.perf_counter()
    if not distributed.is_main():
        for _ in blocks():  # this rank's share goes to rank 0, which writes
            pass
        return {}
    def integral() -> float:  # electrons of what has been computed so far (all of it, once consumed)
        return total[0] / npoints * structure.volume

    values = blocks()
    if electrons is not None:
        whole = np.concatenate(list(values))
        values = [whole * (electrons / integral())]
    write_grid(output, structure, shape, values, augmentation)
    elapsed = time.perf_counter() - start
    raw = integral()
    summary = {"output": str(output), "grid": list(shape), "points": npoints, "seconds": elapsed,
               "points_per_second": npoints / max(elapsed, 1e-9), "electrons_raw": raw,
               "electrons": raw if electrons is None else electrons}
    log.info("%s: %d points (%dx%dx%d) in %.2f s (%.3g points/s); integrated electrons %.4f%s", output, npoints,
             *shape, elapsed, summary["points_per_second"], summary["electrons"],
             "" if electrons is None else f" (rescaled from {raw:.4f})")
    return summary


