"""What atom environments a model was trained on, and whether a structure's leave them (extrapolation).

For every pair of species (A, B) training records the range of the number of B atoms within ``radius`` (the
model's cutoff) of an A atom and the range of the distance from an A atom to its nearest B. A structure's atom is
outside when either falls outside its range, widened by :data:`COUNT_TOLERANCE` and :data:`DISTANCE_TOLERANCE`:
a dimer in vacuum (one neighbour where a crystal had dozens), a strongly strained cell (nearest neighbours
beyond any seen). It is a measure of the inputs, independent of the model family.
"""

from typing import Dict, List, Optional

import numpy as np

# an atom's neighbour count may exceed the training range by this share of it (at least one atom)...
COUNT_TOLERANCE = 0.1
# ... and its nearest-neighbour distance by this fraction
DISTANCE_TOLERANCE = 0.03


def atom_environments(snapshot, radius: float) -> Dict[str, Dict[str, np.ndarray]]:
    """{A: {B: (count of B within ``radius`` of every A atom, distance to its nearest B (inf: none))}}, arrays
    over the A atoms; periodic along the snapshot's pbc."""
    from ase.neighborlist import neighbor_list

    atoms = snapshot.to_ase()
    first, second, distance = neighbor_list("ijd", atoms, radius)
    symbols = np.array(snapshot.symbols)
    species = sorted(set(snapshot.symbols))
    result = {}
    for a in species:
        centres = np.flatnonzero(symbols == a)
        slot = np.full(len(symbols), -1)
        slot[centres] = np.arange(len(centres))
        result[a] = {}
        for b in species:
            pairs = (symbols[first] == a) & (symbols[second] == b)
            rows = slot[first[pairs]]
            count = np.bincount(rows, minlength=len(centres))
            nearest = np.full(len(centres), np.inf)
            np.minimum.at(nearest, rows, distance[pairs])
            result[a][b] = np.stack([count.astype(float), nearest])
    return result


class EnvironmentRanges:
    """The ranges of training environments (see the module's docstring), built snapshot by snapshot."""

    def __init__(self, radius: float, ranges: Optional[dict] = None):
        self.radius = float(radius)
        self.ranges = ranges or {}  # {A: {B: {"count": [lo, hi], "nearest": [lo, hi]}}}

    def add(self, snapshot):
        """Widen the ranges by ``snapshot``'s environments."""
        for a, partners in atom_environments(snapshot, self.radius).items():
            for b, (count, nearest) in partners.items():
                entry = self._entry(a, b)
                entry["count"] = [min(entry["count"][0], count.min()), max(entry["count"][1], count.max())]
                found = nearest[np.isfinite(nearest)]
                if found.size:
                    entry["nearest"] = [min(entry["nearest"][0], found.min()), max(entry["nearest"][1], found.max())]
        return self

    def _entry(self, a: str, b: str) -> dict:
        """The ranges of pair (a, b), empty (nothing seen) when new."""
        return self.ranges.setdefault(a, {}).setdefault(b, {"count": [np.inf, -np.inf], "nearest": [np.inf, -np.inf]})

    def merge(self, other: "EnvironmentRanges") -> "EnvironmentRanges":
        for a, partners in other.ranges.items():
            for b, entry in partners.items():
                mine = self._entry(a, b)
                for key in ("count", "nearest"):
                    mine[key] = [min(mine[key][0], entry[key][0]), max(mine[key][1], entry[key][1])]
        return self

    def to_dict(self) -> dict:
        """JSON-ready (a range never seen is null)."""
        def plain(value):
            return [None if not np.isfinite(v) else float(v) for v in value]
        return {"radius": self.radius, "species": {a: {b: {key: plain(value) for key, value in entry.items()}
                                                       for b, entry in partners.items()}
                                                   for a, partners in self.ranges.items()}}

    @classmethod
    def from_dict(cls, record: dict) -> "EnvironmentRanges":
        def number(value, missing):
            return missing if value is None else value
        ranges = {a: {b: {key: [number(lo, np.inf), number(hi, -np.inf)] for key, (lo, hi) in entry.items()}
                      for b, entry in partners.items()} for a, partners in record["species"].items()}
        return cls(record["radius"], ranges)

    def outside(self, snapshot) -> dict:
        """How far ``snapshot``'s atoms lie from the training environments: the share of atoms outside, how
        many, and the worst case in words (None when every atom is inside)."""
        reasons: List[tuple] = []  # (how far beyond the range, relative; description)
        outside = np.zeros(snapshot.natoms, dtype=bool)
        symbols = np.array(snapshot.symbols)
        for a, partners in atom_environments(snapshot, self.radius).items():
            atoms = np.flatnonzero(symbols == a)
            for b, (count, nearest) in partners.items():
                entry = self.ranges.get(a, {}).get(b)
                if entry is None:  # a pair training never had within the radius
                    seen = count > 0
                    self._flag(outside, atoms, seen, reasons, 1.0,
                               f"{a} with {b} within {self.radius:g} Å, which training never had")
                    continue
                lo, hi = entry["count"]
                slack = max(1.0, COUNT_TOLERANCE * hi)
                low, high = count < lo - slack, count > hi + slack
                where = np.argmax(np.abs(count - np.clip(count, lo, hi)))
                self._flag(outside, atoms, low | high, reasons, abs(count[where] - np.clip(count[where], lo, hi))
                           / max(hi, 1.0), f"{a} with {int(count[where])} {b} within {self.radius:g} Å where "
                                           f"training had {int(lo)}–{int(hi)}")
                near_lo, near_hi = entry["nearest"]
                if not np.isfinite(near_lo):
                    continue
                finite = np.isfinite(nearest)
                short = finite & (nearest < near_lo * (1 - DISTANCE_TOLERANCE))
                far = finite & (nearest > near_hi * (1 + DISTANCE_TOLERANCE))
                if (short | far).any():
                    beyond = np.where(short, near_lo - nearest, np.where(far, nearest - near_hi, 0.0))
                    worst = int(np.argmax(beyond))
                    self._flag(outside, atoms, short | far, reasons, beyond[worst] / near_lo,
                               f"{a}–{b} nearest distance {nearest[worst]:.3f} Å where training had "
                               f"{near_lo:.3f}–{near_hi:.3f} Å")
        worst = max(reasons)[1] if reasons else None
        return {"atoms_outside": int(outside.sum()), "share_outside": float(outside.mean()) if outside.size else 0.0,
                "worst": worst}

    @staticmethod
    def _flag(outside, atoms, mask, reasons, how_far, description):
        if mask.any():
            outside[atoms[mask]] = True
            reasons.append((float(how_far), description))
