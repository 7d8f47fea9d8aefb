"""Dataset stores: many snapshots (structure, density, provenance) in one HDF5 file.

Layout: root attributes ``format = "deepcharge-store"`` and ``version = 1``; one group ``snapshots/<name>``
per snapshot, in the order stored, with datasets ``symbols`` (utf-8), ``positions`` (N, 3; Å), ``cell``
(3, 3; Å), ``pbc`` (3), ``origin`` (3; Å) and ``density`` (nx, ny, nz; e/Å³, chunked along x and
compressed, so one snapshot is read without touching the others), and attributes ``source`` (the file it
was read from), ``sha256`` (of that file's bytes), ``spin_blocks`` (the blocks the file holds) and
``density_block`` (the block stored).
"""

import contextlib
import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, List, NamedTuple, Optional

import h5py
import numpy as np

from deepcharge.errors import FileFormatError
from deepcharge.io.files import PathLike
from deepcharge.io.formats import strip_format_suffix
from deepcharge.snapshot import Snapshot
from deepcharge.utils import atomic_path

log = logging.getLogger("deepcharge")

FORMAT = "deepcharge-store"
VERSION = 1



class StoreItem(NamedTuple):
    """A snapshot to store with its provenance: the sha256 of its source file and the density block read."""

    snapshot: Snapshot
    sha256: str
    density_block: str = "total"


def file_sha256(path) -> str:
    """The sha256 of the file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_name(source) -> str:
    """The default name of a snapshot read from ``source``: the file name without .gz and density suffixes.

    ``si64_0.CHGCAR.gz`` → ``si64_0``; a bare ``calc1/CHGCAR`` → ``calc1_CHGCAR``.
    """
    path = Path(source)
    name = re.sub(r"\.gz$", "", path.name, flags=re.IGNORECASE)
    stem = strip_format_suffix(name) or (f"{path.parent.name}_{name}" if path.parent.name else name)
    return re.sub(r"[^\w.+-]", "_", stem)


def _unique(name, taken) -> str:
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        candidate = f"{name}-{count}"
    return candidate


def is_store(path) -> bool:
    """True if ``path`` is a deepcharge dataset store (judged by content)."""
    if not os.path.isfile(path) or not h5py.is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as store:
            return store.attrs.get("format") == FORMAT
    except OSError:  # a damaged HDF5 file
        return False


@contextlib.contextmanager
def _open_store(path):
    """The store at ``path`` opened for reading; FileFormatError for anything that is not one."""
    if not os.path.exists(path):
        raise FileFormatError(path, "no such file")
    if not is_store(path):
        raise FileFormatError(path, "not a deepcharge dataset store (write one with `deepcharge convert`)")
    with h5py.File(path, "r") as store:
        version = int(store.attrs.get("version", 0))
        if version > VERSION:
            raise FileFormatError(path, f"store version {version} is newer than this deepcharge reads ({VERSION})")
        yield store


def store_names(path) -> List[str]:
    """The names of the snapshots in the store, in the order they were stored."""
    with _open_store(path) as store:
        return list(store["snapshots"])


def check_store_name(path, name, names: Optional[List[str]] = None) -> None:
    """FileFormatError unless the store holds a snapshot ``name`` (``names``: the store's, when known)."""
    names = store_names(path) if names is None else names
    if name not in names:
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        raise FileFormatError(path, f"no snapshot `{name}` in the store (it holds: {shown or 'nothing'})")


def read_store_snapshot(path: PathLike, name: str, block: Optional[str] = None) -> Snapshot:
    """Snapshot ``name`` of the store at ``path``; its source reads ``<path>::<name>``.

    ``block``, when given, must be the density block the snapshot was stored with (``convert --density-block``).
    """
    source = f"{path}::{name}"
    with _open_store(path) as store:
        check_store_name(path, name, list(store["snapshots"]))
        group = store["snapshots"][name]
        stored = group.attrs["density_block"]
        if block is not None and stored != block:
            raise FileFormatError(source, f"holds the '{stored}' density block, not '{block}': convert its "
                                          f"source with --density-block {block}")
        arrays = {key: group[key][()] for key in ("positions", "cell", "origin", "density")}
        for key, values in arrays.items():
            if not np.isfinite(values).all():
                raise FileFormatError(source, f"dataset '{key}' holds {int((~np.isfinite(values)).sum())} NaN/inf "
                                              "values: rebuild the store from its density files")
        return Snapshot(
            symbols=list(group["symbols"].asstr()[()]),
            pbc=tuple(bool(p) for p in group["pbc"][()]),
            source=source,
            spin_blocks=tuple(str(b) for b in group.attrs["spin_blocks"]),
            block=str(stored),
            **arrays,
        )


def _write_snapshot(group, item: StoreItem):
    snapshot = item.snapshot
    density = np.asarray(snapshot.density, dtype=np.float64)
    group.create_dataset("symbols", data=np.array(snapshot.symbols, dtype=object), dtype=h5py.string_dtype())
    group.create_dataset("positions", data=np.asarray(snapshot.positions, dtype=np.float64))
    group.create_dataset("cell", data=np.asarray(snapshot.cell, dtype=np.float64))
    group.create_dataset("pbc", data=np.array(snapshot.pbc, dtype=bool))
    group.create_dataset("origin", data=np.asarray(snapshot.origin, dtype=np.float64))
    group.create_dataset("density", data=density, chunks=(min(density.shape[0], 16), *density.shape[1:]),
                         compression="gzip", compression_opts=4, shuffle=True)
    group.attrs["source"] = str(snapshot.source)
    group.attrs["sha256"] = item.sha256
    group.attrs["spin_blocks"] = np.array(snapshot.spin_blocks, dtype=h5py.string_dtype())
    group.attrs["density_block"] = item.density_block


def _stored_digests(path) -> dict:
    """sha256 → name for every snapshot of the store at ``path``."""
    with _open_store(path) as store:
        return {group.attrs["sha256"]: name for name, group in store["snapshots"].items()}


def write_store(path: PathLike, snapshots_with_provenance: Iterable[StoreItem],
                append: bool = False) -> List[Optional[str]]:
    """Store every item in ``path``; returns the name each got (None: skipped, its source already stored).

    Names come from the source file names (see :func:`snapshot_name`), made unique. With ``append`` the
    items are added to an existing store. The new store is built beside ``path`` (a copy of the old one
    plus the items) and replaces it only when complete, so a failed or killed run leaves it unchanged.
    """
    path = os.fspath(path)
    old = append and os.path.exists(path)
    known = _stored_digests(path) if old else {}
    names = []
    with atomic_path(path) as tmp:
        if old:
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+" if old else "w") as store:
            if not old:
                store.attrs["format"] = FORMAT
                store.attrs["version"] = VERSION
                store.create_group("snapshots", track_order=True)
            snapshots = store["snapshots"]
            for item in snapshots_with_provenance:
                source = item.snapshot.source
                if item.sha256 in known:
                    log.info("%s: skipped, the same file as snapshot %s of %s", source, known[item.sha256], path)
                    names.append(None)
                    continue
                name = _unique(snapshot_name(source), snapshots)
                _write_snapshot(snapshots.create_group(name), item)
                known[item.sha256] = name
                names.append(name)
    return names
