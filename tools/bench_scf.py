"""Benchmark GPAW SCF starts: GPAW's own superposition, a frozen model's prediction and the converged density
itself (the limit of a grid density); prints JSON.

For every density file (a deepcharge default file: GPAW's smooth pseudo density) GPAW 22.8 runs the file's
structure on the file's grid (``gpts``) with the data's settings (``--preset``, from ../shared/data/README.md:
si64 PW 350 eV, PBE, 2×2×2 Monkhorst–Pack k; water PW 400 eV, PBE, Γ) and GPAW's default convergence criteria,
the same for all three starts, in the Python that has GPAW (``deepcharge.interfaces.gpaw.gpaw_python``), on
``--threads`` threads. The model is loaded and evaluated here on as many threads; its time (load and
prediction, cold, as a user meets it) counts in the prediction start's total.

    OMP_WAIT_POLICY=PASSIVE python tools/bench_scf.py -m frozen_model.pth -s data/si64_1.CHGCAR.gz \
        --preset si64 --workdir runs/scf_si64 --json bench_scf_si64.json

Per start: GPAW's iteration count (``scf.niter``), SCF wall and CPU seconds (calculator created to converged,
the start included; CPU time is what a shared machine disturbs least), the iteration from which each of GPAW's
criteria (energy, density, eigenstates) stayed met, and the energies, which must agree to 1e-4 eV/atom. A seeded
start also takes a few eigensolver steps at fixed density before GPAW's loop (to make the PAW density matrices
consistent with it, see ``deepcharge.interfaces.gpaw``): they are in its times, reported as
``extra_eigensolver_steps`` and counted as iterations in ``savings.iterations`` (``savings.gpaw_niter`` counts
GPAW's alone); ``--density-matrices atomic`` leaves them out.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import ase
import numpy as np
import torch

from deepcharge.errors import DeepChargeError
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.interfaces.gpaw import gpaw_python, run_scf
from deepcharge.io import read_density
from deepcharge.utils import cpu_model

PRESETS = {
    "si64": {"mode": {"name": "pw", "ecut": 350}, "xc": "PBE", "kpts": {"size": [2, 2, 2]}},
    "water": {"mode": {"name": "pw", "ecut": 400}, "xc": "PBE", "kpts": {"size": [1, 1, 1]}},
}
ENERGY_AGREEMENT = 1e-4  # eV/atom
GOALS = {"iterations": 0.35, "wall_time": 0.25, "cpu_time": 0.25}


def time_prediction(model: str, snapshot, device: str) -> dict:
    """The model's density on ``snapshot``'s grid, the seconds to load it and to predict, and its ε_mae (%)."""
    began, began_cpu = time.perf_counter(), time.process_time()
    predictor = DensityPredictor(model, device)
    loaded = time.perf_counter()
    density = predictor.eval_grid(snapshot)
    if predictor.device.type == "cuda":
        torch.cuda.synchronize()
    done, done_cpu = time.perf_counter(), time.process_time()
    error = 100 * np.abs(density - snapshot.density).sum() / np.abs(snapshot.density).sum()
    return {"density": density, "load_seconds": loaded - began, "predict_seconds": done - loaded,
            "seconds": done - began, "cpu_seconds": done_cpu - began_cpu, "eps_mae_percent": float(error),
            "device": str(predictor.device)}


def summary(record: dict) -> dict:
    """A run's record without its per-iteration trace."""
    return {key: value for key, value in record.items() if key != "trace"}


def bench_file(path: str, model: str, parameters: dict, args, python: str) -> dict:
    """The three starts for one density file."""
    snapshot = read_density(path)
    atoms = ase.Atoms(snapshot.symbols, positions=snapshot.positions, cell=snapshot.cell, pbc=True)
    parameters = dict(parameters, gpts=list(snapshot.grid_shape))
    prediction = time_prediction(model, snapshot, args.device)
    name = Path(path).name.split(".")[0]
    starts = {"gpaw": None, "model": prediction.pop("density"), "reference": snapshot.density}
    runs = {}
    for start, density in starts.items():
        folder = Path(args.workdir, name, start) if args.workdir else None
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
        run_parameters = dict(parameters, txt="gpaw.txt")  # in the run's folder
        print(f"{name}: {start} start ...", file=sys.stderr, flush=True)
        runs[start] = run_scf(atoms, run_parameters, density, args.density_matrices, workdir=folder,
                              python=python, threads=args.threads)
        if folder:
            (folder / "record.json").write_text(json.dumps(runs[start], indent=1))
    own, seeded = runs["gpaw"], runs["model"]
    energies = [run["energy"] for run in runs.values()]
    spread = (max(energies) - min(energies)) / len(atoms)
    def steps(run):  # GPAW's iterations and the start's eigensolver steps, each about one iteration's work
        return run["iterations"] + run["extra_eigensolver_steps"]

    reference = runs["reference"]
    savings = {"iterations": 1 - steps(seeded) / steps(own),
               "gpaw_niter": 1 - seeded["iterations"] / own["iterations"],
               "wall_time": 1 - (seeded["seconds"] + prediction["seconds"]) / own["seconds"],
               "cpu_time": 1 - (seeded["cpu_seconds"] + prediction["cpu_seconds"]) / own["cpu_seconds"],
               "wall_time_without_model": 1 - seeded["seconds"] / own["seconds"],
               "iterations_reference": 1 - steps(reference) / steps(own),
               "cpu_time_reference": 1 - reference["cpu_seconds"] / own["cpu_seconds"]}
    return {"file": path, "natoms": len(atoms), "grid": list(snapshot.grid_shape), "model": prediction,
            "runs": {start: summary(run) for start, run in runs.items()},
            "energy_spread_eV_per_atom": spread, "energies_agree": bool(spread <= ENERGY_AGREEMENT),
            "savings": savings,
            "goals_met": {goal: bool(savings[goal] >= target) for goal, target in GOALS.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True, help="a frozen model (deepcharge freeze)")
    parser.add_argument("-s", "--systems", nargs="+", required=True, help="density files (default kind)")
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True, help="the data set's GPAW settings")
    parser.add_argument("--density-matrices", choices=["wavefunctions", "atomic"], default="wavefunctions",
                        help="PAW density matrices of a seeded start (see deepcharge.interfaces.gpaw)")
    parser.add_argument("--threads", type=int, default=1, help="threads for GPAW and for the model")
    parser.add_argument("--device", default="cpu", help="where the model runs (cpu, cuda)")
    parser.add_argument("--workdir", help="keep GPAW's logs and records here, per file and start")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        python = gpaw_python()
        results = [bench_file(path, args.model, PRESETS[args.preset], args, python) for path in args.systems]
    except DeepChargeError as err:
        sys.exit(f"bench_scf.py: error: {err}")
    report = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads},
              "gpaw_python": python, "preset": args.preset, "parameters": PRESETS[args.preset],
              "density_matrices": args.density_matrices, "model_file": args.model, "results": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
