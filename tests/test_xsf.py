"""XCrySDen XSF densities: read (periodic end planes dropped, ASE's layout, ATOMS files), written, and the unit."""

import gzip
import io

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.io.xsf import read_xsf as read_ase_xsf
from ase.units import Bohr
from conftest import si64_file

from deepcharge.cli import main
from deepcharge.errors import FileFormatError
from deepcharge.infer.predictor import Predictor
from deepcharge.io import is_density_file, read_density, read_options, read_structure, write_density
from deepcharge.io.xsf import read_xsf
from deepcharge.snapshot import Snapshot

CELL = np.array([[4.0, 0.0, 0.0], [-1.2, 3.6, 0.0], [0.4, 0.3, 5.0]])  # triclinic
POSITIONS = np.array([[0.1, 0.2, 0.3], [1.0, 2.0, 3.0], [2.5, 1.5, 0.5]])
SHAPE = (5, 6, 7)


def density(seed=0):
    return np.random.default_rng(seed).uniform(0.05, 2.0, SHAPE)


def snapshot(**changes):
    fields = dict(symbols=["Si", "O", "O"], positions=POSITIONS, cell=CELL, density=density(),
                  origin=np.array([0.2, -0.1, 0.0]))
    fields.update(changes)
    return Snapshot(**fields)


def periodic_text(values, cell=CELL, span=CELL, origin=(0.0, 0.0, 0.0), opening=" BEGIN_DATAGRID_3D_rho",
                  per_line=6, atom_names=("14", "8", "8"), final_newline=True):
    """An XSF as pp.x and XCrySDen write it: end planes repeated, so the grid spans the cell exactly.

    Lines: 5-7 PRIMVEC, 12 PRIMCOORD, 14-16 atoms, 19 the datagrid's opening, 22-24 its span, 25- its values.
    """
    repeated = np.pad(values, [(0, 1)] * 3, mode="wrap").ravel(order="F")
    rows = [" ".join(f"{v:.10e}" for v in repeated[i:i + per_line]) for i in range(0, repeated.size, per_line)]
    lines = ["# written for a test", "", "CRYSTAL", "PRIMVEC", *(" ".join(f"{x:.10f}" for x in row) for row in cell),
             "CONVVEC", *(" ".join(f"{x:.10f}" for x in row) for row in cell), "PRIMCOORD", " 3 1"]
    lines += [f" {name} " + " ".join(f"{x:.10f}" for x in xyz) + " 0.0 0.0 0.1"
              for name, xyz in zip(atom_names, POSITIONS)]
    lines += ["BEGIN_BLOCK_DATAGRID_3D", " 3D_PWSCF", opening, " ".join(str(n + 1) for n in values.shape),
              " ".join(f"{x:.10f}" for x in origin), *(" ".join(f"{x:.10f}" for x in row) for row in span),
              *rows, " END_DATAGRID_3D", "END_BLOCK_DATAGRID_3D"]
    return "\n".join(lines) + ("\n" if final_newline else "")


@pytest.mark.parametrize("name", ["rho.xsf", "rho.xsf.gz"])
def test_round_trip_repeats_the_end_planes(tmp_path, name):
    original = snapshot()
    write_density(tmp_path / name, original)
    again = read_density(tmp_path / name)
    assert again.symbols == original.symbols and again.pbc == (True, True, True)
    np.testing.assert_allclose(again.cell, CELL, atol=1e-12)
    np.testing.assert_allclose(again.positions, POSITIONS, atol=1e-12)
    np.testing.assert_allclose(again.origin, original.origin, atol=1e-12)
    np.testing.assert_allclose(again.density, original.density, rtol=1e-10)
    assert again.electrons() == pytest.approx(original.electrons(), rel=1e-10)
    # as ASE reads the file: n + 1 points per axis, the last plane a copy of the first
    with (gzip.open if name.endswith(".gz") else open)(tmp_path / name, "rt") as handle:
        data, origin, span, atoms = read_ase_xsf(io.StringIO(handle.read()), read_data=True)
    assert data.shape == tuple(n + 1 for n in SHAPE)
    np.testing.assert_allclose(data[:-1, :-1, :-1], original.density, rtol=1e-10)
    np.testing.assert_allclose(data[-1], data[0], rtol=1e-10)
    np.testing.assert_allclose(span, CELL, atol=1e-12)
    assert atoms.get_chemical_symbols() == original.symbols


