"""Validation from the training snapshots themselves: a slab of each cell that training never sees.

Probes held out at random from a training snapshot are no test of transfer: their neighbours in the grid, with
nearly the same environments, are in the training set, so their error keeps falling while the model memorises
its frame. A slab is different: bonds and atoms inside it are seen only through environments that reach in from
outside, and a margin on each side keeps the nearest training probes at a distance. Its error follows the
error on other frames (README's "Honest one-shot validation" measures how closely).
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from deepcharge.errors import DeepChargeError
from deepcharge.snapshot import Snapshot


@dataclass(frozen=True)
class Holdout:
    """A slab of thickness ``fraction`` (of the fractional coordinate s along the cell's longest lattice vector),
    centred on the atoms, is held out for validation; training probes keep ``margin`` Å (measured normal to the
    slab) away from it on both sides, periodically."""

    fraction: float
    margin: float
    probes_per_system: int

    @classmethod
    def from_config(cls, section: Optional[dict]) -> Optional["Holdout"]:
        if not section:
            return None
        return cls(float(section["fraction"]), float(section["margin"]), int(section["probes_per_system"]))

    def _coordinate_and_margin(self, snapshot: Snapshot):
        """The fractional coordinate of every grid point (flat, C order) along the slab's axis, and the margin in
        that coordinate."""
        cell = np.asarray(snapshot.cell, dtype=float)
        axis = int(np.argmax(np.linalg.norm(cell, axis=1)))
        others = [cell[i] for i in range(3) if i != axis]
        thickness = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(*others))  # spacing of the planes s = const
        shape = snapshot.grid_shape
        # the slab is centred on the atoms (their circular mean along the axis): in a molecule's box it cuts
        # through the molecule, not the vacuum
        fractional = np.linalg.solve(cell.T, (np.asarray(snapshot.positions) - snapshot.origin).T)[axis]
        centre = np.angle(np.exp(2j * np.pi * fractional).mean()) / (2 * np.pi)
        index = (np.arange(shape[axis]) / shape[axis] - centre + self.fraction / 2) % 1.0
        view = [1, 1, 1]
        view[axis] = shape[axis]
        coordinate = np.broadcast_to(index.reshape(view), shape).reshape(-1)
        margin = self.margin / thickness
        if self.fraction + 2 * margin >= 1.0:
            raise DeepChargeError(
                f"{snapshot.source}: training_data.holdout leaves no training points: the slab ({self.fraction} of "
                f"the cell) and its margins ({self.margin} Å each, {margin:.2f} of the {thickness:.2f} Å cell) "
                f"cover it all; use a smaller fraction or margin")
        return coordinate, margin

    def training_points(self, snapshot: Snapshot) -> np.ndarray:
        """Flat indices of the grid points training may draw from."""
        coordinate, margin = self._coordinate_and_margin(snapshot)
        return np.flatnonzero((coordinate >= self.fraction + margin) & (coordinate < 1.0 - margin))

    def validation_points(self, snapshot: Snapshot) -> np.ndarray:
        """Flat indices of the held-out slab's grid points."""
        coordinate, _ = self._coordinate_and_margin(snapshot)
        return np.flatnonzero(coordinate < self.fraction)
