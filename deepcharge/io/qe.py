"""Quantum ESPRESSO's density, ``outdir/prefix.save/charge-density.dat`` (QE 6.x without HDF5): read and write.

Layout: a Fortran unformatted sequential file, each record between two 4-byte lengths: ``gamma_only``
(logical*4), ``ngm_g`` and ``nspin`` (int32); b1, b2, b3 (9 float64, Cartesian, bohr⁻¹, 2π included); the Miller
indices of the G vectors (int32, 3 × ngm_g); then ρ(G) (complex128, e/bohr³), one record per block: the total,
then up − down (non-collinear: m_x, m_y, m_z). ρ(r) = Σ_G ρ(G) e^{iG·r}, so ρ(G=0)·Ω is the electron count. A
``gamma_only`` file holds half the sphere (ρ(−G) = ρ(G)*). The atoms, cell, cut-off and FFT grid come from the
``data-file-schema.xml`` pw.x writes beside it (Hartree atomic units).

QE 6.7 reads a file whose ``gamma_only`` matches its run without looking at the Miller indices: the values must
come in its own order of G vectors (:func:`g_vectors`), which the writer follows.
"""

import os
import xml.etree.ElementTree as ElementTree
from typing import NamedTuple, Optional

import numpy as np
from ase.data import chemical_symbols

from deepcharge.errors import FileFormatError
from deepcharge.geometry.fft_sizes import fft_friendly_size
from deepcharge.io.chgcar import BLOCK_NAMES
from deepcharge.io.files import PathLike, open_atomic_binary, read_bytes
from deepcharge.snapshot import Snapshot

BOHR = 0.529177210903  # Å, the value QE uses (CODATA 2018)
SCHEMA = "data-file-schema.xml"
# |G|² (in (2π/alat)²) within this are one value when QE sorts its G vectors (its eps8)
SORT_TOLERANCE = 1e-8
# relative differences of cells and cut-offs taken as rounding, not as another run
MATCH_TOLERANCE = 1e-6
_INT32 = np.dtype("<i4")


class ChargeDensity(NamedTuple):
    """The records of a charge-density.dat: ``reciprocal`` b1, b2, b3 as rows (bohr⁻¹), ``miller`` (ngm, 3),
    ``coefficients`` one (ngm,) complex array of ρ(G) (e/bohr³) per block."""

    gamma_only: bool
    reciprocal: np.ndarray
    miller: np.ndarray
    coefficients: list


class Schema(NamedTuple):
    """What a pw.x data-file-schema.xml says of its run: atoms and cell in Å, alat in bohr, ecutrho in Ry."""

    path: str
    symbols: list
    positions: np.ndarray
    cell: np.ndarray
    alat: float
    ecutrho: float
    fft_grid: tuple


class Target(NamedTuple):
    """How a structure goes into a charge-density.dat: the cut-off (Ry), QE's G vectors in QE's order, and the
    grid QE works on (its data-file-schema.xml's, else the smallest FFT-friendly grid that holds the sphere)."""

    ecutrho: float
    miller: np.ndarray
    grid: tuple


def _schema_beside(path: PathLike) -> str:
    """The data-file-schema.xml in the folder of ``path``."""
    return os.path.join(os.path.dirname(os.path.abspath(path)), SCHEMA)


def _records(data: bytes, path) -> list:
    """The records of a Fortran unformatted sequential file; FileFormatError where the lengths do not add up."""
    records, position = [], 0
    while position < len(data):
        length = int(np.frombuffer(data, _INT32, 1, position)[0]) if position + 4 <= len(data) else -1
        end = position + 4 + length
        if length < 0 or end + 4 > len(data) or data[end:end + 4] != data[position:position + 4]:
            raise FileFormatError(path, f"record {len(records) + 1} (byte {position}): its length markers do not "
                                        "add up; the file is truncated or not QE's charge-density.dat: rerun pw.x")
        records.append(data[position + 4:end])
        position = end + 4
    return records


def _expect(path, record: bytes, size: int, what: str):
    if len(record) != size:
        raise FileFormatError(path, f"the record of {what} holds {len(record)} bytes, not {size}; the file is "
                                    "truncated or not QE's charge-density.dat: rerun pw.x")


