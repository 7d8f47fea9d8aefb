"""Volumetric file readers/writers (CHGCAR layout, cube), format dispatch and `info`."""

import gzip
import json
import os
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.io.cube import read_cube_data
from ase.io.cube import write_cube as ase_write_cube
from ase.units import Bohr

from deepcharge.cli import build_parser, main
from deepcharge.entrypoints.info import run_info
from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.io import is_density_file, output_format, read_density, read_options, read_structure, write_density
from deepcharge.io.chgcar import read_chgcar, write_chgcar
from deepcharge.io.cube import read_cube, write_cube
from deepcharge.io.store import StoreItem, read_store_snapshot, write_store
from deepcharge.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[1]


def data_file(relative):
    """A data file shipped with the examples, e.g. "si64/si64_0.CHGCAR.gz"."""
    set_name, _, rest = relative.partition("/")
    shipped = {"si64": "si64_one_shot", "al32": "al32_one_shot", "water": "water_one_shot", "molecules": "molecules"}
    return ROOT / "input_examples" / shipped[set_name] / "data" / rest


# ---------------------------------------------------------------- synthetic CHGCAR-layout files

CELL = np.array([[4.0, 0.0, 0.0], [0.5, 5.0, 0.0], [0.0, 0.3, 6.0]])
FRAC = np.array([[0.0, 0.0, 0.0], [0.25, 0.5, 0.75], [0.5, 0.1, 0.9]])
SHAPE = (3, 4, 5)


def grid(seed):
    """A random positive grid of ρ·V values, shape SHAPE."""
    return np.random.default_rng(seed).uniform(0.1, 50.0, SHAPE)


def values_text(values, per_line=5):
    flat = values.ravel(order="F")
    rows = [flat[i : i + per_line] for i in range(0, flat.size, per_line)]
    return "".join("".join(f" {v:.11E}" for v in row) + "\n" for row in rows)


def augmentation_text(natoms, count=7):
    out = ""
    for atom in range(1, natoms + 1):
        out += f"augmentation occupancies {atom:3d} {count:3d}\n"
        out += values_text(np.arange(count, dtype=float) * 0.01 + atom)
    return out


def chgcar_text(
    grids=None,
    species_line=" Si  O",
    comment="test",
    scale="1.0",
    cell=CELL,
    extra_mode_line="",
    mode="Direct",
    coords=FRAC,
    flags="",
    augmentation=False,
    per_atom=False,
    per_line=5,
):
    """A small CHGCAR-layout file: 1 Si + 2 O, one grid per entry of ``grids``."""
    grids = [grid(0)] if grids is None else grids
    lines = [comment, scale] + ["  ".join(f"{x:.10f}" for x in row) for row in cell]
    if species_line is not None:
        lines.append(species_line)
    lines += ["  1  2"] + ([extra_mode_line] if extra_mode_line else []) + [mode]
    lines += ["  ".join(f"{x:.10f}" for x in row) + flags for row in coords]
    text = "\n".join(lines) + "\n\n"
    for index, values in enumerate(grids):
        if index and per_atom:
            text += values_text(np.array([0.1, -0.2, 0.3]))
        text += " ".join(str(n) for n in values.shape) + "\n" + values_text(values, per_line)
        if augmentation:
            text += augmentation_text(3)
    return text


def write_text(path, text):
    path.write_text(text)
    return path


def test_synthetic_chgcar_values_and_geometry(tmp_path):
    path = write_text(tmp_path / "CHGCAR", chgcar_text())
    snap = read_chgcar(path)
    volume = abs(np.linalg.det(CELL))
    assert snap.symbols == ["Si", "O", "O"]
    np.testing.assert_allclose(snap.cell, CELL)
    np.testing.assert_allclose(snap.positions, FRAC @ CELL, atol=1e-12)
    np.testing.assert_allclose(snap.density, grid(0) / volume, rtol=1e-11)
    assert snap.density.flags["C_CONTIGUOUS"]
    assert snap.spin_blocks == ("total",)
    assert snap.pbc == (True, True, True)


