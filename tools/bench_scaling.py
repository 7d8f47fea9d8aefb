"""Time and peak memory of ``deepcharge predict`` against the number of atoms at a fixed grid spacing; JSON.

Each size (rattled Si diamond supercells, 8n³ atoms) is predicted by the whole command in a fresh process;
its wall time and peak resident memory (the process's ru_maxrss) are recorded, and the exponent b of
time ∝ atoms^b is fitted over all sizes (b = 1: linear scaling).

    OMP_WAIT_POLICY=PASSIVE python tools/bench_scaling.py -m frozen_model.pth --json scaling.json
    OMP_WAIT_POLICY=PASSIVE python tools/bench_scaling.py -m frozen_model.pth --sizes 64 512 --spacing 0.2
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import DEEPCHARGE, cpu_model, emit, supercell_files  # noqa: E402

MEASURE = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)")


def measure(command) -> dict:
    """Wall seconds and peak RSS (MiB) of ``command`` run in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    rss_kib, returncode = done.stdout.split()[-2:]
    if int(returncode):
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return {"seconds": seconds, "peak_rss_mib": int(rss_kib) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", required=True, help="frozen model (.pth)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 4096], help="atoms per supercell (8n³)")
    parser.add_argument("--spacing", type=float, default=0.17, help="grid spacing in Å (0.17: 256³ for Si4096)")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    args = parser.parse_args()
    report = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                          "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
              "model": str(Path(args.model).resolve()), "spacing": args.spacing, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "out.CHGCAR")
        for natoms, shape, poscar in supercell_files(args.sizes, args.spacing, tmp):
            print(f"Si{natoms}: grid {shape}", file=sys.stderr)
            result = measure(DEEPCHARGE + ["predict", "-m", args.model, "-s", poscar, "-o", output,
                                           "--grid", *map(str, shape)])
            points = int(np.prod(shape))
            report["results"].append({"atoms": natoms, "grid": shape, "points": points,
                                      "points_per_second": points / result["seconds"], **result})
            os.remove(output)
    atoms = np.array([r["atoms"] for r in report["results"]], dtype=float)
    seconds = np.array([r["seconds"] for r in report["results"]])
    if len(atoms) > 1:
        report["time_exponent"] = float(np.polyfit(np.log(atoms), np.log(seconds), 1)[0])
    emit(report, args.json)


if __name__ == "__main__":
    main()
