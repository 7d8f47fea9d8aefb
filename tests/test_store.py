"""Dataset stores: convert, round trip, provenance, --append, a failed convert, every command reading them."""

import hashlib
import json
import logging
import os
import shutil

import h5py
import numpy as np
import pytest
from conftest import si64_file, tiny_input
from test_cli_errors import run_failing

from deepcharge.cli import main
from deepcharge.data.systems import expand_systems, load_structure, load_system
from deepcharge.entrypoints import convert
from deepcharge.errors import FileFormatError
from deepcharge.io import read_density, write_density
from deepcharge.io.store import is_store, read_store_snapshot, snapshot_name, store_names
from deepcharge.snapshot import Snapshot

LCURVE_COLUMNS = ("step", "rmse_val", "rmse_trn", "eps_mae_val", "eps_mae_trn", "lr")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """si64_0 and si64_1 converted into one store."""
    path = tmp_path_factory.mktemp("store") / "si64.h5"
    assert main(["convert", str(si64_file(0)), str(si64_file(1)), "-o", str(path)]) == 0
    return path


def assert_same_snapshot(stored: Snapshot, original: Snapshot):
    assert stored.symbols == original.symbols
    for name in ("positions", "cell", "density", "origin"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(original, name))
    assert stored.pbc == original.pbc and stored.spin_blocks == original.spin_blocks


def test_round_trip_and_provenance(store):
    assert is_store(store) and not is_store(si64_file(0))
    assert store_names(store) == ["si64_0", "si64_1"]
    for index, name in enumerate(store_names(store)):
        stored = read_store_snapshot(store, name)
        assert_same_snapshot(stored, read_density(si64_file(index)))
        assert stored.source == f"{store}::{name}"
    with h5py.File(store, "r") as handle:
        assert handle.attrs["format"] == "deepcharge-store" and handle.attrs["version"] == 1
        group = handle["snapshots/si64_1"]
        assert group.attrs["source"] == str(si64_file(1))
        assert group.attrs["sha256"] == hashlib.sha256(si64_file(1).read_bytes()).hexdigest()
        assert group.attrs["density_block"] == "total"
        assert group["density"].chunks[1:] == (64, 64) and group["density"].compression == "gzip"


@pytest.mark.parametrize("source, name", [("data/si64_0.CHGCAR.gz", "si64_0"), ("calc1/CHGCAR", "calc1_CHGCAR"),
                                          ("rho.cube", "rho"), ("water_AECCAR2.gz", "water"), ("a b.vasp", "a_b")])
def test_snapshot_names(source, name):
    assert snapshot_name(source) == name