def test_vasp4_header_names_from_comment(tmp_path):
    path = write_text(tmp_path / "CHGCAR", chgcar_text(species_line=None, comment="Si O  snapshot 3"))
    assert read_chgcar(path).symbols == ["Si", "O", "O"]


def test_vasp4_header_without_names_needs_symbols(tmp_path, capsys):
    path = write_text(tmp_path / "CHGCAR", chgcar_text(species_line=None, comment="H2O"))  # names something else
    with pytest.raises(FileFormatError, match="name the elements of its 2 species in order with --species"):
        read_chgcar(path)
    assert read_chgcar(path, symbols=["Ge", "N"]).symbols == ["Ge", "N", "N"]
    with read_options(species=["Ge", "N"]):
        assert read_density(path).symbols == ["Ge", "N", "N"]
        vasp5 = write_text(tmp_path / "vasp5_CHGCAR", chgcar_text())
        assert read_density(vasp5).symbols == ["Si", "O", "O"]  # a species line wins
    with read_options(species=["Ge"]), pytest.raises(FileFormatError, match="1 species named .--species. for a "
                                                                             "header of 2 species and 3 atoms"):
        read_density(path)
    assert main(["info", str(path)]) == 1
    assert "--species" in capsys.readouterr().err
    assert main(["info", str(path), "--species", "Ge", "N"]) == 0
    assert "GeN2" in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    ["train", "input.json"], ["test", "-s", "x"], ["predict", "-s", "x", "-o", "y.cube"],
    ["model-devi", "-m", "a", "b", "-s", "x", "-o", "y.cube"], ["compare", "-m", "a", "-s", "x"], ["info", "x"],
    ["convert", "x", "-o", "y.h5"], ["neighbor-stat", "-s", "x", "-r", "3", "-t", "Si"],
])
def test_every_command_reading_density_files_takes_species_and_xsf_unit(command):
    args = build_parser().parse_args([*command, "--species", "Ge", "N", "--xsf-unit", "e/bohr3"])
    assert args.species == ["Ge", "N"] and args.xsf_unit == "e/bohr3"


def test_potcar_suffixes_in_species_line(tmp_path):
    path = write_text(tmp_path / "CHGCAR", chgcar_text(species_line=" Si_pv  O/8a7c2d"))
    assert read_chgcar(path).symbols == ["Si", "O", "O"]


def test_augmentation_blocks_are_skipped(tmp_path):
    path = write_text(tmp_path / "CHGCAR", chgcar_text(augmentation=True))
    snap = read_chgcar(path)
    np.testing.assert_allclose(snap.density * snap.volume, grid(0), rtol=1e-11)
    assert snap.spin_blocks == ("total",)


@pytest.mark.parametrize("augmentation", [True, False])
def test_spin_polarised_both_blocks(tmp_path, augmentation):
    total, magnetization = grid(1), grid(2) - 25.0
    text = chgcar_text([total, magnetization], augmentation=augmentation, per_atom=True)
    path = write_text(tmp_path / "CHGCAR", text)
    volume = abs(np.linalg.det(CELL))
    first = read_chgcar(path)
    second = read_chgcar(path, block="magnetization")
    assert first.spin_blocks == second.spin_blocks == ("total", "magnetization")
    np.testing.assert_allclose(first.density * volume, total, rtol=1e-11)
    np.testing.assert_allclose(second.density * volume, magnetization, rtol=1e-11)
    with pytest.raises(FileFormatError, match="total, magnetization"):
        read_chgcar(path, block="magnetization_z")


def test_non_collinear_four_blocks(tmp_path):
    grids = [grid(seed) for seed in range(4)]
    path = write_text(tmp_path / "CHGCAR", chgcar_text(grids, augmentation=True, per_atom=True))
    volume = abs(np.linalg.det(CELL))
    names = ("total", "magnetization_x", "magnetization_y", "magnetization_z")
    for name, values in zip(names, grids):
        snap = read_chgcar(path, block=name)
        assert snap.spin_blocks == names
        np.testing.assert_allclose(snap.density * volume, values, rtol=1e-11)
    with pytest.raises(FileFormatError, match="magnetization"):
        read_chgcar(path, block="magnetization")


