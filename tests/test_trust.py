"""Trusting a prediction: extrapolation named, rescaling a broken integral refused, references whose electrons
do not match the training data named, magnetisation models compared and written as what they are."""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import GA4, si64_file, train_ga_model

from deepcharge import DeepChargeError, DensityEnsemble, DensityPredictor
from deepcharge.analysis.environments import EnvironmentRanges
from deepcharge.cli import main
from deepcharge.io import read_density, write_density
from deepcharge.snapshot import Snapshot


def strained(snapshot: Snapshot, factor: float) -> Snapshot:
    return Snapshot(symbols=snapshot.symbols, positions=snapshot.positions * factor, cell=snapshot.cell * factor,
                    source=f"strained by {factor}")


def test_environment_ranges_flag_a_dimer_and_a_strained_cell():
    training = read_density(si64_file(0))
    ranges = EnvironmentRanges(6.0).add(training)
    assert ranges.outside(training)["atoms_outside"] == 0
    assert ranges.outside(read_density(si64_file(5)))["atoms_outside"] == 0  # a frame of the same distribution
    dimer = Snapshot(symbols=["Si", "Si"], positions=np.array([[0.0, 0, 0], [2.3, 0, 0]]), cell=np.eye(3) * 12)
    found = ranges.outside(dimer)
    assert found["share_outside"] == 1.0 and "1 Si within 6 Å where training had 41–46" in found["worst"]
    assert ranges.outside(strained(training, 1.05))["share_outside"] == 1.0
    assert EnvironmentRanges.from_dict(json.loads(json.dumps(ranges.to_dict()))).outside(dimer) == found


def test_predictions_say_when_they_extrapolate(frozen_model, workdir, caplog):
    model = DensityPredictor(frozen_model, "cpu")
    assert model.metadata["environments"]["radius"] == model.rcut
    training = read_density(si64_file(0))
    with caplog.at_level(logging.WARNING, logger="deepcharge"):
        model.eval(training, [[0.0, 0.0, 0.0]])
        assert not caplog.records
        model.eval_grid(strained(training, 1.1), (4, 4, 4))
    (record,) = caplog.records
    assert re.match(r"strained by 1.1: 6\d of 64 atoms \(9\d %\) lie outside the environments", record.getMessage())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deepcharge"):  # members of one training data: one warning
        DensityEnsemble([frozen_model, frozen_model], "cpu").eval_grid(strained(training, 1.1), (4, 4, 4))
    assert len(caplog.records) == 1
    write_density("strained.CHGCAR", Snapshot(**{**vars(strained(training, 1.1)), "density": training.density}))
    assert main(["predict", "-m", str(frozen_model), "-s", "strained.CHGCAR", "-o", "rho.cube",
                 "--grid", "4", "4", "4"]) == 0
    assert main(["test", "-m", str(frozen_model), "-s", "strained.CHGCAR", "-n", "100", "--json", "t.json"]) == 0
    assert json.loads(Path("t.json").read_text())["files"][0]["extrapolation"]["share_outside"] > 0.9


def test_rescaling_a_broken_integral_is_refused(frozen_model, workdir, capsys):
    assert main(["predict", "-m", str(frozen_model), "-s", str(si64_file(2)), "-o", "rho.CHGCAR",
                 "--grid", "8", "8", "8", "--electrons", "1000"]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "integrates to" in message and "1000.0000 are expected" in message and "extrapolating" in message
    assert not Path("rho.CHGCAR").exists()
    with pytest.raises(DeepChargeError, match="1000.0000 are expected"):
        DensityPredictor(frozen_model, "cpu").eval_grid(read_density(si64_file(2)), (8, 8, 8), electrons=1000)


def test_a_reference_with_other_electrons_is_named(frozen_model, workdir, caplog):
    reference = read_density(si64_file(2))
    reference.density = reference.density * 1.25  # as a file of another PAW valence would hold
    write_density("other_valence.CHGCAR", reference)
    with caplog.at_level(logging.WARNING, logger="deepcharge"):
        assert main(["test", "-m", str(frozen_model), "-s", "other_valence.CHGCAR", "-n", "100"]) == 0
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "other_valence.CHGCAR holds" in warning and "another PAW valence" in warning


@pytest.fixture(scope="module")
def magnetisation_model(tmp_path_factory):
    return train_ga_model(tmp_path_factory.mktemp("magnetisation"), "mag.pth", density_block="magnetization")


def test_a_magnetisation_model_is_compared_and_written_as_one(magnetisation_model, workdir, capsys):
    assert DensityPredictor(magnetisation_model, "cpu").density_block == "magnetization"
    assert main(["test", "-m", str(magnetisation_model), "-s", str(GA4), "-n", "500", "--json", "t.json"]) == 0
    result = json.loads(Path("t.json").read_text())
    magnetisation = read_density(GA4, "magnetization").density
    assert result["density_block"] == "magnetization"
    # scored against the magnetisation block: its reference integral is the moment, not 12 electrons
    assert abs(result["files"][0]["electrons_ref"]) < 1.0 and abs(magnetisation.mean()) < 1.0
    assert main(["predict", "-m", str(magnetisation_model), "-s", str(GA4), "-o", "m.CHGCAR",
                 "--grid", "8", "8", "8"]) == 0
    assert "magnetization density (spin up minus down, not a charge density)" in Path("m.CHGCAR").read_text()
    capsys.readouterr()
    assert main(["predict", "-m", str(magnetisation_model), "-s", str(GA4), "-o", "n.CHGCAR",
                 "--conserve-electrons"]) == 1
    assert "magnetic moment, not an electron count" in capsys.readouterr().err
