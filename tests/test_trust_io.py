"""Trusting what is read (issue 26): non-collinear CHGCARs, potentials that are no densities, directories of mixed
files, one block shown by `info`, a store's block, written coordinates."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from deepcharge.io.chgcar import format_values, read_augmentation, read_chgcar, write_chgcar_blocks

REAL = Path(__file__).resolve().parent / "data" / "realfiles"
GA4 = REAL / "vasp5_Ga4_spin_aug_CHGCAR.gz"
NON_COLLINEAR_BLOCKS = ("total", "magnetization_x", "magnetization_y", "magnetization_z")
SHAPE = (4, 4, 4)


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
