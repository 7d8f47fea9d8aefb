"""The Hartree energy of a density error against closed forms, its invariances, and `test` reporting it."""

import dataclasses
import json
import math
import sys

import numpy as np
import pytest
from conftest import REPO, si64_file

from deepcharge.analysis.hartree import COULOMB_EV_ANGSTROM, hartree_energy, hartree_gradient
from deepcharge.cli import main
from deepcharge.io import read_density, write_density

CELL = np.array([[6.0, 0.0, 0.0], [1.5, 7.0, 0.0], [0.5, -1.0, 8.0]])


def grid_points(shape, cell):
    fractions = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), axis=-1)
    return fractions @ cell


def test_a_plane_wave_has_its_closed_form():
    shape = (24, 28, 30)
    g = 2 * np.pi * np.array([1, -2, 3]) @ np.linalg.inv(CELL).T
    amplitude = 0.02
    delta = amplitude * np.cos(grid_points(shape, CELL) @ g + 0.3)
    volume = abs(np.linalg.det(CELL))
    # δρ(±G) = (A/2)e^{±iφ}: 2π k Ω · 2 (A/2)² / G²
    expected = math.pi * COULOMB_EV_ANGSTROM * volume * amplitude**2 / (g @ g)
    assert hartree_energy(delta, CELL) == pytest.approx(expected, rel=1e-10)


def test_two_opposite_gaussians_in_a_large_box():
    box, width, distance = 24.0, 0.7, 3.0
    points = grid_points((96, 96, 96), np.eye(3) * box)

    def gaussian(centre):
        return np.exp(-((points - centre) ** 2).sum(axis=-1) / (2 * width**2)) / (2 * np.pi * width**2) ** 1.5

    centre = np.array([box / 2] * 3)
    delta = gaussian(centre) - gaussian(centre + [distance, 0, 0])
    # two self-energies minus the interaction of two Gaussian clouds; the periodic images' dipoles add ~0.1 %
    expected = COULOMB_EV_ANGSTROM * (1 / (math.sqrt(math.pi) * width) - math.erf(distance / (2 * width)) / distance)
    assert hartree_energy(delta, np.eye(3) * box) == pytest.approx(expected, rel=5e-3)


def test_invariant_under_translation_and_blind_to_a_constant():
    rng = np.random.default_rng(0)
    delta = np.fft.irfftn(np.fft.rfftn(rng.normal(size=(20, 22, 24))) * 0.5 ** np.arange(13), s=(20, 22, 24),
                           axes=(0, 1, 2))
    energy = hartree_energy(delta, CELL)
    assert hartree_energy(np.roll(delta, (3, -5, 7), axis=(0, 1, 2)), CELL) == pytest.approx(energy, rel=1e-12)
    assert hartree_energy(delta + 0.1, CELL) == pytest.approx(energy, rel=1e-12)
    assert hartree_energy(2 * delta, CELL) == pytest.approx(4 * energy, rel=1e-12)


def test_test_reports_it_for_every_point_only(workdir, frozen_model):
    snapshot = read_density(si64_file(1))
    coarse = dataclasses.replace(snapshot, density=snapshot.density[::4, ::4, ::4].copy())
    write_density("coarse.CHGCAR", coarse)
    assert main(["test", "-m", str(frozen_model), "-s", "coarse.CHGCAR", "--json", "all.json"]) == 0
    (entry,) = json.loads((workdir / "all.json").read_text())["files"]
    assert main(["predict", "-m", str(frozen_model), "-s", "coarse.CHGCAR", "-o", "predicted.CHGCAR"]) == 0
    delta = read_density("predicted.CHGCAR").density - coarse.density
    assert entry["hartree_error_ev"] == pytest.approx(hartree_energy(delta, coarse.cell), rel=1e-3)
    assert main(["test", "-m", str(frozen_model), "-s", "coarse.CHGCAR", "-n", "100", "--json", "some.json"]) == 0
    assert "hartree_error_ev" not in json.loads((workdir / "some.json").read_text())["files"][0]


def test_hartree_gradient_is_the_derivative_of_the_energy():
    cell = np.array([[4.0, 0.0, 0.0], [1.0, 3.5, 0.0], [0.5, 0.3, 3.0]])
    delta = np.random.default_rng(3).normal(size=(6, 5, 4))
    gradient = hartree_gradient(delta, cell)
    step = 1e-4
    for index in [(0, 0, 0), (2, 3, 1), (5, 4, 3)]:
        up, down = delta.copy(), delta.copy()
        up[index] += step
        down[index] -= step
        numeric = (hartree_energy(up, cell) - hartree_energy(down, cell)) / (2 * step)
        assert gradient[index] == pytest.approx(numeric, rel=1e-6)


def test_low_pass_keeps_the_long_waves_only():
    sys.path.insert(0, str(REPO / "tools"))
    from hartree_expressible import low_pass

    shape = (12, 10, 8)
    r = grid_points(shape, CELL)
    reciprocal = 2 * np.pi * np.linalg.inv(CELL).T
    long_wave = np.cos(r @ reciprocal[0])  # |G| ≈ 1.08 Å⁻¹
    short_wave = np.sin(r @ (3 * reciprocal[2]))  # |G| ≈ 2.4 Å⁻¹
    np.testing.assert_allclose(low_pass(long_wave + short_wave, CELL, 1.5), long_wave, atol=1e-12)
