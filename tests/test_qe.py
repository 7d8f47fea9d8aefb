"""Quantum ESPRESSO's charge-density.dat: synthetic files (layout, blocks, errors), and real pw.x 6.7 runs (read
against pp.x, written back in QE's order of G vectors, restarted from with startingpot='file').

pw.x and pp.x must be on PATH (``.ci/run`` installs Debian's Quantum ESPRESSO): the tests that run them fail when
they are not, except outside CI, where they are skipped.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import ase.build
import ase.io
import numpy as np
import pytest

from deepcharge.cli import main
from deepcharge.errors import FileFormatError
from deepcharge.io import is_density_file, output_format, read_density, write_density
from deepcharge.io.qe import BOHR, SCHEMA, g_vectors, read_charge_density, write_qe
from deepcharge.snapshot import Snapshot

# ---------------------------------------------------------------- synthetic files

CELL = np.array([[3.9, 0.1, 0.0], [0.8, 4.2, 0.0], [0.3, -0.4, 4.6]])  # Å, triclinic
POSITIONS = np.array([[0.0, 0.0, 0.0], [1.2, 1.5, 2.1]])
ECUTRHO = 30.0  # Ry
GRID = (20, 20, 24)  # holds the G vectors of ECUTRHO (needs 13 15 15)


def schema_text(cell=CELL, ecutrho=ECUTRHO, grid=GRID):
    """A data-file-schema.xml holding what the reader takes from pw.x's: atoms, cell, alat, ecutrho, FFT grid."""
    def vector(values):
        return " ".join(f"{x / BOHR:.15e}" for x in values)

    return f"""<?xml version="1.0" encoding="UTF-8"?>
<qes:espresso xmlns:qes="http://www.quantum-espresso.org/ns/qes/qes-1.0" Units="Hartree atomic units">
  <output>
    <atomic_structure nat="2" alat="{np.linalg.norm(cell[0]) / BOHR:.12e}">
      <atomic_positions>
        <atom name="Si" index="1">{vector(POSITIONS[0])}</atom>
        <atom name="O1" index="2">{vector(POSITIONS[1])}</atom>
      </atomic_positions>
      <cell><a1>{vector(cell[0])}</a1><a2>{vector(cell[1])}</a2><a3>{vector(cell[2])}</a3></cell>
    </atomic_structure>
    <basis_set>
      <ecutrho>{ecutrho / 2:.15e}</ecutrho>
      <fft_grid nr1="{grid[0]}" nr2="{grid[1]}" nr3="{grid[2]}"></fft_grid>
    </basis_set>
  </output>
</qes:espresso>
"""


def save_folder(tmp_path, **schema) -> Path:
    """A prefix.save folder holding a data-file-schema.xml (``schema``: what :func:`schema_text` takes)."""
    folder = tmp_path / "out" / "si.save"
    folder.mkdir(parents=True)
    (folder / SCHEMA).write_text(schema_text(**schema))
    return folder


def random_snapshot(shape=GRID, seed=0) -> Snapshot:
    density = np.random.default_rng(seed).uniform(0.05, 0.5, shape)
    return Snapshot(symbols=["Si", "O"], positions=POSITIONS, cell=CELL, density=density)


def record(data: bytes) -> bytes:
    marker = len(data).to_bytes(4, "little")
    return marker + data + marker


def charge_density_bytes(gamma_only, miller, *blocks) -> bytes:
    """A charge-density.dat of CELL with the Miller indices ``miller`` and one ρ(G) record per block."""
    reciprocal = 2 * np.pi * np.linalg.inv(CELL / BOHR).T
    header = np.array([int(gamma_only), len(miller), len(blocks)], "<i4").tobytes()
    return b"".join(record(data) for data in [header, reciprocal.tobytes(), np.asarray(miller, "<i4").tobytes()]
                     + [np.asarray(block, "<c16").tobytes() for block in blocks])


