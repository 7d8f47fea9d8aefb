"""XCrySDen XSF files: a structure (``CRYSTAL``/``SLAB``/``POLYMER`` with ``PRIMVEC`` and ``PRIMCOORD``, or
``ATOMS``/``MOLECULE``) and 3D datagrids, read and written.

A datagrid ``BEGIN_DATAGRID_3D_<name>`` gives ``N1 N2 N3``, the origin, three spanning vectors and the values,
x fastest. Point N_i − 1 lies at the end of spanning vector i, so a periodic grid over the cell repeats its
end planes (n + 1 points per axis: Quantum ESPRESSO's pp.x, XCrySDen, DFTpy); those planes are dropped on
reading and written on writing. ASE's ``write_xsf(..., data=)`` instead writes the n points of the periodic
grid with spanning vectors ``a_i·(n+1)/n``; such a file is read as it was meant. Lengths are in Å; XSF has no
unit for the values, which are read as ``unit`` (e/Å³ unless told otherwise).
"""

from typing import List, NamedTuple, Optional, Tuple

import numpy as np
from ase import units
from ase.data import atomic_numbers, chemical_symbols

from deepcharge.errors import FileFormatError
from deepcharge.io.chgcar import format_values
from deepcharge.io.files import PathLike, line_of_token, parse_values, read_text, write_atomic, written_coordinates
from deepcharge.reading import XSF_UNITS
from deepcharge.snapshot import Snapshot

PERIODICITY = {"CRYSTAL": (True, True, True), "SLAB": (True, True, False), "POLYMER": (True, False, False),
               "MOLECULE": (False, False, False)}
# keywords that may open an XSF file (after comments), for recognising one by content
OPENING_KEYWORDS = set(PERIODICITY) | {"ATOMS", "ANIMSTEPS", "PRIMVEC", "BEGIN_INFO", "BEGIN_BLOCK_DATAGRID_3D"}


class _Grid(NamedTuple):
    name: str
    shape: Tuple[int, int, int]
    origin: np.ndarray
    span: np.ndarray
    values: np.ndarray  # flat, x fastest


class _Lines:
    """The significant lines of an XSF text (comments and blank lines left out), with their line numbers."""

    def __init__(self, text: str, path):
        self.path = path
        self.lines = text.splitlines()
        self.index = 0  # into self.lines

    def peek(self) -> Optional[str]:
        """The next significant line (stripped), or None at the end; the cursor stays on it."""
        while self.index < len(self.lines):
            line = self.lines[self.index].strip()
            if line and not line.startswith("#"):
                return line
            self.index += 1
        return None

    def next(self, what: str) -> str:
        line = self.peek()
        if line is None:
            raise FileFormatError(self.path, f"truncated: the file ends where the {what} should be")
        self.index += 1
        return line

    @property
    def number(self) -> int:
        """The line number (from 1) of the line last returned by :meth:`next`."""
        return self.index

    def error(self, problem: str) -> FileFormatError:
        return FileFormatError(self.path, f"line {self.number}: {problem}")

    def floats(self, what: str, count: int = 3) -> np.ndarray:
        line = self.next(what)
        fields = line.split()[:count]
        try:
            if len(fields) < count:
                raise ValueError
            values = np.array([float(x) for x in fields])
        except ValueError:
            raise self.error(f"expected {count} numbers for the {what}, found '{line}'") from None
        if not np.isfinite(values).all():
            raise self.error(f"the {what} holds NaN/inf: '{line}'")
        return values


def _keyword(line: str) -> str:
    return line.split()[0].upper()


def _atom(line: str, lines: _Lines) -> Tuple[str, np.ndarray]:
    """(symbol, Cartesian position) from ``Z x y z [fx fy fz]`` or ``Symbol x y z ...``."""
    fields = line.split()
    name = fields[0]
    if name.isdigit():
        symbol = chemical_symbols[int(name)] if 0 < int(name) < len(chemical_symbols) else None
    else:
        symbol = name.capitalize() if atomic_numbers.get(name.capitalize(), 0) > 0 else None
    if symbol is None or len(fields) < 4:
        raise lines.error(f"expected an atom 'Z x y z' (atomic number or symbol), found '{line}'")
    try:
        position = np.array([float(x) for x in fields[1:4]])
    except ValueError:
        raise lines.error(f"expected an atom 'Z x y z', found '{line}'") from None
    if not np.isfinite(position).all():
        raise lines.error(f"atom position holds NaN/inf: '{line}'")
    return symbol, position


