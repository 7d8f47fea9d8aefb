"""Electron conservation: per-species electrons from the training data, rescaled predictions, raw integrals."""

import json

import pytest
from conftest import si64_file

from deepcharge.analysis.electrons import expected_electrons, fit_electrons_per_atom
from deepcharge.cli import main
from deepcharge.errors import DeepChargeError
from deepcharge.infer.predictor import Predictor
from deepcharge.io import read_density


def test_per_species_fit_recovers_the_counts():
    records = [({"O": 1, "H": 2}, 8.0), ({"O": 2, "H": 2}, 14.0), ({"O": 1, "H": 4}, 10.0)]
    assert fit_electrons_per_atom(records) == pytest.approx({"O": 6.0, "H": 1.0})
    assert expected_electrons(["O", "H", "H", "H"], {"O": 6.0, "H": 1.0}, "x") == pytest.approx(9.0)
    with pytest.raises(DeepChargeError, match="no electron count for species Si"):
        expected_electrons(["Si"], {"O": 6.0}, "x")


def test_frozen_model_knows_the_training_electrons(frozen_model):
    predictor = Predictor.from_file(frozen_model, "cpu")
    training = read_density(si64_file(0))
    assert predictor.metadata["electrons_per_atom"]["Si"] == pytest.approx(training.electrons() / 64)


def test_predict_and_test_rescale_to_the_electron_count(frozen_model, workdir):
    target = Predictor.from_file(frozen_model, "cpu").expected_electrons(read_density(si64_file(2)))
    assert main(["predict", "-m", str(frozen_model), "-s", str(si64_file(2)), "-o", "rho.CHGCAR",
                 "--grid", "20", "20", "20", "--conserve-electrons"]) == 0
    assert read_density("rho.CHGCAR").electrons() == pytest.approx(target, rel=1e-9)
    assert main(["predict", "-m", str(frozen_model), "-s", str(si64_file(2)), "-o", "raw.CHGCAR",
                 "--grid", "20", "20", "20"]) == 0
    raw = read_density("raw.CHGCAR")
    assert raw.electrons() != pytest.approx(target, rel=1e-3)  # rescaling did something
    assert main(["test", "-m", str(frozen_model), "-s", str(si64_file(2)), "--conserve-electrons",
                 "--json", "t.json"]) == 0
    result = json.loads(open("t.json").read())["files"][0]
    assert result["electrons_pred"] == pytest.approx(target, rel=1e-9)
    assert "electrons_pred_raw" in result and result["electrons_pred_raw"] != pytest.approx(target, rel=1e-3)
