"""Benchmark ``deepcharge predict`` with a pseudo_atom model before and after ``deepcharge compress``; prints JSON.

The whole command runs as a subprocess (start-up, model load and file writing included) on Si64 (the shipped
si64_0 snapshot) and Si512 (its 2×2×2 supercell) at one grid spacing; each run's wall time and peak resident
memory (its own ru_maxrss) are recorded, and the compressed model's probes/s and peak memory relative to the original.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python tools/bench_compress.py -m frozen_model.pth --json bench.json
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase
import ase.io
import torch
from bench_predict import DEEPCHARGE, cpu_model, emit

from deepcharge.entrypoints.compress import compress_model
from deepcharge.io import read_density

# runs the command in argv and prints its peak resident memory (KiB)
PEAK_MEMORY = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""
SI64 = Path(__file__).resolve().parents[1] / "input_examples" / "si64_one_shot" / "data" / "si64_0.CHGCAR.gz"


def si64_supercell(folder: str, n: int):
    """(atoms, POSCAR path) of si64_0 repeated n×n×n, written to ``folder``."""
    snapshot = read_density(SI64)
    atoms = ase.Atoms(snapshot.symbols, positions=snapshot.positions, cell=snapshot.cell, pbc=snapshot.pbc).repeat(n)
    poscar = os.path.join(folder, f"POSCAR_{len(atoms)}")
    ase.io.write(poscar, atoms, format="vasp")
    return len(atoms), poscar


def run_measured(command, env) -> tuple:
    """Wall seconds and peak resident memory (MiB) of one run of ``command``.

    The command is started by a fresh Python whose only child it is: a child inherits the high-water mark of
    the process it was forked from, so this benchmark's own memory would otherwise hide the command's.
    """
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_MEMORY, *command], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds, int(done.stdout.split()[-1]) / 1024


def measure(models: dict, poscar: str, grid, output: str, repeat: int, env) -> dict:
    """Per model: best wall time, probes/s and largest peak memory of ``repeat`` runs of ``deepcharge predict``
    (the models take turns, so that a busy machine slows them alike)."""
    runs = {name: [] for name in models}
    for _ in range(repeat):
        for name, model in models.items():
            command = DEEPCHARGE + ["predict", "-m", model, "-s", poscar, "-o", output, "--grid", *map(str, grid)]
            runs[name].append(run_measured(command, env))
    points, result = grid[0] * grid[1] * grid[2], {}
    for name, timings in runs.items():
        seconds = min(s for s, _ in timings)
        result[name] = {"seconds_best": seconds, "probes_per_second": points / seconds,
                        "peak_rss_mib": max(rss for _, rss in timings)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", required=True, help="frozen pseudo_atom model (.pth), not compressed")
    parser.add_argument("--grid", type=int, default=48, help="grid points per axis of Si64; Si512 gets twice (48)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the best time is kept (3)")
    parser.add_argument("-s", "--step", type=float, default=0.01, help="compress's table stride (0.01)")
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of the predict commands (1)")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    args = parser.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        original = str(Path(args.model).resolve())
        compressed = os.path.join(tmp, "compressed.pth")
        metadata = compress_model(original, compressed, step=args.step)
        report = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                              "threads": args.threads},
                  "model": original, "compressed": metadata["compressed"], "results": []}
        for n in (1, 2):
            natoms, poscar = si64_supercell(tmp, n)
            grid = [args.grid * n] * 3
            print(f"Si{natoms}: grid {grid}", file=sys.stderr)
            result = measure({"original": original, "compressed": compressed}, poscar, grid,
                             os.path.join(tmp, "out.CHGCAR"), args.repeat, env)
            before, after = result["original"], result["compressed"]
            report["results"].append({
                "system": f"Si{natoms}", "atoms": natoms, "grid": grid, **result,
                "speedup": after["probes_per_second"] / before["probes_per_second"],
                "peak_rss_ratio": after["peak_rss_mib"] / before["peak_rss_mib"],
            })
    emit(report, args.json)


if __name__ == "__main__":
    main()
