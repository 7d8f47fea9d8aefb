"""The Python face of a frozen model: :class:`DensityPredictor` (one model) and :class:`DensityEnsemble` (several),
as DeePMD-kit's ``DeepPot`` is for potentials. Every command that predicts (``predict``, ``test``, ``compare``,
``model-devi``) and the GPAW interface go through them, so a script gets exactly the command's numbers.

    from deepcharge import DensityPredictor
    model = DensityPredictor("frozen_model.pth")
    rho = model.eval(atoms, points)               # e/Å³ at Cartesian points (Å) of an ase.Atoms
    grid = model.eval_grid(atoms, spacing=0.15)   # the whole cell, as `deepcharge predict --spacing 0.15` writes it
"""

import logging
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from deepcharge.analysis.electrons import rescale_factor
from deepcharge.analysis.environments import EnvironmentRanges
from deepcharge.config import model_range
from deepcharge.data.inputs import atom_types
from deepcharge.errors import DeepChargeError
from deepcharge.infer.grid import grid_shape_for
from deepcharge.infer.predictor import Predictor
from deepcharge.io.structures import atoms_to_snapshot
from deepcharge.snapshot import Snapshot

log = logging.getLogger("deepcharge")


def as_snapshot(structure, cell=None, symbols: Optional[Sequence[str]] = None, types=None,
                type_map: Optional[Sequence[str]] = None, pbc=True, frame: int = 0) -> Snapshot:
    """A :class:`Snapshot` of ``structure``: a Snapshot, an ``ase.Atoms``, a dpdata ``System`` (its ``frame``),
    or (N, 3) Cartesian positions in Å with ``cell`` (3 × 3, rows, Å) and ``symbols`` or ``types`` (indices
    into ``type_map``)."""
    if isinstance(structure, Snapshot):
        return structure
    if hasattr(structure, "get_chemical_symbols") and hasattr(structure, "positions"):  # ase.Atoms
        return atoms_to_snapshot(structure, "atoms")
    if isinstance(getattr(structure, "data", None), dict) and "atom_names" in structure.data:  # dpdata System
        if not 0 <= frame < len(structure):
            raise DeepChargeError(f"frame {frame}: the dpdata system holds {len(structure)} frames")
        return atoms_to_snapshot(structure[frame].to("ase/structure")[0], f"dpdata frame {frame}")
    positions = np.asarray(structure, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise DeepChargeError(f"positions: expected an (N, 3) array of Cartesian positions in Å (or an ase.Atoms, "
                              f"a dpdata System), got shape {positions.shape}")
    if cell is None:
        raise DeepChargeError("cell: give the 3 × 3 cell (rows, Å) with plain positions; a grid needs a cell")
    symbols = _symbols(len(positions), symbols, types, type_map)
    from ase import Atoms

    return atoms_to_snapshot(Atoms(symbols=symbols, positions=positions, cell=np.asarray(cell, dtype=float),
                                   pbc=pbc), "positions")


def _symbols(natoms: int, symbols, types, type_map) -> List[str]:
    if (symbols is None) == (types is None):
        raise DeepChargeError("give the species of the atoms as symbols=[...] or as types=[...] (indices into "
                              "the model's type_map), one of the two")
    if symbols is None:
        types = np.asarray(types)
        if types.shape != (natoms,) or types.min(initial=0) < 0 or types.max(initial=0) >= len(type_map):
            raise DeepChargeError(f"types: expected {natoms} indices into type_map {list(type_map)}, got "
                                  f"{types.tolist()}")
        symbols = [type_map[t] for t in types]
    if len(symbols) != natoms:
        raise DeepChargeError(f"symbols: {len(symbols)} given for {natoms} positions")
    return list(symbols)


class DensityPredictor:
    """A frozen model (``deepcharge freeze``'s file), loaded once on ``device`` ("auto", "cpu", "cuda[:N]").

    Structures are an ``ase.Atoms``, a dpdata ``System`` (``frame=``), a :class:`Snapshot`, or positions with
    ``cell=`` and ``symbols=`` or ``types=``. Densities are NumPy arrays in e/Å³, computed in chunks of bounded
    memory. Errors are :class:`deepcharge.DeepChargeError` with the command line's messages.
    """

    def __init__(self, model, device: str = "auto"):
        self.path = str(model)
        self.engine = Predictor.from_file(model, device)
        record = self.metadata.get("environments")
        self.environments = EnvironmentRanges.from_dict(record) if record else None
        self._checked = (None, None)  # the last structure checked for extrapolation, and the result
        self.warn_extrapolation = True  # an ensemble keeps one warning for members trained on the same data

    @property
    def metadata(self) -> dict:
        """What ``freeze`` stored: backend, model section, training summary, electrons per atom, ..."""
        return self.engine.metadata

    @property
    def type_map(self) -> List[str]:
        return list(self.engine.type_map)

    @property
    def backend(self) -> str:
        """The model family: pseudo_atom, schnet, painn or atom_centred."""
        return self.metadata["backend"]

    @property
    def rcut(self) -> float:
        """The range (Å) of the atoms a probe sees (a message-passing model's cutoff per interaction)."""
        return model_range(self.metadata["model"])

    @property
    def density_block(self) -> str:
        """The block of the training files the model learnt: total or magnetization."""
        training = self.metadata.get("training", {}).get("input", {}).get("training", {})
        return training.get("training_data", {}).get("density_block", "total")

    @property
    def device(self):
        return self.engine.device

    def snapshot(self, structure, **structure_options) -> Snapshot:
        """``structure`` as a :class:`Snapshot` (see :func:`as_snapshot`), its species checked against the
        model's."""
        snapshot = as_snapshot(structure, type_map=self.type_map, **structure_options)
        atom_types(snapshot, self.type_map)  # unknown species: the command line's error
        return snapshot

    def extrapolation(self, structure, **structure_options) -> Optional[dict]:
        """How far the structure's atom environments lie from the training data's (see
        :mod:`deepcharge.analysis.environments`): ``atoms_outside``, ``share_outside``, ``worst``; a warning is
        logged when any atom is outside. None for a model frozen without the record."""
        if self.environments is None:
            return None
        snapshot = as_snapshot(structure, type_map=self.type_map, **structure_options)
        key = (snapshot.positions.tobytes(), np.asarray(snapshot.cell).tobytes(), tuple(snapshot.symbols))
        if self._checked[0] != key:
            found = self.environments.outside(snapshot)
            if found["atoms_outside"] and self.warn_extrapolation:
                log.warning("%s: %d of %d atoms (%.0f %%) lie outside the environments %s was trained on (worst: "
                            "%s); the prediction there is an extrapolation", snapshot.source or "structure",
                            found["atoms_outside"], snapshot.natoms, 100 * found["share_outside"], self.path,
                            found["worst"])
            self._checked = (key, found)
        return self._checked[1]

    def eval(self, structure, points, **structure_options) -> np.ndarray:
        """Densities (e/Å³) at Cartesian ``points`` (…, 3) in Å; the result has the points' leading shape."""
        points = np.asarray(points, dtype=float)
        if points.shape[-1:] != (3,) or not np.isfinite(points).all():
            raise DeepChargeError(f"points: expected finite Cartesian positions of shape (..., 3) in Å, got shape "
                                  f"{points.shape}")
        snapshot = self.snapshot(structure, **structure_options)
        self.extrapolation(snapshot)
        return self.engine.predict_points(snapshot, points.reshape(-1, 3)).reshape(points.shape[:-1])

    def eval_grid(self, structure, shape: Optional[Sequence[int]] = None, spacing: Optional[float] = None,
                  electrons: Optional[float] = None, conserve: bool = False, **structure_options) -> np.ndarray:
        """The density (e/Å³) on the grid ``shape`` (nx, ny, nz) over the cell, or the FFT-friendly grid of at
        most ``spacing`` Å, or the structure's own grid (a density file's); entry (i, j, k) lies at
        (i/nx, j/ny, k/nz) @ cell: what ``deepcharge predict`` writes. ``electrons`` (or ``conserve``: the
        electrons the training data's per-atom counts give) rescales it to integrate to that count."""
        snapshot = self.snapshot(structure, **structure_options)
        shape = grid_shape_for(snapshot, shape, spacing)
        self.extrapolation(snapshot)
        density = self.engine.predict_grid(snapshot, shape)
        target = self.target_electrons(snapshot, electrons, conserve)
        if target is not None:
            density *= rescale_factor(density.mean() * snapshot.volume, target, snapshot.source)
        return density

    def target_electrons(self, snapshot: Snapshot, electrons: Optional[float], conserve: bool) -> Optional[float]:
        """The electron count a prediction is rescaled to: ``electrons``, else with ``conserve`` the training
        data's count for this composition, else None (no rescaling)."""
        if electrons is not None:
            return float(electrons)
        return self.expected_electrons(snapshot) if conserve else None

    def expected_electrons(self, structure, **structure_options) -> float:
        """The electrons ``structure`` holds by the training data's electrons per atom of each species."""
        return self.engine.expected_electrons(as_snapshot(structure, type_map=self.type_map, **structure_options))

    def grid_chunks(self, snapshot: Snapshot, shape, order: str = "C", part: Tuple[int, int] = (0, 1)
                    ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """(flat C-order indices, densities) of consecutive chunks of the grid, for writers that stream: ``order``
        "F" walks it x fastest (CHGCAR's order); ``part`` (k, n) is one of n processes' share."""
        self.extrapolation(snapshot)
        return self.engine.iter_grid(snapshot, shape, order=order, part=part)

    def chunk_count(self, shape) -> int:
        """How many chunks :meth:`grid_chunks` splits the grid ``shape`` into."""
        return self.engine.chunk_count(shape)

    def eval_index(self, snapshot: Snapshot, index: np.ndarray) -> np.ndarray:
        """The prediction at flat grid ``index`` of ``snapshot``'s own grid (the whole grid in one pass when
        ``index`` covers it): what ``test`` and ``compare`` score."""
        self.extrapolation(snapshot)
        if len(index) == snapshot.density.size:
            return self.engine.predict_grid(snapshot, snapshot.grid_shape).reshape(-1)
        return self.engine.predict_points(snapshot, snapshot.grid_points(index))


class DensityEnsemble:
    """Several frozen models of one type_map (an ensemble, as ``model-devi`` takes): their mean density and the
    standard deviation over the models (ddof 0) at every point."""

    def __init__(self, models: Sequence, device: str = "auto"):
        if len(models) < 2:
            raise DeepChargeError(f"an ensemble needs at least two models (got {len(models)}); one model has no "
                                  f"deviation")
        self.members = [model if isinstance(model, DensityPredictor) else DensityPredictor(model, device)
                        for model in models]
        first = self.members[0]
        for member in self.members[1:]:
            if member.type_map != first.type_map:
                raise DeepChargeError(f"{member.path}: type_map {member.type_map} differs from {first.path}'s "
                                      f"{first.type_map}; an ensemble's models must share one type_map")
        seen = []
        for member in self.members:  # members trained on the same data would repeat one warning
            member.warn_extrapolation = member.metadata.get("environments") not in seen
            seen.append(member.metadata.get("environments"))

    @property
    def type_map(self) -> List[str]:
        return self.members[0].type_map

    def eval(self, structure, points, **structure_options) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, σ) in e/Å³ at Cartesian ``points`` (…, 3)."""
        return _mean_and_deviation([member.eval(structure, points, **structure_options) for member in self.members])

    def eval_grid(self, structure, shape=None, spacing=None, **structure_options) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, σ) in e/Å³ on a grid chosen as :meth:`DensityPredictor.eval_grid` chooses it."""
        return _mean_and_deviation([member.eval_grid(structure, shape, spacing, **structure_options)
                                    for member in self.members])

    def grid_chunks(self, snapshot: Snapshot, shape, order: str = "C") -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """(mean, σ) of consecutive chunks of the grid, every model evaluated chunk by chunk."""
        for results in zip(*(member.grid_chunks(snapshot, shape, order=order) for member in self.members)):
            yield _mean_and_deviation([values for _, values in results])


def _mean_and_deviation(values: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    stacked = np.stack(values)
    return stacked.mean(axis=0), stacked.std(axis=0)
