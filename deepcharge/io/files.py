"""Plumbing shared by the readers and writers: gzip-aware reading, atomic writing, number parsing."""

import contextlib
import gzip
import io
import os
import zlib
from typing import BinaryIO, Callable, Iterator, Optional, TextIO, Union

import numpy as np

from deepcharge.errors import FileFormatError
from deepcharge.utils import atomic_path

PathLike = Union[str, "os.PathLike[str]"]
"""A file name: a string or a path object."""

_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def open_text(path: PathLike) -> TextIO:
    """Open ``path`` for reading text, gunzipping it when it is gzip data (whatever its name)."""
    try:
        if _is_gzip(path):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as err:
        raise _cannot_open(path, err) from None


def _cannot_open(path, err: OSError) -> FileFormatError:
    if isinstance(err, FileNotFoundError):
        return FileFormatError(path, "no such file")
    if isinstance(err, IsADirectoryError):
        return FileFormatError(path, "is a directory, not a file")
    return FileFormatError(path, f"cannot read: {err.strerror or err}")


def read_text(path: PathLike) -> str:
    """The whole text of ``path`` (gzip data is decompressed)."""
    handle = open_text(path)
    try:
        with handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise FileFormatError(path, f"corrupt or truncated gzip data ({err})") from None


def read_bytes(path: PathLike) -> bytes:
    """The bytes of ``path`` (gzip data is decompressed)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise _cannot_open(path, err) from None
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise FileFormatError(path, f"corrupt or truncated gzip data ({err})") from None


def write_atomic(path: PathLike, data: bytes, compress: Optional[bool] = None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`open_atomic_binary`; gzipped for .gz names)."""
    with open_atomic_binary(path, compress) as handle:
        handle.write(data)


@contextlib.contextmanager
def open_atomic_binary(path: PathLike, compress: Optional[bool] = None) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file that replaces ``path`` when the block ends without error.

    The stream is gzipped when ``compress`` is true, or when it is None and the name ends in ``.gz``; the gzip
    header records the final name less ``.gz`` (what ``gunzip -N`` restores), not the temporary one, and no time.
    """
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as raw:
            if compress:
                with gzip.GzipFile(filename=os.path.basename(path), fileobj=raw, mode="wb", compresslevel=6,
                                   mtime=0) as zipped:
                    yield zipped
            else:
                yield raw


# coordinates (Å, Bohr or fractional) closer to zero than this are numerical noise, e.g. -1e-16 from a change of basis
COORDINATE_NOISE = 1e-12


def written_coordinates(values, decimals: int) -> np.ndarray:
    """``values`` to be written with ``decimals`` places, those that are noise or would print as zero set to +0.0:
    a written coordinate never reads -0.0000000000000001 or -0.00000000."""
    values = np.asarray(values, dtype=float)
    return np.where(np.abs(values) < max(COORDINATE_NOISE, 0.5 * 10.0**-decimals), 0.0, values)


def _is_float(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def line_of_token(text: str, index: int, first_line: int = 1) -> int:
    """The number of the line of ``text`` (whose first line is ``first_line``) that holds token ``index``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), first_line):
        seen += len(line.split())
        if seen > index:
            return number
    raise IndexError(f"text holds {seen} tokens, not {index + 1}")


def parse_values(tokens, path, what, line_of: Optional[Callable[[int], int]] = None) -> np.ndarray:
    """``tokens`` as a float array; FileFormatError on a non-number or a NaN/inf (``what`` names the data;
    ``line_of``, given a token's index, its line number for the message)."""

    def where(index):
        return f" (line {line_of(index)})" if line_of else ""

    try:
        values = np.array(tokens, dtype=float)
    except ValueError:
        index, bad = next((i, t) for i, t in enumerate(tokens) if not _is_float(t))
        raise FileFormatError(path, f"garbled {what}: value {index + 1} is '{bad}'{where(index)}") from None
    finite = np.isfinite(values)
    if not finite.all():
        first = int(np.argmin(finite))
        count = int((~finite).sum())
        raise FileFormatError(path, f"{what} holds {count} NaN/inf values (first: value {first + 1}{where(first)})")
    return values
