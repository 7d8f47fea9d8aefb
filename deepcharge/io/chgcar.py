"""VASP volumetric files in the CHGCAR layout (CHGCAR, CHG, AECCAR*, PARCHG, LOCPOT-like): read and write.

Layout: a POSCAR header, a blank line, ``nx ny nz``, then nx·ny·nz values of ρ·V (x fastest), optionally
followed by ``augmentation occupancies`` blocks. Spin-polarised files repeat ``nx ny nz`` + grid for the
magnetisation (after a line of per-atom values); non-collinear files (LNONCOLLINEAR) hold three magnetisation
grids, m_x, m_y and m_z, and follow each grid's occupancy blocks by the same blocks headed
``augmentation occupancies (imaginary part)``.
"""

import io
import os
from typing import Iterable, NamedTuple, Optional, Sequence, TextIO

import numpy as np
from ase.data import chemical_symbols

from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.io.files import (
    PathLike,
    line_of_token,
    open_atomic_binary,
    parse_values,
    read_bytes,
    read_text,
    written_coordinates,
)
from deepcharge.snapshot import Snapshot

# the density blocks of a file, by the number of grids it holds: one, spin-polarised (ISPIN = 2), non-collinear
BLOCK_NAMES = {1: ("total",), 2: ("total", "magnetization"),
               4: ("total", "magnetization_x", "magnetization_y", "magnetization_z")}


