"""Checkpoint files: ``<prefix>-<step>.pt``, a ``<prefix>.pt`` link to the latest and a ``checkpoint`` file
naming it (as DeePMD-kit's PyTorch backend), written atomically."""

import os
import zipfile
from pathlib import Path
from typing import Optional

import torch

from deepcharge.errors import DeepChargeError
from deepcharge.models.upgrade import CONFIG_VERSION, upgrade_model_config
from deepcharge.utils import atomic_path


def save_checkpoint(prefix: str, step: int, state: dict, keep: int) -> Path:
    """Write ``state`` as ``<prefix>-<step>.pt``, point ``<prefix>.pt`` and ``checkpoint`` at it, prune old ones."""
    target = Path(f"{prefix}-{step}.pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    latest = Path(f"{prefix}.pt")
    tmp_link = latest.with_name(latest.name + ".tmp")
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(target.name, tmp_link)
    os.replace(tmp_link, latest)
    with atomic_path(target.parent / "checkpoint") as tmp:
        Path(tmp).write_text(target.name + "\n")
    _prune(prefix, keep)
    return target


def save_best_checkpoint(prefix: str, state: dict) -> Path:
    """Write ``state`` as ``<prefix>-best.pt`` (the lowest validation error so far; never pruned)."""
    target = Path(f"{prefix}-best.pt")
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    return target


def _prune(prefix: str, keep: int):
    prefix_path = Path(prefix)
    found = []
    for path in prefix_path.parent.glob(prefix_path.name + "-*.pt"):
        suffix = path.name[len(prefix_path.name) + 1:-3]
        if suffix.isdigit():
            found.append((int(suffix), path))
    for _, path in sorted(found)[:-keep]:
        path.unlink()


def resolve_checkpoint(path: str) -> Path:
    """A checkpoint file from a file, a ``<prefix>.pt`` link or a directory holding a ``checkpoint`` file."""
    candidate = Path(path)
    if candidate.is_dir():
        pointer = candidate / "checkpoint"
        if not pointer.is_file():
            raise DeepChargeError(f"{candidate}: no `checkpoint` file in this directory; pass a checkpoint file "
                                  f"(e.g. model.ckpt-1000.pt) or the directory training ran in")
        candidate = candidate / pointer.read_text().strip()
    elif not candidate.exists() and Path(f"{path}.pt").exists():
        candidate = Path(f"{path}.pt")
    if not candidate.is_file():
        raise DeepChargeError(f"{path}: no such checkpoint file")
    return candidate


def torch_archive_kind(path) -> Optional[str]:
    """``"frozen"`` for a TorchScript archive (what ``freeze`` writes), ``"checkpoint"`` for a ``torch.save`` file
    (what training writes), None for anything else; from the archive's member names, without loading it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.partition("/")[2] for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return None
    if "constants.pkl" in names:
        return "frozen"
    return "checkpoint" if "data.pkl" in names else None


def load_checkpoint(path: str) -> dict:
    """The state saved by :func:`save_checkpoint`, loaded on the CPU, its model section upgraded to this version."""
    file = resolve_checkpoint(path)
    if torch_archive_kind(file) == "frozen":
        raise DeepChargeError(f"{file}: a frozen model, not a training checkpoint; --restart, --init-model and "
                              f"freeze take a checkpoint (model.ckpt.pt, model.ckpt-<step>.pt), a frozen model goes "
                              f"to test, predict, model-devi, compare and compress")
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds for a damaged file
        raise DeepChargeError(f"{file}: not a readable deepcharge checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or "model_state" not in state or "config" not in state:
        raise DeepChargeError(f"{file}: not a deepcharge checkpoint (no model state)")
    upgrade_model_config(state["config"]["model"], state.get("config_version", 0), file)
    state["config_version"] = CONFIG_VERSION
    return state
