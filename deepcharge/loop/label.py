"""Labels: a chosen candidate's DFT density, computed in a folder of its own by GPAW or by the user's command,
``parallel`` of them side by side. A folder that holds its density file is labelled: never computed again."""

import logging
import shlex
import subprocess
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import List, NamedTuple, Optional

import ase.io
import numpy as np

from deepcharge.errors import DeepChargeError
from deepcharge.interfaces.gpaw import run_scf
from deepcharge.io import read_density, write_density
from deepcharge.snapshot import Snapshot

log = logging.getLogger("deepcharge")

GPAW_DENSITY = "density.CHGCAR"
COMMAND_LOG = "label.log"
STRUCTURE = "POSCAR"
FAILED = "label.failed"


class Task(NamedTuple):
    """One label to compute: the candidate's name and origin, its folder and structure."""

    name: str
    origin: str
    folder: Path
    structure: Snapshot


def density_file(folder: Path, label: dict) -> Path:
    """The density file a label leaves in ``folder``: GPAW's ``density.CHGCAR`` or the command's ``output``."""
    return folder / (GPAW_DENSITY if label["type"] == "gpaw" else label["output"])


def label_all(tasks: List[Task], label: dict, gpaw_python: Optional[str] = None) -> List[dict]:
    """Label every task (``label["parallel"]`` at a time) and return what each label holds, in task order.

    A failure stops the loop with one message naming the candidate and its folder: no label starts after it,
    those still running finish and are kept, the rest are left to the next run.
    """
    results, failures, waiting, running = {}, [], iter(tasks), {}
    with ThreadPoolExecutor(label["parallel"]) as pool:

        def start_next():
            task = next(waiting, None)
            if task is not None:
                running[pool.submit(label_one, task, label, gpaw_python)] = task

        for _ in range(label["parallel"]):
            start_next()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    results[task.name] = future.result()
                except DeepChargeError as err:
                    failures.append(f"candidate {task.name} ({task.origin}) could not be labelled in {task.folder}: "
                                    f"{str(err).rstrip('.')}")
                    continue
                seconds = results[task.name]["seconds"]
                log.info("label %d/%d: candidate %s in %s%s", len(results), len(tasks), task.name, task.folder,
                         " (labelled by an earlier run)" if seconds is None else f" ({seconds:.1f} s)")
                if not failures:
                    start_next()
    if failures:
        more = f" ({len(failures) - 1} more failed)" if len(failures) > 1 else ""
        raise DeepChargeError(f"{failures[0]}{more}; the labels done are kept and a rerun of the loop retries the "
                              f"rest")
    return [results[task.name] for task in tasks]


def label_one(task: Task, label: dict, gpaw_python: Optional[str] = None) -> dict:
    """Compute one label unless its folder holds it already; return its file, electrons, grid and seconds
    (None when an earlier run computed it). A failure leaves a ``label.failed`` note, so that the next run
    computes it again even where the labeller left a density file."""
    path, failed = density_file(task.folder, label), task.folder / FAILED
    fresh = failed.is_file() or not path.is_file()
    began = time.perf_counter()
    try:
        if fresh:
            task.folder.mkdir(parents=True, exist_ok=True)
            failed.unlink(missing_ok=True)
            ase.io.write(task.folder / STRUCTURE, task.structure.to_ase(), format="vasp", direct=True)
            if label["type"] == "gpaw":
                run_gpaw(task, label, gpaw_python)
            else:
                run_command(task, label)
        density = read_density(path)
        if Counter(density.symbols) != Counter(task.structure.symbols):
            raise DeepChargeError(f"{path} holds {_formula(density.symbols)}, the candidate "
                                  f"{_formula(task.structure.symbols)}")
    except DeepChargeError as err:
        failed.write_text(f"{err}\n")
        raise
    return {"name": task.name, "origin": task.origin, "file": str(path), "electrons": density.electrons(),
            "grid": list(density.grid_shape), "seconds": time.perf_counter() - began if fresh else None}


def run_gpaw(task: Task, label: dict, python: Optional[str]):
    """GPAW's SCF of the candidate in its folder; its smooth pseudo density written as ``density.CHGCAR``."""
    structure = task.structure
    parameters = {"txt": "gpaw.txt", **label["parameters"]}  # GPAW runs in the folder
    converged = task.folder / "density.npy"
    run_scf(structure.to_ase(), parameters, workdir=task.folder, python=python, threads=label["threads"],
            density_out=converged)
    write_density(density_file(task.folder, label),
                  Snapshot(symbols=list(structure.symbols), positions=structure.positions, cell=structure.cell,
                           pbc=structure.pbc, density=np.load(converged), source=task.name))
    converged.unlink()


def run_command(task: Task, label: dict):
    """The user's command in the candidate's folder, ``{structure}`` its POSCAR; its output goes to label.log."""
    poscar = shlex.quote(str((task.folder / STRUCTURE).resolve()))
    with open(task.folder / COMMAND_LOG, "w") as output:
        done = subprocess.run(label["command"].replace("{structure}", poscar), shell=True, cwd=task.folder,
                              stdout=output, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        lines = (task.folder / COMMAND_LOG).read_text(errors="replace").strip().splitlines()
        last = f": {lines[-1].strip()}" if lines else ""
        raise DeepChargeError(f"`{label['command']}` exited with status {done.returncode} ({COMMAND_LOG}{last})")
    if not density_file(task.folder, label).is_file():
        raise DeepChargeError(f"`{label['command']}` left no {label['output']}")


def _formula(symbols) -> str:
    return "".join(f"{symbol}{count}" for symbol, count in sorted(Counter(symbols).items()))
