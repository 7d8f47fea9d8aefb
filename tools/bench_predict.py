"""Benchmark ``deepcharge predict`` on rattled Si diamond supercells; prints JSON.

For each model and size it times the whole command ``deepcharge predict -m MODEL -s POSCAR -o out.CHGCAR
--grid ...`` as a subprocess (start-up, model load and file writing included), then breaks one in-process
prediction, chunked as the Predictor chunks it, into grid points, atom states (message-passing backends),
neighbour search + padding, descriptor and fitting (or the probe part of the model, for backends without a
``descriptor``) and file writing. Several models are measured in one run, so their figures compare.

    OMP_WAIT_POLICY=PASSIVE python tools/bench_predict.py -m frozen_model.pth --json bench.json
    OMP_WAIT_POLICY=PASSIVE python tools/bench_predict.py -m se.pth schnet.pth painn.pth --sizes 64 216 --repeat 1

All sizes share one grid spacing (default: 48³ points for Si64, hence 72³ for Si216 and 96³ for Si512).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase.build
import ase.io
import numpy as np
import torch

from deepcharge.data.inputs import probe_inputs, structure_inputs
from deepcharge.infer.predictor import Predictor
from deepcharge.io import read_structure, write_density
from deepcharge.snapshot import Snapshot
from deepcharge.utils import cpu_model

A_SI = 5.431  # Å, conventional 8-atom diamond cell
DEFAULT_SPACING = 2 * A_SI / 48
DEEPCHARGE = [shutil.which("deepcharge")] if shutil.which("deepcharge") else [sys.executable, "-m", "deepcharge.cli"]


def si_supercell(natoms: int, seed: int = 0):
    """n×n×n conventional Si cells (natoms = 8n³), every atom displaced by a Gaussian of σ = 0.05 Å."""
    n = round((natoms / 8) ** (1 / 3))
    if 8 * n ** 3 != natoms:
        sys.exit(f"--sizes: {natoms} is not 8·n³ (64, 216, 512, ...)")
    atoms = ase.build.bulk("Si", "diamond", a=A_SI, cubic=True).repeat(n)
    atoms.rattle(stdev=0.05, seed=seed)
    return atoms


def supercell_files(sizes, spacing: float, folder: str):
    """(atoms, grid shape at ``spacing``, POSCAR path) of a rattled Si supercell of each size, written to ``folder``."""
    for natoms in sizes:
        atoms = si_supercell(natoms)
        shape = [max(1, round(float(np.linalg.norm(a)) / spacing)) for a in atoms.cell]
        poscar = os.path.join(folder, f"POSCAR_{natoms}")
        ase.io.write(poscar, atoms, format="vasp")
        yield natoms, shape, poscar


def time_command(command, repeat: int, env) -> list:
    """Wall seconds of each of ``repeat`` runs of ``command``."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        if done.returncode:
            sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds


class Laps:
    """Wall seconds per stage: ``lap(name)`` charges the time since the previous lap to ``name``."""

    def __init__(self, device: torch.device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.seconds = {}
        self.last = time.perf_counter()

    def lap(self, name: str):
        self.sync()
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now


def evaluate_in_stages(predictor: Predictor, structure, states, points: torch.Tensor, laps: Laps) -> np.ndarray:
    """What ``Predictor.evaluate`` does, with a lap after each stage."""
    module = predictor.module
    values = []
    with torch.no_grad():
        inputs = probe_inputs(structure, points, predictor.spec)
        laps.lap("neighbours")
        for start in range(0, points.shape[0], predictor.model_batch):
            batch = {key: value[start:start + predictor.model_batch] for key, value in inputs.items()}
            if hasattr(module, "descriptor"):
                vectors, mask = batch["probe_vectors"], batch["probe_nlist"] >= 0
                descriptor = module.describe(vectors, mask)
                laps.lap("descriptor")
                values.append(module.fitting(descriptor) + module.baseline(vectors, mask))
                laps.lap("fitting")
            else:
                values.append(module.probe_density(states, batch))
                laps.lap("model")
        return torch.cat(values).to("cpu", torch.float64).numpy()


def breakdown(predictor: Predictor, snapshot: Snapshot, shape, output: str) -> dict:
    """Seconds per stage of one in-process prediction on grid ``shape``, after a warm-up on one chunk."""
    structure = predictor.structure(snapshot)
    total = int(np.prod(shape))
    chunk = predictor.chunk_size

    def to_tensor(index):
        return torch.as_tensor(snapshot.grid_points(index, shape), dtype=predictor.dtype, device=predictor.device)

    for _ in range(3):  # lets TorchScript's profiling executor specialise the graphs
        states = predictor.atom_states(structure)
        evaluate_in_stages(predictor, structure, states, to_tensor(np.arange(min(chunk, total))),
                           Laps(predictor.device))
    density = np.empty(total)
    laps = Laps(predictor.device)
    with torch.no_grad():
        states = predictor.module.atom_states(structure_inputs(structure, predictor.spec))
    laps.lap("atom_states")
    for start in range(0, total, chunk):
        index = np.arange(start, min(start + chunk, total))
        points = to_tensor(index)
        laps.lap("grid_points")
        density[index] = evaluate_in_stages(predictor, structure, states, points, laps)
    write_density(output, Snapshot(symbols=list(snapshot.symbols), positions=snapshot.positions,
                                   cell=snapshot.cell, pbc=snapshot.pbc, density=density.reshape(shape)))
    laps.lap("writing")
    return laps.seconds


def emit(report: dict, path=None):
    """Print ``report`` as JSON, and write it to ``path`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", required=True, nargs="+", help="frozen models (.pth)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216, 512], help="atoms per supercell (8n³)")
    parser.add_argument("--spacing", type=float, default=DEFAULT_SPACING, help="grid spacing in Å")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the command per size")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.threads:
        torch.set_num_threads(args.threads)
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    report = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                          "threads": torch.get_num_threads()}, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "out.CHGCAR")
        for natoms, shape, poscar in supercell_files(args.sizes, args.spacing, tmp):
            for model in [str(Path(m).resolve()) for m in args.model]:
                predictor = Predictor.from_file(model)
                print(f"Si{natoms}: grid {shape}, {predictor.metadata.get('backend')} {model}", file=sys.stderr)
                seconds = time_command(DEEPCHARGE + ["predict", "-m", model, "-s", poscar, "-o", output,
                                                     "--grid", *map(str, shape)], args.repeat, env)
                stages = breakdown(predictor, read_structure(poscar), shape, output)
                points, total = int(np.prod(shape)), sum(stages.values())
                report["results"].append({
                    "model": model, "backend": predictor.metadata.get("backend"),
                    "parameters": predictor.metadata.get("parameters"), "device": str(predictor.device),
                    "atoms": natoms, "grid": shape, "points": points,
                    "command_seconds_best": min(seconds), "command_seconds_median": statistics.median(seconds),
                    "points_per_second": points / min(seconds),
                    "breakdown_seconds": stages,
                    "breakdown_fraction": {name: s / total for name, s in stages.items()},
                })
    emit(report, args.json)


if __name__ == "__main__":
    main()
