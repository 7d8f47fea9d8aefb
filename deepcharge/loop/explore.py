"""Candidates for labelling: the loop input's structures strained and rattled, and its trajectories' frames."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, List

import ase.io
import numpy as np

from deepcharge.io.structures import atoms_to_snapshot
from deepcharge.loop.config import LoopInput
from deepcharge.snapshot import Snapshot


@dataclass
class Candidate:
    """A structure that may be labelled: ``name`` numbers it within its iteration, ``origin`` is the file (and
    frame) it comes from, ``recipe`` how it was made from it (rattle and strain amplitudes; {} for a frame)."""

    name: str
    origin: str
    recipe: dict
    structure: Snapshot


def perturbed(structure: Snapshot, rattle: float, strain: float, rng: np.random.Generator) -> Snapshot:
    """``structure`` with its cell strained by 1 + ε (ε symmetric, entries uniform in [−strain, strain]; the atoms
    move with the cell) and its atoms displaced by a Gaussian of standard deviation ``rattle`` (Å) per axis."""
    epsilon = np.triu(rng.uniform(-strain, strain, (3, 3)))
    deformation = np.eye(3) + epsilon + np.triu(epsilon, 1).T
    positions = structure.positions @ deformation + rng.normal(0.0, rattle, structure.positions.shape)
    return Snapshot(symbols=list(structure.symbols), positions=positions, cell=structure.cell @ deformation,
                    pbc=structure.pbc, source=structure.source)


def explore_candidates(loop: LoopInput, iteration: int, labelled: Collection[str]) -> List[Candidate]:
    """This iteration's candidates: for every structure, rattle and strain amplitude, ``count`` new draws (a
    random stream of its own per iteration); then every trajectory frame whose origin is not in ``labelled``."""
    explore = loop.params["explore"]
    found = []
    if explore["structures"] is not None:
        section = explore["structures"]
        rng = np.random.default_rng([explore["seed"], iteration])
        for origin, structure in loop.structures:
            for rattle in section["rattle"]:
                for strain in section["strain"]:
                    for _ in range(section["count"]):
                        found.append((origin, {"rattle": rattle, "strain": strain},
                                      perturbed(structure, rattle, strain, rng)))
    found += [(origin, {}, frame) for origin, frame in loop.frames if origin not in labelled]
    width = max(6, len(str(len(found))))
    candidates = []
    for number, (origin, recipe, structure) in enumerate(found):
        name = f"{number:0{width}d}"  # messages name the candidate, not the file it was made from
        candidates.append(Candidate(name, origin, recipe,
                                    dataclasses.replace(structure, source=f"candidate {name} ({origin})")))
    return candidates


def write_candidates(path: Path, candidates: List[Candidate]):
    """Every candidate's structure as one extended-XYZ file, in order (``info`` holds its name and origin)."""
    frames = []
    for candidate in candidates:
        atoms = candidate.structure.to_ase()
        atoms.info.update(name=candidate.name, origin=candidate.origin)
        frames.append(atoms)
    if frames:
        ase.io.write(path, frames, format="extxyz")
    else:
        Path(path).write_text("")


def read_candidates(path: Path) -> List[Snapshot]:
    """The structures :func:`write_candidates` wrote, in order."""
    return [atoms_to_snapshot(atoms, f"{path}[{number}]")
            for number, atoms in enumerate(ase.io.read(path, index=":", format="extxyz"))]