def _primcoord(lines: _Lines):
    header = lines.next("PRIMCOORD atom count")
    try:
        natoms = int(header.split()[0])
    except ValueError:
        raise lines.error(f"expected 'natoms 1' after PRIMCOORD, found '{header}'") from None
    return [_atom(lines.next(f"atom {i + 1} of {natoms}"), lines) for i in range(natoms)]


def _atoms_section(lines: _Lines):
    atoms = []
    while (line := lines.peek()) is not None and not _is_keyword_line(line):
        atoms.append(_atom(lines.next("atom"), lines))
    return atoms


def _is_keyword_line(line: str) -> bool:
    word = _keyword(line)
    return word in OPENING_KEYWORDS or word.startswith(("BEGIN_", "END_", "PRIMCOORD", "CONVVEC", "CONVCOORD"))


def _datagrid(lines: _Lines, opening: str) -> _Grid:
    name = opening.split("DATAGRID_3D", 1)[1].lstrip("_") or "datagrid"
    dims_line = lines.next("datagrid dimensions")
    try:
        shape = tuple(int(x) for x in dims_line.split()[:3])
        if len(shape) < 3 or min(shape) < 1:
            raise ValueError
    except ValueError:
        raise lines.error(f"expected three positive grid dimensions, found '{dims_line}'") from None
    origin = lines.floats("datagrid origin")
    span = np.array([lines.floats(f"spanning vector {i + 1}") for i in range(3)])
    first = lines.index
    while (line := lines.peek()) is not None and not _keyword(line).startswith("END_DATAGRID_3D"):
        lines.index += 1
    if line is None:
        raise FileFormatError(lines.path, f"datagrid '{name}' has no END_DATAGRID_3D line")
    body = "\n".join(lines.lines[first:lines.index])
    tokens = body.split()
    size = shape[0] * shape[1] * shape[2]
    if len(tokens) != size:
        raise FileFormatError(lines.path, f"datagrid '{name}' ({'x'.join(map(str, shape))}) needs {size} values, "
                                          f"found {len(tokens)} (lines {first + 1}-{lines.index})")
    values = parse_values(tokens, lines.path, f"datagrid '{name}'",
                          line_of=lambda index: line_of_token(body, index, first + 1))
    lines.index += 1
    return _Grid(name, shape, origin, span, values)


def _skip_block(lines: _Lines, opening: str):
    """Skip a ``BEGIN_X`` ... ``END_X`` block (2D grids, band grids, info)."""
    end = "END_" + _keyword(opening)[len("BEGIN_"):]
    while _keyword(lines.next(f"{end} line")) != end:
        pass


def _periodic_axes(grid: _Grid, cell: np.ndarray, path) -> Tuple[int, int, int]:
    """Points per axis of the periodic grid: N − 1 where the span is the cell vector (end planes repeated),
    N where it is ``a·(N+1)/N`` (ASE's layout)."""
    points = []
    for axis, (count, span, vector) in enumerate(zip(grid.shape, grid.span, cell)):
        tolerance = 0.1 * np.linalg.norm(vector) / count  # a tenth of a grid step
        if count > 1 and np.linalg.norm(span - vector) < tolerance:
            points.append(count - 1)
        elif np.linalg.norm(span - vector * (count + 1) / count) < tolerance:
            points.append(count)
        else:
            raise FileFormatError(
                path, f"datagrid '{grid.name}' spanning vector {axis + 1} ({' '.join(f'{x:g}' for x in span)}) is "
                      f"not the cell vector ({' '.join(f'{x:g}' for x in vector)}): deepcharge reads grids that "
                      "cover the periodic cell")
    return tuple(points)


