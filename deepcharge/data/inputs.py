"""From a snapshot and probe points to the tensors a model takes: the one place that builds model inputs."""

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from ..errors import DeepChargeError
from ..geometry.neighbours import pad_by_type, probe_neighbours
from .snapshot import Snapshot

# probes per neighbour-search chunk: bounds the memory of candidate pairs
NEIGHBOUR_CHUNK = 16384


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


def probe_inputs(structure: Structure, probes: torch.Tensor, rcut: float, sel: Sequence[int]) -> Dict[str, torch.Tensor]:
    """Per-probe neighbour slots: ``probe_vectors`` (P, Σsel, 3) atom − probe and ``probe_nlist`` (P, Σsel).

    Slots are grouped by type (block sizes ``sel``), nearest first; -1 marks an empty slot.
    """
    vectors, nlists = [], []
    for start in range(0, probes.shape[0], NEIGHBOUR_CHUNK):
        chunk = probes[start:start + NEIGHBOUR_CHUNK]
        probe_index, atom_index, vec = probe_neighbours(chunk, structure.positions, structure.cell,
                                                         structure.pbc, rcut)
        nlist, padded, _ = pad_by_type(probe_index, atom_index, vec, structure.types, sel, chunk.shape[0])
        vectors.append(padded)
        nlists.append(nlist)
    return {"probe_vectors": torch.cat(vectors), "probe_nlist": torch.cat(nlists)}


def max_neighbour_counts(structure: Structure, probes: torch.Tensor, rcut: float, ntypes: int) -> torch.Tensor:
    """Largest number of atoms of each type within ``rcut`` of any of the probes."""
    counts = torch.zeros(ntypes, dtype=torch.long, device=probes.device)
    for start in range(0, probes.shape[0], NEIGHBOUR_CHUNK):
        chunk = probes[start:start + NEIGHBOUR_CHUNK]
        probe_index, atom_index, _ = probe_neighbours(chunk, structure.positions, structure.cell,
                                                      structure.pbc, rcut)
        per_probe = torch.zeros(chunk.shape[0], ntypes, dtype=torch.long, device=probes.device)
        per_probe.index_put_((probe_index, structure.types[atom_index]),
                             torch.ones_like(probe_index), accumulate=True)
        counts = torch.maximum(counts, per_probe.max(dim=0).values)
    return counts
