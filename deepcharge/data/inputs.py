"""From a snapshot and probe points to the tensors a model takes: the one place that builds model inputs."""

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from deepcharge.chunks import NEIGHBOUR_SEARCH_CHUNK
from deepcharge.errors import DeepChargeError
from deepcharge.geometry.neighbours import atom_neighbours, pad_by_type, probe_neighbours
from deepcharge.snapshot import Snapshot


def atom_types(snapshot: Snapshot, type_map: Sequence[str]) -> np.ndarray:
    """Type index of every atom; an error naming the file if a species is not in ``type_map``."""
    index = {symbol: i for i, symbol in enumerate(type_map)}
    unknown = sorted(set(snapshot.symbols) - set(index))
    if unknown:
        raise DeepChargeError(
            f"{snapshot.source or 'structure'}: species {', '.join(unknown)} not in the model's type_map "
            f"{list(type_map)}; train a model that knows them")
    return np.array([index[s] for s in snapshot.symbols], dtype=np.int64)


@dataclass
class Structure:
    """A snapshot's atoms as tensors on the compute device."""

    positions: torch.Tensor
    cell: torch.Tensor
    pbc: List[bool]
    types: torch.Tensor

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, type_map: Sequence[str], device, dtype) -> "Structure":
        return cls(
            positions=torch.as_tensor(snapshot.positions, dtype=dtype, device=device),
            cell=torch.as_tensor(snapshot.cell, dtype=dtype, device=device),
            pbc=[bool(p) for p in snapshot.pbc],
            types=torch.as_tensor(atom_types(snapshot, type_map), device=device),
        )


@dataclass(frozen=True)
class InputSpec:
    """What a backend needs besides atom types: probe→atom cutoff and slots, and the atom-graph cutoff."""

    rcut: float
    sel: tuple
    atom_cutoff: float

    @classmethod
    def of(cls, model) -> "InputSpec":
        """The spec a model (live or frozen) declares through its attributes."""
        return cls(float(model.rcut), tuple(int(s) for s in model.sel), float(model.atom_cutoff))

    @property
    def needs_atom_graph(self) -> bool:
        return self.atom_cutoff > 0


def structure_inputs(structure: Structure, spec: InputSpec) -> Dict[str, torch.Tensor]:
    """``atom_types`` (N,) and, for backends with an atom graph, its directed edges within ``atom_cutoff``:
    ``atom_edge_center`` (receiver i), ``atom_edge_neighbour`` (sender j) and ``atom_edge_vectors``
    (E, 3) = r_j + image shift − r_i."""
    inputs = {"atom_types": structure.types}
    if spec.needs_atom_graph:
        center, neighbour, vectors = atom_neighbours(structure.positions, structure.cell, structure.pbc,
                                                     spec.atom_cutoff)
        inputs.update(atom_edge_center=center, atom_edge_neighbour=neighbour, atom_edge_vectors=vectors)
    return inputs


def probe_inputs(structure: Structure, probes: torch.Tensor, spec: InputSpec) -> Dict[str, torch.Tensor]:
    """Per-probe neighbour slots: ``probe_vectors`` (P, K, 3) atom − probe and ``probe_nlist`` (P, K) atom index.

    With ``spec.sel`` the slots are grouped by type (block sizes ``sel``, K = Σsel), nearest first, as
    se_e2_a needs; without, K is the largest neighbour count of these probes and every neighbour within
    ``rcut`` has a slot, nearest first. -1 marks an empty slot.
    """
    vectors, nlists = [], []
    single_type = torch.zeros_like(structure.types)
    for start in range(0, probes.shape[0], NEIGHBOUR_SEARCH_CHUNK):
        chunk = probes[start:start + NEIGHBOUR_SEARCH_CHUNK]
        probe_index, atom_index, vec = probe_neighbours(chunk, structure.positions, structure.cell,
                                                         structure.pbc, spec.rcut)
        if spec.sel:
            nlist, padded, _ = pad_by_type(probe_index, atom_index, vec, structure.types, spec.sel, chunk.shape[0])
        else:
            width = max(1, int(torch.bincount(probe_index, minlength=chunk.shape[0]).max())) if len(probe_index) else 1
            nlist, padded, _ = pad_by_type(probe_index, atom_index, vec, single_type, [width], chunk.shape[0])
        vectors.append(padded)
        nlists.append(nlist)
    width = max(n.shape[1] for n in nlists)
    return {"probe_vectors": torch.cat([pad_slots(v, width, 0.0) for v in vectors]),
            "probe_nlist": torch.cat([pad_slots(n, width, -1) for n in nlists])}


def pad_slots(tensor: torch.Tensor, width: int, fill) -> torch.Tensor:
    """``tensor`` (P, K, ...) widened to (P, width, ...) with ``fill``."""
    missing = width - tensor.shape[1]
    if missing <= 0:
        return tensor
    padding = tensor.new_full((tensor.shape[0], missing) + tuple(tensor.shape[2:]), fill)
    return torch.cat([tensor, padding], dim=1)


def merge_structures(parts: Sequence[Dict[str, torch.Tensor]]) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Several structures' atom inputs as one disjoint graph, and each structure's first atom index."""
    counts = torch.tensor([part["atom_types"].shape[0] for part in parts])
    offsets = (torch.cumsum(counts, 0) - counts).to(parts[0]["atom_types"].device)
    merged = {"atom_types": torch.cat([part["atom_types"] for part in parts])}
    if "atom_edge_center" in parts[0]:
        for key in ("atom_edge_center", "atom_edge_neighbour"):
            merged[key] = torch.cat([part[key] + offset for part, offset in zip(parts, offsets)])
        merged["atom_edge_vectors"] = torch.cat([part["atom_edge_vectors"] for part in parts])
    return merged, offsets


def max_neighbour_counts(structure: Structure, probes: torch.Tensor, rcut: float, ntypes: int) -> torch.Tensor:
    """Largest number of atoms of each type within ``rcut`` of any of the probes."""
    counts = torch.zeros(ntypes, dtype=torch.long, device=probes.device)
    for start in range(0, probes.shape[0], NEIGHBOUR_SEARCH_CHUNK):
        chunk = probes[start:start + NEIGHBOUR_SEARCH_CHUNK]
        probe_index, atom_index, _ = probe_neighbours(chunk, structure.positions, structure.cell,
                                                      structure.pbc, rcut)
        per_probe = torch.zeros(chunk.shape[0], ntypes, dtype=torch.long, device=probes.device)
        per_probe.index_put_((probe_index, structure.types[atom_index]),
                             torch.ones_like(probe_index), accumulate=True)
        counts = torch.maximum(counts, per_probe.max(dim=0).values)
    return counts


def auto_sel(counts: torch.Tensor) -> List[int]:
    """DeePMD-kit's ``sel: auto``: largest neighbour count × 1.1, rounded up to a multiple of 4."""
    return [max(4, int(math.ceil(int(c) * 1.1 / 4.0) * 4)) for c in counts]
