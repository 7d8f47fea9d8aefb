"""``deepcharge info``: what density files, structure files and dataset stores hold."""

import json
import logging
from typing import List, Optional

import numpy as np

from deepcharge.data.systems import expand_systems, load_structure, split_reference
from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.io.chgcar import NOT_DENSITIES
from deepcharge.io.files import write_atomic
from deepcharge.snapshot import Snapshot

log = logging.getLogger("deepcharge")


def describe(path: str, snapshot: Snapshot) -> dict:
    """A JSON-ready summary of one snapshot: the structure (symbols, Cartesian positions in Å), the grid and the
    integral of the density block it holds, ``block`` (electrons for the total, the moment in μB for a
    magnetisation); a file that holds no density (a LOCPOT) gives the mean, min and max of its ``values``.
    Entries the snapshot lacks are None."""
    cell = np.asarray(snapshot.cell, dtype=float)
    record = {
        "file": str(path),
        "formula": snapshot.to_ase().get_chemical_formula(),
        "natoms": snapshot.natoms,
        "symbols": list(snapshot.symbols),
        "positions": np.asarray(snapshot.positions, dtype=float).tolist(),
        "cell": cell.tolist(),
        "pbc": [bool(p) for p in snapshot.pbc],
        "grid": None,
        "spacing": None,
        "spin_blocks": list(snapshot.spin_blocks),
        "block": None,
        "quantity": snapshot.quantity,
        "electrons": None,
        "moment": None,
        "values": None,
    }
    if snapshot.density is None:
        return record
    shape = snapshot.grid_shape
    record["grid"] = list(shape)
    record["spacing"] = (np.linalg.norm(cell, axis=1) / np.array(shape)).tolist()
    record["block"] = snapshot.block
    if snapshot.quantity == "density":
        magnetisation = snapshot.block.startswith("magnetization")  # a CHGCAR's, or one of its components
        record["moment" if magnetisation else "electrons"] = snapshot.electrons()
    else:
        unit = next(kind.unit for kind in NOT_DENSITIES if kind.quantity == snapshot.quantity)
        values = snapshot.density
        record["values"] = {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
                            "unit": unit}
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
        lines += [f"  grid       {grid}   spacing {spacing} Å", _amount_line(record), _blocks_line(record)]
    return "\n".join(lines)


def _amount_line(record: dict) -> str:
    """The integral of the block shown; the mean, min and max of what a file that holds no density holds."""
    if record["electrons"] is not None:
        return f"  electrons  {record['electrons']:.4f}"
    if record["moment"] is not None:
        return f"  moment     {record['moment']:.4f} μB (∫ {record['block']} dV)"
    values = record["values"]
    unit = f" {values['unit']}" if values["unit"] else ""
    return (f"  {record['quantity']:<11s}mean {values['mean']:.4f}{unit}, min {values['min']:.4f}{unit}, "
            f"max {values['max']:.4f}{unit} (not a density)")


def _blocks_line(record: dict) -> str:
    """The blocks the file holds, and which one a store entry holds or which one is shown of several."""
    blocks = f"  blocks     {', '.join(record['spin_blocks'])}"
    if split_reference(record["file"])[1] is not None:
        return f"{blocks}   (holds: {record['block']})"
    return f"{blocks}   (shown: {record['block']})" if len(record["spin_blocks"]) > 1 else blocks


def run_info(files: List[str], json_out: Optional[str] = None, block: Optional[str] = None) -> List[dict]:
    """Print a summary of each file or store entry ``files`` names (globs, directories and stores expanded) and
    return the summaries; also write them as JSON to ``json_out``. ``block``: the density block each shows (a
    store entry's must be the one it holds); by default a file's total, a store entry's own.

    Of several files, one that cannot be read is named in a warning and skipped.
    """
    references = expand_systems(files, ".", "FILES", densities=False)
    records = []
    for path in references:
        try:
            snapshot = load_structure(path, block)
        except FileFormatError as err:
            if len(references) == 1:
                raise
            log.warning("%s; skipped", err)
            continue
        records.append(describe(path, snapshot))
        print(format_record(records[-1]))
    if not records:
        raise DeepChargeError(f"FILES: none of the {len(references)} files could be read (see the warnings)")
    if json_out:
        write_atomic(json_out, (json.dumps(records, indent=2) + "\n").encode("utf-8"), compress=False)
    return records