def test_written_by_ase_read_back(tmp_path):
    atoms = Atoms("SiO2", positions=POSITIONS, cell=CELL, pbc=True)
    ase.io.write(tmp_path / "ase.xsf", atoms, data=density())
    snap = read_density(tmp_path / "ase.xsf")
    assert snap.grid_shape == SHAPE  # ASE writes the n points of the periodic grid, spans a·(n+1)/n
    np.testing.assert_allclose(snap.density, density(), atol=1e-6)  # ASE prints 6 decimals
    np.testing.assert_allclose(snap.cell, CELL, atol=1e-12)
    assert snap.symbols == ["Si", "O", "O"]


def test_quantum_espresso_layout_non_orthogonal_no_final_newline(tmp_path):
    values = density(1)
    text = periodic_text(values, opening="DATAGRID_3D_UNKNOWN", atom_names=("Si", "O", "o"), final_newline=False)
    text = text.replace("CRYSTAL\n", "BEGIN_INFO\n  Fermi Energy: 5.1\nEND_INFO\nCRYSTAL\n")
    text = text.replace("BEGIN_BLOCK_DATAGRID_3D", "BEGIN_BLOCK_DATAGRID_2D\n slice\n BEGIN_DATAGRID_2D_a\n 2 2\n"
                        " 0 0 0\n 1 0 0\n 0 1 0\n 1 2 3 4\n END_DATAGRID_2D\nEND_BLOCK_DATAGRID_2D\n"
                        "BEGIN_BLOCK_DATAGRID_3D")
    assert not text.endswith("\n")
    path = tmp_path / "pp_out.xsf"
    path.write_text(text)
    assert is_density_file(path)
    snap = read_density(path)
    assert snap.grid_shape == SHAPE and snap.spin_blocks == ("UNKNOWN",)
    assert snap.symbols == ["Si", "O", "O"]
    np.testing.assert_allclose(snap.density, values, rtol=1e-10)
    volume = abs(np.linalg.det(CELL))
    assert snap.electrons() == pytest.approx(values.mean() * volume, rel=1e-9)


def test_content_decides_without_the_suffix(tmp_path):
    path = tmp_path / "density.dat"
    path.write_text(periodic_text(density()))
    assert read_structure(path).grid_shape == SHAPE


def test_atoms_file_takes_its_box_from_the_grid(tmp_path):
    """An ATOMS (molecule) file: every point is kept, the cell is the box the grid's points tile."""
    values = density(2)
    span = np.diag([3.0, 4.0, 5.0])
    rows = "\n".join(" ".join(f"{v:.8e}" for v in values.ravel(order="F")[i:i + 5])
                     for i in range(0, values.size, 5))
    text = ("ATOMS\n 6 1.0 1.0 1.0\n 1 2.0 1.0 1.0\nBEGIN_BLOCK_DATAGRID_3D\nmol\nBEGIN_DATAGRID_3D_rho\n"
            + " ".join(map(str, SHAPE)) + "\n0.5 0.5 0.5\n"
            + "\n".join(" ".join(map(str, row)) for row in span) + "\n" + rows
            + "\nEND_DATAGRID_3D\nEND_BLOCK_DATAGRID_3D\n")
    (tmp_path / "mol.xsf").write_text(text)
    snap = read_density(tmp_path / "mol.xsf")
    assert snap.symbols == ["C", "H"] and snap.pbc == (False, False, False)
    np.testing.assert_allclose(snap.density, values, rtol=1e-8)
    np.testing.assert_allclose(snap.cell, span * (np.array(SHAPE) / (np.array(SHAPE) - 1))[:, None])
    # grid point i lies at origin + i/(N-1) · span, as XSF puts it
    np.testing.assert_allclose(snap.grid_points(np.array([np.prod(SHAPE) - 1])), [[3.5, 4.5, 5.5]])