def read_xsf(path: PathLike, unit: str = "e/A3") -> Snapshot:
    """Read an XSF file (plain or gzip): its structure and its first 3D datagrid (values in ``unit``, a key of
    :data:`deepcharge.reading.XSF_UNITS`), returned in e/Å³; density None when the file holds no grid.

    With ``PRIMVEC`` the grid must cover the cell (end planes repeated, or ASE's layout); without one
    (``ATOMS``), the cell is the grid's box, every point kept, and the structure not periodic.
    """
    lines = _Lines(read_text(path), path)
    pbc, cell, atoms, grids = (True, True, True), None, None, []
    while lines.peek() is not None:
        opening = lines.next("keyword")
        word = _keyword(opening)
        if word == "ANIMSTEPS":
            if opening.split()[1:2] != ["1"]:
                raise lines.error(f"an animated XSF ('{opening}'): deepcharge reads files of one structure")
        elif word in PERIODICITY:
            pbc = PERIODICITY[word]
        elif word == "PRIMVEC":
            cell = np.array([lines.floats(f"PRIMVEC vector {i + 1}") for i in range(3)])
        elif word in ("CONVVEC", "CONVCOORD"):
            for i in range(3):
                lines.floats(f"CONVVEC vector {i + 1}")
        elif word == "PRIMCOORD":
            atoms = _primcoord(lines)
        elif word == "ATOMS":
            atoms, pbc = _atoms_section(lines), (False, False, False)
        elif word in ("BEGIN_BLOCK_DATAGRID_3D", "BLOCK_DATAGRID_3D"):
            lines.next("datagrid block name")
            while not _keyword(inner := lines.next("END_BLOCK_DATAGRID_3D line")).startswith("END_BLOCK"):
                if "DATAGRID_3D" not in _keyword(inner):
                    raise lines.error(f"expected BEGIN_DATAGRID_3D_<name> or END_BLOCK_DATAGRID_3D, found '{inner}'")
                grids.append(_datagrid(lines, inner))
        elif word.startswith("BEGIN_"):
            _skip_block(lines, opening)
        else:
            raise lines.error(f"unexpected line '{opening}' (not an XSF keyword)")
    if not atoms:
        raise FileFormatError(path, "no atoms: expected a PRIMCOORD or ATOMS section")
    symbols = [symbol for symbol, _ in atoms]
    positions = np.array([position for _, position in atoms])
    if not grids:
        if cell is None:
            raise FileFormatError(path, "the structure has no cell (ATOMS without PRIMVEC) and no datagrid to "
                                        "take one from")
        return Snapshot(symbols=symbols, positions=positions, cell=cell, pbc=pbc, source=str(path))
    grid = grids[0]
    if cell is None:
        if min(grid.shape) < 2:
            raise FileFormatError(path, f"datagrid '{grid.name}' needs at least 2 points per axis")
        shape = grid.shape
        cell = grid.span * (np.array(shape) / (np.array(shape) - 1))[:, None]
    else:
        shape = _periodic_axes(grid, cell, path)
    values = grid.values.reshape(grid.shape, order="F")[: shape[0], : shape[1], : shape[2]]
    density = np.ascontiguousarray(values) / getattr(units, XSF_UNITS[unit]) ** 3
    return Snapshot(symbols=symbols, positions=positions, cell=cell, pbc=pbc, density=density, origin=grid.origin,
                    source=str(path), spin_blocks=tuple(g.name for g in grids), block=grid.name)


def write_xsf(path: PathLike, snapshot: Snapshot, comment: Optional[str] = None) -> None:
    """Write ``snapshot`` as a periodic XSF (``CRYSTAL``, end planes repeated, e/Å³; gzip for .gz), atomically."""
    if snapshot.density is None:
        raise FileFormatError(path, "cannot write an XSF: the snapshot has no density")
    density = np.asarray(snapshot.density, dtype=float)
    if not np.isfinite(density).all():
        raise FileFormatError(path, "cannot write an XSF: the density holds NaN/inf values")
    if comment is None:
        comment = f"{snapshot.to_ase().get_chemical_formula()} electron density (e/Angstrom^3) by deepcharge"
    numbers = snapshot.to_ase().numbers
    lines: List[str] = [f"# {' '.join(comment.split())}", "CRYSTAL", "PRIMVEC"]
    cell, positions, origin = (written_coordinates(values, 12)
                               for values in (snapshot.cell, snapshot.positions, snapshot.origin))
    lines += ["".join(f" {x:19.12f}" for x in row) for row in cell]
    lines += ["PRIMCOORD", f" {len(numbers)} 1"]
    lines += [f" {z:3d}" + "".join(f" {x:19.12f}" for x in xyz) for z, xyz in zip(numbers, positions)]
    lines += ["BEGIN_BLOCK_DATAGRID_3D", " density", " BEGIN_DATAGRID_3D_density",
              "".join(f" {n + 1:5d}" for n in density.shape), "".join(f" {x:19.12f}" for x in origin)]
    lines += ["".join(f" {x:19.12f}" for x in row) for row in cell]
    periodic = np.pad(density, [(0, 1)] * 3, mode="wrap").ravel(order="F")
    try:
        values = format_values(periodic)
    except ValueError as err:
        raise FileFormatError(path, f"cannot write an XSF: {err}") from None
    text = "\n".join(lines).encode("ascii") + b"\n" + values + b" END_DATAGRID_3D\nEND_BLOCK_DATAGRID_3D\n"
    write_atomic(path, text)
