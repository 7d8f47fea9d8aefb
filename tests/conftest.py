"""Shared fixtures: where the shipped data lie, and a tiny training input that runs in seconds."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deepcharge.analysis.metrics import DensityErrors
from deepcharge.train.trainer import Trainer
from deepcharge.utils import working_directory

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DATA = REPO / "input_examples" / "si64_one_shot" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(min(2, torch.get_num_threads()))


GA4 = Path(__file__).resolve().parent / "data" / "realfiles" / "vasp5_Ga4_spin_aug_CHGCAR.gz"


# DEEPCHARGE_SKIP_GPAW=1 skips the tests that run GPAW, outside CI only (CI installs GPAW: .ci/run)
SKIP_GPAW_VARIABLE = "DEEPCHARGE_SKIP_GPAW"


@pytest.fixture(scope="module")
def python():
    """The interpreter that imports GPAW; a missing GPAW fails the tests (skips only on request, outside CI)."""
    from deepcharge.errors import DeepChargeError
    from deepcharge.interfaces.gpaw import gpaw_python

    try:
        return gpaw_python()
    except DeepChargeError as err:
        if os.environ.get(SKIP_GPAW_VARIABLE) == "1" and not os.environ.get("CI"):
            pytest.skip(f"{err} ({SKIP_GPAW_VARIABLE}=1)")
        raise


def si64_file(index: int) -> Path:
    return EXAMPLE_DATA / f"si64_{index}.CHGCAR.gz"


def train_ga_model(folder: Path, name: str, **training_data) -> Path:
    """A tiny Ga model trained for two steps on the real spin-polarised VASP file (``training_data`` added to its
    training_data section), frozen to ``folder/name``."""
    from deepcharge.cli import main

    config = {"model": {"type_map": ["Ga"],
                        "descriptor": {"type": "se_e2_a", "sel": [24], "rcut": 3.5, "rcut_smth": 0.5,
                                       "neuron": [4, 8], "axis_neuron": 4, "env_protection": 0.5},
                        "fitting_net": {"neuron": [8, 8]}},
              "learning_rate": {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 1},
              "loss": {"type": "mse"},
              "training": {"training_data": {"systems": [str(GA4)], "probes_per_system": 500, "batch_size": 64,
                                             **training_data},
                           "numb_steps": 2, "seed": 1, "disp_freq": 1, "save_freq": 2, "device": "cpu"}}
    (folder / "input.json").write_text(json.dumps(config))
    with working_directory(folder):
        assert main(["train", "input.json"]) == 0
        assert main(["freeze", "-o", name]) == 0
    return folder / name


TINY_MODELS = {
    "pseudo_atom": {"type_map": ["Si"],
                    "descriptor": {"type": "se_e2_a", "sel": [16], "rcut": 3.5, "rcut_smth": 0.5,
                                   "neuron": [4, 8], "axis_neuron": 4, "env_protection": 0.5},
                    "fitting_net": {"neuron": [16, 16]}},
    "schnet": {"type": "schnet", "type_map": ["Si"], "cutoff": 3.0, "num_interactions": 2, "num_features": 8,
               "num_basis": 6},
    "atom_centred": {"type": "atom_centred", "type_map": ["Si"],
                     "descriptor": {"rcut": 3.0, "rcut_smth": 2.0, "neuron": [4, 8], "axis_neuron": 4},
                     "fitting_net": {"neuron": [16, 16]}},
    "painn": {"type": "painn", "type_map": ["Si"], "cutoff": 3.0, "num_interactions": 2, "num_features": 8,
              "num_basis": 6},
}


def tiny_input(workdir: Path, backend: str = "pseudo_atom", **training) -> Path:
    """A small model of ``backend`` on 2000 probes of si64_0, validated on 500 of si64_1."""
    config = {
        "model": TINY_MODELS[backend],
        "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-4, "decay_steps": 5},
        "loss": {"type": "mse"},
        "training": {
            "training_data": {"systems": [str(si64_file(0))], "probes_per_system": 2000, "batch_size": 64},
            "validation_data": {"systems": [str(si64_file(1))], "probes_per_system": 500},
            "numb_steps": 20, "seed": 7, "disp_freq": 5, "save_freq": 10, "device": "cpu",
            **training,
        },
    }
    path = workdir / "input.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def without_baseline(input_file: Path) -> Path:
    """The tiny pseudo-atom input without its radial baseline: its net, which starts at zero, then has the whole
    density to learn, so a few steps show it learning."""
    config = json.loads(input_file.read_text())
    config["model"]["fitting_net"]["radial_baseline"] = 0
    input_file.write_text(json.dumps(config, indent=1))
    return input_file


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh directory to run commands in (outputs land in the current directory, as with dp)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def frozen_model(tmp_path_factory):
    """A tiny pseudo-atom model, trained for two steps and frozen (shared by a test module)."""
    from deepcharge.cli import main

    folder = tmp_path_factory.mktemp("model")
    with working_directory(folder):
        assert main(["train", str(tiny_input(folder, numb_steps=2))]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    return folder / "model.pth"


class Killed(Exception):
    """Stands for the signal that kills a training run."""


def train_killed_at_step(monkeypatch, input_file: Path, optimizer_step: int):
    """Run ``deepcharge train`` and kill it at its ``optimizer_step``-th optimizer step (counted from 1)."""
    from deepcharge.cli import main

    calls = {"n": 0}
    original_step = torch.optim.Adam.step

    def step_then_die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == optimizer_step:
            raise Killed
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_die)
    with pytest.raises(Killed):
        main(["train", str(input_file)])
    monkeypatch.setattr(torch.optim.Adam, "step", original_step)


def scripted_validation(monkeypatch, values):
    """Make the validation error at step 0, disp_freq, 2 disp_freq, ... the given percentages."""
    scripted = iter(values)
    original = Trainer.evaluate

    def evaluate(self, probe_set, *args, **kwargs):
        errors = original(self, probe_set, *args, **kwargs)
        if probe_set is self.valid_set:
            errors = DensityErrors()
            errors.add(np.ones(1), np.ones(1) * (1 + next(scripted) / 100))
        return errors

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