def test_unit_named_by_the_user(tmp_path, capsys):
    path = tmp_path / "rho.xsf"
    path.write_text(periodic_text(density()))
    with read_options(xsf_unit="e/bohr3"):
        in_bohr = read_density(path)
    np.testing.assert_allclose(in_bohr.density, density() / Bohr**3, rtol=1e-10)
    assert main(["info", str(path), "--xsf-unit", "e/bohr3"]) == 0
    assert f"electrons  {in_bohr.electrons():.4f}" in capsys.readouterr().out
    assert main(["info", str(path)]) == 0
    assert f"electrons  {read_density(path).electrons():.4f}" in capsys.readouterr().out


def test_structure_only_file(tmp_path):
    ase.io.write(tmp_path / "bare.xsf", Atoms("SiO2", positions=POSITIONS, cell=CELL, pbc=True))
    structure = read_structure(tmp_path / "bare.xsf")
    assert structure.density is None and structure.natoms == 3
    with pytest.raises(FileFormatError, match="bare.xsf: not a density file: this XCrySDen XSF file holds a "
                                              "structure only"):
        read_density(tmp_path / "bare.xsf")


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("-1.2000000000", "nan", 1), r"line 6: the PRIMVEC vector 2 holds NaN/inf"),
    (lambda t: t.replace(" 8 1.0000000000", " 8 inf", 1), r"line 15: atom position holds NaN/inf"),
    (lambda t: t.replace(" 8 2.5", " X 2.5", 1), "line 16: expected an atom 'Z x y z'"),
    (lambda t: t[:t.index(" END_DATAGRID_3D") - 40] + "\n END_DATAGRID_3D\nEND_BLOCK_DATAGRID_3D\n",
     r"datagrid 'rho' \(6x7x8\) needs 336 values, found 33[0-9]"),
    (lambda t: t.replace("END_DATAGRID_3D\n", ""), "datagrid 'rho' has no END_DATAGRID_3D line"),
    (lambda t: "ANIMSTEPS 2\n" + t, "line 1: an animated XSF"),
    (lambda t: t.replace("PRIMCOORD", "PRIMCORD"), "line 12: unexpected line 'PRIMCORD'"),
])
def test_errors_name_the_file_and_line(tmp_path, mutate, message):
    path = tmp_path / "bad.xsf"
    path.write_text(mutate(periodic_text(density())))
    with pytest.raises(FileFormatError, match=message) as info:
        read_xsf(path)
    assert str(info.value).startswith(str(path))


def test_non_finite_value_names_its_line(tmp_path):
    lines = periodic_text(density(), per_line=6).splitlines()
    fields = lines[27].split()  # line 28: values 19-24
    fields[2] = "NaN"
    lines[27] = " ".join(fields)
    path = tmp_path / "nan.xsf"
    path.write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match=r"nan.xsf: datagrid 'rho' holds 1 NaN/inf values \(first: value 21 "
                                              r"\(line 28\)\)"):
        read_density(path)


def test_grid_that_is_not_the_cell_is_refused(tmp_path):
    path = tmp_path / "half.xsf"
    path.write_text(periodic_text(density(), span=CELL * [[1.0], [1.0], [0.5]]))
    with pytest.raises(FileFormatError, match="half.xsf: datagrid 'rho' spanning vector 3 .* is not the cell vector"):
        read_density(path)


def test_predict_writes_xsf(workdir, frozen_model):
    assert main(["predict", "-m", str(frozen_model), "-s", str(si64_file(1)), "-o", "rho.xsf.gz",
                 "--grid", "6", "5", "4"]) == 0
    written = read_density("rho.xsf.gz")
    reference = read_density(si64_file(1))
    np.testing.assert_allclose(written.positions, reference.positions, atol=1e-10)
    direct = Predictor.from_file(str(frozen_model), "cpu").predict_grid(reference, (6, 5, 4))
    np.testing.assert_allclose(written.density, direct, rtol=1e-10, atol=1e-12)


def test_poscar_whose_comment_is_a_keyword_is_no_xsf(tmp_path):
    ase.io.write(tmp_path / "POSCAR", Atoms("SiO2", positions=POSITIONS, cell=CELL, pbc=True), format="vasp")
    lines = (tmp_path / "POSCAR").read_text().splitlines()
    (tmp_path / "POSCAR").write_text("\n".join(["CRYSTAL", *lines[1:]]) + "\n")
    assert not is_density_file(tmp_path / "POSCAR")
    assert read_structure(tmp_path / "POSCAR").symbols == ["Si", "O", "O"]
