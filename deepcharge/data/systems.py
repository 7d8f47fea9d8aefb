"""The systems commands and input files name: density files, globs, directories and dataset stores.

A system reference is a density file's path or ``<store>::<name>``, one snapshot of a dataset store.
"""

import glob
from pathlib import Path
from typing import List, Optional, Sequence

from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.io import density_file_problem, is_density_file, may_be_density_file, read_density, read_structure
from deepcharge.io.store import check_store_name, is_store, read_store_snapshot, store_names
from deepcharge.io.structures import read_frames
from deepcharge.snapshot import Snapshot

STORE_SUFFIXES = (".h5", ".hdf5")


def split_reference(reference):
    """(store path, name) for ``<store>::<name>``; (path, None) for a file."""
    path, separator, name = str(reference).rpartition("::")
    return (path, name) if separator else (str(reference), None)


def _expand_path(path: str) -> List[str]:
    """A directory's files that may be density files (sorted; see :func:`may_be_density_file`), a store's
    snapshots, or the file itself."""
    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).iterdir() if may_be_density_file(p))
    if Path(path).suffix.lower() in STORE_SUFFIXES or is_store(path):
        return [f"{path}::{name}" for name in store_names(path)]
    return [path]


def expand_systems(patterns, base_dir, where: str, densities: bool = True) -> List[str]:
    """System references for ``patterns``, relative to ``base_dir``: files, globs, directories (every density
    file inside), stores (every snapshot) and ``<store>::<name>`` (that one); ``where`` names them in errors.

    With ``densities`` (the commands that need a density from each) a file that cannot give one (a potential, a
    file in no density format: :func:`deepcharge.io.density_file_problem`) stops the command before any is read,
    all of them named in one error; without, they are left to the command.
    """
    references = []
    for pattern in map(str, patterns):
        full = str(Path(base_dir, pattern))
        path, name = split_reference(full)
        if name is not None:
            check_store_name(path, name)
            references.append(full)
            continue
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else ([full] if Path(full).exists() else [])
        found = [reference for match in matches for reference in _expand_path(match)]
        if not found:
            raise DeepChargeError(f"{where}: no density file matches `{pattern}` (looked in "
                                  f"{Path(base_dir).resolve()})")
        references += found
    if densities:
        check_density_files(references, where)
    return references


def check_density_files(references, where: str) -> None:
    """DeepChargeError naming every file among ``references`` that cannot give a density, and why."""
    problems = [f"{path}: {problem}" for path, name in map(split_reference, references)
                if name is None and (problem := density_file_problem(path)) is not None]
    if len(problems) == 1:
        raise DeepChargeError(f"{where}: {problems[0]}")
    if problems:
        raise DeepChargeError(f"{where}: {len(problems)} of the {len(references)} files give no density (remove "
                              f"them, or name the files to use): {'; '.join(problems)}")


def resolve_systems(systems, base_dir: Path, where: str) -> List[str]:
    """Expand ``systems`` (an input file's reference, glob or list of them, relative to ``base_dir``)."""
    patterns = [systems] if isinstance(systems, str) else list(systems)
    if not patterns:
        raise DeepChargeError(f"{where}: the list of density files is empty")
    return expand_systems(patterns, base_dir, where)


def load_system(reference, block="total") -> Snapshot:
    """The snapshot a reference names, its ``block`` density: a store entry or a density file."""
    path, name = split_reference(reference)
    return read_density(path, block) if name is None else read_store_snapshot(path, name, block)


def load_structure(reference, block: Optional[str] = None) -> Snapshot:
    """A store entry, or any file :func:`deepcharge.io.read_structure` reads (the density kept when it has one).

    ``block``: a file's density block to keep (default: the total); a store entry's must be the one it holds.
    """
    path, name = split_reference(reference)
    if name is not None:
        return read_store_snapshot(path, name, block)
    if is_store(path):
        raise FileFormatError(path, f"a dataset store holds many snapshots: name one, as `{path}::NAME`")
    return read_structure(path, block or "total")


def load_frames(reference, fmt: Optional[str] = None, type_map: Optional[Sequence[str]] = None) -> List[Snapshot]:
    """Every structure ``reference`` holds: one for a density file or store entry (density kept), every frame
    of a trajectory or dpdata system (see :func:`deepcharge.io.structures.read_frames`)."""
    path, name = split_reference(reference)
    if fmt is None and (name is not None or is_store(path)):
        return [load_structure(reference)]
    if fmt is None and is_density_file(path):
        return [read_structure(path)]
    return read_frames(path, fmt, type_map)


def system_label(reference) -> str:
    """A short name for output file names: the store entry's name, or the file name up to its first dot."""
    path, name = split_reference(reference)
    return Path(path).name.split(".")[0] if name is None else name
