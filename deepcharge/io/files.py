"""Plumbing shared by the readers and writers: gzip-aware reading, atomic writing, number parsing."""

import contextlib
import gzip
import io
import os
import zlib

import numpy as np

from deepcharge.errors import FileFormatError
from deepcharge.utils import atomic_path

_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def open_text(path):
    """Open ``path`` for reading text, gunzipping it when it is gzip data (whatever its name)."""
    try:
        if _is_gzip(path):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None
    except OSError as err:
        raise FileFormatError(path, f"cannot read: {err.strerror or err}") from None


def read_text(path) -> str:
    """The whole text of ``path`` (gzip data is decompressed)."""
    handle = open_text(path)
    try:
        with handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise FileFormatError(path, f"corrupt or truncated gzip data ({err})") from None


def write_atomic(path, data: bytes, compress=None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`deepcharge.utils.atomic_path`).

    The data is gzipped when ``compress`` is true, or when it is None and the name ends in ``.gz``.
    """
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as handle:
            handle.write(data)


@contextlib.contextmanager
def open_atomic_binary(path, compress=None):
    """A binary handle on a temporary file that replaces ``path`` when the block ends without error.

    The stream is gzipped when ``compress`` is true, or when it is None and the name ends in ``.gz``.
    """
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as raw:
            if compress:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as zipped:
                    yield zipped
            else:
                yield raw


def _is_float(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_values(tokens, path, what) -> np.ndarray:
    """``tokens`` as a float array; FileFormatError on a non-number or a NaN/inf (``what`` names the data)."""
    try:
        values = np.array(tokens, dtype=float)
    except ValueError:
        index, bad = next((i, t) for i, t in enumerate(tokens) if not _is_float(t))
        raise FileFormatError(path, f"garbled {what}: value {index + 1} is '{bad}'") from None
    finite = np.isfinite(values)
    if not finite.all():
        first = int(np.argmin(finite)) + 1
        count = int((~finite).sum())
        raise FileFormatError(path, f"{what} holds {count} NaN/inf values (first: value {first})")
    return values
