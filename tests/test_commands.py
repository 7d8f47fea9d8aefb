"""The small commands: doc-train-input, info, neighbor-stat, plot, predict's grid and file formats."""

import json

import numpy as np
import pytest
import torch

from deepcharge.cli import main
from deepcharge.config import normalize
from deepcharge.data.inputs import Structure
from deepcharge.geometry.neighbours import probe_neighbours
from deepcharge.io import read_density

from conftest import si64_file, tiny_input

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
    assert entry["electrons"] == pytest.approx(278.174, abs=1e-3)  # the 2×2×2 k file
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
    assert main(["predict", "-m", "model.pth", "-s", str(si64_file(1)), "-o", "rho.CHGCAR", "--grid", "12", "10", "8"]) == 0
    assert main(["predict", "-m", "model.pth", "-s", str(si64_file(1)), "-o", "rho.cube", "--grid", "12", "10", "8"]) == 0
    chgcar, cube = read_density("rho.CHGCAR"), read_density("rho.cube")
    assert chgcar.grid_shape == cube.grid_shape == (12, 10, 8)
    np.testing.assert_allclose(chgcar.density, cube.density, rtol=1e-4, atol=1e-8)
    reference = read_density(si64_file(1))
    np.testing.assert_allclose(chgcar.positions, reference.positions, atol=1e-8)
    # the same values as evaluating the model at those points directly
    from deepcharge.infer.predictor import Predictor

    direct = Predictor.from_file("model.pth", "cpu").predict_grid(reference, (12, 10, 8))
    np.testing.assert_allclose(chgcar.density, direct, rtol=1e-9, atol=1e-10)
