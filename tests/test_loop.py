"""``deepcharge loop``: two iterations labelled by a real GPAW (Si2, seconds a label) and by a command, resumed
after kills without labelling anything twice; inputs and labellers that fail, with one message and nothing lost."""

import json
import subprocess
import sys

import ase.build
import ase.io
import numpy as np
import pytest
import torch
from ase.units import Bohr
from conftest import REPO, Killed, si64_file, tiny_input
from test_cli_errors import run_failing

import deepcharge.loop.label as label_module
from deepcharge.cli import main
from deepcharge.errors import DeepChargeError
from deepcharge.io import read_density
from deepcharge.loop.config import LoopInput, load_loop_input
from deepcharge.loop.explore import explore_candidates, perturbed
from deepcharge.loop.select import select_candidates, selection_summary
from deepcharge.snapshot import Snapshot
from deepcharge.train.ensemble import member_init_models

# two Si atoms at a low cut-off on a 12³ grid: about 2 s a label
GPAW_PARAMETERS = {"mode": {"name": "pw", "ecut": 150}, "xc": "PBE", "kpts": {"size": [2, 2, 2]},
                   "gpts": [12, 12, 12]}
# writes a smooth density (0.2 e/Bohr³ on average, cube's unit) on a 10³ grid for the POSCAR it is given, as a
# DFT code would leave one
LABEL_SCRIPT = """import sys
import ase.io
import numpy as np
atoms = ase.io.read(sys.argv[1], format="vasp")
x = np.arange(10) / 10
rho = 0.2 + 0.02 * np.cos(2 * np.pi * x)[:, None, None] * np.ones((10, 10, 10))
ase.io.write("density.cube", atoms, data=rho)
"""


def loop_input(folder, label, **changes):
    """A loop on Si2: a tiny ensemble of two trained 4 steps on si64_0, four candidates an iteration (two rattle
    and two strain amplitudes), all eligible, two labelled, two iterations; the loop input is param.json."""
    template = tiny_input(folder, numb_steps=4, disp_freq=2, save_freq=2)
    config = json.loads(template.read_text())
    del config["training"]["validation_data"]
    config["training"]["training_data"]["probes_per_system"] = 500
    template.write_text(json.dumps(config))
    ase.io.write(folder / "si2.vasp", ase.build.bulk("Si", "diamond", a=5.431), format="vasp")
    params = {"train": "input.json", "numb_models": 2, "init_data": [str(si64_file(0))],
              "explore": {"structures": {"files": ["si2.vasp"], "rattle": [0.03, 0.08], "strain": [0.0, 0.02],
                                         "count": 1}, "seed": 3},
              "select": {"measure": "quantile", "quantile": 0.9, "spacing": 0.5, "trust_lo": 0.0, "trust_hi": 1e3,
                         "max_per_iter": 2},
              "label": label, "iterations": 2, **changes}
    (folder / "param.json").write_text(json.dumps(params, indent=1))
    return folder / "param.json"


def read_record(folder, iteration):
    return json.loads((folder / f"iter.{iteration:06d}" / "record.json").read_text())


def counting(monkeypatch, kill_at=None):
    """Count run_scf's calls (their folders); with ``kill_at``, that call is killed."""
    calls = []
    original = label_module.run_scf

    def run_scf(*args, **kwargs):
        calls.append(kwargs["workdir"])
        if len(calls) == kill_at:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(label_module, "run_scf", run_scf)
    return calls


def kill_optimizer_step(monkeypatch, step):
    """Kill the ``step``-th optimizer step of the run that follows."""
    calls = {"n": 0}
    original = torch.optim.Adam.step

    def step_then_die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise Killed
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_die)


