"""Small helpers used across the package: atomic file writes and device selection."""

import contextlib
import json
import os
import warnings
from pathlib import Path

import torch

from .errors import DeepChargeError, FileFormatError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.

    Readers never see a half-written file. An unwritable destination is a :class:`DeepChargeError`.
    """
    path = Path(path)
    if not path.resolve().parent.is_dir():
        raise FileFormatError(path, f"cannot write: directory {path.resolve().parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield str(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise FileFormatError(path, f"cannot write: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, data):
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")


def resolve_device(name: str) -> torch.device:
    """``auto`` → the first GPU when one is visible, else the CPU; ``cpu``/``cuda``/``cuda:N`` as given."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeepChargeError(f"device `{name}` requested but no CUDA GPU is visible; use `auto` or `cpu`")
    return torch.device(name)


@contextlib.contextmanager
def quiet_torchscript():
    """Silence PyTorch's deprecation notice for TorchScript: the frozen model format is TorchScript by design."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning)
        yield
