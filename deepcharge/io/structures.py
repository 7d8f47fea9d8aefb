"""Structures from the ecosystem: every frame of a file ASE reads, or of a dpdata system (DeePMD npy/raw,
LAMMPS data/dump, ...), as Snapshots without a density."""

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from deepcharge.errors import FileFormatError
from deepcharge.snapshot import Snapshot

# what a structure argument may be, for the message when a file is none of it
EXPECTED_STRUCTURE = ("expected a density file (CHGCAR layout or Gaussian cube) or a structure file ASE reads "
                      "(POSCAR, extxyz, ...)")


def atoms_to_snapshot(atoms, source: str) -> Snapshot:
    """An :class:`ase.Atoms` as a Snapshot; a structure without a cell is an error (it needs one for a grid)."""
    cell = np.array(atoms.cell)
    finite = np.isfinite(atoms.positions).all(axis=1)
    if not finite.all() or not np.isfinite(cell).all():
        what = f"atom {int(np.argmin(finite)) + 1}'s position" if not finite.all() else "the cell"
        raise FileFormatError(source, f"{what} holds NaN/inf")
    if abs(np.linalg.det(cell)) < 1e-9:
        raise FileFormatError(source, "the structure has no cell: give it a box (e.g. an extended-XYZ Lattice=, or "
                                      "ase atoms.center(vacuum=4.0)) so densities can be put on a grid")
    return Snapshot(symbols=atoms.get_chemical_symbols(), positions=atoms.positions.copy(), cell=cell,
                    pbc=tuple(bool(p) for p in atoms.pbc), source=source)


def is_deepmd_system(path) -> bool:
    """A DeePMD-kit system directory (it holds type.raw)."""
    return Path(path, "type.raw").is_file()


def read_frames(path, fmt: Optional[str] = None, type_map: Optional[Sequence[str]] = None) -> List[Snapshot]:
    """Every frame of ``path``. ``fmt`` with a slash is a dpdata format (``lammps/dump``, ``lammps/lmp``,
    ``deepmd/npy``, ...; LAMMPS atom types map to ``type_map`` in order); without one, an ASE format name.
    With no ``fmt`` a DeePMD system directory is read with dpdata and anything else with ASE."""
    path = str(path)
    if not Path(path).exists():
        raise FileFormatError(path, "no such file or directory")
    if fmt is None and is_deepmd_system(path):
        fmt = "deepmd/npy" if any(Path(path).glob("set.*")) else "deepmd/raw"
    try:
        if fmt is not None and "/" in fmt:
            import dpdata

            system = dpdata.System(path, fmt=fmt, type_map=list(type_map) if type_map else None)
            frames = system.to("ase/structure")
        else:
            import ase.io

            frames = ase.io.read(path, index=":", format=fmt)
    except FileFormatError:
        raise
    except Exception as err:  # ASE and dpdata raise many kinds of errors for unreadable input
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise FileFormatError(path, f"cannot read structures{f' as {fmt}' if fmt else ''} ({reason}); "
                                    f"{EXPECTED_STRUCTURE}, or a DeePMD system; name another format with "
                                    f"-f FMT (ASE's, or dpdata's such as lammps/dump)") from None
    if not frames:
        raise FileFormatError(path, "holds no structure")
    return [atoms_to_snapshot(atoms, f"{path}[{number}]" if len(frames) > 1 else path)
            for number, atoms in enumerate(frames)]