def test_chg_ten_per_line_detected_by_content(tmp_path):
    path = write_text(tmp_path / "density.dat", chgcar_text(per_line=10))
    assert is_density_file(path)
    snap = read_density(path)
    np.testing.assert_allclose(snap.density * snap.volume, grid(0), rtol=1e-11)


def test_negative_scale_is_the_volume(tmp_path):
    path = write_text(tmp_path / "CHGCAR", chgcar_text(scale="-250.0"))
    snap = read_chgcar(path)
    factor = (250.0 / abs(np.linalg.det(CELL))) ** (1 / 3)
    assert snap.volume == pytest.approx(250.0)
    np.testing.assert_allclose(snap.cell, CELL * factor)
    np.testing.assert_allclose(snap.density, grid(0) / 250.0, rtol=1e-11)


def test_selective_dynamics_and_cartesian(tmp_path):
    cart = FRAC @ CELL
    text = chgcar_text(
        scale="2.0", extra_mode_line="Selective dynamics", mode="Cartesian", coords=cart, flags="  T T F"
    )
    snap = read_chgcar(write_text(tmp_path / "CHGCAR", text))
    np.testing.assert_allclose(snap.cell, 2 * CELL)
    np.testing.assert_allclose(snap.positions, 2 * cart, atol=1e-12)


def test_header_matches_ase_poscar_reader(tmp_path):
    source = data_file("si64/si64_0.CHGCAR.gz")
    with gzip.open(source, "rt") as handle:
        header = [next(handle) for _ in range(8 + 64)]
    poscar = write_text(tmp_path / "POSCAR", "".join(header))
    atoms = ase.io.read(poscar, format="vasp")
    snap = read_chgcar(source)
    assert snap.symbols == atoms.get_chemical_symbols()
    np.testing.assert_allclose(snap.cell, atoms.cell[:], atol=1e-12)
    np.testing.assert_allclose(snap.positions, atoms.positions, atol=1e-10)
    assert not is_density_file(poscar)
    structure = read_structure(poscar)
    assert structure.density is None and structure.natoms == 64


# ---------------------------------------------------------------- shipped data


def test_si64_training_snapshot():
    snap = read_density(data_file("si64/si64_0.CHGCAR.gz"))
    assert snap.natoms == 64 and set(snap.symbols) == {"Si"}
    assert snap.grid_shape == (64, 64, 64)
    assert snap.electrons() == pytest.approx(64 * 4.34, rel=0.01)
    assert snap.spin_blocks == ("total",)


@pytest.mark.parametrize(
    "relative, formula, shape",
    [
        ("al32/al32_0.CHGCAR.gz", "Al32", (48, 48, 48)),
        ("water/water_0.CHGCAR.gz", "H24O12", (48, 48, 48)),
        ("molecules/H2O.CHGCAR.gz", "H2O", (48, 60, 54)),
    ],
)
def test_other_sets_read(relative, formula, shape):
    snap = read_structure(data_file(relative))
    assert snap.to_ase().get_chemical_formula() == formula
    assert snap.grid_shape == shape
    assert snap.density.min() > -0.02