def read_charge_density(path: PathLike) -> ChargeDensity:
    """The records of the charge-density.dat ``path`` (plain or gzip), checked to add up."""
    records = _records(read_bytes(path), path)
    if not records:
        raise FileFormatError(path, "is empty: rerun pw.x")
    _expect(path, records[0], 12, "gamma_only, ngm_g and nspin")
    gamma_only, count, nspin = np.frombuffer(records[0], _INT32)
    if nspin not in BLOCK_NAMES or count <= 0:
        raise FileFormatError(path, f"ngm_g = {count}, nspin = {nspin}: not QE's charge-density.dat (nspin is 1, "
                                    "2 or 4): rerun pw.x")
    if len(records) != 3 + nspin:
        raise FileFormatError(path, f"holds {len(records)} records, not the {3 + nspin} of nspin = {nspin}; the "
                                    "file is truncated or not QE's charge-density.dat: rerun pw.x")
    _expect(path, records[1], 72, "b1, b2, b3")
    _expect(path, records[2], 12 * count, f"{count} Miller indices")
    for number, record in enumerate(records[3:], 1):
        _expect(path, record, 16 * count, f"ρ(G) block {number}")
    return ChargeDensity(bool(gamma_only), np.frombuffer(records[1], "<f8").reshape(3, 3),
                         np.frombuffer(records[2], _INT32).reshape(count, 3),
                         [np.frombuffer(record, "<c16") for record in records[3:]])


def _element(label: str, path) -> str:
    """The element of a QE species label: 'Si', 'Fe1', 'Fe_up' → 'Si', 'Fe', 'Fe'."""
    for symbol in (label[:2].capitalize(), label[:1].upper()):
        if symbol in chemical_symbols[1:]:
            return symbol
    raise FileFormatError(path, f"species '{label}' does not start with an element symbol")


def _numbers(element, path, tag: str, count: int) -> np.ndarray:
    found = element.find(tag)
    try:
        values = np.array(found.text.split(), dtype=float)
    except (AttributeError, ValueError):
        values = np.empty(0)
    if values.size != count or not np.isfinite(values).all():
        raise FileFormatError(path, f"<{tag}> is missing or garbled: not a data-file-schema.xml of pw.x 6.x")
    return values


