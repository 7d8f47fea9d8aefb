"""The shipped examples: every training and loop input passes its checks, and their data are what they say."""

import pytest
from conftest import REPO

from deepcharge.config import load_input_file, normalize
from deepcharge.io import read_density
from deepcharge.loop.config import load_loop_input

EXAMPLES = REPO / "input_examples"
TRAINING_INPUTS = sorted(p for p in EXAMPLES.glob("*/input*") if p.suffix in (".json", ".yaml"))
LOOP_INPUTS = sorted(EXAMPLES.glob("*/loop*.json"))


@pytest.mark.parametrize("path", TRAINING_INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_training_inputs_are_valid(path):
    assert normalize(load_input_file(path), str(path))["model"]["type_map"]


@pytest.mark.parametrize("path", LOOP_INPUTS, ids=lambda p: p.name)
def test_loop_inputs_are_valid(path, python):  # python: GPAW labels them
    loop = load_loop_input(path)
    assert loop.structures and loop.test_data


@pytest.mark.parametrize("name", ["loop", "loop_si64"])
def test_the_loop_baseline_differs_from_the_loop_only_in_its_pick(name, python):
    sigma, random = (load_loop_input(EXAMPLES / "si64_one_shot" / file).params
                     for file in (f"{name}.json", f"{name}_random.json"))
    assert (sigma["select"].pop("pick"), random["select"].pop("pick")) == ("largest", "random")
    sigma.pop("_comment", None), random.pop("_comment", None)
    assert sigma == random


@pytest.mark.parametrize("name", ["si64_0", "si64_1", "si64_5"])
def test_quantum_espresso_example_data(name):
    snapshot = read_density(EXAMPLES / "qe_si64" / "data" / f"{name}.save" / "charge-density.dat.gz")
    assert snapshot.natoms == 64 and snapshot.grid_shape == (60, 60, 60)
    assert snapshot.electrons() == pytest.approx(256.0, abs=1e-6)  # NC Si.pbe-rrkj: 4 valence electrons per atom
