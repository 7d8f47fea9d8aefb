"""Quantum ESPRESSO's charge-density.dat: synthetic files (layout, blocks, errors)."""

import os
import shutil
from pathlib import Path

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
