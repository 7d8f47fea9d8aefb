"""``deepcharge predict``: the density of a structure on a grid, written in the format the output name chooses."""

import logging
import math
import os
import time
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..snapshot import Snapshot
from ..data.systems import load_frames
from ..errors import DeepChargeError
from ..infer.predictor import Predictor
from ..io import output_format
from ..io.formats import density_format
from ..io.chgcar import Augmentation, check_augmentation_fits, read_augmentation, write_chgcar_blocks
from ..reading import current_read_options
from ..train import distributed
from ..utils import numbered_names

log = logging.getLogger("deepcharge")


def fft_friendly_size(minimum: int) -> int:
    """The smallest n ≥ ``minimum`` whose only prime factors are 2, 3 and 5 (grid sizes FFTs handle fast, the kind
    plane-wave codes choose: VASP, Quantum ESPRESSO)."""
    size = max(1, minimum)
    while True:
        rest = size
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return size
        size += 1


def grid_shape_for(snapshot: Snapshot, grid: Optional[Sequence[int]], spacing: Optional[float]):
    """``grid`` as given, else per axis the smallest FFT-friendly size with spacing at most ``spacing``
    (:func:`fft_friendly_size` of ⌈|a_i|/spacing⌉), else the structure file's own grid."""
    if grid:
        if len(grid) != 3 or min(grid) <= 0:
            raise DeepChargeError(f"--grid needs three positive integers, got {list(grid)}")
        return tuple(int(n) for n in grid)
    if spacing:
        if spacing <= 0:
            raise DeepChargeError(f"--spacing must be positive, got {spacing}")
        return tuple(fft_friendly_size(math.ceil(np.linalg.norm(a) / spacing)) for a in snapshot.cell)
    if snapshot.grid_shape:
        return snapshot.grid_shape
    raise DeepChargeError(f"{snapshot.source}: carries no grid; give --grid NX NY NZ or --spacing H (Å)")


def check_writable(output: str):
    """Fail before the expensive work when the output cannot be written (or no writer takes its name)."""
    output_format(output)
    folder = Path(output).resolve().parent
    if not folder.is_dir():
        raise DeepChargeError(f"{output}: cannot write (directory {folder} does not exist)")
    if not os.access(folder, os.W_OK):
        raise DeepChargeError(f"{output}: cannot write (directory {folder} is not writable)")


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


def bare_structure(snapshot: Snapshot, output: str) -> Snapshot:
    """``snapshot``'s structure without its density, named after the file it will be written to."""
    return Snapshot(symbols=list(snapshot.symbols), positions=snapshot.positions, cell=snapshot.cell,
                    pbc=snapshot.pbc, origin=snapshot.origin, source=str(output))


def write_grid(output: str, structure: Snapshot, shape, blocks: Iterable[np.ndarray],
               augmentation: Optional[Augmentation] = None):
    """Write values on the grid ``shape`` that arrive in consecutive ``blocks``, in the order of the format the
    name chooses (streamed where its writer takes blocks, as the CHGCAR's does; else assembled first),
    atomically; ``augmentation`` (a CHGCAR output only) goes after the grid."""
    fmt = output_format(output)
    if augmentation is not None:
        write_chgcar_blocks(output, structure, shape, blocks, augmentation=augmentation)
    elif fmt.write_blocks is not None:
        fmt.write_blocks(output, structure, shape, blocks)
    else:
        structure.density = np.concatenate(list(blocks)).reshape(shape, order=fmt.order)
        fmt.write(output, structure)


def grid_values(predictor: Predictor, snapshot: Snapshot, shape, order: str) -> Iterator[np.ndarray]:
    """The density on the grid in consecutive chunks of ``order`` ("F": x fastest, as CHGCAR; "C": z fastest).

    Under torchrun the ranks take turns at the chunks and rank 0 receives them in order (the other ranks
    yield nothing), so the output is written by one process while all of them compute.
    """
    rank, size = distributed.rank_and_size()
    chunks = predictor.iter_grid(snapshot, shape, order=order, part=(rank, size))
    if size == 1:
        for _, values in chunks:
            yield values
        return
    for _ in range(0, predictor.chunk_count(shape), size):
        gathered = distributed.gather_to_main(next(chunks, (None, None))[1])
        for values in gathered:
            if values is not None:
                yield values
