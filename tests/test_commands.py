"""The small commands: doc-train-input, info, neighbor-stat, plot, predict's grid and file formats."""

import json

import numpy as np
import pytest
import torch
from conftest import si64_file, tiny_input

from deepcharge.cli import main
from deepcharge.config import normalize
from deepcharge.data.inputs import Structure
from deepcharge.geometry.neighbours import probe_neighbours
from deepcharge.io import read_density

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def all_keys(tree, prefix=""):
    for key, value in tree.items():
        yield key
        if isinstance(value, dict):
            yield from all_keys(value)


def test_doc_train_input_documents_every_key(capsys):
    assert main(["doc-train-input"]) == 0
    doc = capsys.readouterr().out
    config = normalize({"model": {"type_map": ["Si"]},
                        "training": {"training_data": {"systems": ["x"]}, "validation_data": {"systems": ["y"]},
                                     "numb_steps": 1}})
    for key in set(all_keys(config)):
        assert f"{key}:" in doc, key


def test_info_json(workdir):
    assert main(["info", str(si64_file(0)), "--json", "info.json"]) == 0
    (entry,) = json.loads((workdir / "info.json").read_text())
    assert entry["natoms"] == 64
    assert entry["grid"] == [64, 64, 64]
    assert entry["electrons"] == pytest.approx(278.174, abs=1e-3)  # the k-converged si64_0
    assert entry["spin_blocks"] == ["total"]


def test_neighbor_stat_matches_brute_force(capsys):
    assert main(["neighbor-stat", "-s", str(si64_file(0)), "-r", "4.0", "-t", "Si", "-n", "3000"]) == 0
    printed = capsys.readouterr().out
    snapshot = read_density(si64_file(0))
    index = np.asarray(torch.randperm(snapshot.density.size, generator=torch.Generator().manual_seed(0))[:3000])
    structure = Structure.from_snapshot(snapshot, ["Si"], "cpu", torch.float64)
    probe_index, _, _ = probe_neighbours(torch.as_tensor(snapshot.grid_points(index)), structure.positions,
                                         structure.cell, structure.pbc, 4.0)
    largest = int(torch.bincount(probe_index).max())
    assert f"[{largest}]" in printed


def test_plot_lcurve_and_parity(workdir):
    assert main(["train", str(tiny_input(workdir, numb_steps=5))]) == 0
    assert main(["freeze", "-o", "model.pth"]) == 0
    assert main(["test", "-m", "model.pth", "-s", str(si64_file(1)), "-n", "2000", "-d", "detail"]) == 0
    assert main(["plot", "lcurve.out", "-o", "lcurve.png"]) == 0
    assert main(["plot", "detail.si64_1.out", "-o", "parity.png"]) == 0
    for name in ("lcurve.png", "parity.png"):
        assert (workdir / name).read_bytes()[:8] == PNG_MAGIC


def test_predict_writes_readable_chgcar_and_cube(workdir):
    assert main(["train", str(tiny_input(workdir, numb_steps=3))]) == 0
    assert main(["freeze", "-o", "model.pth"]) == 0
    for output in ("rho.CHGCAR", "rho.cube"):
        assert main(["predict", "-m", "model.pth", "-s", str(si64_file(1)), "-o", output,
                     "--grid", "12", "10", "8"]) == 0
    chgcar, cube = read_density("rho.CHGCAR"), read_density("rho.cube")
    assert chgcar.grid_shape == cube.grid_shape == (12, 10, 8)
    np.testing.assert_allclose(chgcar.density, cube.density, rtol=1e-4, atol=1e-8)
    reference = read_density(si64_file(1))
    np.testing.assert_allclose(chgcar.positions, reference.positions, atol=1e-8)
    # the same values as evaluating the model at those points directly
    from deepcharge.infer.predictor import Predictor

    direct = Predictor.from_file("model.pth", "cpu").predict_grid(reference, (12, 10, 8))
    np.testing.assert_allclose(chgcar.density, direct, rtol=1e-9, atol=1e-10)


def test_doc_train_input_as_json_and_json_schema(capsys):
    assert main(["doc-train-input", "--out-type", "json"]) == 0
    sections = json.loads(capsys.readouterr().out)
    assert [section["name"] for section in sections] == ["model", "learning_rate", "loss", "training"]
    assert main(["doc-train-input", "--out-type", "json_schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "numb_steps" in schema["properties"]["training"]["properties"]


def minimal_arguments():
    """Each subcommand with the arguments it requires."""
    return {"train": ["in.json"], "freeze": [], "compress": [], "test": ["-s", "a"], "predict": ["-s", "a", "-o", "b"],
            "model-devi": ["-m", "a", "-s", "b", "-o", "c"], "compare": ["-m", "a", "-s", "b"], "info": ["a"],
            "convert": ["a", "-o", "b"], "neighbor-stat": ["-s", "a", "-r", "4", "-t", "Si"], "loop": ["param.json"],
            "plot": ["a"], "doc-train-input": [], "doc-loop-input": []}


def test_log_options_on_every_subcommand_before_or_after_its_name():
    from deepcharge.cli import build_parser

    parser = build_parser()
    commands = minimal_arguments()
    assert set(commands) == set(parser._subparsers._group_actions[0].choices)
    for command, rest in commands.items():
        before = parser.parse_args(["-v", "DEBUG", "-l", "x.log", command, *rest])
        after = parser.parse_args([command, *rest, "-v", "debug", "-l", "x.log"])
        plain = parser.parse_args([command, *rest])
        assert (before.log_level, before.log_path) == (after.log_level, after.log_path) == ("DEBUG", "x.log"), command
        assert (plain.log_level, plain.log_path) == ("INFO", None), command


def test_log_path_receives_the_log(workdir):
    assert main(["train", str(tiny_input(workdir, numb_steps=5)), "-l", "train.log"]) == 0
    assert "step 5/5" in (workdir / "train.log").read_text()
    assert main(["-l", "freeze.log", "freeze", "-c", "nowhere"]) == 1
    assert "nowhere" in (workdir / "freeze.log").read_text()


def test_flag_spellings_agree_across_commands():
    from deepcharge.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["test", "--models", "a.pth", "-s", "x"]).model == "a.pth"
    assert parser.parse_args(["model-devi", "--model", "a.pth", "b.pth", "-s", "x", "-o", "y"]).models == [
        "a.pth", "b.pth"]
    assert parser.parse_args(["compare", "--models", "a.pth", "b.pth", "-s", "x"]).model == ["a.pth", "b.pth"]
    for empty in (["compare", "-m", "-s", "x"], ["compare", "-m", "a.pth", "-s"], ["compare", "-i", "-s", "x"]):
        with pytest.raises(SystemExit):
            parser.parse_args(empty)


def test_command_line_chooses_passive_openmp_threads_unless_told(monkeypatch, capsys):
    from deepcharge.cli import set_thread_defaults

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert main(["doc-train-input"]) == 0
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}
    set_thread_defaults(chosen)
    assert chosen == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_help_shows_defaults_from_the_parser(capsys):
    from deepcharge.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "frozen model (default: frozen_model.pth)" in text and "auto, cpu or cuda (default: auto)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
