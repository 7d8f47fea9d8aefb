"""The table of density file formats, as ``ase/io/formats.py`` keeps ASE's: one row per format with the file
names it goes by, how its content is recognised, its reader and its writer. Readers, writers and every command
(``predict -o``, ``model-devi -o``, directory expansion, store names) consult it.

A name (less ``.gz``) picks the format; when it says nothing, the first lines do (:func:`detect_format`).
Every format is read and written plain or gzipped (``.gz``).
"""

import os
import re
import zlib
from typing import Callable, NamedTuple, Optional, TextIO

from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.io import chgcar, cube, qe, xsf
from deepcharge.io.files import open_text
from deepcharge.reading import ReadOptions
from deepcharge.snapshot import Snapshot


class DensityFormat(NamedTuple):
    """One density file format.

    ``patterns``: the names it goes by, for messages; ``names``: a regular expression searched for in a file
    name (less ``.gz``); ``suffix``: the end of a name that names the format, dropped from store entry names
    (VESTA's ``.vasp`` too, which is recognised by content: ASE reads a POSCAR under that name); ``sniff``:
    whether a text stream at the start of a file begins as this format does; ``read(path, block, options)``;
    ``write(path, snapshot)``; ``write_blocks(path, structure, shape, blocks)`` when the writer takes the grid
    as it is computed; ``order``: the order of the values it writes (numpy's: "F" x fastest, "C" z fastest).
    """

    name: str
    description: str
    patterns: str
    names: "re.Pattern"
    suffix: "re.Pattern"
    sniff: Callable[[TextIO], bool]
    read: Callable[..., Snapshot]
    write: Callable[[str, Snapshot], None]
    order: str = "C"
    write_blocks: Optional[Callable] = None


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


def _sniff_cube(stream: TextIO) -> bool:
    lines = [stream.readline() for _ in range(6)]
    return _is_cube_line(lines[2], allow_count=True) and all(map(_is_cube_line, lines[3:6]))


def _sniff_chgcar(stream: TextIO) -> bool:
    """A POSCAR header followed by a blank line and ``nx ny nz``."""
    try:
        chgcar.read_header(stream, "")
    except FileFormatError:
        return False
    line = stream.readline()
    while line and not line.strip():
        line = stream.readline()
    try:
        dims = [int(x) for x in line.split()]
    except ValueError:
        return False
    return len(dims) == 3 and min(dims) > 0


def _sniff_xsf(stream: TextIO) -> bool:
    """The first two lines that are not blank or comments open as XSF's do: a keyword alone on its line (or
    with a count), then a keyword, an atom or a vector (a POSCAR's comment line may be any word)."""
    lines = (line.split() for line in stream if line.strip() and not line.lstrip().startswith("#"))
    first, second = next(lines, None), next(lines, None)
    keyword = first[0].upper() if first else None
    if keyword not in xsf.OPENING_KEYWORDS or second is None or not all(word.isdigit() for word in first[1:2]):
        return False
    if keyword.startswith("BEGIN_"):
        return True
    if keyword in ("ATOMS", "PRIMVEC"):
        return len(second) >= 3 + (keyword == "ATOMS")
    return second[0].upper() in xsf.OPENING_KEYWORDS | {"PRIMCOORD", "CONVVEC"}


def _sniff_qe(stream: TextIO) -> bool:
    """The binary start of QE's charge-density.dat, read from the bytes under the text stream."""
    return qe.looks_like_charge_density(stream.buffer.read(24))


def _read_chgcar(path, block: str, options: ReadOptions) -> Snapshot:
    return chgcar.read_chgcar(path, block=block, symbols=options.species)


def _one_block(reader, what):
    def read(path, block: str, options: ReadOptions) -> Snapshot:
        if block != "total":
            raise FileFormatError(path, f"no '{block}' density block: {what} holds one density")
        return reader(path, options)
    return read


FORMATS = [
    DensityFormat("chgcar", "VASP CHGCAR layout", "*CHGCAR*, *CHG*, *AECCAR*, *PARCHG*",
                  re.compile(r"CHG|AECCAR"), re.compile(r"[._-]?(CHGCAR|CHG|AECCAR\d?|PARCHG|vasp)$", re.IGNORECASE),
                  _sniff_chgcar, _read_chgcar, chgcar.write_chgcar, order="F",
                  write_blocks=chgcar.write_chgcar_blocks),
    DensityFormat("cube", "Gaussian cube", "*.cube, *.cub", re.compile(r"\.cube?$", re.IGNORECASE),
                  re.compile(r"\.cube?$", re.IGNORECASE), _sniff_cube,
                  _one_block(lambda path, options: cube.read_cube(path), "a cube file"), cube.write_cube),
    DensityFormat("xsf", "XCrySDen XSF", "*.xsf", re.compile(r"\.xsf$", re.IGNORECASE),
                  re.compile(r"\.xsf$", re.IGNORECASE), _sniff_xsf,
                  _one_block(lambda path, options: xsf.read_xsf(path, options.xsf_unit), "an XSF file is read for"),
                  xsf.write_xsf, order="F"),
    DensityFormat("qe", "Quantum ESPRESSO charge-density.dat", "DIR/PREFIX.save/*charge-density*.dat",
                  re.compile(r"charge-density.*\.dat$"), re.compile(r"[._-]?charge-density\.dat$"), _sniff_qe,
                  lambda path, block, options: qe.read_qe(path, block), qe.write_qe),
]

_GZ = re.compile(r"\.gz$", re.IGNORECASE)


def _bare_name(path) -> str:
    return _GZ.sub("", os.path.basename(os.fspath(path)))


def density_format(name: str) -> DensityFormat:
    """The row of the table named ``name`` ("chgcar", "cube", "xsf", "qe")."""
    return next(fmt for fmt in FORMATS if fmt.name == name)


def format_by_name(path) -> Optional[DensityFormat]:
    """The format a file name goes by (``.gz`` aside), or None."""
    name = _bare_name(path)
    return next((fmt for fmt in FORMATS if fmt.names.search(name)), None)


def format_by_content(path) -> Optional[DensityFormat]:
    """The format whose sniffer recognises the beginning of ``path``, or None (the file is opened once)."""
    with open_text(path) as stream:
        for fmt in FORMATS:
            stream.seek(0)
            try:
                if fmt.sniff(stream):
                    return fmt
            except (OSError, EOFError, zlib.error):  # corrupt gzip data: no format's
                return None
    return None


def detect_format(path) -> Optional[DensityFormat]:
    """The format of the density file ``path``: from its name, else from its first lines; None if neither."""
    return format_by_name(path) or format_by_content(path)


def writable_names() -> str:
    """The output names the writers take, for messages."""
    return "; ".join(f"{fmt.patterns} ({fmt.description})" for fmt in FORMATS) + "; each also .gz"


def output_format(path) -> DensityFormat:
    """The format ``path`` will be written in; DeepChargeError for a name no writer takes."""
    fmt = format_by_name(path)
    if fmt is None:
        raise DeepChargeError(f"{path}: no density writer for this name; name the output {writable_names()}")
    return fmt


def strip_format_suffix(name: str) -> str:
    """``name`` without ``.gz`` and the part that names its format: ``si64_0.CHGCAR.gz`` → ``si64_0``."""
    name = _GZ.sub("", name)
    for fmt in FORMATS:
        stripped = fmt.suffix.sub("", name)
        if stripped != name:
            return stripped
    return name