def test_written_density_reads_back_exactly_with_its_electrons(tmp_path):
    folder = save_folder(tmp_path)
    snapshot = random_snapshot()
    path = folder / "charge-density.dat"
    write_density(path, snapshot)  # the cut-off from the XML beside it
    records = read_charge_density(path)
    assert not records.gamma_only and len(records.coefficients) == 1
    squares = ((records.miller @ records.reciprocal) ** 2).sum(axis=1)
    assert squares.max() <= ECUTRHO and np.all(np.diff(squares) > -1e-8 * ECUTRHO)  # QE's order: shells of |G|²
    volume_bohr = snapshot.volume / BOHR**3
    assert records.coefficients[0][0].real * volume_bohr == pytest.approx(snapshot.electrons(), rel=1e-12)

    first = read_density(path)
    assert first.symbols == ["Si", "O"] and first.grid_shape == GRID and first.spin_blocks == ("total",)
    np.testing.assert_allclose(first.cell, CELL, atol=1e-12)
    np.testing.assert_allclose(first.positions, POSITIONS, atol=1e-12)
    assert first.electrons() == pytest.approx(snapshot.electrons(), rel=1e-12)
    write_density(path, first)
    second = read_density(path)
    np.testing.assert_allclose(second.density, first.density, rtol=0, atol=1e-14 * first.density.max())


def test_a_grid_origin_is_a_phase(tmp_path):
    """A grid starting one point along a1 is the same density as the grid rolled by one point."""
    path = save_folder(tmp_path) / "charge-density.dat"
    band_limited = (write_density(path, random_snapshot()), read_density(path))[1]
    shifted = Snapshot(symbols=["Si", "O"], positions=POSITIONS, cell=CELL, density=band_limited.density,
                       origin=CELL[0] / GRID[0])
    write_density(path, shifted)
    np.testing.assert_allclose(read_density(path).density, np.roll(band_limited.density, 1, axis=0), atol=1e-14)


def test_spin_polarised_and_gamma_only_files(tmp_path):
    folder = save_folder(tmp_path)
    path = folder / "charge-density.dat"
    write_density(path, random_snapshot())
    total = read_density(path)
    records = read_charge_density(path)
    miller, rho = records.miller, records.coefficients[0]

    path.write_bytes(charge_density_bytes(False, miller, rho, 0.25 * rho))
    assert read_density(path).spin_blocks == ("total", "magnetization")
    np.testing.assert_allclose(read_density(path, "magnetization").density, 0.25 * total.density, atol=1e-14)
    with pytest.raises(FileFormatError, match="no 'mz' density block; the file holds: total, magnetization"):
        read_density(path, "mz")

    half = [tuple(m) >= (0, 0, 0) for m in miller]  # gamma_only: m1 > 0, or m1 = 0 and m2 > 0, or m1 = m2 = 0, m3 ≥ 0
    path.write_bytes(charge_density_bytes(True, miller[half], rho[half]))
    np.testing.assert_allclose(read_density(path).density, total.density, atol=1e-14)


def test_qe_files_are_known_by_name_and_by_content(tmp_path):
    assert output_format("out/si.save/charge-density.dat").name == "qe"
    folder = save_folder(tmp_path)
    write_density(folder / "charge-density.dat", random_snapshot())
    renamed = folder / "rho"
    shutil.copy(folder / "charge-density.dat", renamed)
    assert is_density_file(renamed) and not is_density_file(folder / SCHEMA)
    assert read_density(renamed).grid_shape == GRID


def truncated(data):
    return data[:-10]


def miscounted(data):
    """ngm_g one more than the records hold."""
    count = int.from_bytes(data[8:12], "little")
    return data[:8] + (count + 1).to_bytes(4, "little") + data[12:]


@pytest.mark.parametrize("mutate, message", [
    (truncated, r"record 4 \(byte \d+\): its length markers do not add up; the file is truncated or not QE's "
                r"charge-density.dat: rerun pw.x"),
    (miscounted, r"the record of \d+ Miller indices holds \d+ bytes, not \d+"),
    (lambda data: b"", "is empty"),
])
def test_files_whose_records_do_not_add_up(tmp_path, mutate, message):
    path = save_folder(tmp_path) / "charge-density.dat"
    write_density(path, random_snapshot())
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(FileFormatError, match=f"charge-density.dat: {message}") as info:
        read_density(path)
    assert info.value.__cause__ is None


