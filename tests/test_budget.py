"""``training.time_budget``: the schedule scaled to the steps a training time allows, the run ended when it is
spent, a restart that keeps the scaled schedule; on a fake clock, so the numbers are exact."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import tiny_input, train_killed_at_step

from deepcharge.cli import main
from deepcharge.train import budget, trainer
from deepcharge.train.checkpoint import load_checkpoint
from deepcharge.train.trainer import Trainer


@pytest.fixture
def fake_clock(monkeypatch):
    """The trainer's clock counts training steps: each takes ``seconds[0]`` up to the ``seconds[1]``-th step of
    the test, then ``seconds[2]``."""
    seconds = [0.5, 1000, 0.5]
    steps = {"n": 0}
    train_step = Trainer._train_step

    def counted(self, step):
        steps["n"] += 1
        return train_step(self, step)

    def now():
        fast = min(steps["n"], seconds[1])
        return fast * seconds[0] + (steps["n"] - fast) * seconds[2]

    monkeypatch.setattr(Trainer, "_train_step", counted)
    monkeypatch.setattr(trainer, "time", SimpleNamespace(perf_counter=now))
    monkeypatch.setattr(budget, "CALIBRATION_STEPS", 4)
    return seconds


def scaled_input(workdir, seconds):
    # the input's shape: 10 steps, a line every 5, a checkpoint every 5, a decay every 5
    return tiny_input(workdir, numb_steps=10, disp_freq=5, save_freq=5, time_budget=seconds)


def test_budget_scales_the_schedule(workdir, fake_clock):
    assert main(["train", str(scaled_input(workdir, 10.0))]) == 0
    # 4 steps in 2 s: 20 steps fit 10 s, twice the input's 10, so every frequency doubles
    out = json.loads((workdir / "out.json").read_text())
    assert out["training"]["numb_steps"] == 20 and out["training"]["time_budget"] == 10.0
    assert (out["training"]["disp_freq"], out["training"]["save_freq"], out["learning_rate"]["decay_steps"]) == (
        10, 10, 10)
    curve = np.genfromtxt(workdir / "lcurve.out", names=True)
    assert curve["step"].tolist() == [0, 10, 20]
    assert curve["lr"][0] == pytest.approx(3e-3)  # start_lr until the rate is known
    assert curve["lr"][-1] == pytest.approx(3e-3 * (1e-4 / 3e-3) ** (10 / 20))  # one decay of two, at step 10
    assert load_checkpoint(str(workdir / "model.ckpt.pt"))["budget_steps"] == 20


def test_budget_ends_the_run_when_spent(workdir, fake_clock):
    seconds = fake_clock
    seconds[1:] = [4, 2.0]  # after the 4 measured steps every step takes 2 s: 2 + 4 × 2 = 10 s at step 8
    assert main(["train", str(scaled_input(workdir, 10.0))]) == 0
    assert json.loads((workdir / "out.json").read_text())["training"]["numb_steps"] == 8
    assert np.genfromtxt(workdir / "lcurve.out", names=True)["step"].tolist() == [0, 8]
    assert load_checkpoint(str(workdir / "model.ckpt.pt"))["step"] == 8


def test_budget_spent_while_measuring(workdir, fake_clock):
    seconds = fake_clock
    seconds[0] = 4.0  # 3 steps spend 12 s of 10 before the 4 steps the rate needs
    assert main(["train", str(scaled_input(workdir, 10.0))]) == 0
    assert load_checkpoint(str(workdir / "model.ckpt.pt"))["step"] == 3


def test_budget_restart_keeps_the_scaled_schedule(workdir, monkeypatch, fake_clock):
    input_file = scaled_input(workdir, 10.0)
    train_killed_at_step(monkeypatch, input_file, 13)  # after the scaled checkpoint at step 10
    assert load_checkpoint(str(workdir / "model.ckpt.pt"))["step"] == 10
    assert main(["train", str(input_file), "--restart", "model.ckpt.pt"]) == 0
    assert load_checkpoint(str(workdir / "model.ckpt.pt"))["step"] == 20
    assert np.genfromtxt(workdir / "lcurve.out", names=True)["step"].tolist() == [0, 10, 20]
    assert main(["train", str(input_file), "--restart", "model.ckpt.pt"]) == 0  # finished: nothing to train
    assert load_checkpoint(str(workdir / "model.ckpt.pt"))["step"] == 20


def test_budget_must_be_positive(workdir, capsys):
    assert main(["train", str(scaled_input(workdir, 0))]) != 0
    assert "time_budget" in capsys.readouterr().err
