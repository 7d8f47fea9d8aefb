"""Electron counts: electrons per atom of each species fitted to the training snapshots, and the count a
structure should integrate to, for rescaling a predicted density (electron conservation)."""

from collections import Counter
from typing import Dict, Sequence, Tuple

import numpy as np

from deepcharge.errors import DeepChargeError


def composition_and_electrons(snapshot) -> Tuple[Dict[str, int], float]:
    """(atoms per species, integrated electrons) of a snapshot with a density."""
    return dict(Counter(snapshot.symbols)), snapshot.electrons()


def fit_electrons_per_atom(records: Sequence[Tuple[Dict[str, int], float]]) -> Dict[str, float]:
    """Electrons per atom of each species: the least-squares solution of Σ_s n_s e_s = N over the snapshots.

    With one composition (one-shot training) only the total is determined: the minimum-norm solution
    reproduces it for that composition and splits it among species in proportion to their counts.
    """
    species = sorted({symbol for counts, _ in records for symbol in counts})
    if not species:
        return {}
    counts = np.array([[composition.get(symbol, 0) for symbol in species] for composition, _ in records], float)
    totals = np.array([electrons for _, electrons in records])
    solution = np.linalg.lstsq(counts, totals, rcond=None)[0]
    return {symbol: float(value) for symbol, value in zip(species, solution)}


def expected_electrons(symbols: Sequence[str], electrons_per_atom: Dict[str, float], source: str) -> float:
    """The electrons a structure of ``symbols`` should hold, from per-species counts."""
    missing = sorted(set(symbols) - set(electrons_per_atom))
    if missing:
        raise DeepChargeError(f"{source}: no electron count for species {', '.join(missing)}; give the total "
                              f"with --electrons N")
    return float(sum(electrons_per_atom[symbol] for symbol in symbols))


# a raw integral this far from the expected count (as a factor) is a broken prediction, not one to rescale
RESCALE_LIMIT = 1.5


def rescale_factor(raw: float, electrons: float, source: str) -> float:
    """The factor that makes a prediction integrating to ``raw`` integrate to ``electrons``; an error when the raw
    integral is not positive or further than :data:`RESCALE_LIMIT` × from the count: rescaling would hide that
    the model is extrapolating."""
    if raw <= 0 or not 1 / RESCALE_LIMIT <= electrons / raw <= RESCALE_LIMIT:
        raise DeepChargeError(f"{source or 'structure'}: the predicted density integrates to {raw:.4f} electrons "
                              f"where {electrons:.4f} are expected; rescaling it would hide that the model is "
                              f"extrapolating (see the warning on its environments); predict without "
                              f"--conserve-electrons/--electrons to see the raw density")
    return electrons / raw
