"""Checkpoints and frozen models written before the model section was versioned still load."""

import copy
import json

import pytest
import torch
from conftest import TINY_MODELS

from deepcharge.config import normalize
from deepcharge.entrypoints.freeze import freeze_model
from deepcharge.errors import DeepChargeError
from deepcharge.infer.predictor import METADATA_FILE, load_frozen
from deepcharge.models import build_model
from deepcharge.models.upgrade import CONFIG_VERSION
from deepcharge.train.checkpoint import load_checkpoint
from deepcharge.utils import quiet_torchscript

# keys pseudo_atom gained after its first checkpoints, with the values an old model was built with
ADDED = {"descriptor": {"lmax": 1, "three_body": None},
         "fitting_net": {"trainable_skip": False, "baseline_three_body": False}}


def current_config() -> dict:
    model = copy.deepcopy(TINY_MODELS["pseudo_atom"])
    model["descriptor"]["seed"] = model["fitting_net"]["seed"] = 3
    return normalize({"model": model, "training": {"training_data": {"systems": ["x"]}, "numb_steps": 1}})


def without_added_keys(config: dict) -> dict:
    old = copy.deepcopy(config)
    for section, keys in ADDED.items():
        for key in keys:
            del old["model"][section][key]
    return old


def write_old_checkpoint(path, config: dict):
    """A checkpoint as deepcharge wrote it before versioning: no ``config_version``, no added keys."""
    model = build_model(config["model"])
    torch.save({"config": without_added_keys(config), "model_state": model.state_dict(), "step": 2,
                "wall_time": 1.0}, path)


def test_the_added_keys_hold_the_values_an_old_model_was_built_with():
    model = current_config()["model"]
    for section, keys in ADDED.items():
        assert {key: model[section][key] for key in keys} == keys


def test_an_old_checkpoint_loads_with_its_model_section_upgraded(tmp_path):
    config = current_config()
    write_old_checkpoint(tmp_path / "old.pt", config)
    state = load_checkpoint(str(tmp_path / "old.pt"))
    assert state["config"]["model"] == config["model"]
    assert state["config_version"] == CONFIG_VERSION
    freeze_model(str(tmp_path / "old.pt"), str(tmp_path / "old.pth"))
    _, metadata = load_frozen(tmp_path / "old.pth", "cpu")
    assert metadata["model"] == config["model"] and metadata["config_version"] == CONFIG_VERSION


def test_an_old_frozen_model_loads_with_its_model_section_upgraded(tmp_path):
    config = current_config()
    write_old_checkpoint(tmp_path / "old.pt", config)
    freeze_model(str(tmp_path / "old.pt"), str(tmp_path / "new.pth"))
    extra = {METADATA_FILE: ""}
    with quiet_torchscript():
        module = torch.jit.load(str(tmp_path / "new.pth"), _extra_files=extra)
        metadata = json.loads(extra[METADATA_FILE])
        del metadata["config_version"]
        metadata["model"] = without_added_keys(config)["model"]
        torch.jit.save(module, str(tmp_path / "old.pth"), _extra_files={METADATA_FILE: json.dumps(metadata)})
    _, upgraded = load_frozen(tmp_path / "old.pth", "cpu")
    assert upgraded["model"] == config["model"] and upgraded["config_version"] == CONFIG_VERSION
    build_model(upgraded["model"]).load_state_dict(module.state_dict())  # `compress` rebuilds it so


def test_a_checkpoint_from_a_newer_version_is_refused(tmp_path):
    config = current_config()
    torch.save({"config": config, "config_version": CONFIG_VERSION + 1, "model_state": {}}, tmp_path / "new.pt")
    with pytest.raises(DeepChargeError, match="newer deepcharge"):
        load_checkpoint(str(tmp_path / "new.pt"))
