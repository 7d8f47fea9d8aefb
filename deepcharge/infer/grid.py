"""A predicted grid: its shape, its values chunk by chunk (across torchrun's ranks), and its file."""

import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from deepcharge import distributed
from deepcharge.chunks import SPOOL_CHUNK
from deepcharge.errors import DeepChargeError
from deepcharge.geometry.fft_sizes import fft_friendly_size
from deepcharge.io import output_format
from deepcharge.io.chgcar import Augmentation, write_chgcar_blocks
from deepcharge.io.qe import check_grid, write_qe, write_target
from deepcharge.snapshot import Snapshot


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


def output_grid(snapshot: Snapshot, output: str, grid: Optional[Sequence[int]], spacing: Optional[float],
                ecutrho: Optional[float] = None):
    """The grid to predict ``snapshot`` on for ``output``: as :func:`grid_shape_for`, except that QE's
    charge-density.dat takes QE's FFT grid for the cut-off ``ecutrho`` (Ry; else its data-file-schema.xml's)
    unless ``grid`` or ``spacing`` is given, and must hold its G vectors."""
    if output_format(output).name != "qe":
        return grid_shape_for(snapshot, grid, spacing)
    target = write_target(output, snapshot, ecutrho)
    shape = grid_shape_for(snapshot, grid, spacing) if grid or spacing else target.grid
    check_grid(output, shape, target)
    return shape


def check_writable(output: str):
    """Fail before the expensive work when the output cannot be written (or no writer takes its name)."""
    output_format(output)
    folder = Path(output).resolve().parent
    if not folder.is_dir():
        raise DeepChargeError(f"{output}: cannot write (directory {folder} does not exist)")
    if not os.access(folder, os.W_OK):
        raise DeepChargeError(f"{output}: cannot write (directory {folder} is not writable)")


def bare_structure(snapshot: Snapshot, output: str) -> Snapshot:
    """``snapshot``'s structure without its density, named after the file it will be written to."""
    return Snapshot(symbols=list(snapshot.symbols), positions=snapshot.positions, cell=snapshot.cell,
                    pbc=snapshot.pbc, origin=snapshot.origin, source=str(output))


def write_grid(output: str, structure: Snapshot, shape, blocks: Iterable[np.ndarray],
               augmentation: Optional[Augmentation] = None, comment: Optional[str] = None,
               ecutrho: Optional[float] = None):
    """Write values on the grid ``shape`` that arrive in consecutive ``blocks``, in the order of the format the
    name chooses (streamed where its writer takes blocks, as the CHGCAR's does; else assembled first),
    atomically; ``augmentation`` (a CHGCAR output only) goes after the grid; ``comment`` replaces the writer's
    own title line; ``ecutrho`` (Ry) is the cut-off of QE's charge-density.dat (else its
    data-file-schema.xml's)."""
    fmt = output_format(output)
    if augmentation is not None:
        write_chgcar_blocks(output, structure, shape, blocks, comment=comment, augmentation=augmentation)
    elif fmt.write_blocks is not None:
        fmt.write_blocks(output, structure, shape, blocks, comment=comment)
    else:
        structure.density = np.concatenate(list(blocks)).reshape(shape, order=fmt.order)
        if fmt.name == "qe":  # a binary file of coefficients: no title, a cut-off
            write_qe(output, structure, ecutrho)
        else:
            fmt.write(output, structure, comment=comment)


def grid_values(predictor, snapshot: Snapshot, shape, order: str) -> Iterator[np.ndarray]:
    """The density on the grid in consecutive chunks of ``order`` ("F": x fastest, as CHGCAR; "C": z fastest)
    from a :class:`~deepcharge.infer.density_predictor.DensityPredictor`.

    Under torchrun the ranks take turns at the chunks and rank 0 receives them in order (the other ranks
    yield nothing), so the output is written by one process while all of them compute.
    """
    rank, size = distributed.rank_and_size()
    chunks = predictor.grid_chunks(snapshot, shape, order=order, part=(rank, size))
    if size == 1:
        for _, values in chunks:
            yield values
        return
    for _ in range(0, predictor.chunk_count(shape), size):
        gathered = distributed.gather_to_main(next(chunks, (None, None))[1])
        for values in gathered:
            if values is not None:
                yield values


def spooled(spool) -> Iterator[np.ndarray]:
    """The float64 values written to ``spool``, read back in blocks."""
    while True:
        data = spool.read(8 * SPOOL_CHUNK)
        if not data:
            return
        yield np.frombuffer(data, dtype=np.float64)