def test_two_iterations_labelled_by_gpaw_resume_after_kills_without_labelling_twice(workdir, monkeypatch, python):
    param = loop_input(workdir, {"type": "gpaw", "parameters": GPAW_PARAMETERS},
                       test_data=[str(si64_file(1))], test_numb_points=2000)
    first = counting(monkeypatch, kill_at=2)  # killed during the second label
    with pytest.raises(Killed):
        main(["loop", str(param), "--device", "cpu"])
    iteration0 = workdir / "iter.000000"
    labelled = sorted((iteration0 / "02.label").glob("task.*/density.CHGCAR"))
    assert len(labelled) == 1 and not (iteration0 / "02.label" / "done.json").exists()
    kept = {path: path.stat().st_mtime_ns for path in [*labelled, iteration0 / "00.train" / "frozen_model_0.pth"]}

    second = counting(monkeypatch)
    step = torch.optim.Adam.step
    kill_optimizer_step(monkeypatch, 4)  # iteration 1, member 0's 4th step: after its checkpoint at step 2
    with pytest.raises(Killed):
        main(["loop", str(param), "--device", "cpu"])
    assert len(second) == 1 and second[0] != first[0]  # only the missing label
    iteration1 = workdir / "iter.000001" / "00.train"
    assert (iteration1 / "member_0" / "checkpoint").read_text().strip() == "model.ckpt-2.pt"
    checkpoint = (iteration1 / "member_0" / "model.ckpt-2.pt").stat().st_mtime_ns
    monkeypatch.setattr(torch.optim.Adam, "step", step)

    third = counting(monkeypatch)
    assert main(["loop", str(param), "--device", "cpu"]) == 0
    assert third == []
    assert {path: path.stat().st_mtime_ns for path in kept} == kept
    assert (iteration1 / "member_0" / "model.ckpt-2.pt").stat().st_mtime_ns == checkpoint  # continued, not redone

    record = read_record(workdir, 0)
    assert [c["recipe"] for c in record["explore"]["candidates"]] == [
        {"rattle": r, "strain": s} for r in (0.03, 0.08) for s in (0.0, 0.02)]
    assert all(set(c["extrapolation"]) >= {"atoms_outside", "share_outside"} for c in record["explore"]["candidates"])
    measures = [c["measure"] for c in record["explore"]["candidates"]]
    chosen = [c["name"] for c in record["explore"]["candidates"] if c["chosen"]]
    assert chosen == [c["name"] for c in record["explore"]["candidates"] if c["measure"] >= sorted(measures)[-2]]
    assert [label["name"] for label in record["label"]["labels"]] == chosen
    for label in record["label"]["labels"]:
        density = read_density(workdir / label["file"])
        assert density.grid_shape == (12, 12, 12)
        assert abs(density.electrons() - 8.69) < 0.1  # GPAW's smooth pseudo density of Si2 (4.35 e per atom)
    assert record["train"]["test"][0]["file"] == str(si64_file(1))
    assert {"seconds", "train_seconds"} <= set(record["train"]) and "seconds" in record["label"]

    last = read_record(workdir, 1)
    assert last["stop"] == "iterations (2) reached" and "label" not in last
    assert last["train"]["init_model"] == str((iteration0 / "00.train").resolve())
    trained_on = json.loads((iteration1 / "input.json").read_text())["training"]["training_data"]["systems"]
    assert trained_on == [str(si64_file(0))] + [str((workdir / label["file"]).resolve())
                                                for label in record["label"]["labels"]]
    assert not (workdir / "iter.000001" / "02.label").exists()
    table = np.genfromtxt(workdir / "loop.out", names=True)
    assert table["iter"].tolist() == [0, 1] and table["train_files"].tolist() == [1, 3]
    assert table["chosen"].tolist() == [2, 2] and np.isfinite(table["eps_si64_1"]).all()
    assert (workdir / "loop.png").stat().st_size > 0


def test_command_labeller_failures_are_one_message_and_a_rerun_labels(workdir, capsys):
    (workdir / "label.py").write_text(LABEL_SCRIPT)
    param = loop_input(workdir, {"type": "command", "command": "echo no DFT here; exit 3", "output": "density.cube",
                                 "parallel": 2})
    message = run_failing(capsys, ["loop", str(param), "--device", "cpu"], "could not be labelled in",
                          "iter.000000/02.label/task.", "exited with status 3", "no DFT here", "rerun")
    assert message.count("\n") == 0 and "(1 more failed)" in message
    iteration0 = workdir / "iter.000000"
    assert (iteration0 / "00.train" / "done.json").is_file() and (iteration0 / "01.explore" / "done.json").is_file()
    assert "label" not in read_record(workdir, 0)
    frozen = (iteration0 / "00.train" / "frozen_model_0.pth").stat().st_mtime_ns

    params = json.loads(param.read_text())
    params["label"]["command"] = "true"
    param.write_text(json.dumps(params))
    run_failing(capsys, ["loop", str(param), "--device", "cpu"], "`true` left no density.cube")

    params["label"]["command"] = f"{sys.executable} ../../../label.py {{structure}}"
    param.write_text(json.dumps(params))
    assert main(["loop", str(param), "--device", "cpu"]) == 0
    assert (iteration0 / "00.train" / "frozen_model_0.pth").stat().st_mtime_ns == frozen  # training kept
    labels = read_record(workdir, 0)["label"]["labels"]
    assert len(labels) == 2
    for label in labels:
        assert not (workdir / label["file"]).with_name("label.failed").exists()
        assert abs(label["electrons"] - 0.2 / Bohr**3 * read_density(workdir / label["file"]).volume) < 1e-6
    assert read_record(workdir, 1)["stop"] == "iterations (2) reached"