@pytest.mark.parametrize("name", ["CHGCAR", "CHGCAR.gz"])
def test_chgcar_round_trip(tmp_path, name):
    original = read_density(data_file("si64/si64_0.CHGCAR.gz"))
    path = tmp_path / name
    write_chgcar(path, original)
    again = read_chgcar(path)
    assert again.symbols == original.symbols
    np.testing.assert_allclose(again.cell, original.cell, rtol=1e-15)
    np.testing.assert_allclose(again.positions, original.positions, atol=1e-12)
    np.testing.assert_allclose(again.density, original.density, rtol=1e-10)
    with open(path, "rb") as handle:
        assert (handle.read(2) == b"\x1f\x8b") == name.endswith(".gz")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_chgcar_writer_uses_vasp_number_style(tmp_path):
    density = np.array([1.5, -0.25, 0.0, 2e-120, 123456.789]).reshape(5, 1, 1)
    snap = Snapshot(["H"], np.zeros((1, 3)), np.eye(3), density=density)
    write_chgcar(tmp_path / "CHGCAR", snap, comment="numbers")
    last = (tmp_path / "CHGCAR").read_text().splitlines()[-1]
    expected = " 0.15000000000E+01 -.25000000000E+00 0.00000000000E+00 0.00000000000E+00 0.12345678900E+06"
    assert last == expected
    again = read_chgcar(tmp_path / "CHGCAR").density.ravel()
    np.testing.assert_array_equal(again, [1.5, -0.25, 0, 0, 123456.789])


def test_unsorted_species_and_origin_written(tmp_path):
    snap = Snapshot(
        ["H", "O", "H"],
        np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [2.0, 1.0, 1.0]]),
        np.diag([4.0, 4.0, 4.0]),
        density=grid(3),
        origin=np.array([0.5, 0.0, 0.0]),
    )
    write_density(tmp_path / "out.CHGCAR", snap)
    again = read_density(tmp_path / "out.CHGCAR")
    assert again.symbols == ["H", "O", "H"]
    np.testing.assert_allclose(again.positions, snap.positions - snap.origin, atol=1e-12)


# ---------------------------------------------------------------- cube


def small_snapshot():
    positions = np.array([[0.3, 0.2, 0.1], [1.9, 2.2, 1.4]])
    cell = np.array([[4.0, 0.0, 0.0], [0.0, 4.5, 0.0], [0.2, 0.0, 5.0]])
    return Snapshot(["C", "O"], positions, cell, density=grid(4) / 10.0, origin=np.array([0.1, -0.2, 0.3]))


@pytest.mark.parametrize("name", ["rho.cube", "rho.cube.gz"])
def test_cube_round_trip(tmp_path, name):
    snap = small_snapshot()
    write_density(tmp_path / name, snap)
    once = read_density(tmp_path / name)
    assert once.symbols == ["C", "O"]
    np.testing.assert_allclose(once.density, snap.density, rtol=5e-6)
    np.testing.assert_allclose(once.positions, snap.positions, atol=1e-6 * Bohr)
    np.testing.assert_allclose(once.origin, snap.origin, atol=1e-6 * Bohr)
    np.testing.assert_allclose(once.cell, snap.cell, atol=5 * 1e-6 * Bohr)
    write_cube(tmp_path / "again.cube", once)
    twice = read_cube(tmp_path / "again.cube")
    np.testing.assert_allclose(twice.density, once.density, rtol=1e-12)


def test_cube_lines_restart_every_z_row(tmp_path):
    write_cube(tmp_path / "rho.cube", small_snapshot())
    body = (tmp_path / "rho.cube").read_text().splitlines()[2 + 4 + 2 :]
    assert [len(line.split()) for line in body[:2]] == [5, 5]  # nz = 5 values, then a new row
    assert len(body) == SHAPE[0] * SHAPE[1]


def test_cube_read_by_ase_and_ase_cube_read_by_us(tmp_path):
    snap = small_snapshot()
    write_cube(tmp_path / "ours.cube", snap)
    data, atoms = read_cube_data(str(tmp_path / "ours.cube"))
    np.testing.assert_allclose(data, snap.density * Bohr**3, rtol=5e-6)
    np.testing.assert_allclose(atoms.positions, snap.positions, atol=1e-5)
    np.testing.assert_allclose(atoms.cell[:], snap.cell, atol=1e-5)

    atoms = Atoms(snap.symbols, positions=snap.positions, cell=snap.cell, pbc=True)
    with open(tmp_path / "ase.cube", "w") as handle:
        ase_write_cube(handle, atoms, data=snap.density * Bohr**3, origin=snap.origin)
    ours = read_density(tmp_path / "ase.cube")
    np.testing.assert_allclose(ours.density, snap.density, rtol=1e-5)
    np.testing.assert_allclose(ours.positions, snap.positions, atol=1e-5)
    np.testing.assert_allclose(ours.origin, snap.origin, atol=1e-5)


