"""What a density file cannot say for itself, named once per command: a VASP 4 file's species, an XSF file's unit.

The command line sets them around a command (``with read_options(...)``), as ``numpy.errstate`` sets error
handling; the format table's readers (:mod:`deepcharge.io.formats`) take them from there, so every command that
reads density files honours them without passing them through each layer. Light to import: the parser uses it.
"""

import contextlib
import contextvars
from typing import NamedTuple, Optional, Sequence, Tuple

from deepcharge.errors import DeepChargeError

# units XSF datagrid values may be read in (XSF has no convention): electrons per cubic ... (an ase.units name)
XSF_UNITS = {"e/A3": "Ang", "e/bohr3": "Bohr"}


class ReadOptions(NamedTuple):
    """``species``: elements of a VASP 4 CHGCAR's species (its header has none); ``xsf_unit``: a key of
    :data:`XSF_UNITS`."""

    species: Optional[Tuple[str, ...]] = None
    xsf_unit: str = "e/A3"


_CURRENT = contextvars.ContextVar("deepcharge_read_options", default=ReadOptions())


def current_read_options() -> ReadOptions:
    """The options set by the innermost :func:`read_options` block (defaults outside any)."""
    return _CURRENT.get()


@contextlib.contextmanager
def read_options(species: Optional[Sequence[str]] = None, xsf_unit: Optional[str] = None):
    """Read density files inside the block with these options (None keeps the default)."""
    if xsf_unit is not None and xsf_unit not in XSF_UNITS:
        raise DeepChargeError(f"unknown XSF unit `{xsf_unit}`; known: {', '.join(XSF_UNITS)}")
    options = ReadOptions(tuple(species) if species else None, xsf_unit or ReadOptions().xsf_unit)
    token = _CURRENT.set(options)
    try:
        yield options
    finally:
        _CURRENT.reset(token)