def test_missing_structure_is_an_input_error_before_any_work(workdir, capsys):
    param = loop_input(workdir, {"type": "command", "command": "true", "output": "CHGCAR"})
    (workdir / "si2.vasp").unlink()
    run_failing(capsys, ["loop", str(param)], "explore.structures.files", "si2.vasp", "no such file")
    assert sorted(path.name for path in workdir.iterdir()) == ["input.json", "param.json"]


def test_loop_input_keys_are_checked(workdir, capsys):
    param = loop_input(workdir, {"type": "command", "command": "true", "output": "CHGCAR"})
    params = json.loads(param.read_text())
    params["select"]["trust_low"] = params["select"].pop("trust_lo")
    param.write_text(json.dumps(params))
    run_failing(capsys, ["loop", str(param)], "unknown key `trust_low` in `select`", "did you mean `trust_lo`")
    params["select"].update(trust_lo=2.0, trust_hi=1.0)
    del params["select"]["trust_low"]
    param.write_text(json.dumps(params))
    run_failing(capsys, ["loop", str(param)], "select.trust_lo (2.0) must be below trust_hi (1.0)")
    params["label"] = {"type": "vasp"}
    param.write_text(json.dumps(params))
    run_failing(capsys, ["loop", str(param)], "vasp")


def test_trajectory_frames_and_their_species_are_read_before_any_work(workdir, capsys):
    frames = [ase.build.bulk("Si", "diamond", a=5.431 + 0.01 * number) for number in range(3)]
    ase.io.write(workdir / "md.extxyz", frames, format="extxyz")
    param = loop_input(workdir, {"type": "command", "command": "true", "output": "CHGCAR"},
                       explore={"trajectories": {"files": "md.extxyz", "stride": 2}})
    loop = load_loop_input(param)
    assert [origin for origin, _ in loop.frames] == [f"{workdir / 'md.extxyz'}[{n}]" for n in (0, 2)]
    assert loop.frames[1][1].cell[0, 1] == pytest.approx(frames[2].cell[0, 1])
    ase.io.write(workdir / "md.extxyz", ase.build.bulk("Ge", "diamond", a=5.66), format="extxyz")
    run_failing(capsys, ["loop", str(param)], "explore.trajectories.files", "md.extxyz holds Ge", "type_map ['Si']")
    assert not (workdir / "iter.000000").exists()


def test_selection_takes_the_largest_measures_between_the_trust_levels():
    select = {"trust_lo": 1.0, "trust_hi": 5.0, "max_per_iter": 2}
    measures = [0.5, 2.0, 3.0, 10.0, 4.0]
    decisions = select_candidates(measures, select)
    assert [chosen for chosen, _ in decisions] == [False, False, True, False, True]
    assert "below trust_lo" in decisions[0][1] and "trust_hi" in decisions[3][1]
    assert "max_per_iter (2)" in decisions[1][1] and "rank 1 of 3" in decisions[4][1]
    summary = selection_summary(measures, decisions, select)
    assert (summary["above_lo"], summary["above_hi"], summary["chosen"], summary["share_above_lo"]) == (4, 1, 2, 0.8)


def test_random_pick_draws_among_the_eligible_reproducibly():
    select = {"trust_lo": 1.0, "trust_hi": 5.0, "max_per_iter": 2, "pick": "random"}
    measures = [0.5, 2.0, 3.0, 10.0, 4.0, 1.5, 2.5]
    chosen = set()
    for seed in range(20):
        decisions = select_candidates(measures, select, np.random.default_rng(seed))
        picked = {index for index, (taken, _) in enumerate(decisions) if taken}
        assert len(picked) == 2 and picked <= {1, 2, 4, 5, 6}
        assert decisions == select_candidates(measures, select, np.random.default_rng(seed))
        assert "random draw" in decisions[min(picked)][1]
        chosen |= picked
    assert chosen == {1, 2, 4, 5, 6}  # not the largest measures every time


