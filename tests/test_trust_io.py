"""Trusting what is read (issue 26): non-collinear CHGCARs, potentials that are no densities, directories of mixed
files, one block shown by `info`, a store's block, written coordinates."""

import gzip
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_input
from test_cli_errors import run_failing
from test_io import chgcar_text, grid

from deepcharge.cli import main
from deepcharge.data.systems import expand_systems, load_system
from deepcharge.entrypoints.info import run_info
from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.io import read_density, read_structure, write_density
from deepcharge.io.chgcar import format_values, read_augmentation, read_chgcar, write_chgcar_blocks
from deepcharge.snapshot import Snapshot

REAL = Path(__file__).resolve().parent / "data" / "realfiles"
GA4 = REAL / "vasp5_Ga4_spin_aug_CHGCAR.gz"
NON_COLLINEAR_BLOCKS = ("total", "magnetization_x", "magnetization_y", "magnetization_z")
SHAPE = (4, 4, 4)
POTENTIAL = grid(7) - 40.0  # eV, as a LOCPOT holds it


def text_of(path) -> str:
    with gzip.open(path, "rt") as handle:
        return handle.read()


def ga4_parts():
    """The real spin-polarised Ga4 file's POSCAR part (with its blank line), its occupancy blocks of the total
    density and its line of per-atom moments."""
    text = text_of(GA4)
    dims = "   40   40   40\n"
    occupancies = text.index("augmentation occupancies")
    second_grid = text.index(dims, occupancies)
    moments = text.rindex("\n", 0, second_grid - 1) + 1
    return text[: text.index(dims)], text[occupancies:moments], text[moments:second_grid]


def non_collinear_grids():
    """ρ·V of the total density (positive) and of m_x, m_y, m_z on a 4×4×4 grid."""
    rng = np.random.default_rng(26)
    return [rng.uniform(1.0, 30.0, SHAPE)] + [rng.uniform(-2.0, 2.0, SHAPE) for _ in range(3)]


def non_collinear_text(grids) -> str:
    """A non-collinear CHGCAR by VASP's layout (LNONCOLLINEAR), on the real Ga4 file's atoms and occupancies: four
    grids, each followed by its occupancy blocks, first the real ones, then the same blocks headed
    'augmentation occupancies (imaginary part)'; before each grid but the first, a line of one value per atom."""
    header, occupancies, moments = ga4_parts()
    imaginary = occupancies.replace("augmentation occupancies", "augmentation occupancies (imaginary part)")
    text = header
    for index, values in enumerate(grids):
        text += (moments if index else "") + "    4    4    4\n"
        text += format_values(values.ravel(order="F")).decode("ascii") + occupancies + imaginary
    return text


@pytest.fixture
def non_collinear(tmp_path):
    path = tmp_path / "NiO_soc_CHGCAR"
    path.write_text(non_collinear_text(non_collinear_grids()))
    return path


# ---------------------------------------------------------------- non-collinear CHGCARs


def test_non_collinear_file_reads_every_block(non_collinear):
    grids = non_collinear_grids()
    for name, values in zip(NON_COLLINEAR_BLOCKS, grids):
        snap = read_chgcar(non_collinear, block=name)
        assert snap.spin_blocks == NON_COLLINEAR_BLOCKS
        assert snap.symbols == ["Ga"] * 4 and snap.grid_shape == SHAPE
        np.testing.assert_allclose(snap.density * snap.volume, values, rtol=1e-10)  # 11 digits written
    with pytest.raises(Exception, match="no 'magnetization' density block; the file holds: total, magnetization_x"):
        read_chgcar(non_collinear, block="magnetization")


def test_non_collinear_augmentation_carried_byte_for_byte(non_collinear, tmp_path):
    augmentation = read_augmentation(non_collinear)
    source = non_collinear.read_text()
    after_total_grid = source[source.index("augmentation occupancies"):]
    assert augmentation.tail.decode("ascii") == after_total_grid
    assert augmentation.blocks == NON_COLLINEAR_BLOCKS and augmentation.grid_shape == SHAPE
    assert augmentation.tail.count(b"augmentation occupancies (imaginary part)") == 16  # 4 atoms, 4 grids
    structure = read_chgcar(non_collinear)
    predicted = np.full(SHAPE, 0.5)
    write_chgcar_blocks(tmp_path / "rho.CHGCAR", structure, SHAPE, [predicted.ravel(order="F")],
                        augmentation=augmentation)
    written = (tmp_path / "rho.CHGCAR").read_text()
    assert written[written.index("augmentation occupancies"):] == after_total_grid
    np.testing.assert_allclose(read_chgcar(tmp_path / "rho.CHGCAR").density, predicted, rtol=1e-10)  # 11 digits written
    for name in NON_COLLINEAR_BLOCKS[1:]:
        np.testing.assert_array_equal(read_chgcar(tmp_path / "rho.CHGCAR", block=name).density,
                                      read_chgcar(non_collinear, block=name).density)


# ---------------------------------------------------------------- potentials are not densities