class NotADensity(NamedTuple):
    """A VASP file in the CHGCAR layout whose values are no density (nor ρ·V), known by the name VASP gives it."""

    vasp_name: str
    quantity: str  # what its values are, as ``info`` labels them
    description: str
    unit: str

    @property
    def refusal(self) -> str:
        """Why such a file is refused where a density is needed, and what to give instead."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"a VASP {self.vasp_name} holds {self.description}{unit}, not a density: give a CHGCAR, AECCAR or PARCHG"


NOT_DENSITIES = (NotADensity("LOCPOT", "potential", "a potential", "eV"),
                 NotADensity("ELFCAR", "ELF", "the electron localisation function", ""))


def not_a_density(path: PathLike) -> Optional[NotADensity]:
    """The entry of :data:`NOT_DENSITIES` whose name the file name holds (any case, ``.gz`` aside), else None."""
    name = os.path.basename(os.fspath(path)).upper()
    return next((kind for kind in NOT_DENSITIES if kind.vasp_name in name), None)


class PoscarHeader(NamedTuple):
    """The POSCAR part of a CHGCAR-layout file, before any symbol resolution."""

    comment: str
    cell: np.ndarray
    species: Optional[list]
    counts: list
    positions: np.ndarray
    lines: int  # how many lines it takes


# values formatted at a time when writing: bounds the memory of the text being built
WRITE_BLOCK = 1 << 20


class _Lines:
    """Lines read one at a time from a text stream, counted for messages."""

    def __init__(self, stream, path):
        self.stream, self.path, self.number = stream, path, 0

    def next(self) -> str:
        self.number += 1
        return self.stream.readline()

    def error(self, problem: str) -> FileFormatError:
        return FileFormatError(self.path, f"line {self.number}: {problem}")

    def floats(self, count: int, what: str) -> list:
        """The first ``count`` numbers of the next line, all finite, or a FileFormatError naming ``what``."""
        return self.parse(self.next(), count, what)

    def parse(self, line: str, count: int, what: str) -> list:
        """The first ``count`` numbers of ``line`` (the last one read), as :meth:`floats`."""
        fields = line.split()[:count]
        try:
            if len(fields) < count:
                raise ValueError
            values = [float(x) for x in fields]
        except ValueError:
            raise self.error(f"garbled header: expected {count} number(s) for the {what}, "
                             f"found '{line.strip()}'") from None
        if not np.isfinite(values).all():
            raise self.error(f"the {what} holds NaN/inf: '{line.strip()}'")
        return values


def _ints(fields):
    """``fields`` as integers, or None if any is not one."""
    try:
        return [int(x) for x in fields]
    except ValueError:
        return None


def read_header(stream: TextIO, path: PathLike) -> PoscarHeader:
    """Parse the POSCAR header from a text ``stream``, leaving it positioned after the positions."""
    lines = _Lines(stream, path)
    comment = lines.next().strip()
    scale_line = lines.next()
    scale = lines.parse(scale_line, 3 if len(scale_line.split()) >= 3 else 1, "scale factor line")
    lattice = np.array([lines.floats(3, f"lattice vector {i + 1}") for i in range(3)])

    fields = lines.next().split()
    counts = _ints(fields)
    species = None
    if counts is None:
        species = fields
        fields = lines.next().split()
        counts = _ints(fields)
        if counts is None or not fields:
            raise FileFormatError(path, f"garbled header: expected atom counts, found '{' '.join(fields)}'")
        if len(species) != len(counts):
            raise FileFormatError(
                path, f"atom count mismatch: {len(species)} species names but {len(counts)} counts"
            )
    if not counts or min(counts) < 0:
        raise FileFormatError(path, f"garbled header: bad atom counts '{' '.join(fields)}'")

    mode = lines.next().strip()
    if mode[:1] in ("s", "S"):
        mode = lines.next().strip()
    cartesian = mode[:1] in ("c", "C", "k", "K")

    if len(scale) == 3 and min(scale) > 0:
        factor = np.array(scale)
    elif len(scale) == 1 and scale[0] < 0:
        factor = (-scale[0] / abs(np.linalg.det(lattice))) ** (1.0 / 3.0)
    elif len(scale) == 1 and scale[0] > 0:
        factor = scale[0]
    else:
        raise FileFormatError(path, f"garbled header: bad scale factor '{scale_line.strip()}'")
    cell = lattice * factor

    natoms = sum(counts)
    coords = np.empty((natoms, 3))
    for i in range(natoms):
        line = lines.next()
        try:
            xyz = [float(x) for x in line.split()[:3]]
        except ValueError:
            xyz = []
        if len(xyz) < 3:
            raise FileFormatError(
                path,
                f"atom count mismatch: the counts line gives {natoms} atoms but position {i + 1} "
                f"reads '{line.strip()}'",
            )
        if not np.isfinite(xyz).all():
            raise lines.error(f"position of atom {i + 1} holds NaN/inf: '{line.strip()}'")
        coords[i] = xyz
    positions = coords * factor if cartesian else coords @ cell
    return PoscarHeader(comment, cell, species, counts, positions, lines.number)


def _element(name):
    """'Si_pv' or 'Si/a1b2c3' → 'Si'; None when not an element symbol."""
    symbol = name.split("_")[0].split("/")[0]
    return symbol if symbol in chemical_symbols[1:] else None


def resolve_symbols(header: PoscarHeader, path, symbols: Optional[Sequence[str]] = None) -> list:
    """One chemical symbol per atom, from the species line; without one (VASP 4), from ``symbols`` (one per
    species or one per atom), else from the comment line when it lists elements (as ASE's POSCAR reader does)."""
    natoms = sum(header.counts)
    if header.species is not None:
        species = [_element(name) for name in header.species]
        if None in species:
            bad = header.species[species.index(None)]
            raise FileFormatError(path, f"garbled header: '{bad}' in the species line is not an element")
    elif symbols is not None:
        species = list(symbols)
        if len(species) == natoms:
            return species
        if len(species) != len(header.counts):
            raise FileFormatError(path, f"atom count mismatch: {len(species)} species named (--species) for a "
                                        f"header of {len(header.counts)} species and {natoms} atoms")
        if None in map(_element, species):
            bad = species[[_element(name) for name in species].index(None)]
            raise FileFormatError(path, f"'{bad}' (--species) is not an element")
    else:
        species = [_element(name) for name in header.comment.split()[: len(header.counts)]]
        if len(species) != len(header.counts) or None in species:
            raise FileFormatError(
                path,
                "VASP 4 header without species names (and the comment line does not list them): name the "
                f"elements of its {len(header.counts)} species in order with --species (symbols= in Python), "
                "or add the species line (VASP 5 format)",
            )
    return [s for s, n in zip(species, header.counts) for _ in range(n)]


def _grid_dims(tokens, pos, path):
    if pos >= len(tokens):
        raise FileFormatError(path, "no density grid after the atom positions (a POSCAR, not a CHGCAR?)")
    dims = _ints(tokens[pos : pos + 3])
    if dims is None or len(dims) < 3:
        found = " ".join(tokens[pos : pos + 3])
        raise FileFormatError(path, f"garbled grid dimensions: expected 'nx ny nz', found '{found}'")
    if min(dims) <= 0:
        raise FileFormatError(path, f"grid dimensions must be positive, found {dims[0]} {dims[1]} {dims[2]}")
    return tuple(dims)


def _skip_augmentation(tokens, pos, path):
    """Index after the occupancy blocks starting at ``pos``: 'augmentation occupancies i n' and (non-collinear
    files) 'augmentation occupancies (imaginary part) i n', each followed by n values."""
    while pos < len(tokens) and tokens[pos].lower() == "augmentation":
        imaginary = [token.lower() for token in tokens[pos + 2 : pos + 4]] == ["(imaginary", "part)"]
        words = 4 if imaginary else 2  # the words before 'i n'
        count = _ints(tokens[pos + words + 1 : pos + words + 2])
        if not count or count[0] < 0:
            header = " ".join(tokens[pos : pos + words + 2])
            raise FileFormatError(path, f"garbled augmentation block header: '{header}'")
        pos += words + 2 + count[0]
        if pos > len(tokens):
            raise FileFormatError(path, "augmentation occupancies truncated at end of file")
    return pos


def _next_grid(tokens, pos, dims, path):
    """Index of the next grid's 'nx ny nz', skipping the per-atom values that precede it."""
    start = pos
    while pos + 3 <= len(tokens) and _ints(tokens[pos : pos + 3]) != list(dims):
        try:
            float(tokens[pos])
        except ValueError:
            raise FileFormatError(
                path, f"unexpected text '{tokens[pos]}' after a density grid ({pos - start} values past it)"
            ) from None
        pos += 1
    if pos + 3 > len(tokens):
        raise FileFormatError(path, "unexpected values after the density grid (no further 'nx ny nz' line)")
    return pos


def _scan_blocks(tokens, path):
    """The grid shape and the start index of every density grid in the tokens after the header."""
    dims = _grid_dims(tokens, 0, path)
    size = dims[0] * dims[1] * dims[2]
    blocks, pos = [], 0
    while pos < len(tokens):
        if blocks:
            pos = _next_grid(tokens, pos, dims, path)
        start = pos + 3
        if start + size > len(tokens):
            raise FileFormatError(
                path,
                f"density grid truncated: expected {size} values, found {max(len(tokens) - start, 0)}",
            )
        blocks.append(start)
        pos = _skip_augmentation(tokens, start + size, path)
    if len(blocks) not in BLOCK_NAMES:
        raise FileFormatError(
            path, f"found {len(blocks)} density grids; expected 1 (total), 2 (spin) or 4 (non-collinear)"
        )
    return dims, blocks


def read_chgcar(path: PathLike, block: str = "total", symbols: Optional[Sequence[str]] = None) -> Snapshot:
    """Read a CHGCAR-layout file (plain or gzip); the density is returned in e/Å³ (the values of a file that
    holds no density, a LOCPOT or ELFCAR, as they are: see the snapshot's ``quantity``).

    ``block`` picks "total" (default), "magnetization" (collinear spin) or "magnetization_x", "_y", "_z"
    (non-collinear); the snapshot's ``spin_blocks`` names those the file holds. ``symbols`` (per species or per
    atom) supplies the elements of a VASP 4 file (one without a species line; a species line wins).
    """
    stream = io.StringIO(read_text(path))
    header = read_header(stream, path)
    atom_symbols = resolve_symbols(header, path, symbols)
    body = stream.read()
    tokens = body.split()
    dims, starts = _scan_blocks(tokens, path)
    names = BLOCK_NAMES[len(starts)]
    if block not in names:
        raise FileFormatError(path, f"no '{block}' density block; the file holds: {', '.join(names)}")
    start = starts[names.index(block)]
    size = dims[0] * dims[1] * dims[2]
    values = parse_values(tokens[start : start + size], path, f"'{block}' density",
                          line_of=lambda index: line_of_token(body, start + index, header.lines + 1))
    kind = not_a_density(path)
    volume = 1.0 if kind else abs(np.linalg.det(header.cell))  # a density is written as ρ·V, nothing else is
    density = np.ascontiguousarray(values.reshape(dims, order="F")) / volume
    return Snapshot(
        symbols=atom_symbols,
        positions=header.positions,
        cell=header.cell,
        pbc=(True, True, True),
        density=density,
        source=str(path),
        spin_blocks=names,
        block=block,
        quantity=kind.quantity if kind else "density",
    )


class Augmentation(NamedTuple):
    """What a VASP CHGCAR holds after its total grid, to be written after a predicted one (ICHARG = 1).

    ``tail`` is the source's bytes from its first ``augmentation occupancies`` line to the end: the occupancy
    blocks of the total density, and for a spin-polarised (or non-collinear) file the per-atom moment line,
    the magnetisation grid(s) and their occupancy blocks (real and imaginary parts), as VASP laid them out.
    """

    source: str
    symbols: list
    cell: np.ndarray
    positions: np.ndarray
    grid_shape: tuple
    blocks: tuple
    tail: bytes


# how far atoms and cell vectors of a structure may lie from those of its augmentation source (Å)
AUGMENTATION_TOLERANCE = 0.01


def read_augmentation(path: PathLike, symbols: Optional[Sequence[str]] = None) -> Augmentation:
    """The atoms and the part after the total grid of the VASP CHGCAR ``path`` (plain or gzip); see
    :class:`Augmentation`. ``symbols`` as for :func:`read_chgcar`."""
    data = read_bytes(path)
    text = data.decode("latin-1")  # one character per byte: offsets in the text are offsets in the bytes
    stream = io.StringIO(text)
    header = read_header(stream, path)
    atom_symbols = resolve_symbols(header, path, symbols)
    body_start = stream.tell()
    dims, starts = _scan_blocks(text[body_start:].split(), path)
    found = text.find("augmentation occupancies", body_start)
    if found < 0:
        raise FileFormatError(path, "holds no augmentation occupancies: a CHGCAR written by VASP has them "
                                    "(CHG, AECCAR and PARCHG files do not)")
    tail_start = text.rfind("\n", body_start, found) + 1
    grid_tokens = text[body_start:tail_start].split()
    if len(grid_tokens) != 3 + dims[0] * dims[1] * dims[2]:
        raise FileFormatError(path, "the first augmentation occupancies do not follow the total density grid")
    return Augmentation(str(path), atom_symbols, header.cell, header.positions, dims,
                        BLOCK_NAMES[len(starts)], data[tail_start:])


def check_augmentation_fits(augmentation: Augmentation, structure: Snapshot, shape,
                            tolerance: float = AUGMENTATION_TOLERANCE) -> None:
    """DeepChargeError unless ``structure`` (written on the grid ``shape``) has the atoms of ``augmentation``'s
    source: the same species in the same order, and cell vectors and positions within ``tolerance`` Å."""
    source = augmentation.source
    where = f"{structure.source}: the augmentation occupancies of {source}"
    if list(structure.symbols) != list(augmentation.symbols):
        ours, theirs = _species_runs(structure.symbols), _species_runs(augmentation.symbols)
        raise DeepChargeError(f"{where} belong to other atoms: {_formula(theirs)} there, {_formula(ours)} here "
                              "(species and order must match)")
    cell_error = float(np.abs(np.asarray(structure.cell) - augmentation.cell).max())
    if cell_error > tolerance:
        raise DeepChargeError(f"{where} belong to another cell: its vectors differ by up to {cell_error:.3g} Å "
                              f"(tolerance {tolerance} Å)")
    frac = (np.asarray(structure.positions) - structure.origin - augmentation.positions) @ np.linalg.inv(
        augmentation.cell)
    distance = np.linalg.norm((frac - np.round(frac)) @ augmentation.cell, axis=1)
    worst = int(np.argmax(distance)) if len(distance) else 0
    if len(distance) and distance[worst] > tolerance:
        raise DeepChargeError(f"{where} belong to other positions: atom {worst + 1} ({structure.symbols[worst]}) "
                              f"lies {distance[worst]:.3g} Å from its place there (tolerance {tolerance} Å)")
    if len(augmentation.blocks) > 1 and tuple(shape) != tuple(augmentation.grid_shape):
        source_grid = " ".join(map(str, augmentation.grid_shape))
        raise DeepChargeError(f"{where}: its magnetisation grid ({source_grid}) is carried over with them, so "
                              f"predict on that grid (--grid {source_grid}, or the file's own grid)")


def _formula(runs) -> str:
    return " ".join(f"{name}{count}" for name, count in zip(*runs))


def _species_runs(symbols):
    """Consecutive runs of equal symbols: (['Si', 'O', 'Si'], [4, 8, 2])."""
    names, counts = [], []
    for symbol in symbols:
        if names and names[-1] == symbol:
            counts[-1] += 1
        else:
            names.append(symbol)
            counts.append(1)
    return names, counts


def format_values(values: np.ndarray, per_line=5) -> bytes:
    """Values in VASP's Fortran ``1X,E17.11`` style (`` 0.12345678901E+00``, `` -.12345678901E+00``).

    Magnitudes below 1e-98 are written as zero (a three-digit exponent has no room in E17.11).
    """
    values = np.where(np.abs(values) < 1e-98, 0.0, np.asarray(values, dtype=float).ravel())
    if values.size and np.abs(values).max() >= 1e98:
        raise ValueError("values of 1e98 or more do not fit the E17.11 format")
    count = values.size
    # "%+.10E" gives fixed 17-character records: sign, digit, '.', 10 digits, 'E', sign, 2 digits.
    text = (("%+.10E" * count) % tuple(values.tolist())).encode("ascii")
    rec = np.frombuffer(text, dtype=np.uint8).reshape(count, 17)
    exponent = (rec[:, 15].astype(int) - 48) * 10 + rec[:, 16] - 48
    exponent = np.where(rec[:, 14] == ord("-"), -exponent, exponent) + (values != 0)
    out = np.full((count, 18), ord(" "), dtype=np.uint8)
    out[:, 1] = np.where(rec[:, 0] == ord("-"), ord("-"), ord("0"))
    out[:, 2] = ord(".")
    out[:, 3] = rec[:, 1]
    out[:, 4:14] = rec[:, 3:13]
    out[:, 14] = ord("E")
    out[:, 15] = np.where(exponent < 0, ord("-"), ord("+"))
    out[:, 16] = 48 + np.abs(exponent) // 10
    out[:, 17] = 48 + np.abs(exponent) % 10
    full = count // per_line * per_line
    lines = np.concatenate(
        [out[:full].reshape(-1, 18 * per_line), np.full((full // per_line, 1), ord("\n"), np.uint8)], axis=1
    )
    tail = out[full:].tobytes() + (b"\n" if count > full else b"")
    return lines.tobytes() + tail


def write_chgcar(path: PathLike, snapshot: Snapshot, comment: Optional[str] = None) -> None:
    """Write ``snapshot`` as a VASP 5 CHGCAR (gzip if the name ends in .gz), atomically.

    Values are ρ·V, 5 per line, x fastest. Atom positions are shifted by ``-snapshot.origin`` so that
    the grid starts at the cell origin. No augmentation occupancies are written: VASP cannot restart
    from such a file (ICHARG=1) as it would from its own CHGCAR.
    """
    if snapshot.density is None:
        raise FileFormatError(path, "cannot write a CHGCAR: the snapshot has no density")
    values = np.asarray(snapshot.density, dtype=float).ravel(order="F")
    blocks = (values[start:start + WRITE_BLOCK] for start in range(0, values.size, WRITE_BLOCK))
    write_chgcar_blocks(path, snapshot, snapshot.density.shape, blocks, comment)


def write_chgcar_blocks(path: PathLike, structure: Snapshot, shape, blocks: Iterable[np.ndarray],
                        comment: Optional[str] = None, augmentation: Optional[Augmentation] = None) -> None:
    """Write a CHGCAR whose density (e/Å³, x fastest) arrives in consecutive ``blocks``, atomically; then, when
    given, ``augmentation.tail`` as it is (check it fits with :func:`check_augmentation_fits`).

    Only one block is held at a time, so a predicted grid can be written as it is computed.
    """
    cell = np.asarray(structure.cell, dtype=float)
    frac = written_coordinates((np.asarray(structure.positions, dtype=float) - structure.origin)
                               @ np.linalg.inv(cell), 16)
    names, counts = _species_runs(structure.symbols)
    if comment is None:
        formula = structure.to_ase().get_chemical_formula()
        comment = (f"{formula} density by deepcharge (no augmentation occupancies: not for ICHARG=1)"
                   if augmentation is None else
                   f"{formula} density by deepcharge, PAW occupancies from {augmentation.source}")
    lines = [" ".join(comment.split()), "   1.00000000000000"]
    lines += ["".join(f" {x:21.16f}" for x in row) for row in written_coordinates(cell, 16)]
    lines += ["".join(f" {n:>4}" for n in names), "".join(f" {n:5d}" for n in counts), "Direct"]
    lines += ["".join(f" {x:19.16f}" for x in row) for row in frac]
    lines += ["", "".join(f" {int(n):4d}" for n in shape), ""]
    volume = structure.volume
    with open_atomic_binary(path) as handle:
        handle.write("\n".join(lines).encode("ascii"))
        pending = np.empty(0)
        for block in blocks:
            block = np.concatenate([pending, np.asarray(block, dtype=float).ravel()])
            if not np.isfinite(block).all():
                raise FileFormatError(path, "cannot write a CHGCAR: the density holds NaN/inf values")
            whole = block.size // 5 * 5
            handle.write(_format_or_fail(path, block[:whole] * volume))
            pending = block[whole:]
        handle.write(_format_or_fail(path, pending * volume))
        if augmentation is not None:
            handle.write(augmentation.tail)


def _format_or_fail(path, values: np.ndarray) -> bytes:
    try:
        return format_values(values)
    except ValueError as err:
        raise FileFormatError(path, f"cannot write a CHGCAR: {err}") from None