def test_strain_keeps_fractional_positions_and_frames_are_offered_until_labelled():
    atoms = ase.build.bulk("Si", "diamond", a=5.431)
    structure = Snapshot(symbols=atoms.get_chemical_symbols(), positions=atoms.positions, cell=np.array(atoms.cell))
    strained = perturbed(structure, 0.0, 0.05, np.random.default_rng(0))
    deformation = np.linalg.solve(structure.cell, strained.cell)
    np.testing.assert_allclose(deformation, deformation.T, atol=1e-12)
    assert 0 < np.abs(deformation - np.eye(3)).max() <= 0.05
    np.testing.assert_allclose(strained.positions @ np.linalg.inv(strained.cell),
                               structure.positions @ np.linalg.inv(structure.cell), atol=1e-12)

    explore = {"structures": {"rattle": [0.1], "strain": [0.0, 0.01], "count": 2}, "seed": 5}
    loop = LoopInput("param.json", {"explore": explore}, {}, None, [], [], [("si2", structure)],
                     [("traj[0]", structure), ("traj[1]", structure)], None)
    first, again = explore_candidates(loop, 0, set()), explore_candidates(loop, 0, {"traj[1]"})
    assert [c.name for c in first] == [f"{n:06d}" for n in range(6)]
    assert [c.origin for c in again] == ["si2"] * 4 + ["traj[0]"]
    np.testing.assert_array_equal(first[0].structure.positions, again[0].structure.positions)  # seeded
    later = explore_candidates(loop, 1, set())[0].structure.positions
    assert not np.allclose(later, first[0].structure.positions)  # a new draw each iteration


def test_init_model_of_an_ensemble_starts_each_member_from_its_own(tmp_path):
    for number in range(2):
        (tmp_path / f"member_{number}").mkdir()
    assert member_init_models(str(tmp_path), 2) == [str(tmp_path / "member_0"), str(tmp_path / "member_1")]
    assert member_init_models(str(tmp_path / "x.pt"), 2) == [str(tmp_path / "x.pt")] * 2
    with pytest.raises(DeepChargeError, match="an ensemble of 2 members, this input trains 3"):
        member_init_models(str(tmp_path), 3)


def test_choice_study_retrains_on_sigma_s_choice_and_random_draws(workdir):
    """tools/loop_choice_study.py: every candidate labelled (the loop's labels taken), σ's training taken from the
    loop, the draws trained, and σ ranked among them."""
    (workdir / "label.py").write_text(LABEL_SCRIPT)
    param = loop_input(workdir, {"type": "command", "command": f"{sys.executable} ../../../label.py {{structure}}",
                                 "output": "density.cube"},
                       test_data=[str(si64_file(1))], test_numb_points=2000)
    run = workdir  # the label command's path is relative to task folders two levels below the run and OUT
    assert main(["loop", str(param), "--device", "cpu"]) == 0
    command = [sys.executable, str(REPO / "tools" / "loop_choice_study.py"), str(param), str(run), "--draws", "2",
               "--seed", "1", "--out", str(workdir / "study"), "--device", "cpu"]
    subprocess.run(command, check=True, capture_output=True)
    study = json.loads((workdir / "study" / "study.json").read_text())
    record = read_record(run, 0)
    sigma_choice = [row["name"] for row in record["explore"]["candidates"] if row["chosen"]]
    rows = study["rows"]
    assert study["choices"] == 6 and rows[0]["sigma"] and rows[0]["choice"] == sigma_choice
    assert rows[0]["eps_mae_percent"]["si64_1"] == read_record(run, 1)["train"]["test"][0]["eps_mae_percent"]
    drawn = [row for row in rows if row["drawn"]]
    assert len(drawn) == 2 and len({tuple(row["choice"]) for row in drawn}) == 2
    # the two candidates the loop did not label are labelled by the study, the loop's are taken
    assert sorted(path.name for path in (workdir / "study" / "labels").iterdir()) == sorted(
        f"task.{row['name']}" for row in record["explore"]["candidates"] if not row["chosen"])
    assert not (workdir / "study" / f"train.{'-'.join(sigma_choice)}").exists()
    summary = study["summary"]["si64_1"]
    assert 1 <= summary["sigma_rank"] <= summary["of"] <= 3
    assert summary["random_min"] <= summary["random_mean"] <= summary["random_max"]