@pytest.mark.parametrize("schema, message", [
    (None, "no data-file-schema.xml beside it: QE's density takes its atoms and cell from the one pw.x writes in "
           "the same prefix.save folder; keep the two together"),
    ({"cell": CELL * 1.01}, "its reciprocal vectors are not those of the cell of .*data-file-schema.xml: the two "
                            "come from different runs"),
    ({"grid": (12, 12, 12)}, "its G vectors need a grid of 13 15 15 points or more, but .* gives 12 12 12: its "
                             "cut-off is another run's"),
])
def test_a_file_and_a_schema_that_do_not_match(tmp_path, schema, message):
    folder = save_folder(tmp_path / "good")
    write_density(folder / "charge-density.dat", random_snapshot())
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(folder / "charge-density.dat", other)
    if schema is not None:
        (other / SCHEMA).write_text(schema_text(**schema))
    with pytest.raises(FileFormatError, match=message):
        read_density(other / "charge-density.dat")


def test_schema_that_is_not_pw_output(tmp_path):
    folder = save_folder(tmp_path)
    write_density(folder / "charge-density.dat", random_snapshot())
    (folder / SCHEMA).write_text("<qes:espresso")
    with pytest.raises(FileFormatError, match="data-file-schema.xml: cannot read it as XML .*: rerun pw.x"):
        read_density(folder / "charge-density.dat")
    (folder / SCHEMA).write_text("<espresso><input/></espresso>")
    with pytest.raises(FileFormatError, match="holds no <output>: the pw.x run that wrote it did not finish"):
        read_density(folder / "charge-density.dat")


def test_writing_needs_a_cut_off_that_fits(tmp_path):
    path = tmp_path / "charge-density.dat"
    with pytest.raises(FileFormatError, match=r"no cut-off for QE's G vectors: give --ecutrho RY \(ecutrho= in "
                                              r"Python\), or put the data-file-schema.xml of a pw.x run on this cell"):
        write_density(path, random_snapshot())
    with pytest.raises(FileFormatError, match="the grid 12 12 12 is too coarse for ecutrho 30 Ry: QE's G vectors "
                                              "need 13 15 15 points or more"):
        write_qe(path, random_snapshot((12, 12, 12)), ecutrho=ECUTRHO)
    write_qe(path, random_snapshot(), ecutrho=ECUTRHO)
    assert len(read_charge_density(path).miller) == len(g_vectors(CELL / BOHR, np.linalg.norm(CELL[0]) / BOHR,
                                                                  ECUTRHO))
    folder = save_folder(tmp_path)
    with pytest.raises(FileFormatError, match="--ecutrho 40 Ry is not the 30 Ry of .*: give that value, or leave "
                                              "--ecutrho out"):
        write_qe(folder / "charge-density.dat", random_snapshot(), ecutrho=40.0)
    other_cell = Snapshot(symbols=["Si", "O"], positions=POSITIONS, cell=CELL * 1.02, density=np.ones(GRID))
    with pytest.raises(FileFormatError, match=r"the cell differs from that of .* by up to 0.092 Å: predict for that "
                                              "cell, or move the XML away and give --ecutrho"):
        write_density(folder / "charge-density.dat", other_cell)
    assert sorted(os.listdir(folder)) == [SCHEMA]


