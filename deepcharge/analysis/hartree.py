"""The Hartree energy of a density error, E_H[δρ] = ½∬ δρ(r) δρ(r′) / |r − r′|: how far a start is from the
self-consistent density as the Coulomb potential sees it. A plane-wave SCF's residual norm (pw.x's "estimated scf
accuracy") is of this kind, and it weighs a long-wavelength error as 1/G²: a smooth error costs far more than a
local one of the same ε_mae."""

import numpy as np

# e²/(4πε₀) in eV·Å (CODATA 2018)
COULOMB_EV_ANGSTROM = 14.399645478425668


def wave_vectors(shape, cell: np.ndarray, half: bool = False) -> np.ndarray:
    """G (Å⁻¹, with 2π) of every Fourier coefficient of a grid of ``shape`` on ``cell`` (rows, Å), in NumPy's FFT
    order (…, 3); ``half``: those ``rfftn`` keeps (last axis k ≥ 0)."""
    axes = [np.fft.fftfreq(n, 1 / n) for n in shape[:-1]]
    axes.append(np.fft.rfftfreq(shape[-1], 1 / shape[-1]) if half else np.fft.fftfreq(shape[-1], 1 / shape[-1]))
    reciprocal = 2 * np.pi * np.linalg.inv(np.asarray(cell, dtype=float)).T
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1) @ reciprocal


def hartree_gradient(delta: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """∂E_H/∂δρ_i (eV per e/Å³) at every value of a periodic density difference ``delta`` (e/Å³) on the full grid
    of ``cell`` (rows, Å): (2K/M) · IFFT(FFT(δρ)/G²), K = 2π k_e Ω, M the number of grid values, G = 0 left out.
    It is the error's Hartree potential times the volume per grid point; E_H = ½ Σ_i δρ_i ∂E_H/∂δρ_i."""
    delta = np.asarray(delta, dtype=float)
    g_squared = (wave_vectors(delta.shape, cell, half=True) ** 2).sum(axis=-1)
    g_squared[0, 0, 0] = np.inf
    volume = abs(np.linalg.det(cell))
    potential = np.fft.irfftn(np.fft.rfftn(delta) / g_squared, s=delta.shape, axes=(0, 1, 2))
    return 4 * np.pi * COULOMB_EV_ANGSTROM * volume / delta.size * potential


def hartree_energy(delta: np.ndarray, cell: np.ndarray) -> float:
    """E_H[δρ] in eV of a periodic density difference ``delta`` (e/Å³) on the full grid of ``cell`` (rows, Å):
    2π k_e Ω Σ_{G≠0} |δρ(G)|² / G², δρ(G) the grid's Fourier coefficients. Exact for a band-limited δρ (a plane-
    wave code's density on its FFT grid); the G = 0 term (the difference in electron count) is left out, as a
    neutralising background does."""
    delta = np.asarray(delta, dtype=float)
    return float(0.5 * (delta * hartree_gradient(delta, cell)).sum())
