"""Reading and writing densities and structures, whatever the file kind.

Density files: the VASP CHGCAR layout (CHGCAR, CHG, AECCAR*, PARCHG) and Gaussian cube, plain or gzip.
Anything else ASE can read is accepted as a bare structure.
"""

import os
import re

from deepcharge.data.snapshot import Snapshot
from deepcharge.errors import FileFormatError
from deepcharge.io.chgcar import read_chgcar, read_header, write_chgcar
from deepcharge.io.cube import read_cube, write_cube
from deepcharge.io.files import open_text
from deepcharge.io.structures import EXPECTED_STRUCTURE, atoms_to_snapshot

__all__ = [
    "is_density_file",
    "read_chgcar",
    "read_cube",
    "read_density",
    "read_structure",
    "write_chgcar",
    "write_cube",
    "write_density",
]

_CUBE_NAME = re.compile(r"\.cube?(\.gz)?$", re.IGNORECASE)
_VASP_NAME = re.compile(r"CHG|AECCAR|\.vasp(\.gz)?$")  # CHG also matches CHGCAR and PARCHG


def _is_cube_line(line, allow_count=False):
    """True for ``int float float float`` (plus one more int if ``allow_count``)."""
    fields = line.split()
    if len(fields) != 4 and not (allow_count and len(fields) == 5):
        return False
    try:
        int(fields[0])
        tuple(map(float, fields[1:4]))
        tuple(map(int, fields[4:]))
    except ValueError:
        return False
    return True


def _sniff(path):
    """"cube", "chgcar" or None, from the file's first lines."""
    with open_text(path) as stream:
        lines = [stream.readline() for _ in range(6)]
        if _is_cube_line(lines[2], allow_count=True) and all(map(_is_cube_line, lines[3:6])):
            return "cube"
        stream.seek(0)
        try:
            read_header(stream, path)
        except FileFormatError:
            return None
        line = stream.readline()
        while line and not line.strip():
            line = stream.readline()
    try:
        dims = [int(x) for x in line.split()]
    except ValueError:
        return None
    return "chgcar" if len(dims) == 3 and min(dims) > 0 else None


def _require_file(path):
    if not os.path.exists(path):
        raise FileFormatError(path, "no such file")


def is_density_file(path) -> bool:
    """True if ``path`` holds a CHGCAR-layout or cube density (judged by content)."""
    return os.path.isfile(path) and _sniff(path) is not None


def read_density(path, block="total") -> Snapshot:
    """Read a density file (CHGCAR layout or cube, plain or gzip) into a Snapshot, density in e/Å³.

    The kind comes from the name (.cube/.cub; CHGCAR, CHG, AECCAR, PARCHG, .vasp), else from the content.
    """
    _require_file(path)
    name = os.path.basename(os.fspath(path))
    if _CUBE_NAME.search(name):
        kind = "cube"
    elif _VASP_NAME.search(name):
        kind = "chgcar"
    else:
        kind = _sniff(path)
    if kind == "cube":
        if block != "total":
            raise FileFormatError(path, f"no '{block}' density block: a cube file holds one density")
        return read_cube(path)
    if kind == "chgcar":
        return read_chgcar(path, block=block)
    raise FileFormatError(path, "not a density file: expected a VASP CHGCAR-layout or Gaussian cube file")


def is_cube_name(path) -> bool:
    """Whether ``path`` names a Gaussian cube file (.cube/.cub)."""
    return bool(_CUBE_NAME.search(os.path.basename(os.fspath(path))))


def write_density(path, snapshot: Snapshot) -> None:
    """Write ``snapshot``: a cube for .cube/.cub names, the CHGCAR layout otherwise (gzip for .gz)."""
    if is_cube_name(path):
        write_cube(path, snapshot)
    else:
        write_chgcar(path, snapshot)


def read_structure(path) -> Snapshot:
    """A structure from a density file (density kept) or any file ASE reads (density None)."""
    _require_file(path)
    if is_density_file(path):
        return read_density(path)
    import ase.io  # only here: importing it costs a noticeable part of a short command's start-up

    try:
        atoms = ase.io.read(path)
    except Exception as err:  # ASE raises many kinds of errors for unreadable input
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise FileFormatError(path, f"cannot read a structure (ASE: {reason}); {EXPECTED_STRUCTURE}") from None
    return atoms_to_snapshot(atoms, str(path))
