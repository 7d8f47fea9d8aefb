"""Gaussian cube files: read and write.

Layout: two comment lines; ``natoms  origin`` (negative natoms: an orbital cube); three voxel lines
``n_i  v_i`` (positive counts: Bohr; negative: Å for the whole geometry); one line per atom
``Z  charge  x y z``; for orbital cubes a line ``count  index…``; then the data, z fastest, each z-row
starting a new line. Data are read and written in e/Bohr³ (whatever the geometry units).
"""

import io
from typing import Optional

import numpy as np
from ase.data import chemical_symbols
from ase.units import Bohr

from deepcharge.errors import FileFormatError
from deepcharge.io.files import PathLike, line_of_token, parse_values, read_text, write_atomic, written_coordinates
from deepcharge.snapshot import Snapshot


def _numbers(line, path, what, count, number):
    """The first ``count`` numbers of ``line`` (line ``number`` of the file): an int then finite floats."""
    fields = line.split()
    try:
        if len(fields) < count:
            raise ValueError
        first, rest = int(fields[0]), [float(x) for x in fields[1:count]]
    except ValueError:
        raise FileFormatError(path, f"line {number}: garbled header: expected the {what}, "
                                    f"found '{line.strip()}'") from None
    if not np.isfinite(rest).all():
        raise FileFormatError(path, f"line {number}: the {what} holds NaN/inf: '{line.strip()}'")
    return first, rest, fields[count:]


def _orbital_indices(tokens, path):
    """The orbital indices after the atoms of an orbital cube, and where the data begin."""
    try:
        count = int(tokens[0])
        indices = [int(x) for x in tokens[1 : 1 + count]]
    except (IndexError, ValueError):
        raise FileFormatError(path, "garbled orbital cube: bad orbital index line after the atoms") from None
    if count <= 0 or len(indices) < count:
        raise FileFormatError(path, "garbled orbital cube: bad orbital index line after the atoms")
    return indices, 1 + count


def read_cube(path: PathLike) -> Snapshot:
    """Read a Gaussian cube file (plain or gzip); the first data set is returned in e/Å³.

    The cell is n_i × voxel_i, the origin is kept, and the structure is taken as periodic.
    """
    stream = io.StringIO(read_text(path))
    stream.readline()
    stream.readline()
    natoms, origin, extra = _numbers(stream.readline(), path, "atom count and origin", 4, 3)
    try:
        per_point = int(extra[0]) if extra else 1
        if per_point <= 0:
            raise ValueError
    except ValueError:
        raise FileFormatError(path, f"garbled header: bad values-per-point field '{extra[0]}'") from None
    voxels = [_numbers(stream.readline(), path, f"voxel line {i + 1} (count, vector)", 4, 4 + i) for i in range(3)]
    shape = tuple(abs(n) for n, _, _ in voxels)
    if min(shape) == 0:
        dims = " ".join(str(n) for n in shape)
        raise FileFormatError(path, f"grid dimensions must be positive, found {dims}")
    signs = {n > 0 for n, _, _ in voxels}
    if len(signs) > 1:
        raise FileFormatError(path, "voxel counts mix signs: cannot tell Bohr (positive) from Å (negative)")
    unit = Bohr if signs == {True} else 1.0
    cell = np.array([n * np.array(v) for n, (_, v, _) in zip(shape, voxels)]) * unit

    symbols, positions = [], np.empty((abs(natoms), 3))
    for i in range(abs(natoms)):
        z, values, _ = _numbers(stream.readline(), path, f"atom {i + 1} (Z, charge, x, y, z)", 5, 7 + i)
        if not 0 <= z < len(chemical_symbols):
            raise FileFormatError(path, f"atom {i + 1} has atomic number {z}")
        symbols.append(chemical_symbols[z])
        positions[i] = values[1:]

    body = stream.read()
    tokens = body.split()
    names, start = ("total",), 0
    if natoms < 0:
        indices, start = _orbital_indices(tokens, path)
        names, per_point = tuple(f"orbital {i}" for i in indices), len(indices)
    elif per_point > 1:
        names = tuple(f"value {i + 1}" for i in range(per_point))
    size = shape[0] * shape[1] * shape[2] * per_point
    found = len(tokens) - start
    if found < size:
        raise FileFormatError(path, f"density grid truncated: expected {size} values, found {found}")
    if found > size:
        raise FileFormatError(path, f"{found - size} unexpected values after the {size} of the density grid")
    values = parse_values(tokens[start:], path, "density",
                          line_of=lambda index: line_of_token(body, start + index, 7 + abs(natoms)))
    density = values.reshape(shape + (per_point,))[..., 0] / Bohr**3
    return Snapshot(
        symbols=symbols,
        positions=positions * unit,
        cell=cell,
        pbc=(True, True, True),
        density=np.ascontiguousarray(density),
        origin=np.array(origin) * unit,
        source=str(path),
        spin_blocks=names,
        block=names[0],
    )


def _row_template(nz, per_line=6):
    """A %-template for one z-row: ``nz`` values, ``per_line`` per line, ending with a newline."""
    full, rest = divmod(nz, per_line)
    return ("%13.5E" * per_line + "\n") * full + ("%13.5E" * rest + "\n" if rest else "")


def write_cube(path: PathLike, snapshot: Snapshot, comment: Optional[str] = None) -> None:
    """Write ``snapshot`` as a Gaussian cube (Bohr, e/Bohr³; gzip if the name ends in .gz), atomically."""
    if snapshot.density is None:
        raise FileFormatError(path, "cannot write a cube: the snapshot has no density")
    density = np.asarray(snapshot.density, dtype=float)
    if not np.isfinite(density).all():
        raise FileFormatError(path, "cannot write a cube: the density holds NaN/inf values")
    shape = density.shape
    numbers = snapshot.to_ase().numbers
    if comment is None:
        comment = f"{snapshot.to_ase().get_chemical_formula()} electron density (e/Bohr^3) by deepcharge"
    lines = [" ".join(comment.split()), "OUTER LOOP: X, MIDDLE LOOP: Y, INNER LOOP: Z"]
    origin = written_coordinates(np.asarray(snapshot.origin) / Bohr, 6)
    lines.append("{:5d}{:12.6f}{:12.6f}{:12.6f}".format(len(numbers), *origin))
    steps = written_coordinates(np.asarray(snapshot.cell, dtype=float) / np.array(shape)[:, None] / Bohr, 6)
    for n, step in zip(shape, steps):
        lines.append("{:5d}{:12.6f}{:12.6f}{:12.6f}".format(n, *step))
    for z, xyz in zip(numbers, written_coordinates(np.asarray(snapshot.positions) / Bohr, 6)):
        lines.append("{:5d}{:12.6f}{:12.6f}{:12.6f}{:12.6f}".format(z, float(z), *xyz))
    header = "\n".join(lines) + "\n"
    data = (_row_template(shape[2]) * (shape[0] * shape[1])) % tuple((density * Bohr**3).ravel().tolist())
    write_atomic(path, (header + data).encode("ascii"))
