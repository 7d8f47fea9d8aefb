"""Predictions do not change under rotation, translation, atom permutation or choice of periodic image."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from deepcharge.config import normalize
from deepcharge.data.inputs import InputSpec, Structure, probe_inputs, structure_inputs
from deepcharge.infer.predictor import Predictor
from deepcharge.models import build_model
from deepcharge.snapshot import Snapshot


def small_model(backend_section: dict):
    config = normalize({"model": {"type_map": ["Si", "O"], "precision": "float64", **backend_section},
                        "training": {"training_data": {"systems": ["unused"]}, "numb_steps": 1}})
    return build_model(config["model"])


MODELS = {
    "pseudo_atom": {"descriptor": {"sel": [24, 24], "rcut": 3.5, "rcut_smth": 0.5, "neuron": [4, 8, 16],
                                   "axis_neuron": 4, "seed": 1}, "fitting_net": {"neuron": [16, 16], "seed": 2}},
    "pseudo_atom_three_body": {"descriptor": {"sel": [24, 24], "rcut": 3.5, "rcut_smth": 0.5, "neuron": [4, 8],
                                              "axis_neuron": 4, "seed": 1, "env_protection": 0.3,
                                              "three_body": {"rcut": 3.0, "sel": [6, 5], "num_radial": 3, "lmax": 3}},
                               "fitting_net": {"neuron": [16, 16], "seed": 2, "baseline_three_body": True}},
    "pseudo_atom_lmax3": {"descriptor": {"sel": [24, 24], "rcut": 3.5, "rcut_smth": 0.5, "neuron": [4, 8],
                                         "axis_neuron": 4, "seed": 1, "env_protection": 0.3, "lmax": 3},
                          "fitting_net": {"neuron": [16, 16], "seed": 2}},
    "atom_centred": {"type": "atom_centred", "descriptor": {"rcut": 3.5, "rcut_smth": 2.0, "neuron": [4, 8],
                                                            "seed": 1}, "fitting_net": {"neuron": [16, 16], "seed": 2}},
    "schnet": {"type": "schnet", "cutoff": 3.5, "num_interactions": 2, "num_features": 8, "num_basis": 6, "seed": 3},
    "painn": {"type": "painn", "cutoff": 3.5, "num_interactions": 2, "num_features": 8, "num_basis": 6, "seed": 4},
}


@pytest.fixture(params=sorted(MODELS))
def predictor(request):
    model = small_model(MODELS[request.param])
    snapshot, probes = structure_and_probes()
    structure = Structure.from_snapshot(snapshot, model.type_map, "cpu", torch.float64)
    spec = InputSpec.of(model)
    inputs = {**structure_inputs(structure, spec), **probe_inputs(structure, torch.as_tensor(probes), spec)}
    density = torch.as_tensor(np.random.default_rng(0).uniform(0, 1, len(probes)))
    model.fit_statistics(inputs, density, torch.ones_like(density))
    return Predictor(model, chunk_size=7)


def structure_and_probes(seed: int = 0):
    rng = np.random.default_rng(seed)
    cell = np.array([[5.0, 0.0, 0.0], [1.2, 4.6, 0.0], [0.7, -0.9, 4.8]])
    frac = rng.uniform(size=(10, 3))
    symbols = ["Si"] * 6 + ["O"] * 4
    snapshot = Snapshot(symbols=symbols, positions=frac @ cell, cell=cell, pbc=(True, True, True))
    probes = rng.uniform(size=(25, 3)) @ cell
    return snapshot, probes


def predict(predictor, snapshot, probes):
    return predictor.predict_points(snapshot, probes)


def test_rotation_and_translation(predictor):
    snapshot, probes = structure_and_probes()
    reference = predict(predictor, snapshot, probes)
    rotation = Rotation.random(random_state=4).as_matrix()
    shift = np.array([0.3, -1.7, 2.2])
    moved = Snapshot(snapshot.symbols, snapshot.positions @ rotation.T + shift, snapshot.cell @ rotation.T)
    np.testing.assert_allclose(predict(predictor, moved, probes @ rotation.T + shift), reference, rtol=1e-9, atol=1e-10)


def test_atom_permutation(predictor):
    snapshot, probes = structure_and_probes()
    reference = predict(predictor, snapshot, probes)
    order = np.random.default_rng(5).permutation(snapshot.natoms)
    permuted = Snapshot([snapshot.symbols[i] for i in order], snapshot.positions[order], snapshot.cell)
    np.testing.assert_allclose(predict(predictor, permuted, probes), reference, rtol=1e-9, atol=1e-10)


def test_periodic_images(predictor):
    snapshot, probes = structure_and_probes()
    reference = predict(predictor, snapshot, probes)
    images = np.array([[1, 0, -2], [0, 3, 1], [-1, -1, 0]]) @ snapshot.cell
    shifted_atoms = snapshot.positions.copy()
    shifted_atoms[:3] += images
    atoms_moved = Snapshot(snapshot.symbols, shifted_atoms, snapshot.cell)
    np.testing.assert_allclose(predict(predictor, atoms_moved, probes), reference, rtol=1e-9, atol=1e-10)
    probes_moved = probes + np.array([2, -1, 1]) @ snapshot.cell
    np.testing.assert_allclose(predict(predictor, snapshot, probes_moved), reference, rtol=1e-9, atol=1e-10)


def test_supercell_gives_the_same_density(predictor):
    """A 2×1×1 supercell holds the same environments, so the same density at the same points."""
    snapshot, probes = structure_and_probes()
    reference = predict(predictor, snapshot, probes)
    double = Snapshot(snapshot.symbols * 2, np.vstack([snapshot.positions, snapshot.positions + snapshot.cell[0]]),
                      snapshot.cell * np.array([[2], [1], [1]]))
    np.testing.assert_allclose(predict(predictor, double, probes), reference, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("repeat", [(2, 1, 1), (2, 2, 2)])
def test_supercell_grid_is_the_tiled_cell_grid(predictor, repeat):
    """Cell-size independence on whole grids: a supercell's predicted grid (each axis's point count times the
    repeat) is the cell's predicted grid tiled, point for point."""
    snapshot, _ = structure_and_probes()
    shape = (6, 5, 4)
    reference = predictor.predict_grid(snapshot, shape)
    offsets = np.array([[i, j, k] for i in range(repeat[0]) for j in range(repeat[1]) for k in range(repeat[2])])
    supercell = Snapshot(snapshot.symbols * len(offsets),
                         np.vstack([snapshot.positions + offset @ snapshot.cell for offset in offsets]),
                         snapshot.cell * np.array(repeat)[:, None])
    tiled = predictor.predict_grid(supercell, tuple(n * r for n, r in zip(shape, repeat)))
    np.testing.assert_allclose(tiled, np.tile(reference, repeat), rtol=1e-9, atol=1e-10)
