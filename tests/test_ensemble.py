"""training.ensemble: members with their own seeds in member_<i>/, --restart per member, freeze of them all."""

import json

import numpy as np
import torch
from conftest import tiny_input, train_killed_at_step
from test_cli_errors import run_failing
from test_train import LCURVE_NAMES, read_lcurve

from deepcharge.cli import main
from deepcharge.infer.predictor import load_frozen
from deepcharge.train.checkpoint import load_checkpoint


def member_out(folder, number):
    return json.loads((folder / f"member_{number}" / "out.json").read_text())


def test_members_get_their_seeds_and_freeze_makes_one_file_each(workdir):
    input_file = tiny_input(workdir, numb_steps=2, ensemble={"members": 3, "seeds": [11, 5, 2024]})
    assert main(["train", str(input_file)]) == 0
    for number, seed in enumerate([11, 5, 2024]):
        config = member_out(workdir, number)
        assert config["training"]["seed"] == seed
        assert config["training"]["ensemble"] is None
        assert config["model"]["descriptor"]["seed"] == seed + 17  # derived from the member's seed
        assert config["model"]["fitting_net"]["seed"] == seed + 34
        assert (workdir / f"member_{number}" / "lcurve.out").is_file()
    assert main(["freeze", "-o", "frozen_model.pth"]) == 0
    assert not (workdir / "frozen_model.pth").exists()
    states = [load_frozen(workdir / f"frozen_model_{number}.pth", "cpu")[0].state_dict() for number in range(3)]
    for first, second in [(0, 1), (1, 2), (0, 2)]:
        assert any(not torch.equal(states[first][key], states[second][key]) for key in states[first])


def test_restart_skips_finished_members_and_continues_the_interrupted_one(workdir, monkeypatch):
    input_file = tiny_input(workdir, numb_steps=10, save_freq=5, ensemble={"members": 2})
    full = workdir / "full"
    full.mkdir()
    monkeypatch.chdir(full)
    assert main(["train", str(input_file)]) == 0
    assert [member_out(full, number)["training"]["seed"] for number in range(2)] == [7, 1007]

    killed = workdir / "killed"
    killed.mkdir()
    monkeypatch.chdir(killed)
    train_killed_at_step(monkeypatch, input_file, 18)  # member 1's 8th step: after its checkpoint at step 5
    assert (killed / "member_1" / "checkpoint").read_text().strip() == "model.ckpt-5.pt"
    finished = (killed / "member_0" / "model.ckpt-10.pt").stat().st_mtime_ns
    assert main(["train", str(input_file), "--restart", "model.ckpt.pt"]) == 0

    assert (killed / "member_0" / "model.ckpt-10.pt").stat().st_mtime_ns == finished  # skipped
    for number in range(2):
        resumed, whole = read_lcurve(killed / f"member_{number}" / "lcurve.out"), read_lcurve(
            full / f"member_{number}" / "lcurve.out")
        for name in LCURVE_NAMES[:-1]:  # every column but the wall clock
            np.testing.assert_array_equal(resumed[name], whole[name])
        resumed_state = load_checkpoint(str(killed / f"member_{number}" / "model.ckpt-10.pt"))["model_state"]
        whole_state = load_checkpoint(str(full / f"member_{number}" / "model.ckpt-10.pt"))["model_state"]
        for key, value in whole_state.items():
            assert torch.equal(resumed_state[key], value), key


def test_seeds_must_match_members(workdir, capsys):
    tiny_input(workdir, ensemble={"members": 3, "seeds": [1, 2]})
    run_failing(capsys, ["train", "input.json"], "training.ensemble.seeds", "members")
    assert not (workdir / "member_0").exists()


def test_restart_names_a_checkpoint_inside_the_members(workdir, capsys):
    tiny_input(workdir, ensemble={"members": 2})
    run_failing(capsys, ["train", "input.json", "--restart", "model.ckpt.pt"], "--restart model.ckpt.pt", "member_0")
