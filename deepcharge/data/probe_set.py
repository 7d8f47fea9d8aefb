"""A fixed set of probe points with their model inputs and reference densities, held on the device."""

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from deepcharge.data.inputs import InputSpec, Structure, merge_structures, pad_slots, probe_inputs, structure_inputs
from deepcharge.snapshot import Snapshot


@dataclass
class ProbeSet:
    """Per-probe model inputs, reference densities and the structure each probe belongs to.

    ``structures`` holds each structure's atom inputs; batches of a backend with an atom graph carry
    the structures their probes belong to, merged into one graph (``probe_nlist`` then indexes it).
    """

    inputs: Dict[str, torch.Tensor]
    density: torch.Tensor
    weight: torch.Tensor
    system: torch.Tensor
    sources: List[str]
    structures: List[Dict[str, torch.Tensor]]
    needs_atoms: bool

    def __post_init__(self):
        # probes per structure (they are stored structure by structure)
        self.system_sizes = torch.bincount(self.system, minlength=len(self.sources))

    def __len__(self) -> int:
        return int(self.density.shape[0])

    def take(self, index: torch.Tensor):
        """Model inputs and densities of the probes at ``index``."""
        inputs = {key: value[index] for key, value in self.inputs.items()}
        if self.needs_atoms:
            systems, local = torch.unique(self.system[index], return_inverse=True)
            atoms, offsets = merge_structures([self.structures[i] for i in systems.tolist()])
            nlist = inputs["probe_nlist"]
            inputs["probe_nlist"] = torch.where(nlist >= 0, nlist + offsets[local].unsqueeze(1), nlist)
            inputs.update(atoms)
        return inputs, self.density[index]

    def head(self, count: int) -> "ProbeSet":
        """The first ``count`` probes."""
        return ProbeSet({k: v[:count] for k, v in self.inputs.items()}, self.density[:count], self.weight[:count],
                        self.system[:count], self.sources, self.structures, self.needs_atoms)

    def chunks(self, size: int):
        """Consecutive (index, inputs, density) pieces of at most ``size`` probes."""
        for start in range(0, len(self), size):
            index = torch.arange(start, min(start + size, len(self)), device=self.density.device)
            yield (index,) + self.take(index)

    @classmethod
    def build(cls, snapshots: Sequence[Snapshot], samples: Sequence, type_map: Sequence[str], spec: InputSpec,
              device, dtype) -> "ProbeSet":
        """From snapshots and, for each, the (positions, densities, weights) of its drawn probes."""
        parts = []
        for snapshot, (positions, density, weight) in zip(snapshots, samples):
            structure = Structure.from_snapshot(snapshot, type_map, device, dtype)
            probes = torch.as_tensor(positions, dtype=dtype, device=device)
            parts.append(cls(probe_inputs(structure, probes, spec),
                             torch.as_tensor(np.asarray(density), dtype=dtype, device=device),
                             torch.as_tensor(np.asarray(weight), dtype=dtype, device=device),
                             torch.zeros(len(density), dtype=torch.long, device=device), [snapshot.source],
                             [structure_inputs(structure, spec)], spec.needs_atom_graph))
        return cls.concat(parts)

    @classmethod
    def concat(cls, parts: Sequence["ProbeSet"]) -> "ProbeSet":
        """Several probe sets as one, their structures numbered in order."""
        width = max(part.inputs["probe_nlist"].shape[1] for part in parts)
        inputs = {"probe_vectors": torch.cat([pad_slots(p.inputs["probe_vectors"], width, 0.0) for p in parts]),
                  "probe_nlist": torch.cat([pad_slots(p.inputs["probe_nlist"], width, -1) for p in parts])}
        offsets = np.cumsum([0] + [len(p.sources) for p in parts])
        return cls(inputs, torch.cat([p.density for p in parts]), torch.cat([p.weight for p in parts]),
                   torch.cat([p.system + int(offset) for p, offset in zip(parts, offsets)]),
                   [source for p in parts for source in p.sources],
                   [structure for p in parts for structure in p.structures], parts[0].needs_atoms)
