"""The loss's Hartree term: its gradient is that of E_H on its sub-grid, training with it resumes exactly, and
inputs it cannot serve are refused."""

import json

import numpy as np
import pytest
import torch
from conftest import si64_file, tiny_input, train_killed_at_step

from deepcharge.analysis.hartree import COULOMB_EV_ANGSTROM, wave_vectors
from deepcharge.cli import main
from deepcharge.config import normalize
from deepcharge.errors import DeepChargeError
from deepcharge.train.checkpoint import load_checkpoint
from deepcharge.train.hartree_term import sub_grid_strides
from deepcharge.train.trainer import Trainer

HARTREE = {"type": "mse", "hartree_pref": 0.5, "hartree_every": 2, "hartree_stride": 4}


def hartree_input(workdir, **training):
    path = tiny_input(workdir, **training)
    config = json.loads(path.read_text())
    config["loss"] = dict(HARTREE)
    config["training"]["training_data"]["holdout"] = {"fraction": 0.25, "margin": 0.5, "probes_per_system": 300}
    path.write_text(json.dumps(config))
    return path


def torch_hartree_energy(error: torch.Tensor, cell: np.ndarray) -> torch.Tensor:
    """E_H (eV) by autograd-able FFT: 2π k_e Ω Σ_{G≠0} |δρ(G)|²/G², δρ(G) = FFT/M."""
    g_squared = torch.as_tensor((wave_vectors(error.shape, cell) ** 2).sum(-1))
    g_squared[0, 0, 0] = torch.inf
    coefficients = torch.fft.fftn(error) / error.numel()
    volume = abs(np.linalg.det(cell))
    return 2 * np.pi * COULOMB_EV_ANGSTROM * volume * (coefficients.abs() ** 2 / g_squared).sum()


def test_sub_grid_strides_divide_the_grid():
    assert sub_grid_strides((64, 60, 45), 2) == (2, 2, 1)
    assert sub_grid_strides((64, 60, 45), 4) == (4, 4, 3)


@pytest.mark.parametrize("cache", [True, False])
def test_the_term_adds_the_gradient_of_the_sub_grid_s_hartree_energy(workdir, cache):
    config = normalize(json.loads(hartree_input(workdir).read_text()))
    config["training"]["training_data"]["cache_features"] = cache
    trainer = Trainer(config, workdir)
    term = trainer.hartree
    assert (term.use_fixed is cache) and term.scale is None
    model = trainer.model
    with torch.no_grad():  # a net away from its zero start, so that every layer has a gradient
        for parameter in model.parameters():
            parameter.add_(1e-3 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(2)))
    model.zero_grad()
    step = 4
    energy = term.backward(step)
    by_term = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    snapshot, (probes, _, held_out, shape) = term.at_step(step)
    assert shape == (16, 16, 16) and 0 < held_out.mean() < 0.5
    model.zero_grad()
    _, inputs, density = next(probes.chunks(len(probes)))
    error = (model(inputs) - density).double() * torch.as_tensor(~held_out)
    reference = torch_hartree_energy(error.reshape(shape), snapshot.cell)
    (HARTREE["hartree_pref"] / term.scale * reference).backward()
    assert energy == pytest.approx(reference.item(), rel=1e-5) and term.scale == energy
    assert by_term and set(by_term) == {name for name, p in model.named_parameters() if p.grad is not None}
    for name, grad in by_term.items():
        torch.testing.assert_close(grad, model.get_parameter(name).grad, rtol=1e-4, atol=1e-7 * grad.abs().max())


def test_training_with_the_term_resumes_exactly(workdir, monkeypatch):
    input_file = hartree_input(workdir)
    assert main(["train", str(input_file)]) == 0
    full = np.genfromtxt(workdir / "lcurve.out", names=True)
    assert np.isnan(full["hartree_trn"][0]) and (full["hartree_trn"][1:] > 0).all()  # measured from step 0 on
    full_state = load_checkpoint("model.ckpt-20.pt")
    assert full_state["hartree"]["scale"] > 0

    killed = workdir / "killed"
    killed.mkdir()
    monkeypatch.chdir(killed)
    train_killed_at_step(monkeypatch, input_file, 13)
    assert main(["train", str(input_file), "--restart", "model.ckpt.pt"]) == 0
    resumed = np.genfromtxt(killed / "lcurve.out", names=True)
    for name in ("eps_mae_val", "eps_mae_trn", "hartree_trn"):
        np.testing.assert_array_equal(resumed[name], full[name])
    state = load_checkpoint("model.ckpt-20.pt")
    assert state["hartree"] == full_state["hartree"]
    for key, value in full_state["model_state"].items():
        assert torch.equal(state["model_state"][key], value), key


def test_the_term_needs_every_snapshot_in_memory(workdir):
    config = normalize(json.loads(hartree_input(workdir).read_text()))
    config["training"]["training_data"].update(systems=[str(si64_file(0)), str(si64_file(2))], pool_size=1)
    with pytest.raises(DeepChargeError, match="pool_size to 0"):
        Trainer(config, workdir)
