"""The Python API (``deepcharge.DensityPredictor``, ``DensityEnsemble``): the commands' numbers from a script, every
kind of structure, the metadata, and the command line's errors as exceptions."""

import subprocess
import sys

import ase
import dpdata
import numpy as np
import pytest
from conftest import si64_file, tiny_input

import deepcharge
from deepcharge import DeepChargeError, DensityEnsemble, DensityPredictor, read_density
from deepcharge.cli import main
from deepcharge.utils import working_directory

SHAPE = (6, 5, 4)


@pytest.fixture(scope="module")
def model(frozen_model):
    return DensityPredictor(frozen_model, "cpu")


@pytest.fixture(scope="module")
def atoms():
    snapshot = read_density(si64_file(1))
    return ase.Atoms(snapshot.symbols, positions=snapshot.positions, cell=snapshot.cell, pbc=True)


def test_what_the_model_is(model):
    assert model.type_map == ["Si"] and model.backend == "pseudo_atom" and model.density_block == "total"
    assert model.rcut == model.metadata["model"]["descriptor"]["rcut"]
    assert model.metadata["training"]["steps"] == 2


def test_grid_is_what_predict_writes(model, atoms, frozen_model, workdir):
    assert main(["predict", "-m", str(frozen_model), "-s", str(si64_file(1)), "-o", "rho.CHGCAR",
                 "--grid", *map(str, SHAPE)]) == 0
    written = read_density("rho.CHGCAR").density  # E17.11: 11 significant digits
    np.testing.assert_allclose(model.eval_grid(atoms, SHAPE), written, rtol=1e-10, atol=0)
    assert main(["predict", "-m", str(frozen_model), "-s", str(si64_file(1)), "-o", "scaled.CHGCAR",
                 "--grid", *map(str, SHAPE), "--electrons", "250"]) == 0
    scaled = model.eval_grid(atoms, SHAPE, electrons=250)
    np.testing.assert_allclose(scaled, read_density("scaled.CHGCAR").density, rtol=1e-10, atol=0)
    assert scaled.mean() * atoms.get_volume() == pytest.approx(250)


def test_every_kind_of_structure_gives_the_same_numbers(model, atoms):
    points = np.array([[0.0, 0.0, 0.0], [1.2, 2.3, 3.4], [10.0, 5.0, 2.5]])
    expected = model.eval(atoms, points)
    snapshot = read_density(si64_file(1))
    types = np.zeros(len(atoms), dtype=int)
    system = dpdata.System(atoms, fmt="ase/structure")
    for structure, options in ((snapshot, {}), (atoms.positions, {"cell": atoms.cell[:], "symbols": ["Si"] * 64}),
                               (atoms.positions, {"cell": atoms.cell[:], "types": types}), (system, {"frame": 0})):
        np.testing.assert_allclose(model.eval(structure, points, **options), expected, rtol=1e-12)
    # points of any leading shape; the grid's points give the grid's values
    assert model.eval(atoms, points.reshape(3, 1, 3)).shape == (3, 1)
    grid = model.eval_grid(atoms, SHAPE)
    at_points = model.eval(atoms, snapshot.grid_points(shape=SHAPE).reshape(*SHAPE, 3))
    np.testing.assert_allclose(at_points, grid, rtol=1e-10)
    spaced = model.eval_grid(atoms, spacing=2.0)
    assert spaced.shape == (6, 6, 6)  # ⌈10.862 / 2⌉ = 6, FFT-friendly


def test_ensemble_is_what_model_devi_writes(workdir, atoms):
    with working_directory("ensemble"):
        assert main(["train", str(tiny_input(workdir / "ensemble", numb_steps=2, ensemble={"members": 2}))]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    members = [f"ensemble/model_{number}.pth" for number in range(2)]
    assert main(["model-devi", "-m", *members, "-s", str(si64_file(1)), "-o", "rho.CHGCAR",
                 "--grid", *map(str, SHAPE)]) == 0
    mean, sigma = DensityEnsemble(members, "cpu").eval_grid(atoms, SHAPE)
    np.testing.assert_allclose(mean, read_density("rho_mean.CHGCAR").density, rtol=1e-10)
    np.testing.assert_allclose(sigma, read_density("rho_devi.CHGCAR").density, rtol=1e-9, atol=1e-15)
    point_mean, point_sigma = DensityEnsemble(members, "cpu").eval(atoms, [[1.0, 2.0, 3.0]])
    assert point_mean.shape == point_sigma.shape == (1,) and point_sigma[0] > 0


def test_errors_carry_the_command_line_messages(model, atoms, frozen_model, tmp_path):
    oxygen = atoms.copy()
    oxygen[0].symbol = "O"
    with pytest.raises(DeepChargeError, match="species O not in the model's type_map"):
        model.eval(oxygen, [[0.0, 0.0, 0.0]])
    broken = atoms.copy()
    broken.positions[3] = np.nan
    with pytest.raises(DeepChargeError, match="atom 4's position holds NaN"):
        model.eval_grid(broken, SHAPE)
    with pytest.raises(DeepChargeError, match="points: expected finite"):
        model.eval(atoms, [[0.0, np.nan, 0.0]])
    with pytest.raises(DeepChargeError, match="symbols=.* or as types="):
        model.eval(atoms.positions, [[0.0, 0.0, 0.0]], cell=atoms.cell[:])
    (tmp_path / "notes.pth").write_text("not a model")
    with pytest.raises(DeepChargeError, match="not a frozen deepcharge model"):
        DensityPredictor(tmp_path / "notes.pth")
    with pytest.raises(DeepChargeError, match="at least two models"):
        DensityEnsemble([frozen_model])


def test_importing_the_package_loads_no_torch():
    code = "import sys, deepcharge; assert 'torch' not in sys.modules; assert deepcharge.DensityPredictor"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "DensityPredictor" in deepcharge.__all__