def test_errors_are_one_line_on_the_command_line(tmp_path, workdir, capsys):
    folder = save_folder(tmp_path)
    write_density(folder / "charge-density.dat", random_snapshot())
    (folder / SCHEMA).unlink()
    assert main(["info", str(folder / "charge-density.dat")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "charge-density.dat: no data-file-schema.xml beside it" in error
    # --ecutrho is for a QE output, refused before the model is read
    assert main(["predict", "-m", "absent.pth", "-s", "absent.vasp", "-o", "rho.cube", "--ecutrho", "40"]) == 1
    assert "rho.cube: --ecutrho is the cut-off of QE's charge-density.dat; name the output" in capsys.readouterr().err


# ---------------------------------------------------------------- real pw.x runs

ECUTWFC = 12.0  # Ry: seconds per SCF on two Si atoms
PW_ECUTRHO = 4 * ECUTWFC


@pytest.fixture(scope="module")
def qe_programs():
    """pw.x and pp.x; their absence fails the tests in CI and skips them elsewhere."""
    missing = [name for name in ("pw.x", "pp.x") if shutil.which(name) is None]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"{' and '.join(missing)} not on PATH (apt-get install quantum-espresso quantum-espresso-data)")
    assert not missing, f"{' and '.join(missing)} not on PATH: .ci/run installs quantum-espresso"


def si2():
    """Diamond Si in its primitive (fcc) cell, rattled so that no symmetry is left."""
    atoms = ase.build.bulk("Si", "diamond", a=5.43)
    atoms.rattle(stdev=0.02, seed=1)
    return atoms


def pw_input(atoms, startingpot="atomic", system="", k_points="automatic\n2 2 2 0 0 0") -> str:
    rows = "\n".join(" ".join(f"{x:.10f}" for x in row) for row in atoms.cell)
    atoms_text = "\n".join(f"Si {x:.10f} {y:.10f} {z:.10f}" for x, y, z in atoms.positions)
    return f"""&control
  calculation='scf', prefix='si', outdir='./out', pseudo_dir='{pseudo_dir()}'
/
&system
  ibrav=0, nat={len(atoms)}, ntyp=1, ecutwfc={ECUTWFC}{system}
/
&electrons
  conv_thr=1e-8, startingpot='{startingpot}'
/
ATOMIC_SPECIES
Si 28.086 Si.pbe-rrkj.UPF
CELL_PARAMETERS angstrom
{rows}
ATOMIC_POSITIONS angstrom
{atoms_text}
K_POINTS {k_points}
"""


def pseudo_dir() -> str:
    """Debian's quantum-espresso-data pseudopotentials, beside the pw.x on PATH."""
    return str(Path(shutil.which("pw.x")).resolve().parents[1] / "share" / "espresso" / "pseudo")


# pp.x: the total density (plot_num 0) on the FFT grid as a cube file (e/bohr³, 5 digits)
PP_INPUT = ("&inputpp\n  prefix='si', outdir='./out', filplot='rho.pp', plot_num=0\n/\n"
            "&plot\n  iflag=3, output_format=6, fileout='rho.cube'\n/\n")


def run_program(folder: Path, program: str, text: str) -> str:
    (folder / f"{program}.in").write_text(text)
    result = subprocess.run([program, "-in", f"{program}.in"], cwd=folder, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    (folder / f"{program}.out").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def run_pw(folder: Path, atoms, startingpot="atomic", **options) -> dict:
    """Run pw.x on ``atoms`` in ``folder`` (outdir ./out, prefix si; ``options`` as :func:`pw_input` takes them):
    its energy (Ry) and SCF iterations."""
    folder.mkdir(exist_ok=True)
    output = run_program(folder, "pw.x", pw_input(atoms, startingpot, **options))
    return {"energy": float(re.search(r"^!\s+total energy\s+=\s+(\S+) Ry", output, re.MULTILINE).group(1)),
            "iterations": int(re.search(r"convergence has been achieved in\s+(\d+) iterations", output).group(1)),
            "output": output}


@pytest.fixture(scope="module")
def pw_run(qe_programs, tmp_path_factory):
    """pw.x on rattled Si2 from its own start: the folder, energy and iterations."""
    folder = tmp_path_factory.mktemp("pw")
    return {"folder": folder, **run_pw(folder, si2())}


def test_pw_density_read_as_pp_writes_it(pw_run):
    folder = pw_run["folder"]
    snapshot = read_density(folder / "out" / "si.save" / "charge-density.dat")
    atoms = si2()
    assert snapshot.symbols == ["Si", "Si"] and snapshot.grid_shape == (18, 18, 18)
    np.testing.assert_allclose(snapshot.cell, atoms.cell, atol=1e-8)
    np.testing.assert_allclose(snapshot.positions, atoms.positions, atol=1e-8)
    assert snapshot.electrons() == pytest.approx(8, rel=1e-6)
    run_program(folder, "pp.x", PP_INPUT)
    cube = read_density(folder / "rho.cube")
    np.testing.assert_allclose(snapshot.density, cube.density, rtol=1e-4, atol=1e-5 * cube.density.max())


@pytest.mark.parametrize("options, blocks", [
    ({"system": ", nspin=2, tot_magnetization=2, occupations='smearing', degauss=0.02"}, {"magnetization": 2}),
    ({"k_points": "gamma"}, {}),  # gamma_only: half the G sphere in the file
])
def test_pw_spin_polarised_and_gamma_only_densities(qe_programs, tmp_path, options, blocks):
    run_pw(tmp_path, si2(), **options)
    path = tmp_path / "out" / "si.save" / "charge-density.dat"
    assert read_charge_density(path).gamma_only == ("k_points" in options)
    total = read_density(path)
    assert total.spin_blocks == ("total", *blocks) and total.electrons() == pytest.approx(8, rel=1e-6)
    for block, moment in blocks.items():
        assert read_density(path, block).electrons() == pytest.approx(moment, rel=1e-6)
    run_program(tmp_path, "pp.x", PP_INPUT)
    cube = read_density(tmp_path / "rho.cube")
    np.testing.assert_allclose(total.density, cube.density, rtol=1e-4, atol=1e-5 * cube.density.max())


def test_pw_density_written_back_in_qe_order(pw_run, tmp_path):
    source = pw_run["folder"] / "out" / "si.save"
    copy = tmp_path / "si.save"
    copy.mkdir()
    shutil.copy(source / SCHEMA, copy)
    write_density(copy / "charge-density.dat", read_density(source / "charge-density.dat"))
    theirs, ours = read_charge_density(source / "charge-density.dat"), read_charge_density(copy / "charge-density.dat")
    np.testing.assert_array_equal(ours.miller, theirs.miller)
    np.testing.assert_allclose(ours.reciprocal, theirs.reciprocal, rtol=1e-12)
    scale = np.abs(theirs.coefficients[0]).max()
    np.testing.assert_allclose(ours.coefficients[0], theirs.coefficients[0], rtol=0, atol=1e-14 * scale)


def test_pw_restarts_from_the_written_density(pw_run, tmp_path):
    """QE's density, written by deepcharge with --ecutrho's cut-off alone (no XML), read by pw.x
    (startingpot='file'): the same energy in fewer iterations than QE's own start."""
    density = read_density(pw_run["folder"] / "out" / "si.save" / "charge-density.dat")
    save = tmp_path / "out" / "si.save"
    save.mkdir(parents=True)
    write_qe(save / "charge-density.dat", density, ecutrho=PW_ECUTRHO)
    restart = run_pw(tmp_path, si2(), startingpot="file")
    assert "The initial density is read from file" in restart["output"]
    assert "negative rho" not in restart["output"]
    assert abs(restart["energy"] - pw_run["energy"]) < 1e-6
    assert restart["iterations"] < pw_run["iterations"]
    print(f"pw.x iterations: {pw_run['iterations']} from its own start, {restart['iterations']} from the file")


def test_pw_starts_from_a_prediction(pw_run, frozen_model, tmp_path):
    """predict -o out/si.save/charge-density.dat --ecutrho: on QE's grid, in QE's order; pw.x converges from it to
    its own energy in no more iterations than from its own start (6 against 7 when measured)."""
    ase.io.write(tmp_path / "POSCAR", si2(), format="vasp")
    output = tmp_path / "out" / "si.save" / "charge-density.dat"
    output.parent.mkdir(parents=True)
    assert main(["predict", "-m", str(frozen_model), "-s", str(tmp_path / "POSCAR"), "-o", str(output),
                 "--ecutrho", str(PW_ECUTRHO), "--electrons", "8"]) == 0
    written = read_charge_density(output)
    own = read_charge_density(pw_run["folder"] / "out" / "si.save" / "charge-density.dat")
    np.testing.assert_array_equal(written.miller, own.miller)
    seeded = run_pw(tmp_path, si2(), startingpot="file")
    assert "The initial density is read from file" in seeded["output"]
    assert abs(seeded["energy"] - pw_run["energy"]) < 1e-6
    assert seeded["iterations"] <= pw_run["iterations"]
    print(f"pw.x iterations: {pw_run['iterations']} from its own start, {seeded['iterations']} from a 2-step model")
