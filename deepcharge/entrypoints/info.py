"""``deepcharge info``: what density files, structure files and dataset stores hold."""

import json
from typing import List, Optional

import numpy as np

from deepcharge.data.systems import expand_systems, load_structure
from deepcharge.io.files import write_atomic
from deepcharge.snapshot import Snapshot


def describe(path: str, snapshot: Snapshot) -> dict:
    """A JSON-ready summary of one snapshot (grid, spacing, electrons are None without a density)."""
    cell = np.asarray(snapshot.cell, dtype=float)
    record = {
        "file": str(path),
        "formula": snapshot.to_ase().get_chemical_formula(),
        "natoms": snapshot.natoms,
        "cell": cell.tolist(),
        "pbc": [bool(p) for p in snapshot.pbc],
        "grid": None,
        "spacing": None,
        "electrons": None,
        "spin_blocks": list(snapshot.spin_blocks),
    }
    if snapshot.density is not None:
        shape = snapshot.grid_shape
        record["grid"] = list(shape)
        record["spacing"] = (np.linalg.norm(cell, axis=1) / np.array(shape)).tolist()
        record["electrons"] = snapshot.electrons()
    return record


def format_record(record: dict) -> str:
    """The human-readable block printed for one file."""
    cell_rows = ["".join(f"{x:11.5f}" for x in row) for row in record["cell"]]
    lines = [
        record["file"],
        f"  formula    {record['formula']} ({record['natoms']} atoms)",
        f"  cell / Å {cell_rows[0]}",
        *(f"           {row}" for row in cell_rows[1:]),
    ]
    if record["grid"] is None:
        lines.append("  grid       none (structure only)")
    else:
        grid = " x ".join(str(n) for n in record["grid"])
        spacing = " ".join(f"{h:.4f}" for h in record["spacing"])
        lines += [
            f"  grid       {grid}   spacing {spacing} Å",
            f"  electrons  {record['electrons']:.4f}",
            f"  blocks     {', '.join(record['spin_blocks'])}",
        ]
    return "\n".join(lines)


def run_info(files: List[str], json_out: Optional[str] = None) -> List[dict]:
    """Print a summary of each file or store entry ``files`` names (globs, directories and stores expanded) and
    return the summaries; also write them as JSON to ``json_out``."""
    records = []
    for path in expand_systems(files, ".", "FILES"):
        records.append(describe(path, load_structure(path)))
        print(format_record(records[-1]))
    if json_out:
        write_atomic(json_out, (json.dumps(records, indent=2) + "\n").encode("utf-8"), compress=False)
    return records
