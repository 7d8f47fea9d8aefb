"""Training end to end on a tiny model: out.json, lcurve.out, checkpoints, --restart, --init-model, freeze."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import si64_file, tiny_input, train_killed_at_step, without_baseline

from deepcharge.chunks import EVALUATION_CHUNK, STATISTICS_CHUNK
from deepcharge.cli import main
from deepcharge.data.probe_set import ProbeSet
from deepcharge.entrypoints.test import run_test
from deepcharge.infer.predictor import Predictor
from deepcharge.io import read_density
from deepcharge.models import build_model
from deepcharge.train.checkpoint import load_checkpoint
from deepcharge.train.fixed_features import FixedFeatures

LCURVE_NAMES = ("step", "rmse_val", "rmse_trn", "eps_mae_val", "eps_mae_trn", "lr", "wall_s")


def read_lcurve(path):
    return np.genfromtxt(path, names=True)


@pytest.mark.parametrize("cache", [True, False])
def test_train_writes_outputs(workdir, monkeypatch, cache):
    chunk_sizes = set()
    evaluated = FixedFeatures if cache else ProbeSet  # what evaluations take their chunks from
    chunks = evaluated.chunks
    monkeypatch.setattr(evaluated, "chunks", lambda self, size: chunk_sizes.add(size) or chunks(self, size))
    validation = {"systems": [str(si64_file(1))], "probes_per_system": 500, "batch_size": 128}
    data = {"systems": [str(si64_file(0))], "probes_per_system": 2000, "batch_size": 64, "cache_features": cache}
    assert main(["train", str(without_baseline(tiny_input(workdir, validation_data=validation,
                                                          training_data=data)))]) == 0
    # validation in its batch_size, the monitor probes in the default (and the statistics' pass over every
    # training probe in its own)
    assert chunk_sizes == {128, EVALUATION_CHUNK} | (set() if cache else {STATISTICS_CHUNK})
    normalised = json.loads((workdir / "out.json").read_text())
    assert normalised["model"]["descriptor"]["rcut_smth"] == 0.5
    assert normalised["model"]["fitting_net"]["resnet_dt"] is True  # a default filled in
    assert normalised["model"]["descriptor"]["seed"] is not None
    curve = read_lcurve(workdir / "lcurve.out")
    assert curve.dtype.names == LCURVE_NAMES
    assert curve["step"].tolist() == [0, 5, 10, 15, 20]
    assert curve["eps_mae_trn"][-1] < curve["eps_mae_trn"][0]  # it learns
    assert (workdir / "model.ckpt-10.pt").is_file() and (workdir / "model.ckpt-20.pt").is_file()
    assert load_checkpoint(str(workdir / "model.ckpt-0.pt"))["step"] == 0  # the model before training
    assert (workdir / "model.ckpt.pt").resolve().name == "model.ckpt-20.pt"
    assert (workdir / "checkpoint").read_text().strip() == "model.ckpt-20.pt"


RESTART_CASES = {
    "pseudo_atom": {},
    "atom_centred": {},
    "painn": {"training_data": {"systems": [str(si64_file(0)), str(si64_file(4))], "probes_per_system": 1000,
                                "batch_size": 32, "structures_per_step": 1}},
}


@pytest.mark.parametrize("backend", sorted(RESTART_CASES))
def test_restart_continues_bit_for_bit(workdir, monkeypatch, backend):
    input_file = tiny_input(workdir, backend, **RESTART_CASES[backend])
    assert main(["train", str(input_file)]) == 0
    full_curve = read_lcurve(workdir / "lcurve.out")
    full_state = load_checkpoint("model.ckpt-20.pt")["model_state"]

    killed = workdir / "killed"
    killed.mkdir()
    monkeypatch.chdir(killed)
    train_killed_at_step(monkeypatch, input_file, 13)  # after the checkpoint at step 10, before the one at 20
    assert (killed / "checkpoint").read_text().strip() == "model.ckpt-10.pt"
    assert main(["train", str(input_file), "--restart", "model.ckpt.pt"]) == 0

    resumed_curve = read_lcurve(killed / "lcurve.out")
    assert resumed_curve["step"].tolist() == full_curve["step"].tolist()
    for name in LCURVE_NAMES[:-1]:  # every column but the wall clock
        np.testing.assert_array_equal(resumed_curve[name], full_curve[name])
    resumed_state = load_checkpoint("model.ckpt-20.pt")["model_state"]
    for key, value in full_state.items():
        assert torch.equal(resumed_state[key], value), key


def test_init_model_starts_from_weights(workdir):
    input_file = tiny_input(workdir)
    assert main(["train", str(input_file)]) == 0
    first = read_lcurve(workdir / "lcurve.out")
    shutil.move(workdir / "model.ckpt-20.pt", workdir / "previous.pt")
    assert main(["train", str(input_file), "--init-model", "previous.pt"]) == 0
    second = read_lcurve(workdir / "lcurve.out")
    assert second["step"][0] == 0
    np.testing.assert_allclose(second["eps_mae_val"][0], first["eps_mae_val"][-1], rtol=1e-6)


@pytest.mark.parametrize("backend", ["pseudo_atom", "atom_centred", "schnet", "painn"])
def test_freeze_then_test_matches_checkpoint(workdir, backend):
    assert main(["train", str(tiny_input(workdir, backend))]) == 0
    assert main(["freeze", "-c", ".", "-o", "model.pth"]) == 0
    state = load_checkpoint(".")
    model = build_model(state["config"]["model"])
    model.load_state_dict(state["model_state"])
    live = Predictor(model.eval())
    frozen = Predictor.from_file("model.pth", "cpu")
    snapshot = read_density(si64_file(2))
    points = snapshot.grid_points(np.arange(0, snapshot.density.size, 97))
    np.testing.assert_allclose(frozen.predict_points(snapshot, points), live.predict_points(snapshot, points),
                               rtol=1e-6, atol=1e-7)
    assert frozen.metadata["backend"] == backend
    assert frozen.metadata["training"]["steps"] == 20

    result = run_test("model.pth", [str(si64_file(2))], numb_points=3000, json_out="result.json", device="cpu")
    saved = json.loads((workdir / "result.json").read_text())
    assert saved["overall"]["eps_mae_percent"] == pytest.approx(result["overall"]["eps_mae_percent"])
    for key in ("eps_mae_percent", "mae", "rmse"):
        assert key in saved["overall"] and key in saved["files"][0]
    assert "electrons_ref" in saved["files"][0] and "electrons_ref" not in saved["overall"]
    # the same numbers straight from the checkpoint's model
    order = torch.randperm(snapshot.density.size, generator=torch.Generator().manual_seed(0))
    index = np.sort(np.asarray(order[:3000]))
    reference = snapshot.density.reshape(-1)[index]
    prediction = live.predict_points(snapshot, snapshot.grid_points(index))
    eps = 100 * np.abs(prediction - reference).sum() / np.abs(reference).sum()
    assert saved["files"][0]["eps_mae_percent"] == pytest.approx(eps, rel=1e-5)


def test_test_detail_and_all_points(workdir):
    assert main(["train", str(tiny_input(workdir, numb_steps=5))]) == 0
    assert main(["freeze", "-o", "model.pth"]) == 0
    assert main(["test", "-m", "model.pth", "-s", str(si64_file(3)), "-d", "detail", "--json", "all.json"]) == 0
    result = json.loads((workdir / "all.json").read_text())
    assert result["files"][0]["points"] == 64**3
    assert result["files"][0]["electrons_ref"] == pytest.approx(read_density(si64_file(3)).electrons())
    detail = np.genfromtxt(workdir / "detail.si64_3.out")
    assert detail.shape == (64**3, 5)


def test_load_weights_accepts_states_without_switched_off_parts_and_names_the_file_otherwise():
    """A checkpoint written before an optional part existed loads (the part's buffers are empty there); weights
    of another model are a one-line error naming the file."""
    from deepcharge.errors import DeepChargeError
    from deepcharge.models.base import load_weights

    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.ones(3))
    model.register_buffer("switched_off", torch.zeros(0))
    load_weights(model, {"weight": torch.full((3,), 2.0)}, "old.pt")
    assert float(model.weight.sum()) == 6.0
    model.register_buffer("needed", torch.zeros(2))
    with pytest.raises(DeepChargeError, match="old.pt: its weights do not fit"):
        load_weights(model, {"weight": torch.ones(3)}, "old.pt")
    with pytest.raises(DeepChargeError, match="unexpected"):
        load_weights(model, {"weight": torch.ones(3), "needed": torch.ones(2), "other": torch.ones(1)}, "old.pt")