def test_append_keeps_skips_and_renames(workdir, store, capsys, caplog):
    shutil.copy(store, "si64.h5")
    small = Snapshot(["Si"], np.zeros((1, 3)), np.eye(3) * 3.0, density=np.full((2, 3, 4), 0.5))
    (workdir / "other").mkdir()
    write_density(workdir / "other" / "si64_0.CHGCAR", small)
    capsys.readouterr()
    caplog.set_level(logging.INFO)
    assert main(["convert", str(si64_file(0)), "other", "-o", "si64.h5", "--append"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0].split()[:3] == ["si64_0-2", "Si", "2x3x4"]
    assert "skipped" in caplog.text and str(si64_file(0)) in caplog.text
    assert store_names("si64.h5") == ["si64_0", "si64_1", "si64_0-2"]
    for name in ("si64_0", "si64_1"):
        assert_same_snapshot(read_store_snapshot("si64.h5", name), read_store_snapshot(store, name))
    assert_same_snapshot(read_store_snapshot("si64.h5", "si64_0-2"), read_density(workdir / "other" / "si64_0.CHGCAR"))
    assert sorted(os.listdir(workdir)) == ["other", "si64.h5"]


class Killed(Exception):
    """Stands for the convert being killed."""


def test_failed_convert_leaves_old_store(workdir, store, monkeypatch, capsys):
    shutil.copy(store, "si64.h5")
    before = (workdir / "si64.h5").read_bytes()
    calls = []

    def read_then_die(path, block="total"):
        calls.append(path)
        if len(calls) == 2:
            raise Killed
        return load_system(f"{store}::si64_0", block)

    with monkeypatch.context() as patch:
        patch.setattr(convert, "read_density", read_then_die)
        with pytest.raises(Killed):
            main(["convert", str(si64_file(2)), str(si64_file(3)), "-o", "si64.h5", "--append"])
    assert len(calls) == 2
    assert (workdir / "si64.h5").read_bytes() == before
    assert os.listdir(workdir) == ["si64.h5"]

    (workdir / "garbled.CHGCAR").write_text("not a density\n")
    run_failing(capsys, ["convert", str(si64_file(0)), "garbled.CHGCAR", "-o", "si64.h5"], "garbled.CHGCAR")
    assert (workdir / "si64.h5").read_bytes() == before
    assert sorted(os.listdir(workdir)) == ["garbled.CHGCAR", "si64.h5"]
    assert store_names("si64.h5") == ["si64_0", "si64_1"]


def test_expand_directories_globs_and_stores(workdir, store):
    data = workdir / "data"
    data.mkdir()
    for index in (1, 0):
        shutil.copy(si64_file(index), data)
    shutil.copy(store, data)
    (data / "notes.txt").write_text("not a density\n")
    assert expand_systems(["data"], workdir, "-s") == [str(data / "si64_0.CHGCAR.gz"), str(data / "si64_1.CHGCAR.gz")]
    assert expand_systems(["data/*.h5", "data/si64.h5::si64_1"], workdir, "-s") == [
        f"{data}/si64.h5::si64_0", f"{data}/si64.h5::si64_1", f"{data}/si64.h5::si64_1"]
    assert expand_systems(["data/si64_?.CHGCAR.gz"], workdir, "-s") == expand_systems(["data"], workdir, "-s")
    with pytest.raises(FileFormatError, match="'total' density block, not 'magnetization'.*--density-block"):
        load_system(f"{store}::si64_0", "magnetization")


def test_train_on_store(workdir, store, monkeypatch):
    shutil.copy(store, workdir / "si64.h5")
    stored = {"training_data": {"systems": "si64.h5", "probes_per_system": 1000, "batch_size": 64},
              "validation_data": {"systems": ["si64.h5::si64_1"], "probes_per_system": 500}, "numb_steps": 5}
    assert main(["train", str(tiny_input(workdir, **stored))]) == 0
    from_store = np.genfromtxt(workdir / "lcurve.out", names=True)

    raw = workdir / "raw"
    raw.mkdir()
    monkeypatch.chdir(raw)
    stored["training_data"]["systems"] = [str(si64_file(0)), str(si64_file(1))]
    stored["validation_data"]["systems"] = [str(si64_file(1))]
    assert main(["train", str(tiny_input(raw, **stored))]) == 0
    from_files = np.genfromtxt(raw / "lcurve.out", names=True)
    assert from_store["step"].tolist() == [0, 5]
    for name in LCURVE_COLUMNS:
        np.testing.assert_array_equal(from_store[name], from_files[name])


def test_test_on_store_matches_files(workdir, store, frozen_model):
    common = ["test", "-m", str(frozen_model), "-n", "3000"]
    assert main(common + ["-s", str(store), "--json", "store.json", "-d", "detail"]) == 0
    assert main(common + ["-s", str(si64_file(0)), str(si64_file(1)), "--json", "files.json"]) == 0
    from_store, from_files = (json.loads((workdir / name).read_text()) for name in ("store.json", "files.json"))
    assert [m["file"] for m in from_store["files"]] == [f"{store}::si64_0", f"{store}::si64_1"]
    for stored, raw in zip(from_store["files"], from_files["files"]):
        assert {**stored, "file": None} == {**raw, "file": None}
    assert from_store["overall"] == from_files["overall"]
    assert (workdir / "detail.si64_0.out").is_file() and (workdir / "detail.si64_1.out").is_file()


def test_predict_and_info_read_store_entries(workdir, store, frozen_model):
    entry = f"{store}::si64_1"
    assert load_structure(entry).grid_shape == (64, 64, 64)
    for source, output in ((entry, "store.CHGCAR"), (str(si64_file(1)), "file.CHGCAR")):
        assert main(["predict", "-m", str(frozen_model), "-s", source, "-o", output, "--grid", "6", "5", "4"]) == 0
    assert (workdir / "store.CHGCAR").read_bytes() == (workdir / "file.CHGCAR").read_bytes()
    assert main(["info", str(store), "--json", "info.json"]) == 0
    records = json.loads((workdir / "info.json").read_text())
    assert [r["file"] for r in records] == [f"{store}::si64_0", entry]
    assert records[1]["electrons"] == pytest.approx(read_density(si64_file(1)).electrons(), rel=1e-12)


def test_user_errors(workdir, store, frozen_model, capsys):
    with h5py.File("plain.h5", "w") as handle:
        handle["x"] = [1, 2]
    model = ["-m", str(frozen_model)]
    run_failing(capsys, ["test", *model, "-s", "missing.h5"], "missing.h5")
    run_failing(capsys, ["test", *model, "-s", "plain.h5"], "plain.h5", "not a deepcharge dataset store")
    run_failing(capsys, ["info", f"{store}::si64_9"], str(store), "si64_9", "si64_0, si64_1")
    run_failing(capsys, ["predict", *model, "-s", str(store), "-o", "x.cube"], str(store), "::NAME")
    run_failing(capsys, ["convert", "nothing_*.CHGCAR", "-o", "new.h5"], "nothing_*.CHGCAR")
    run_failing(capsys, ["convert", str(store), "-o", "new.h5"], f"{store}::si64_0", "density files")
    run_failing(capsys, ["convert", str(si64_file(0)), "-o", "no/such/dir/new.h5"], "no/such/dir")
    assert sorted(os.listdir(workdir)) == ["plain.h5"]
