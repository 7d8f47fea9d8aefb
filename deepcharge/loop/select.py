"""Selection by the ensemble's σ: a measure per candidate, the trust levels and the cap per iteration."""

from typing import List, Optional, Tuple

import numpy as np

from deepcharge.infer.density_predictor import DensityEnsemble
from deepcharge.infer.grid import grid_shape_for
from deepcharge.snapshot import Snapshot


def deviation_measures(ensemble: DensityEnsemble, structure: Snapshot, select: dict) -> dict:
    """The ensemble's σ (e/Å³) on ``structure``'s grid of ``select["spacing"]``: its mean, its maximum and the
    candidate's ``measure`` (the mean or the quantile ``select`` names)."""
    shape = grid_shape_for(structure, None, select["spacing"])
    sigma = np.concatenate([devi for _, devi in ensemble.grid_chunks(structure, shape)])
    measure = sigma.mean() if select["measure"] == "mean" else np.quantile(sigma, select["quantile"])
    return {"measure": float(measure), "sigma_mean": float(sigma.mean()), "sigma_max": float(sigma.max()),
            "grid": list(shape)}


def select_candidates(measures: List[float], select: dict, rng: Optional[np.random.Generator] = None
                      ) -> List[Tuple[bool, str]]:
    """Whether each candidate is chosen, and why: those in [trust_lo, trust_hi) are eligible, at most
    ``max_per_iter`` of them chosen, the ones of the largest measure first or, with ``pick`` "random", in the
    order of a shuffle by ``rng`` (default: seed 0)."""
    low, high, cap = select["trust_lo"], select["trust_hi"], select["max_per_iter"]
    eligible = [index for index, value in enumerate(measures) if low <= value < high]
    if select.get("pick", "largest") == "random":
        eligible = [eligible[i] for i in (rng or np.random.default_rng(0)).permutation(len(eligible))]
        order = "in a random draw"
    else:
        eligible.sort(key=lambda index: -measures[index])
        order = "by measure"
    rank = {index: place for place, index in enumerate(eligible)}
    decisions = []
    for index, value in enumerate(measures):
        if value < low:
            decisions.append((False, "below trust_lo: the models agree"))
        elif value >= high:
            decisions.append((False, "at or above trust_hi: rejected as probably unphysical"))
        elif rank[index] < cap:
            decisions.append((True, f"in [trust_lo, trust_hi): rank {rank[index] + 1} of {len(eligible)} eligible "
                                    f"{order}"))
        else:
            decisions.append((False, f"eligible, but max_per_iter ({cap}) candidates ranked before it were chosen"))
    return decisions


def selection_summary(measures: List[float], decisions: List[Tuple[bool, str]], select: dict) -> dict:
    """Counts of one iteration's selection; ``share_above_lo`` is what ``stop`` is compared with."""
    above_lo = sum(value >= select["trust_lo"] for value in measures)
    return {"candidates": len(measures), "above_lo": above_lo,
            "above_hi": sum(value >= select["trust_hi"] for value in measures),
            "chosen": sum(chosen for chosen, _ in decisions),
            "share_above_lo": above_lo / len(measures) if measures else 0.0,
            "measure_max": max(measures, default=None)}
