"""The message-passing backends: equivariant vector states, gradients, atom states shared by all probes."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from deepcharge.data.inputs import InputSpec, Structure, probe_inputs, structure_inputs
from deepcharge.models.message_passing.layers import SincBasis
from deepcharge.models.message_passing.painn import PaiNNDensityModel
from deepcharge.models.message_passing.schnet import SchNetDensityModel
from deepcharge.snapshot import Snapshot

BACKENDS = {"schnet": SchNetDensityModel, "painn": PaiNNDensityModel}


def tiny(backend: str, **kwargs):
    options = dict(cutoff=3.0, num_interactions=2, num_features=6, num_basis=5, precision="float64", seed=11)
    options.update(kwargs)
    return BACKENDS[backend](["Si", "O"], **options)


def structure(seed=0, cell=None):
    rng = np.random.default_rng(seed)
    cell = np.diag([5.0, 5.5, 6.0]) if cell is None else cell
    frac = rng.uniform(size=(7, 3))
    return Snapshot(["Si"] * 4 + ["O"] * 3, frac @ cell, cell), rng.uniform(size=(9, 3)) @ cell


def inputs_for(model, snapshot, probes):
    spec = InputSpec.of(model)
    atoms = Structure.from_snapshot(snapshot, model.type_map, "cpu", torch.float64)
    return {**structure_inputs(atoms, spec), **probe_inputs(atoms, torch.as_tensor(probes), spec)}


def test_painn_vector_states_rotate_with_the_structure():
    model = tiny("painn")
    snapshot, probes = structure()
    states = model.atom_states(inputs_for(model, snapshot, probes))
    rotation = Rotation.random(random_state=2).as_matrix()
    rotated = Snapshot(snapshot.symbols, snapshot.positions @ rotation.T, snapshot.cell @ rotation.T)
    turned = model.atom_states(inputs_for(model, rotated, probes @ rotation.T))
    for t in range(2):
        expected = torch.einsum("ij,njf->nif", torch.as_tensor(rotation), states[f"v{t}"])
        assert float(states[f"v{t}"].detach().abs().max()) > 1e-3  # the check is not vacuous
        torch.testing.assert_close(turned[f"v{t}"], expected, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(turned[f"s{t}"], states[f"s{t}"], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_gradcheck(backend):
    """Analytic gradients with respect to every edge vector match finite differences (float64)."""
    model = tiny(backend, num_features=4, num_basis=3)
    snapshot, probes = structure(cell=np.diag([4.0, 4.2, 4.4]))
    inputs = inputs_for(model, snapshot, probes[:4])
    atom_vectors = inputs["atom_edge_vectors"].clone().requires_grad_()
    probe_vectors = inputs["probe_vectors"].clone().requires_grad_()

    def density(atom_edge_vectors, probe_vectors):
        return model({**inputs, "atom_edge_vectors": atom_edge_vectors, "probe_vectors": probe_vectors})

    assert torch.autograd.gradcheck(density, (atom_vectors, probe_vectors), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_probes_do_not_affect_each_other_or_the_atoms(backend):
    """A probe's density does not depend on which other probes are evaluated with it."""
    model = tiny(backend)
    snapshot, probes = structure()
    together = model(inputs_for(model, snapshot, probes))
    alone = torch.cat([model(inputs_for(model, snapshot, probes[i:i + 1])) for i in range(len(probes))])
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=1e-12)


def test_sinc_basis_is_finite_on_an_atom():
    basis = SincBasis(4.0, 5, torch.float64)
    at_zero = basis(torch.zeros(1, dtype=torch.float64))
    near_zero = basis(torch.full((1,), 1e-7, dtype=torch.float64))
    torch.testing.assert_close(at_zero, near_zero, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(at_zero[0], torch.arange(1, 6, dtype=torch.float64) * np.pi / 4.0)