def test_cube_negative_voxel_counts_mean_angstrom(tmp_path):
    text = "c1\nc2\n    1  0.5 0.0 0.0\n   -2  1.5 0.0 0.0\n   -2  0.0 2.0 0.0\n   -3  0.0 0.0 1.0\n"
    text += "    1  1.0  0.6 0.7 0.8\n"
    text += "\n".join(" ".join(str(v) for v in range(k, k + 3)) for k in (1, 4, 7, 10))
    snap = read_cube(write_text(tmp_path / "angstrom.cube", text + "\n"))
    np.testing.assert_allclose(snap.cell, np.diag([3.0, 4.0, 3.0]))
    np.testing.assert_allclose(snap.origin, [0.5, 0, 0])
    np.testing.assert_allclose(snap.positions, [[0.6, 0.7, 0.8]])
    np.testing.assert_allclose(snap.density.ravel(), np.arange(1, 13) / Bohr**3)


def test_orbital_cube_reads_first_orbital(tmp_path):
    header = "orbitals\nMO\n   -1  0.0 0.0 0.0\n    2  1.0 0.0 0.0\n    1  0.0 1.0 0.0\n    2  0.0 0.0 1.0\n"
    header += "    8  8.0  0.0 0.0 0.0\n    2    11   12\n"
    values = np.arange(8, dtype=float)  # (x, y, z, orbital) with z and orbital fastest
    snap = read_density(write_text(tmp_path / "mo.cub", header + " ".join(map(str, values)) + "\n"))
    assert snap.symbols == ["O"]
    assert snap.spin_blocks == ("orbital 11", "orbital 12")
    np.testing.assert_allclose(snap.density.ravel() * Bohr**3, [0, 2, 4, 6])


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    for function in (read_density, read_structure, read_chgcar, read_cube):
        with pytest.raises(FileFormatError, match="nothere.*no such file"):
            function(tmp_path / "nothere")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t[: t.rindex("\n", 0, len(t) - 200)], "density grid truncated: expected 60 values"),
        (lambda t: t.replace("1.0\n", "one\n", 1), "garbled header"),
        (lambda t: t.replace("  1  2\n", "  1  x\n", 1), "garbled header"),
        (lambda t: t.replace("\n3 4 5\n", "\n3 4 -5\n", 1), "must be positive"),
        (lambda t: t.replace("\n3 4 5\n", "\n3 four 5\n", 1), "garbled grid dimensions"),
        (lambda t: t.replace("  1  2\n", "  1  3\n", 1), "atom count mismatch"),
        (lambda t: t.replace(" Si  O\n", " Si\n", 1), "atom count mismatch"),
    ],
)
def test_chgcar_errors_name_the_file(tmp_path, mutate, message):
    path = write_text(tmp_path / "bad_CHGCAR", mutate(chgcar_text()))
    with pytest.raises(FileFormatError, match=message) as info:
        read_density(path)
    assert "bad_CHGCAR" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_nan_and_garbled_values(tmp_path):
    text = chgcar_text()
    first, last = text.split("\n3 4 5\n")[1].split()[0], text.split()[-1]
    with pytest.raises(FileFormatError, match=r"nan_CHGCAR: 'total' density holds 1 NaN/inf values \(first: value 1 "
                                              r"\(line 14\)\)"):
        read_chgcar(write_text(tmp_path / "nan_CHGCAR", text.replace(first, "NaN", 1)))
    with pytest.raises(FileFormatError, match=r"garbled 'total' density: value 60 is '1.2.3' \(line 25\)"):
        read_chgcar(write_text(tmp_path / "garbled_CHGCAR", text.replace(last, "1.2.3")))


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("0.5000000000  0.1000000000  0.9000000000", "NaN  0.1000000000  0.9000000000"),
     "line 11: position of atom 3 holds NaN/inf"),
    (lambda t: t.replace("0.5000000000  5.0000000000", "0.5000000000  inf", 1), "line 4: the lattice vector 2 holds"),
    (lambda t: t.replace("\n1.0\n", "\nnan\n", 1), "line 2: the scale factor line holds NaN/inf"),
])
def test_chgcar_refuses_non_finite_header_values(tmp_path, mutate, message):
    path = write_text(tmp_path / "nan_CHGCAR", mutate(chgcar_text()))
    with pytest.raises(FileFormatError, match=f"nan_CHGCAR: {message}"):
        read_density(path)


