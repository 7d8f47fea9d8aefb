"""Small helpers used across the package: atomic file writes, output names, the working directory and device
selection."""

import contextlib
import json
import os
import platform
import warnings
from pathlib import Path
from typing import List

import torch

from deepcharge.errors import DeepChargeError, FileFormatError


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


def tagged_name(path: str, tag: str) -> str:
    """``tag`` added to the file name before its first dot: ``rho.CHGCAR.gz``, ``mean`` → ``rho_mean.CHGCAR.gz``."""
    folder, name = os.path.split(path)
    stem, dot, suffixes = name.partition(".")
    return os.path.join(folder, f"{stem}_{tag}{dot}{suffixes}")


def numbered_names(path: str, count: int) -> List[str]:
    """Names for ``count`` files: ``path`` itself for one, else ``rho.CHGCAR`` → ``rho_0.CHGCAR``, ``rho_1.CHGCAR``,
    ... (numbers zero-padded to equal width, so they sort)."""
    if count == 1:
        return [path]
    width = len(str(count - 1))
    return [tagged_name(path, f"{number:0{width}d}") for number in range(count)]


@contextlib.contextmanager
def working_directory(path):
    """Run the enclosed code in directory ``path`` (created if missing), then return to the previous one."""
    Path(path).mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def read_json(path):
    """The JSON file ``path``; a clear error when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DeepChargeError(f"{path}: not a JSON file ({err})") from None


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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
