"""deepcharge model-devi: the ensemble mean and the per-point deviation on grids, and the table of both."""

import json

import numpy as np
import pytest
from conftest import REPO, si64_file, tiny_input
from test_cli_errors import run_failing

from deepcharge.cli import main
from deepcharge.entrypoints.model_devi import TABLE_COLUMNS
from deepcharge.infer.predictor import Predictor
from deepcharge.io import read_density
from deepcharge.utils import working_directory

SHAPE = (12, 10, 8)
GRID = ["--grid", *map(str, SHAPE)]


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """Three tiny frozen models of one ensemble."""
    folder = tmp_path_factory.mktemp("ensemble")
    with working_directory(folder):
        assert main(["train", str(tiny_input(folder, numb_steps=3, ensemble={"members": 3}))]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    return [str(folder / f"model_{number}.pth") for number in range(3)]


def test_mean_and_deviation_are_those_of_the_members(ensemble, workdir):
    assert main(["model-devi", "-m", *ensemble, "-s", str(si64_file(1)), "-o", "rho.CHGCAR", *GRID]) == 0
    mean, devi = read_density("rho_mean.CHGCAR"), read_density("rho_devi.CHGCAR")
    assert mean.grid_shape == devi.grid_shape == SHAPE
    structure = read_density(si64_file(1))
    predictors = [Predictor.from_file(model, "cpu") for model in ensemble]
    members = np.stack([predictor.predict_grid(structure, SHAPE) for predictor in predictors])
    np.testing.assert_allclose(mean.density, members.mean(axis=0), rtol=1e-9, atol=1e-12)
    assert devi.density.min() > 0  # the members differ everywhere
    # σ at a few points, straight from the definition (standard deviation over the models, ddof 0)
    points = [(0, 0, 0), (5, 3, 7), (11, 9, 2)]
    flat = np.ravel_multi_index(np.transpose(points), SHAPE)
    values = np.stack([predictor.predict_points(structure, structure.grid_points(flat, SHAPE))
                       for predictor in predictors])
    sigma = np.sqrt(((values - values.mean(axis=0)) ** 2).mean(axis=0))
    np.testing.assert_allclose(devi.density[tuple(np.transpose(points))], sigma, rtol=1e-6)

    table = np.genfromtxt("rho_model_devi.out", names=True)
    assert table.dtype.names == tuple(TABLE_COLUMNS)
    assert table["frame"] == 0
    assert table["max_devi_rho"] == pytest.approx(devi.density.max(), rel=1e-5)
    assert table["min_devi_rho"] == pytest.approx(devi.density.min(), rel=1e-5)
    assert table["avg_devi_rho"] == pytest.approx(devi.density.mean(), rel=1e-5)
    assert table["int_devi_rho"] == pytest.approx(devi.density.mean() * structure.volume, rel=1e-5)
    assert table["electrons"] == pytest.approx(mean.electrons(), rel=1e-5)


def test_several_structures_are_numbered_in_one_table(ensemble, workdir):
    (workdir / "out").mkdir()
    assert main(["model-devi", "-m", *ensemble, "-s", str(si64_file(1)), str(si64_file(2)),
                 "-o", "out/rho.cube", *GRID]) == 0
    for kind in ("mean", "devi"):
        assert not (workdir / "out" / f"rho_{kind}.cube").exists()
        first, second = (read_density(workdir / "out" / f"rho_{kind}_{number}.cube") for number in range(2))
        assert not np.allclose(first.positions, second.positions)
    table = np.genfromtxt(workdir / "out" / "rho_model_devi.out", names=True)
    assert table["frame"].tolist() == [0, 1]
    rows = (workdir / "out" / "rho_model_devi.out").read_text().splitlines()[1:]
    assert [row.split("#")[1].strip() for row in rows] == [str(si64_file(1)), str(si64_file(2))]


def test_models_must_share_the_type_map(ensemble, workdir, capsys):
    config = json.loads(tiny_input(workdir, numb_steps=1).read_text())
    water = REPO / "input_examples" / "water_one_shot" / "data"
    config["model"].update(type_map=["O", "H"])
    config["model"]["descriptor"]["sel"] = [8, 16]
    config["training"]["training_data"]["systems"] = [str(water / "water_0.CHGCAR.gz")]
    config["training"]["validation_data"]["systems"] = [str(water / "water_1.CHGCAR.gz")]
    (workdir / "input.json").write_text(json.dumps(config))
    assert main(["train", "input.json"]) == 0
    assert main(["freeze", "-o", "water.pth"]) == 0
    run_failing(capsys, ["model-devi", "-m", ensemble[0], "water.pth", "-s", str(si64_file(1)), "-o", "rho.CHGCAR",
                         *GRID], "water.pth", "type_map")
    assert not list(workdir.glob("rho*"))