def test_cube_refuses_non_finite_header_values(tmp_path):
    write_cube(tmp_path / "good.cube", small_snapshot())
    lines = (tmp_path / "good.cube").read_text().splitlines()
    for number, what in ((3, "atom count and origin"), (5, "voxel line 2"), (8, "atom 2")):
        broken = list(lines)
        fields = broken[number - 1].split()
        fields[-1] = "nan"
        broken[number - 1] = "  ".join(fields)
        path = write_text(tmp_path / "nan.cube", "\n".join(broken) + "\n")
        with pytest.raises(FileFormatError, match=f"nan.cube: line {number}: the {what}.* holds NaN/inf"):
            read_density(path)


def test_store_refuses_non_finite_values(tmp_path):
    snap = small_snapshot()
    snap.source = "good_source.cube"
    write_store(tmp_path / "s.h5", [StoreItem(snap, "0" * 64)])
    with h5py.File(tmp_path / "s.h5", "r+") as store:
        store["snapshots/good_source"]["positions"][1, 2] = np.nan
    with pytest.raises(FileFormatError, match="s.h5::good_source: dataset 'positions' holds 1 NaN/inf values"):
        read_store_snapshot(tmp_path / "s.h5", "good_source")


def test_cube_errors(tmp_path):
    write_cube(tmp_path / "good.cube", small_snapshot())
    text = (tmp_path / "good.cube").read_text()
    with pytest.raises(FileFormatError, match="short.cube: density grid truncated"):
        read_cube(write_text(tmp_path / "short.cube", text[:-100]))
    with pytest.raises(FileFormatError, match="nan.cube: density holds 1 NaN"):
        read_cube(write_text(tmp_path / "nan.cube", text.replace(text.split()[-1], "NaN")))
    lines = text.splitlines()
    lines[3] = "    3  abc 0 0"
    with pytest.raises(FileFormatError, match="garbled.cube: line 4: garbled header"):
        read_cube(write_text(tmp_path / "garbled.cube", "\n".join(lines)))


def test_truncated_gzip(tmp_path):
    data = gzip.compress(chgcar_text().encode())
    path = tmp_path / "cut_CHGCAR.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="cut_CHGCAR.gz: corrupt or truncated gzip"):
        read_density(path)


def test_not_a_density_file(tmp_path):
    path = write_text(tmp_path / "notes.txt", "hello\nworld\n")
    assert not is_density_file(path)
    with pytest.raises(FileFormatError, match="not a density file"):
        read_density(path)


def test_failed_writes_leave_nothing_behind(tmp_path):
    snap = small_snapshot()
    for name in ("CHGCAR", "x.cube", "CHGCAR.gz"):
        with pytest.raises(DeepChargeError, match="does not exist"):
            write_density(tmp_path / "missing_dir" / name, snap)
    target = write_text(tmp_path / "CHGCAR", "previous content")
    broken = Snapshot(snap.symbols, snap.positions, snap.cell, density=np.full(SHAPE, np.nan))
    with pytest.raises(FileFormatError, match="NaN"):
        write_density(target, broken)
    assert target.read_text() == "previous content"
    assert sorted(os.listdir(tmp_path)) == ["CHGCAR"]


