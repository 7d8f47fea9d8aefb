"""Reading and writing densities and structures, whatever the file kind.

Density files: the formats of :data:`deepcharge.io.formats.FORMATS` (the VASP CHGCAR layout, Gaussian cube,
XCrySDen XSF, Quantum ESPRESSO's charge-density.dat), plain or gzip. Anything else ASE can read is accepted as a
bare structure. A VASP file that holds no density (a LOCPOT, an ELFCAR: :data:`deepcharge.io.chgcar.NOT_DENSITIES`)
is read for its structure and grid, never as a density.
"""

import os
from typing import Optional

from deepcharge.errors import FileFormatError
from deepcharge.io.chgcar import not_a_density, read_chgcar, write_chgcar
from deepcharge.io.cube import read_cube, write_cube
from deepcharge.io.files import PathLike
from deepcharge.io.formats import FORMATS, detect_format, format_by_content, format_by_name, output_format
from deepcharge.io.structures import EXPECTED_STRUCTURE, atoms_to_snapshot
from deepcharge.io.xsf import read_xsf, write_xsf
from deepcharge.reading import current_read_options, read_options
from deepcharge.snapshot import Snapshot

__all__ = [
    "FORMATS",
    "density_file_problem",
    "is_density_file",
    "may_be_density_file",
    "output_format",
    "read_chgcar",
    "read_cube",
    "read_density",
    "read_options",
    "read_structure",
    "read_xsf",
    "write_chgcar",
    "write_cube",
    "write_density",
    "write_xsf",
]


def _require_file(path):
    if not os.path.exists(path):
        raise FileFormatError(path, "no such file")


def is_density_file(path: PathLike) -> bool:
    """True if ``path`` holds a density file of a format in the table (judged by content)."""
    return os.path.isfile(path) and format_by_content(path) is not None


def may_be_density_file(path: PathLike) -> bool:
    """True for a file whose name or first lines say it is in a density format, or that VASP names as one that
    holds no density (what a directory offers: :func:`density_file_problem` tells which of them can be used)."""
    return os.path.isfile(path) and bool(format_by_name(path) or not_a_density(path) or format_by_content(path))


def density_file_problem(path: PathLike) -> Optional[str]:
    """Why ``path`` gives no density, as far as its name and first lines tell (a potential; a file its first lines
    do not show to be in a density format, which is then read for the reader's reason), else None."""
    kind = not_a_density(path)
    if kind is not None:
        return kind.refusal
    if format_by_content(path) is not None:
        return None
    try:
        read_density(path)
    except FileFormatError as err:
        return err.problem
    return None


def read_density(path: PathLike, block: str = "total") -> Snapshot:
    """Read a density file of any format in :data:`FORMATS` (plain or gzip) into a Snapshot, density in e/Å³.

    The format comes from the name, else from the content; what a file cannot say for itself (a VASP 4 file's
    species, an XSF file's unit) comes from :func:`read_options`. A file whose name says it holds no density
    (a LOCPOT) is refused.
    """
    _require_file(path)
    kind = not_a_density(path)
    if kind is not None:
        raise FileFormatError(path, kind.refusal)
    fmt = detect_format(path)
    if fmt is None:
        raise FileFormatError(path, f"not a density file: expected {', '.join(f.description for f in FORMATS)}")
    snapshot = fmt.read(path, block, current_read_options())
    if snapshot.density is None:
        raise FileFormatError(path, f"not a density file: this {fmt.description} file holds a structure only")
    return snapshot


def write_density(path: PathLike, snapshot: Snapshot) -> None:
    """Write ``snapshot`` in the format its name chooses (see :func:`output_format`; gzip for .gz), atomically."""
    output_format(path).write(path, snapshot)


def read_structure(path: PathLike, block: str = "total") -> Snapshot:
    """A structure from a density file (judged by content; its ``block`` kept as the density) or any file ASE
    reads (density None; it has no ``block`` but the total)."""
    _require_file(path)
    fmt = format_by_content(path) if os.path.isfile(path) else None
    if fmt is not None:
        return fmt.read(path, block, current_read_options())
    import ase.io  # only here: importing it costs a noticeable part of a short command's start-up

    try:
        atoms = ase.io.read(path)
    except Exception as err:  # ASE raises many kinds of errors for unreadable input
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise FileFormatError(path, f"cannot read a structure (ASE: {reason}); {EXPECTED_STRUCTURE}") from None
    if block != "total":
        raise FileFormatError(path, f"no '{block}' density block: a structure file holds no density")
    return atoms_to_snapshot(atoms, str(path))