@pytest.fixture
def locpot(tmp_path):
    """A LOCPOT: the CHGCAR layout, its values a potential in eV (not ρ·V)."""
    return write_text(tmp_path / "NaCl_LOCPOT.gz", chgcar_text([POTENTIAL]))


def write_text(path, text):
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("ascii")))
    else:
        path.write_text(text)
    return path


def test_locpot_is_refused_as_a_density(locpot):
    refusal = f"{locpot}: a VASP LOCPOT holds a potential (eV), not a density: give a CHGCAR, AECCAR or PARCHG"
    for load in (read_density, load_system):
        with pytest.raises(FileFormatError, match=re.escape(refusal)):
            load(locpot)
    with pytest.raises(DeepChargeError, match=re.escape(f"-s: {refusal}")):
        expand_systems([str(locpot)], ".", "-s")
    structure = read_structure(locpot)  # predict -s LOCPOT: its structure and grid
    assert structure.quantity == "potential" and structure.grid_shape == POTENTIAL.shape
    np.testing.assert_allclose(structure.density, POTENTIAL, rtol=1e-11)  # eV as written, not divided by V


def test_elfcar_is_no_density_either(tmp_path):
    elfcar = write_text(tmp_path / "ELFCAR", chgcar_text([grid(0) / 50.0]))
    with pytest.raises(FileFormatError, match="ELFCAR holds the electron localisation function, not a density"):
        read_density(elfcar)
    assert read_structure(elfcar).quantity == "ELF"


def test_info_shows_a_potential_never_electrons(workdir, locpot, capsys):
    assert main(["info", str(locpot), "--json", "info.json"]) == 0
    printed = capsys.readouterr().out
    mean, low, high = POTENTIAL.mean(), POTENTIAL.min(), POTENTIAL.max()
    assert f"  potential  mean {mean:.4f} eV, min {low:.4f} eV, max {high:.4f} eV (not a density)" in printed
    assert "electrons" not in printed
    (record,) = json.loads((workdir / "info.json").read_text())
    assert record["quantity"] == "potential" and record["electrons"] is None
    assert record["values"] == pytest.approx({"mean": mean, "min": low, "max": high, "unit": "eV"}, rel=1e-10)


def test_train_and_convert_refuse_a_locpot_before_any_work(workdir, locpot, capsys):
    config = json.loads(tiny_input(workdir).read_text())
    config["training"]["training_data"]["systems"] = [str(locpot)]
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "training.training_data.systems", locpot, "a potential (eV), not "
                "a density: give a CHGCAR")
    run_failing(capsys, ["convert", str(locpot), "-o", "store.h5"], locpot, "not a density")
    assert sorted(os.listdir(workdir)) == ["NaCl_LOCPOT.gz", "input.json"]


# ---------------------------------------------------------------- a directory of mixed files


