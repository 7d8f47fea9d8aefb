"""``deepcharge convert``: density files → one dataset store (HDF5), with where each snapshot came from."""

import logging
from typing import List

from deepcharge.data.systems import expand_systems, split_reference
from deepcharge.errors import DeepChargeError
from deepcharge.io import read_density
from deepcharge.io.store import StoreItem, file_sha256, write_store

log = logging.getLogger("deepcharge")


def run_convert(inputs: List[str], output: str, append: bool = False, block: str = "total") -> List[dict]:
    """Store the ``block`` density of every file ``inputs`` names (files, globs, directories) in ``output``.

    Prints one line per stored snapshot and returns their summaries.
    """
    files = expand_systems(inputs, ".", "FILES")
    for reference in files:
        if split_reference(reference)[1] is not None:
            raise DeepChargeError(f"{reference}: already in a dataset store; convert reads density files")
    summaries = []

    def items():
        for path in files:
            snapshot = read_density(path, block)
            summaries.append({"source": path, "formula": snapshot.to_ase().get_chemical_formula(),
                              "grid": list(snapshot.grid_shape), "electrons": snapshot.electrons()})
            yield StoreItem(snapshot, file_sha256(path), block)

    names = write_store(output, items(), append=append)
    stored = [{"name": name, **summary} for name, summary in zip(names, summaries) if name is not None]
    for record in stored:
        grid = "x".join(str(n) for n in record["grid"])
        print(f"{record['name']:24s} {record['formula']:12s} {grid:>13s} {record['electrons']:12.4f} e   "
              f"{record['source']}")
    log.info("%s: %d snapshot(s) stored, %d skipped", output, len(stored), len(names) - len(stored))
    return stored