@pytest.mark.parametrize("name", ["rho.CHGCAR.gz", "rho.cube.gz", "rho.xsf.gz"])
def test_gzip_header_carries_the_final_name(tmp_path, name):
    write_density(tmp_path / name, small_snapshot())
    data = (tmp_path / name).read_bytes()
    assert data[3] & 0x08  # FNAME set
    assert data[10:data.index(b"\0", 10)].decode() == name[:-3]  # what gunzip -N restores
    assert int.from_bytes(data[4:8], "little") == 0  # no time stamp: the same bytes every run


@pytest.mark.parametrize("name, kind", [("CHGCAR", "chgcar"), ("si_CHGCAR.gz", "chgcar"), ("x.AECCAR2", "chgcar"),
                                        ("rho.cube", "cube"), ("rho.CUB.gz", "cube"), ("rho.xsf", "xsf")])
def test_output_name_chooses_the_writer(tmp_path, name, kind):
    assert output_format(name).name == kind
    write_density(tmp_path / name, small_snapshot())
    assert read_density(tmp_path / name).grid_shape == SHAPE


@pytest.mark.parametrize("name", ["rho.vasp", "rho.dat", "rho.xyz.gz"])
def test_output_name_no_writer_takes_is_refused_first(workdir, capsys, name):
    with pytest.raises(DeepChargeError, match=f"{name}: no density writer for this name; name the output "
                                              r"\*CHGCAR\*.*\*.cube, \*.cub .*\*.xsf \(XCrySDen XSF\); "
                                              r".*charge-density\*.dat \(Quantum ESPRESSO.*\); each also .gz"):
        write_density(name, small_snapshot())
    # before any work: the model file does not even exist
    assert main(["predict", "-m", "absent.pth", "-s", "absent.vasp", "-o", name]) == 1
    assert f"{name}: no density writer" in capsys.readouterr().err
    assert main(["model-devi", "-m", "a.pth", "b.pth", "-s", "absent.vasp", "-o", name]) == 1
    assert f"{name}: no density writer" in capsys.readouterr().err
    assert os.listdir(workdir) == []


# ---------------------------------------------------------------- structures and info


def test_read_structure_from_ase_formats(tmp_path):
    molecule = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    ase.io.write(tmp_path / "water.xyz", molecule)
    with pytest.raises(FileFormatError, match="water.xyz: the structure has no cell"):
        read_structure(tmp_path / "water.xyz")
    molecule.center(vacuum=4.0)
    ase.io.write(tmp_path / "boxed.extxyz", molecule)
    snap = read_structure(tmp_path / "boxed.extxyz")
    assert snap.symbols == ["H", "H", "O"] and snap.density is None
    assert snap.pbc == (False, False, False)


def test_run_info(tmp_path, capsys):
    write_chgcar(tmp_path / "CHGCAR", read_chgcar(write_text(tmp_path / "in_CHGCAR", chgcar_text())))
    records = run_info([str(tmp_path / "CHGCAR")], json_out=str(tmp_path / "info.json"))
    printed = capsys.readouterr().out
    assert "Si" in printed and "3 x 4 x 5" in printed
    saved = json.loads((tmp_path / "info.json").read_text())
    assert saved == records
    record = saved[0]
    for key in ("file", "formula", "natoms", "cell", "grid", "spacing", "electrons", "spin_blocks"):
        assert key in record
    assert record["formula"] == "O2Si" and record["natoms"] == 3 and record["grid"] == [3, 4, 5]
    np.testing.assert_allclose(record["spacing"], np.linalg.norm(CELL, axis=1) / SHAPE)
    assert record["electrons"] == pytest.approx(grid(0).mean(), rel=1e-10)
    assert record["spin_blocks"] == ["total"]


def test_structure_with_nan_from_ase_refused(tmp_path):
    poscar = tmp_path / "POSCAR"
    ase.io.write(poscar, Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=np.eye(3) * 4, pbc=True), format="vasp")
    lines = poscar.read_text().splitlines()
    lines[-1] = "  nan 0.25 0.25"
    poscar.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match="POSCAR: atom 2's position holds NaN/inf"):
        read_structure(poscar)