@pytest.fixture
def mixed(tmp_path):
    """Two densities, a potential, a CHGCAR cut short, one with a garbled header and notes that are no density file
    at all."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = chgcar_text()
    write_text(folder / "a_CHGCAR", good)
    write_text(folder / "b.CHGCAR.gz", chgcar_text([grid(5)]))
    write_text(folder / "LOCPOT", chgcar_text([POTENTIAL]))
    write_text(folder / "cut_CHGCAR", good[: len(good) // 2])
    write_text(folder / "garbled_CHGCAR", good.replace("  1  2\n", "  1  x\n", 1))
    write_text(folder / "notes.txt", "what these runs were\n")
    return folder


def test_directory_of_mixed_files_stops_a_command_that_needs_densities(mixed, workdir, capsys):
    with pytest.raises(DeepChargeError) as raised:
        expand_systems([str(mixed)], ".", "-s")
    message = str(raised.value)
    assert message.startswith("-s: 2 of the 5 files give no density (remove them, or name the files to use): ")
    assert f"{mixed / 'LOCPOT'}: a VASP LOCPOT holds a potential" in message
    assert f"{mixed / 'garbled_CHGCAR'}: garbled header: expected atom counts, found '1 x'" in message
    # a file cut short is seen only when read (checking every grid first would read every file twice)
    assert "cut_CHGCAR" not in message and "notes.txt" not in message and "\n" not in message
    assert expand_systems([str(mixed / "?_CHGCAR"), str(mixed / "b.*")], ".", "-s") == [
        str(mixed / "a_CHGCAR"), str(mixed / "b.CHGCAR.gz")]

    config = json.loads(tiny_input(workdir).read_text())
    config["training"]["training_data"]["systems"] = [str(mixed)]
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "2 of the 5 files give no density", "LOCPOT", "garbled_CHGCAR")
    run_failing(capsys, ["convert", str(mixed), "-o", "store.h5"], "2 of the 5 files", "LOCPOT")
    assert sorted(os.listdir(workdir)) == ["input.json", "mixed"]


def test_info_of_a_mixed_directory_names_each_unreadable_file_once(mixed, capsys, caplog):
    with caplog.at_level(logging.WARNING, logger="deepcharge"):
        records = run_info([str(mixed)])
    assert [Path(r["file"]).name for r in records] == ["LOCPOT", "a_CHGCAR", "b.CHGCAR.gz"]
    assert [r["quantity"] for r in records] == ["potential", "density", "density"]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{mixed / 'cut_CHGCAR'}: density grid truncated") and "skipped" in warnings[0]
    assert warnings[1].startswith(f"{mixed / 'garbled_CHGCAR'}: ") and "skipped" in warnings[1]
    assert "notes.txt" not in capsys.readouterr().out


# ---------------------------------------------------------------- one block shown; the block a store holds


def test_info_block_shows_and_integrates_one_block(workdir, non_collinear, capsys):
    assert main(["info", str(GA4), "--block", "magnetization", "--json", "spin.json"]) == 0
    printed = capsys.readouterr().out
    magnetisation = read_chgcar(GA4, block="magnetization")
    assert f"  moment     {magnetisation.electrons():.4f} μB (∫ magnetization dV)" in printed
    assert "  blocks     total, magnetization   (shown: magnetization)" in printed and "electrons" not in printed
    (record,) = json.loads((workdir / "spin.json").read_text())
    assert record["block"] == "magnetization" and record["electrons"] is None
    assert record["moment"] == pytest.approx(magnetisation.electrons(), rel=1e-12)

    assert main(["info", str(non_collinear)]) == 0
    printed = capsys.readouterr().out
    assert "  blocks     total, magnetization_x, magnetization_y, magnetization_z   (shown: total)" in printed
    assert f"  electrons  {read_chgcar(non_collinear).electrons():.4f}" in printed
    (record,) = run_info([str(non_collinear)], block="magnetization_y")
    assert record["moment"] == pytest.approx(non_collinear_grids()[2].mean(), rel=1e-10)


def test_info_block_refused_where_there_is_none(workdir, capsys):
    (workdir / "POSCAR").write_text(text_of(GA4).split("\n\n")[0] + "\n")
    run_failing(capsys, ["info", "POSCAR", "--block", "magnetization"], "POSCAR", "no 'magnetization' density block")
    run_failing(capsys, ["info", str(GA4), "--block", "magnetization_x"], GA4.name,
                "no 'magnetization_x' density block; the file holds: total, magnetization")


def test_store_records_its_block_and_info_says_so(workdir, capsys):
    assert main(["convert", str(GA4), "-o", "spin.h5", "--density-block", "magnetization"]) == 0
    capsys.readouterr()
    assert main(["info", "spin.h5", "--json", "store.json"]) == 0
    assert "  blocks     total, magnetization   (holds: magnetization)" in capsys.readouterr().out
    (record,) = json.loads((workdir / "store.json").read_text())
    assert record["file"] == "spin.h5::vasp5_Ga4_spin_aug" and record["block"] == "magnetization"
    assert record["moment"] == pytest.approx(read_chgcar(GA4, block="magnetization").electrons(), rel=1e-12)
    assert main(["info", "spin.h5", "--block", "magnetization"]) == 0
    run_failing(capsys, ["info", "spin.h5", "--block", "total"], "spin.h5::vasp5_Ga4_spin_aug",
                "holds the 'magnetization' density block, not 'total'")


def test_info_json_gives_the_structure(workdir, non_collinear):
    (record,) = run_info([str(non_collinear)], json_out="info.json")
    assert json.loads((workdir / "info.json").read_text()) == [record]
    snap = read_chgcar(non_collinear)
    assert record["symbols"] == ["Ga"] * 4
    np.testing.assert_allclose(record["positions"], snap.positions, rtol=1e-15)
    np.testing.assert_allclose(record["positions"][0], np.array([0.156043, 0.843957, 0.916654]) @ snap.cell)


# ---------------------------------------------------------------- what is written


@pytest.mark.parametrize("name", ["rho.CHGCAR", "rho.xsf", "rho.cube"])
def test_no_negative_zero_in_written_coordinates(tmp_path, name):
    cell = np.array([[3.0, -1e-17, 0.0], [-0.0, 3.0, 2e-16], [0.0, -3e-16, 3.0]])
    positions = np.array([[-1e-16, 1.5, -0.0], [1.5, -4e-17, 1.5]])
    snap = Snapshot(["H", "H"], positions, cell, density=np.ones((2, 2, 2)), origin=np.array([-0.0, 0.0, 0.0]))
    write_density(tmp_path / name, snap)
    header = (tmp_path / name).read_text().split("\n\n")[0].split("BEGIN_DATAGRID_3D_density")[0]
    numbers = [word for line in header.splitlines()[1:] for word in line.split()]
    assert not [number for number in numbers if re.fullmatch(r"-0\.0*1?", number)], header
    np.testing.assert_allclose(read_density(tmp_path / name).positions, positions, atol=1e-6)


def test_plot_says_what_it_wrote(workdir, caplog):
    (workdir / "lcurve.out").write_text("# step wall_s eps_mae_trn\n0 0.0 50.0\n10 1.0 20.0\n")
    with caplog.at_level(logging.INFO, logger="deepcharge"):
        assert main(["plot", "lcurve.out", "-o", "curve.png"]) == 0
    assert [record.getMessage() for record in caplog.records] == ["curve.png written: learning curves of lcurve.out"]
    assert (workdir / "curve.png").is_file()
