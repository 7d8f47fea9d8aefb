"""What training draws from: importance sampling, the rotating pool, early stopping with a kept best model."""

import numpy as np
import pytest
import torch
from conftest import scripted_validation, si64_file, tiny_input

from deepcharge.cli import main
from deepcharge.data.holdout import Holdout
from deepcharge.data.pool import TrainingPool
from deepcharge.data.sampler import draw_probes
from deepcharge.errors import DeepChargeError
from deepcharge.io import read_density
from deepcharge.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def si64():
    return read_density(si64_file(0))


def test_alpha_zero_is_uniform_sampling(si64):
    positions, density, weight = draw_probes(si64, 5000, torch.Generator().manual_seed(1), alpha=0.0)
    assert np.all(weight == 1.0)
    assert len(np.unique(positions, axis=0)) == 5000  # distinct points, as before importance sampling existed
    # a vanishing exponent gives the same estimator: weights → 1
    _, _, nearly = draw_probes(si64, 5000, torch.Generator().manual_seed(1), alpha=1e-9)
    np.testing.assert_allclose(nearly, 1.0, rtol=1e-6)


def test_importance_weights_give_an_unbiased_grid_mean(si64):
    """Σ w f / P estimates the grid mean of f whatever f is (here f = ρ² and f = 1)."""
    grid = si64.density.reshape(-1)
    _, density, weight = draw_probes(si64, 200000, torch.Generator().manual_seed(2), alpha=1.0, weighted=True)
    assert np.mean(weight) == pytest.approx(1.0, rel=0.02)
    assert np.mean(weight * density ** 2) == pytest.approx(np.mean(grid ** 2), rel=0.01)
    # and it does concentrate probes where the density is large
    assert np.mean(density) > 1.5 * np.mean(grid)


def test_rotating_pool_holds_pool_size_snapshots_and_visits_all():
    loads = []

    def load(path):
        loads.append(path)
        return read_density(path)

    files = [str(si64_file(i)) for i in range(3)]
    pool = TrainingPool(files, load, 100, 0.0, pool_size=2, pool_refresh=10, seed=3)
    members = [pool.members_at(step) for step in range(0, 60, 10)]
    assert all(len(m) == 2 and len({n for n, _ in m}) == 2 for m in members)
    assert {n for m in members for n, _ in m} == {0, 1, 2}
    assert pool.members_at(25) == pool.members_at(20) and pool.members_at(30) != pool.members_at(20)
    # the same visit draws the same probes; a later visit of the same snapshot draws new ones
    first, again = pool.draw((0, 0)), pool.draw((0, 0))
    np.testing.assert_array_equal(first[1][0], again[1][0])
    assert not np.array_equal(pool.draw((0, 1))[1][0], first[1][0])


def test_training_with_a_pool_and_importance_sampling_restarts_exactly(workdir):
    data = {"systems": [str(si64_file(0)), str(si64_file(4))], "probes_per_system": 500, "batch_size": 32,
            "pool_size": 1, "pool_refresh": 7, "importance_alpha": 0.5}
    input_file = tiny_input(workdir, training_data=data)
    assert main(["train", str(input_file)]) == 0
    full = np.genfromtxt(workdir / "lcurve.out", names=True)
    assert main(["train", str(input_file), "--restart", "model.ckpt-10.pt"]) == 0
    resumed = np.genfromtxt(workdir / "lcurve.out", names=True)
    for name in ("rmse_val", "eps_mae_val", "rmse_trn", "eps_mae_trn"):
        np.testing.assert_array_equal(resumed[name], full[name])


def test_early_stopping_keeps_the_best_checkpoint(workdir, monkeypatch):
    scripted_validation(monkeypatch, [50.0, 40.0, 30.0, 35.0, 36.0, 37.0, 38.0])  # step 0, then every 5 steps
    input_file = tiny_input(workdir, numb_steps=100, early_stopping_patience=3)
    assert main(["train", str(input_file)]) == 0
    curve = np.genfromtxt(workdir / "lcurve.out", names=True)
    assert curve["step"].tolist() == [0, 5, 10, 15, 20, 25]  # best at 10, three evaluations without progress
    assert load_checkpoint("model.ckpt-best.pt")["step"] == 10
    assert (workdir / "model.ckpt-25.pt").is_file()


def test_early_stopping_needs_validation_data(workdir, capsys):
    input_file = tiny_input(workdir, early_stopping_patience=2, validation_data=None)
    assert main(["train", str(input_file)]) == 1
    assert "early_stopping_patience needs training.validation_data" in capsys.readouterr().err


def test_holdout_slab_is_apart_from_training_points_by_its_margins(si64):
    holdout = Holdout(fraction=0.25, margin=1.0, probes_per_system=100)
    training, validation = holdout.training_points(si64), holdout.validation_points(si64)
    assert len(np.intersect1d(training, validation)) == 0
    assert len(validation) == si64.density.size // 4  # 16 of the 64 planes
    # Si64's cell is cubic: the slab is normal to its first axis (the first of the longest), and the training
    # points keep 1 Å from it along that axis, across the periodic boundary too
    length = si64.cell[0, 0]
    slab_x = np.unique(si64.grid_points(validation)[:, 0])
    train_x = np.unique(si64.grid_points(training)[:, 0])
    gap = np.abs((train_x[:, None] - slab_x[None, :] + length / 2) % length - length / 2)
    assert gap.min() >= 1.0
    assert gap.min() < 1.0 + 2 * length / 64  # and not much more: the slab and its margins end between planes
    positions, _, _ = draw_probes(si64, 500, torch.Generator().manual_seed(1), points=training)
    assert np.isin(np.round(positions[:, 0], 9), np.round(train_x, 9)).all()


def test_holdout_that_leaves_nothing_to_train_on_is_an_error(si64):
    with pytest.raises(DeepChargeError, match="holdout leaves no training points"):
        Holdout(fraction=0.6, margin=3.0, probes_per_system=100).training_points(si64)


def test_training_with_a_holdout_validates_on_the_training_file_alone(workdir, caplog):
    data = {"systems": [str(si64_file(0))], "probes_per_system": 1000, "batch_size": 64,
            "holdout": {"fraction": 0.3, "margin": 0.5, "probes_per_system": 300}}
    input_file = tiny_input(workdir, training_data=data, validation_data=None, early_stopping_patience=50)
    with caplog.at_level("INFO", logger="deepcharge"):
        assert main(["train", str(input_file)]) == 0
    assert "300 from the held-out slab of each training file" in caplog.text
    curve = np.genfromtxt(workdir / "lcurve.out", names=True)
    assert np.isfinite(curve["eps_mae_val"]).all()
    assert (workdir / "model.ckpt-best.pt").is_file()


def test_importance_sampling_without_weighting_counts_every_probe_once(si64):
    """Deep Density's default: probes drawn ∝ |ρ|^α, each with loss weight 1."""
    _, density, weight = draw_probes(si64, 20000, torch.Generator().manual_seed(3), alpha=1.0)
    assert np.all(weight == 1.0)
    assert np.mean(density) > 1.5 * np.mean(si64.density)