def read_schema(path: PathLike) -> Schema:
    """The structure, alat, cut-off and FFT grid of the pw.x run whose data-file-schema.xml is ``path``."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except (OSError, ElementTree.ParseError) as err:
        raise FileFormatError(path, f"cannot read it as XML ({err}): rerun pw.x") from None
    output = root.find("output")
    if output is None:
        raise FileFormatError(path, "holds no <output>: the pw.x run that wrote it did not finish; rerun it")
    structure, grid = output.find("atomic_structure"), output.find("basis_set/fft_grid")
    atoms = output.findall("atomic_structure/atomic_positions/atom")
    try:
        alat = float(structure.get("alat"))
        shape = tuple(int(grid.get(f"nr{axis}")) for axis in (1, 2, 3))
    except (AttributeError, TypeError, ValueError):
        raise FileFormatError(path, "no alat or FFT grid in <output>: not a data-file-schema.xml of pw.x 6.x; "
                                    "rerun pw.x") from None
    positions = np.array([_numbers(atom, path, ".", 3) for atom in atoms]).reshape(-1, 3)
    cell = np.array([_numbers(output, path, f"atomic_structure/cell/a{axis}", 3) for axis in (1, 2, 3)])
    ecutrho = 2 * _numbers(output, path, "basis_set/ecutrho", 1)[0]  # Hartree → Ry
    return Schema(str(path), [_element(atom.get("name", ""), path) for atom in atoms], positions * BOHR,
                  cell * BOHR, alat, ecutrho, shape)


def _schema_for(path) -> Schema:
    xml = _schema_beside(path)
    if not os.path.exists(xml):
        raise FileFormatError(path, f"no {SCHEMA} beside it: QE's density takes its atoms and cell from the one "
                                    "pw.x writes in the same prefix.save folder; keep the two together")
    return read_schema(xml)


def _need_grid(miller: np.ndarray) -> np.ndarray:
    """The fewest points per axis on which the G vectors ``miller`` are distinct: 2·max|m_i| + 1."""
    return 2 * np.abs(miller).max(axis=0) + 1


def _grid_values(coefficients: np.ndarray, miller: np.ndarray, shape, gamma_only: bool) -> np.ndarray:
    """ρ(r) = Σ_G ρ(G) e^{iG·r} on the grid ``shape`` (e/bohr³)."""
    grid = np.zeros(shape, dtype=complex)
    if gamma_only:
        grid[tuple((-miller % shape).T)] = coefficients.conj()
    grid[tuple((miller % shape).T)] = coefficients
    return np.fft.ifftn(grid).real * grid.size


def read_qe(path: PathLike, block: str = "total") -> Snapshot:
    """Read QE's charge-density.dat (plain or gzip) on the FFT grid of the data-file-schema.xml beside it, whose
    atoms and cell it takes; ``block``: "total", "magnetization" (nspin 2) or "magnetization_x"/"_y"/"_z"
    (non-collinear)."""
    schema = _schema_for(path)
    density = read_charge_density(path)
    names = BLOCK_NAMES[len(density.coefficients)]
    if block not in names:
        raise FileFormatError(path, f"no '{block}' density block; the file holds: {', '.join(names)}")
    product = density.reciprocal @ (schema.cell / BOHR).T / (2 * np.pi)
    if np.abs(product - np.eye(3)).max() > MATCH_TOLERANCE:
        raise FileFormatError(path, f"its reciprocal vectors are not those of the cell of {schema.path}: the two "
                                    "come from different runs; keep the prefix.save folder of one pw.x run together")
    need = _need_grid(density.miller)
    if (np.array(schema.fft_grid) < need).any():
        raise FileFormatError(path, f"its G vectors need a grid of {' '.join(map(str, need))} points or more, but "
                                    f"{schema.path} gives {' '.join(map(str, schema.fft_grid))}: its cut-off is "
                                    "another run's; keep the prefix.save folder of one pw.x run together")
    values = _grid_values(density.coefficients[names.index(block)], density.miller, schema.fft_grid,
                          density.gamma_only)
    return Snapshot(symbols=schema.symbols, positions=schema.positions, cell=schema.cell, pbc=(True, True, True),
                    density=values / BOHR**3, source=str(path), spin_blocks=names)


def g_vectors(cell: np.ndarray, alat: float, ecutrho: float) -> np.ndarray:
    """The Miller indices (ngm, 3) of the G vectors with |G|² ≤ ``ecutrho`` (Ry, i.e. bohr⁻²) of the cell (rows,
    bohr), in QE's order: generated with i outermost and k innermost, sorted by |G|² in (2π/alat)² with values
    within :data:`SORT_TOLERANCE` one value, ties in generation order."""
    reciprocal = np.linalg.inv(cell / alat).T  # rows, in 2π/alat
    cutoff = ecutrho * (alat / (2 * np.pi)) ** 2
    extent = (np.sqrt(cutoff) * np.linalg.norm(cell / alat, axis=1)).astype(int) + 1
    axes = [np.arange(-n, n + 1) for n in extent]
    miller = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    squares = ((miller @ reciprocal) ** 2).sum(axis=1)
    inside = squares <= cutoff
    miller, squares = miller[inside], np.where(squares[inside] > SORT_TOLERANCE, squares[inside], 0.0)
    order = np.argsort(squares, kind="stable")
    shell = np.concatenate([[0], np.cumsum(np.diff(squares[order]) > SORT_TOLERANCE)])
    return miller[order[np.lexsort((order, shell))]]


def write_target(path: PathLike, structure: Snapshot, ecutrho: Optional[float] = None) -> Target:
    """How ``structure`` is written to ``path``: with ``ecutrho`` (Ry), else the cut-off of the data-file-schema.xml
    beside ``path``, whose cell must be the structure's. FileFormatError when neither gives a cut-off, or the XML
    disagrees."""
    xml = _schema_beside(path)
    schema = read_schema(xml) if os.path.exists(xml) else None
    if schema is None and ecutrho is None:
        raise FileFormatError(path, f"no cut-off for QE's G vectors: give --ecutrho RY (ecutrho= in Python), or "
                                    f"put the {SCHEMA} of a pw.x run on this cell beside it")
    cell = np.asarray(structure.cell, dtype=float)
    if schema is not None:
        error = np.abs(cell - schema.cell).max()
        if error > MATCH_TOLERANCE * np.abs(schema.cell).max():
            raise FileFormatError(path, f"the cell differs from that of {xml} by up to {error:.3g} Å: predict for "
                                        "that cell, or move the XML away and give --ecutrho")
        if ecutrho is not None and abs(ecutrho - schema.ecutrho) > MATCH_TOLERANCE * schema.ecutrho:
            raise FileFormatError(path, f"--ecutrho {ecutrho:g} Ry is not the {schema.ecutrho:g} Ry of {xml}: give "
                                        "that value, or leave --ecutrho out")
        ecutrho = schema.ecutrho
    alat = schema.alat if schema is not None else float(np.linalg.norm(cell[0])) / BOHR
    miller = g_vectors(cell / BOHR, alat, ecutrho)
    grid = schema.fft_grid if schema is not None else tuple(fft_friendly_size(int(n)) for n in _need_grid(miller))
    return Target(ecutrho, miller, tuple(grid))


def check_grid(path: PathLike, shape, target: Target) -> None:
    """FileFormatError unless the grid ``shape`` holds the G sphere of ``target``."""
    need = _need_grid(target.miller)
    if (np.array(shape) < need).any():
        raise FileFormatError(path, f"the grid {' '.join(map(str, shape))} is too coarse for ecutrho "
                                    f"{target.ecutrho:g} Ry: QE's G vectors need {' '.join(map(str, need))} points "
                                    f"or more (predict leaves out --grid and --spacing to take QE's "
                                    f"{' '.join(map(str, target.grid))})")


def _record(data: bytes) -> bytes:
    marker = np.array([len(data)], _INT32).tobytes()
    return marker + data + marker


def write_qe(path: PathLike, snapshot: Snapshot, ecutrho: Optional[float] = None) -> None:
    """Write ``snapshot``'s density as QE's charge-density.dat (gzip if the name ends in .gz, which QE does not
    read), atomically: ρ(G) in QE's order for the cut-off :func:`write_target` finds, ``gamma_only`` false, one
    spin block."""
    if snapshot.density is None:
        raise FileFormatError(path, "cannot write QE's charge-density.dat: the snapshot has no density")
    density = np.asarray(snapshot.density, dtype=float)
    if not np.isfinite(density).all():
        raise FileFormatError(path, "cannot write QE's charge-density.dat: the density holds NaN/inf values")
    target = write_target(path, snapshot, ecutrho)
    check_grid(path, density.shape, target)
    reciprocal = 2 * np.pi * np.linalg.inv(np.asarray(snapshot.cell, dtype=float) / BOHR).T
    grid = np.fft.fftn(density * BOHR**3) / density.size
    shift = np.exp(-1j * (target.miller @ reciprocal) @ (np.asarray(snapshot.origin, dtype=float) / BOHR))
    coefficients = grid[tuple((target.miller % density.shape).T)] * shift
    header = np.array([0, len(target.miller), 1], _INT32).tobytes()
    with open_atomic_binary(path) as handle:
        for data in (header, reciprocal.astype("<f8").tobytes(), target.miller.astype(_INT32).tobytes(),
                     coefficients.astype("<c16").tobytes()):
            handle.write(_record(data))


def looks_like_charge_density(head: bytes) -> bool:
    """True if ``head`` (a file's first 24 bytes) opens as a charge-density.dat: a 12-byte record of
    gamma_only, ngm_g and nspin, then the marker of the 72-byte record of b1, b2, b3."""
    if len(head) < 24:
        return False
    first, gamma_only, count, nspin, last, second = np.frombuffer(head, _INT32, 6)
    return (first == last == 12 and second == 72 and gamma_only in (0, 1) and count > 0
            and nspin in BLOCK_NAMES)
