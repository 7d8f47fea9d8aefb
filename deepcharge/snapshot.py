"""One structure with (optionally) its electron density on a regular grid."""

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np


@dataclass
class Snapshot:
    """A structure and the density sampled on its grid.

    Attributes:
        symbols: chemical symbol of every atom, in file order.
        positions: (N, 3) Cartesian atom positions in Å.
        cell: (3, 3) lattice vectors as rows, in Å.
        pbc: periodicity along each lattice vector.
        density: (nx, ny, nz) density in e/Å³; entry (i, j, k) lies at
            ``origin + (i/nx, j/ny, k/nz) @ cell``. ``None`` for a bare structure.
        origin: Cartesian position of grid point (0, 0, 0), in Å (non-zero only for some cube files).
        source: where the snapshot came from (a path), for messages and provenance.
        spin_blocks: names of the density blocks the file holds, e.g. ``("total", "magnetization")``.
        block: the one of ``spin_blocks`` that ``density`` is (a store's: the block it was stored with).
        quantity: what the grid holds: "density", or for a VASP file that holds none (a LOCPOT, an ELFCAR; see
            :data:`deepcharge.io.chgcar.NOT_DENSITIES`) its quantity, the values as the file gives them.
    """

    symbols: list
    positions: np.ndarray
    cell: np.ndarray
    pbc: Tuple[bool, bool, bool] = (True, True, True)
    density: Optional[np.ndarray] = None
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    source: str = ""
    spin_blocks: Tuple[str, ...] = ()
    block: str = "total"
    quantity: str = "density"

    @property
    def natoms(self) -> int:
        return len(self.symbols)

    @property
    def grid_shape(self) -> Optional[Tuple[int, int, int]]:
        return None if self.density is None else tuple(int(n) for n in self.density.shape)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.cell)))

    def grid_points(self, flat_index: Optional[np.ndarray] = None, shape=None) -> np.ndarray:
        """Cartesian positions (Å) of grid points, all of them or those at ``flat_index`` (C order)."""
        shape = tuple(shape or self.grid_shape)
        if flat_index is None:
            flat_index = np.arange(int(np.prod(shape)))
        ijk = np.stack(np.unravel_index(flat_index, shape), axis=-1)
        frac = ijk / np.asarray(shape, dtype=float)
        return self.origin + frac @ self.cell

    def electrons(self) -> float:
        """Integrated density over the cell (electrons)."""
        if self.density is None:
            raise ValueError("snapshot has no density")
        return float(self.density.mean() * self.volume)

    def to_ase(self):
        """The structure as an :class:`ase.Atoms`."""
        from ase import Atoms

        return Atoms(symbols=self.symbols, positions=self.positions, cell=self.cell, pbc=self.pbc)
