"""``deepcharge neighbor-stat``: largest neighbour counts per type around grid points, to set ``sel``."""

from typing import List

import torch

from deepcharge.data.inputs import Structure, auto_sel, max_neighbour_counts
from deepcharge.data.sampler import draw_probes
from deepcharge.data.systems import expand_systems, load_system


def run_neighbor_stat(systems: List[str], rcut: float, type_map: List[str], numb_points: int = -1) -> dict:
    """Counts over all grid points of every system (or ``numb_points`` random ones per system)."""
    counts = torch.zeros(len(type_map), dtype=torch.long)
    rng = torch.Generator().manual_seed(0)
    for path in expand_systems(systems, ".", "-s"):
        snapshot = load_system(path)
        positions = draw_probes(snapshot, numb_points, rng)[0]
        structure = Structure.from_snapshot(snapshot, type_map, "cpu", torch.float64)
        counts = torch.maximum(counts, max_neighbour_counts(structure, torch.as_tensor(positions), rcut,
                                                            len(type_map)))
    result = {"rcut": rcut, "type_map": type_map, "max_neighbours": counts.tolist(), "sel_auto": auto_sel(counts)}
    print(f"rcut {rcut} Å, types {type_map}")
    print(f"largest neighbour counts per type: {result['max_neighbours']}")
    print(f"sel (×1.1, multiple of 4):          {result['sel_auto']}")
    return result
