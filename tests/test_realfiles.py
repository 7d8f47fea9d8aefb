"""Files written by real codes (VASP 5, cp2k-spm-tools; tests/data/realfiles/README.md), and a predicted CHGCAR
that carries a real file's augmentation occupancies and magnetisation."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.vasp import VaspChargeDensity
from conftest import GA4, train_ga_model

from deepcharge.cli import main
from deepcharge.errors import DeepChargeError
from deepcharge.infer.predictor import Predictor
from deepcharge.io import read_density
from deepcharge.io.chgcar import check_augmentation_fits, read_augmentation, read_chgcar, write_chgcar
from deepcharge.snapshot import Snapshot

REAL = Path(__file__).resolve().parent / "data" / "realfiles"
SI2 = REAL / "vasp5_Si_fcc_scaled_CHGCAR.gz"
C2H2 = REAL / "cp2kspmtools_c2h2_density.cube.gz"


def text_of(path) -> str:
    with gzip.open(path, "rt") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def ga4_ase(tmp_path_factory):
    """The Ga4 file as ASE's VaspChargeDensity reads it (an independent reader)."""
    plain = tmp_path_factory.mktemp("ase") / "CHGCAR"
    plain.write_text(text_of(GA4))
    return VaspChargeDensity(str(plain))


def test_vasp5_spin_polarised_file(ga4_ase):
    total = read_density(GA4)
    assert total.symbols == ["Ga"] * 4 and total.grid_shape == (40, 40, 40)
    assert total.spin_blocks == ("total", "magnetization")
    cell = np.array([[4.351552, 0.010650, 0.0], [-2.097014, 3.812957, 0.0], [0.0, 0.0, 4.406008]])
    np.testing.assert_allclose(total.cell, cell, atol=1e-12)
    np.testing.assert_allclose(total.positions[0], np.array([0.156043, 0.843957, 0.916654]) @ cell, atol=1e-12)
    assert total.electrons() == pytest.approx(12.0, abs=1e-4)  # 3 valence electrons × 4
    assert total.density.min() < 0  # PAW pseudo densities go negative near nuclei
    magnetisation = read_chgcar(GA4, block="magnetization")
    assert abs(magnetisation.electrons()) < 1e-6
    # the first magnetisation value follows the total's augmentation blocks and the line of moments
    assert magnetisation.density.flat[0] * magnetisation.volume == pytest.approx(-0.66118638078e-10, rel=1e-10)
    np.testing.assert_allclose(total.density, ga4_ase.chg[-1], rtol=1e-12)
    np.testing.assert_allclose(magnetisation.density, ga4_ase.chgdiff[-1], rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(total.positions, ga4_ase.atoms[-1].positions, atol=1e-12)


def test_vasp5_scale_factor_and_augmentation():
    snap = read_density(SI2)
    assert snap.symbols == ["Si", "Si"] and snap.grid_shape == (56, 56, 56) and snap.spin_blocks == ("total",)
    assert np.linalg.norm(snap.cell, axis=1) == pytest.approx([5.43 / np.sqrt(2)] * 3, rel=1e-9)  # a = 3.84 Å
    cosine = snap.cell[0] @ snap.cell[1] / np.linalg.norm(snap.cell[0]) / np.linalg.norm(snap.cell[1])
    assert np.degrees(np.arccos(cosine)) == pytest.approx(60.0)
    assert snap.electrons() == pytest.approx(8.0, abs=1e-4)
    assert "augmentation occupancies" in text_of(SI2)


def test_cp2k_cube():
    snap = read_density(C2H2)
    assert snap.symbols == ["C", "C", "H", "H"] and snap.grid_shape == (42, 20, 20)
    steps = np.linalg.norm(snap.cell, axis=1) / snap.grid_shape
    assert steps[0] != pytest.approx(steps[1])  # a different step per axis
    assert np.all(snap.origin > 1.0)
    assert snap.electrons() == pytest.approx(9.745409, rel=1e-5)  # what the file's own comment says


# ---------------------------------------------------------------- augmentation occupancies carried over


def after_total_grid(text: str) -> str:
    """Everything from the first augmentation occupancies line on."""
    return text[text.index("\naugmentation occupancies") + 1:]


def test_augmentation_part_of_a_real_file():
    augmentation = read_augmentation(GA4)
    text = text_of(GA4)
    assert augmentation.tail.decode("ascii") == after_total_grid(text)
    assert augmentation.blocks == ("total", "magnetization") and augmentation.grid_shape == (40, 40, 40)
    assert augmentation.tail.count(b"augmentation occupancies") == 8  # 4 atoms, total and magnetisation
    moments = "  0.100000000000E+01  0.100000000000E+01  0.100000000000E+01  0.100000000000E+01\n   40   40   40\n"
    assert moments in augmentation.tail.decode("ascii")


def moved(snapshot: Snapshot, atom: int, by) -> Snapshot:
    positions = snapshot.positions.copy()
    positions[atom] += by
    return Snapshot(snapshot.symbols, positions, snapshot.cell, source="moved.vasp")


def test_augmentation_refused_for_other_atoms():
    augmentation, structure = read_augmentation(GA4), read_density(GA4)
    check_augmentation_fits(augmentation, structure, (40, 40, 40))
    check_augmentation_fits(augmentation, moved(structure, 2, structure.cell[0]), (40, 40, 40))  # a periodic image
    check_augmentation_fits(augmentation, moved(structure, 2, [0.005, 0, 0]), (40, 40, 40))
    with pytest.raises(DeepChargeError, match=r"moved.vasp: the augmentation occupancies of .*vasp5_Ga4.* belong to "
                                              r"other positions: atom 3 \(Ga\) lies 0.05 Å from its place there"):
        check_augmentation_fits(augmentation, moved(structure, 2, [0.0, 0.05, 0.0]), (40, 40, 40))
    other = Snapshot(["Ga", "Ga", "As", "Ga"], structure.positions, structure.cell, source="GaAs.vasp")
    with pytest.raises(DeepChargeError, match="other atoms: Ga4 there, Ga2 As1 Ga1 here"):
        check_augmentation_fits(augmentation, other, (40, 40, 40))
    strained = Snapshot(structure.symbols, structure.positions, structure.cell * 1.01, source="strained.vasp")
    with pytest.raises(DeepChargeError, match="another cell: its vectors differ by up to 0.044. Å"):
        check_augmentation_fits(augmentation, strained, (40, 40, 40))
    with pytest.raises(DeepChargeError, match="its magnetisation grid .40 40 40. is carried over with them, so predict "
                                              "on that grid"):
        check_augmentation_fits(augmentation, structure, (20, 20, 20))


@pytest.fixture(scope="module")
def ga_model(tmp_path_factory):
    """A tiny Ga model, trained for two steps on the real file."""
    return train_ga_model(tmp_path_factory.mktemp("ga_model"), "ga.pth")


def test_predicted_chgcar_carries_occupancies_and_magnetisation(workdir, ga_model):
    assert main(["predict", "-m", str(ga_model), "-s", str(GA4), "-o", "rho.CHGCAR.gz",
                 "--augmentation-from", str(GA4)]) == 0
    written, source = text_of("rho.CHGCAR.gz"), text_of(GA4)
    assert after_total_grid(written) == after_total_grid(source)  # byte for byte: occupancies, moments, m grid
    assert written.splitlines()[0].endswith(f"PAW occupancies from {GA4}")
    predicted = read_density("rho.CHGCAR.gz")
    sample = np.random.default_rng(0).choice(40**3, 500, replace=False)  # the total grid replaced: model values
    direct = Predictor.from_file(str(ga_model), "cpu").predict_points(predicted, predicted.grid_points(sample))
    np.testing.assert_allclose(predicted.density.ravel()[sample], direct, rtol=1e-9, atol=1e-10)
    assert not np.allclose(predicted.density, read_density(GA4).density, rtol=1e-3)
    np.testing.assert_array_equal(read_chgcar("rho.CHGCAR.gz", block="magnetization").density,
                                  read_chgcar(GA4, block="magnetization").density)


def test_augmentation_refused_before_any_work(workdir, capsys):
    # no model file at all: the output name and the source are judged first
    assert main(["predict", "-m", "absent.pth", "-s", str(GA4), "-o", "rho.cube",
                 "--augmentation-from", str(GA4)]) == 1
    assert "rho.cube: --augmentation-from writes the occupancies into a CHGCAR" in capsys.readouterr().err
    write_chgcar("ours_CHGCAR", read_density(GA4))
    assert main(["predict", "-m", "absent.pth", "-s", str(GA4), "-o", "rho.CHGCAR",
                 "--augmentation-from", "ours_CHGCAR"]) == 1
    assert "ours_CHGCAR: holds no augmentation occupancies" in capsys.readouterr().err
