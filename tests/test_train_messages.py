"""What train and freeze tell a user: a replaced decay_steps, a finished run, the best checkpoint, Ctrl-C."""

import logging

import numpy as np
import pytest
import torch
from conftest import scripted_validation, tiny_input

from deepcharge.cli import main
from deepcharge.train.checkpoint import load_checkpoint
from deepcharge.train.lr import effective_decay_steps, exp_decay


def test_decay_steps_beyond_numb_steps_is_replaced_as_deepmd_kit_does():
    assert effective_decay_steps(100, 2000) == 100
    assert effective_decay_steps(5000, 2000) == 100
    assert effective_decay_steps(5000, 300) == 4  # numb_steps // 100 + 1
    assert effective_decay_steps(20, 20) == 1
    # the rate now falls to stop_lr over the run instead of staying at start_lr
    assert exp_decay(299, 1e-3, 1e-5, 5000, 300) == pytest.approx(1e-5 * (1e-3 / 1e-5) ** (4 / 300), rel=1e-12)


def test_training_logs_the_replaced_decay_steps(workdir, caplog):
    caplog.set_level(logging.INFO)
    assert main(["train", str(tiny_input(workdir, numb_steps=5))]) == 0  # the tiny input's decay_steps is 5
    assert "decay_steps 5 ≥ training.numb_steps 5" in caplog.text and "DeePMD-kit" in caplog.text
    lr = np.genfromtxt(workdir / "lcurve.out", names=True)["lr"]
    assert lr[-1] < lr[0]


def test_restarting_a_finished_run_says_so_before_loading_data(workdir, monkeypatch, caplog):
    input_file = tiny_input(workdir, numb_steps=10)
    assert main(["train", str(input_file)]) == 0

    def no_trainer(*args, **kwargs):
        raise AssertionError("a finished run must not build a trainer")

    monkeypatch.setattr("deepcharge.train.run.Trainer", no_trainer)
    caplog.set_level(logging.INFO)
    assert main(["train", str(input_file), "--restart", "model.ckpt.pt"]) == 0
    assert "already finished (step 10, numb_steps 10)" in caplog.text


def test_the_end_of_training_and_freeze_name_the_best_checkpoint(workdir, monkeypatch, caplog):
    scripted_validation(monkeypatch, [30.0, 40.0, 35.0, 50.0, 45.0])  # steps 0, 5, 10, 15, 20: best before training
    caplog.set_level(logging.INFO)
    assert main(["train", str(tiny_input(workdir))]) == 0
    assert "lowest validation eps_mae 30.0000 % at step 0" in caplog.text
    assert "deepcharge freeze -c model.ckpt-best.pt" in caplog.text
    assert load_checkpoint("model.ckpt-best.pt")["step"] == 0
    caplog.clear()
    assert main(["freeze", "-o", "model.pth"]) == 0
    assert "model.ckpt-best.pt (step 0) has the run's lowest validation eps_mae" in caplog.text


def test_ctrl_c_names_the_last_checkpoint_and_the_restart_command(workdir, monkeypatch, caplog):
    input_file = tiny_input(workdir)
    calls = {"n": 0}
    original_step = torch.optim.Adam.step

    def step_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 13:  # after the checkpoint at step 10
            raise KeyboardInterrupt
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_interrupt)
    caplog.set_level(logging.INFO)
    assert main(["train", str(input_file)]) == 130
    assert "last checkpoint model.ckpt-10.pt" in caplog.text
    assert f"deepcharge train {input_file} --restart model.ckpt.pt" in caplog.text
