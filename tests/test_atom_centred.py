"""The atom-centred (Deep Density) backend: locality, gradients, independent probes, the ansatz fit."""

import numpy as np
import pytest
import torch

from deepcharge.config import normalize
from deepcharge.data.inputs import InputSpec, Structure, probe_inputs, structure_inputs
from deepcharge.models import build_model
from deepcharge.models.descriptor.env_mat import cosine_weight
from deepcharge.snapshot import Snapshot


def tiny(**descriptor):
    section = {"type": "atom_centred", "type_map": ["H", "O"], "precision": "float64",
               "descriptor": {"rcut": 3.0, "rcut_smth": 2.0, "neuron": [3, 6], "seed": 1, **descriptor},
               "fitting_net": {"neuron": [8, 8], "seed": 2}}
    config = normalize({"model": section, "training": {"training_data": {"systems": ["unused"]}, "numb_steps": 1}})
    return build_model(config["model"])


def molecule():
    """A water molecule in a box, non-periodic."""
    positions = np.array([[5.0, 5.0, 5.0], [5.76, 5.59, 5.0], [4.24, 5.59, 5.0]])
    return Snapshot(["O", "H", "H"], positions, np.diag([10.0, 10.0, 10.0]), pbc=(False, False, False))


def inputs_for(model, snapshot, probes):
    spec = InputSpec.of(model)
    atoms = Structure.from_snapshot(snapshot, model.type_map, "cpu", torch.float64)
    return {**structure_inputs(atoms, spec), **probe_inputs(atoms, torch.as_tensor(probes), spec)}


def trained_looking(model, snapshot):
    """Statistics from random probes and random output layers, so that every term is non-zero."""
    probes = np.random.default_rng(0).uniform(3.5, 6.5, size=(200, 3))
    inputs = inputs_for(model, snapshot, probes)
    distance = torch.cdist(torch.as_tensor(probes), torch.as_tensor(snapshot.positions)).min(dim=1).values
    model.fit_statistics(inputs, torch.exp(-2.0 * distance), torch.ones(len(probes), dtype=torch.float64))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for centre in model.centres:
            output = centre.fitting.net.output
            output.weight.copy_(0.1 * torch.randn(output.weight.shape, generator=generator, dtype=torch.float64))
            output.bias.copy_(0.1 * torch.randn(output.bias.shape, generator=generator, dtype=torch.float64))
    return model


def test_zero_beyond_every_cutoff():
    model = trained_looking(tiny(), molecule())
    far = np.array([[9.5, 9.5, 9.5], [0.5, 0.2, 9.0], [5.0, 9.0, 5.0]])  # > rcut from every atom
    near = np.array([[5.0, 5.5, 5.2]])
    density = model(inputs_for(model, molecule(), np.vstack([far, near])))
    assert torch.equal(density[:3], torch.zeros(3, dtype=torch.float64))
    assert float(density[3].detach().abs()) > 1e-3


def test_contributions_vanish_smoothly_at_the_cutoff():
    """Moving a probe across rcut of the last atom in reach: the density goes to zero continuously."""
    model = trained_looking(tiny(), molecule())
    oxygen = molecule().positions[0]
    direction = np.array([0.0, -1.0, 0.0])  # away from the hydrogens
    inside = model(inputs_for(model, molecule(), np.array([oxygen + (3.0 - 1e-4) * direction])))
    assert float(inside.abs()) < 1e-6


def test_gradcheck_through_atoms_and_probes():
    model = trained_looking(tiny(), molecule())
    probes = np.array([[5.3, 5.4, 5.1], [4.0, 5.2, 4.6], [6.4, 5.0, 5.5]])
    inputs = inputs_for(model, molecule(), probes)
    atom_vectors = inputs["atom_edge_vectors"].clone().requires_grad_()
    probe_vectors = inputs["probe_vectors"].clone().requires_grad_()

    def density(atom_edge_vectors, probe_vectors):
        return model({**inputs, "atom_edge_vectors": atom_edge_vectors, "probe_vectors": probe_vectors})

    assert torch.autograd.gradcheck(density, (atom_vectors, probe_vectors), eps=1e-6, atol=1e-6)


def test_probes_do_not_affect_each_other():
    model = trained_looking(tiny(), molecule())
    probes = np.random.default_rng(1).uniform(3.0, 7.0, size=(12, 3))
    together = model(inputs_for(model, molecule(), probes))
    alone = torch.cat([model(inputs_for(model, molecule(), probes[i:i + 1])) for i in range(len(probes))])
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=1e-12)


def test_ansatz_fit_reproduces_a_density_of_its_form():
    """A density that is exactly Σ_I w(R)(A R + B) exp(C R² + D R) is fitted to within 1e-3."""
    model = tiny()
    snapshot = molecule()
    probes = np.random.default_rng(2).uniform(3.0, 7.0, size=(3000, 3))
    inputs = inputs_for(model, snapshot, probes)
    truth = {"slope": [-0.2, 0.5], "offset": [0.9, 3.0], "curvature": [-1.5, -0.8], "decay": [0.6, -0.5]}
    pairs = model.pairs(inputs, inputs["atom_types"])
    types, distance = pairs["centre_type"], pairs["distance"]
    A, B, C, D = (torch.tensor(truth[key], dtype=torch.float64)[types] for key in truth)
    contributions = cosine_weight(distance, 2.0, 3.0) * (A * distance + B) * torch.exp(C * distance ** 2 + D * distance)
    density = torch.zeros(len(probes), dtype=torch.float64).index_add(0, pairs["probe"], contributions)
    model.fit_statistics(inputs, density, torch.ones_like(density))
    with torch.no_grad():
        fitted = model(inputs)
    assert float((fitted - density).norm() / density.norm()) < 1e-3
    # hydrogen (type 0) is the best determined: two centres, probes all around them
    for key, values in truth.items():
        assert getattr(model, key).detach()[0].item() == pytest.approx(values[0], abs=0.02)


def test_ansatz_fit_follows_the_loss_weights():
    """Probes with (near) zero weight do not pull the fit: it reproduces the weighted half exactly."""
    model = tiny()
    probes = np.random.default_rng(3).uniform(3.0, 7.0, size=(2000, 3))
    inputs = inputs_for(model, molecule(), probes)
    pairs = model.pairs(inputs, inputs["atom_types"])
    distance = pairs["distance"]
    contributions = cosine_weight(distance, 2.0, 3.0) * 0.8 * torch.exp(-1.2 * distance ** 2)
    density = torch.zeros(len(probes), dtype=torch.float64).index_add(0, pairs["probe"], contributions)
    weight = torch.ones_like(density)
    weight[1::2] = 1e-12
    corrupted = density.clone()
    corrupted[1::2] += 5.0
    model.fit_statistics(inputs, corrupted, weight)
    with torch.no_grad():
        fitted = model(inputs)
    assert float((fitted - density)[0::2].norm() / density[0::2].norm()) < 1e-3
