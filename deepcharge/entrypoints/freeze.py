"""``deepcharge freeze``: a checkpoint → a self-contained TorchScript file with its metadata (one per member of an
ensemble)."""

from pathlib import Path
from typing import List

from deepcharge.train.ensemble import found_members
from deepcharge.train.freeze import freeze_model
from deepcharge.utils import tagged_name


def freeze_run(checkpoint: str = ".", output: str = "frozen_model.pth") -> List[dict]:
    """Freeze a checkpoint or the directory training ran in; an ensemble's directory gives one file per member,
    ``member_<i>/`` → ``frozen_model_<i>.pth`` (the number inserted before ``output``'s first dot)."""
    path = Path(checkpoint)
    members = found_members(path) if path.is_dir() and not (path / "checkpoint").is_file() else []
    if not members:
        return [freeze_model(checkpoint, output)]
    return [freeze_model(str(folder), tagged_name(output, folder.name.rpartition("_")[2])) for folder in members]


