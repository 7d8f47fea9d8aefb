"""A fixed set of probe points with their model inputs and reference densities, held on the device."""

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from .inputs import Structure, probe_inputs
from .snapshot import Snapshot


@dataclass
class ProbeSet:
    """Model inputs (per-probe tensors), reference densities and the file each probe came from."""

    inputs: Dict[str, torch.Tensor]
    density: torch.Tensor
    system: torch.Tensor
    sources: List[str]

    def __len__(self) -> int:
        return int(self.density.shape[0])

    def take(self, index: torch.Tensor):
        """Inputs and densities of the probes at ``index``."""
        return {key: value[index] for key, value in self.inputs.items()}, self.density[index]

    def chunks(self, size: int):
        """Consecutive (index, inputs, density) pieces of at most ``size`` probes."""
        for start in range(0, len(self), size):
            index = torch.arange(start, min(start + size, len(self)), device=self.density.device)
            yield (index,) + self.take(index)

    @classmethod
    def build(cls, snapshots: Sequence[Snapshot], samples: Sequence, type_map: Sequence[str], rcut: float,
              sel: Sequence[int], device, dtype) -> "ProbeSet":
        """From snapshots and, for each, the (positions, densities) of its drawn probes."""
        pieces, densities, systems = [], [], []
        for number, (snapshot, (positions, density)) in enumerate(zip(snapshots, samples)):
            structure = Structure.from_snapshot(snapshot, type_map, device, dtype)
            probes = torch.as_tensor(positions, dtype=dtype, device=device)
            pieces.append(probe_inputs(structure, probes, rcut, sel))
            densities.append(torch.as_tensor(np.asarray(density), dtype=dtype, device=device))
            systems.append(torch.full((len(density),), number, dtype=torch.long, device=device))
        inputs = {key: torch.cat([piece[key] for piece in pieces]) for key in pieces[0]}
        return cls(inputs, torch.cat(densities), torch.cat(systems), [s.source for s in snapshots])
