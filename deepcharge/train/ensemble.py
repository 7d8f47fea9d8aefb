"""Ensembles (``training.ensemble``): members that differ only in their seeds, each trained in ``member_<i>/``."""

import copy
import re
from pathlib import Path
from typing import List, Optional

from deepcharge.errors import DeepChargeError
from deepcharge.utils import numbered_names

# member i's seed when the input gives training.seed but no list: member 0 is then the run without ensemble
SEED_STRIDE = 1000
MEMBER_PREFIX = "member"


def member_folders(members: int) -> List[Path]:
    """``member_0`` ... (numbers zero-padded to equal width, so they sort)."""
    return [Path(name) for name in numbered_names(MEMBER_PREFIX, members)]


def found_members(run_dir) -> List[Path]:
    """The member directories of an ensemble run in ``run_dir``, in member order (none for a single model)."""
    pattern = re.compile(rf"{MEMBER_PREFIX}_(\d+)$")
    found = [path for path in Path(run_dir).iterdir() if path.is_dir() and pattern.match(path.name)]
    return sorted(found, key=lambda path: int(pattern.match(path.name).group(1)))


def member_init_models(init_model: Optional[str], members: int) -> List[Optional[str]]:
    """Each member's ``--init-model``: an ensemble's run directory starts member i from its own ``member_<i>/``
    (the same number of members), any other checkpoint starts them all; absolute paths (members train in their
    own directories)."""
    if init_model is None:
        return [None] * members
    path = Path(init_model).resolve()
    found = found_members(path) if path.is_dir() and not (path / "checkpoint").is_file() else []
    if not found:
        return [str(path)] * members
    if len(found) != members:
        raise DeepChargeError(f"--init-model {init_model}: an ensemble of {len(found)} members, this input trains "
                              f"{members}; give one member's checkpoint to start them all from it")
    return [str(folder) for folder in found]


def member_seeds(training: dict) -> List[Optional[int]]:
    """Each member's ``training.seed``: the input's list, training.seed + 1000·i, or None (each member draws one)."""
    ensemble = training["ensemble"]
    if ensemble["seeds"] is not None:
        return list(ensemble["seeds"])
    if training["seed"] is None:
        return [None] * ensemble["members"]
    return [training["seed"] + SEED_STRIDE * index for index in range(ensemble["members"])]


def member_config(config: dict, seed: Optional[int]) -> dict:
    """One member's input: no ensemble, its own ``training.seed``, every model seed left to be derived from it."""
    member = copy.deepcopy(config)
    member["training"].update(seed=seed, ensemble=None)
    _clear_seeds(member["model"])
    return member


def _clear_seeds(section: dict):
    for key, value in section.items():
        if key == "seed":
            section[key] = None
        elif isinstance(value, dict):
            _clear_seeds(value)


def is_finished(state: dict, training: dict) -> bool:
    """Whether the checkpoint ``state`` ends its run: every step done, or stopped early."""
    patience = training["early_stopping_patience"]
    return int(state["step"]) >= training["numb_steps"] or bool(patience and state["best"]["stale"] >= patience)
