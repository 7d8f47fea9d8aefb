"""How much a deepcharge prediction saves pw.x (issue 25): for each converged QE run ``tools/qe_data.py`` left in
``--workdir/<name>/``, pw.x is started again two ways, in ``<name>/start_model/`` from the model's prediction (written
by ``deepcharge predict -o .../charge-density.dat --ecutrho``, its time counted) and in ``<name>/start_converged/``
from the converged density itself, and one JSON line per structure gives iterations, wall seconds, energies and the
prediction's ε_mae against the converged density, beside QE's own start.

    python tools/bench_qe_start.py -m frozen_model.pth --workdir runs/qe_si64 --names si64_1 si64_5 --np 2
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qe_data import run_pw  # noqa: E402

from deepcharge.io import read_density  # noqa: E402


def start(name: str, args) -> dict:
    folder = Path(args.workdir, name)
    converged = folder / "out" / f"{name}.save" / "charge-density.dat"
    reference = read_density(converged)
    own = json.loads((folder / "record.json").read_text()) if (folder / "record.json").is_file() else None
    rows = {"name": name, "qe_start": own}
    model_folder = folder / "start_model"
    target = model_folder / "out" / f"{name}.save" / "charge-density.dat"
    target.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    subprocess.run(["deepcharge", "predict", "-m", args.model, "-s", str(converged), "-o", str(target),
                    "--ecutrho", str(4 * args.ecutwfc)], check=True, capture_output=True)
    predict_seconds = time.perf_counter() - began
    shutil.copy(converged.parent / "data-file-schema.xml", target.parent)  # its structure, to read it back
    predicted = read_density(target)
    error = 100 * np.abs(predicted.density - reference.density).sum() / np.abs(reference.density).sum()
    rows["model_start"] = {**run_pw(reference, name, model_folder, args, "file"),
                           "predict_seconds": predict_seconds, "eps_mae_percent": float(error)}
    converged_folder = folder / "start_converged"
    (converged_folder / "out" / f"{name}.save").mkdir(parents=True, exist_ok=True)
    shutil.copy(converged, converged_folder / "out" / f"{name}.save" / "charge-density.dat")
    rows["converged_start"] = run_pw(reference, name, converged_folder, args, "file")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--names", nargs="+", required=True)
    parser.add_argument("--ecutwfc", type=float, default=20.0, help="Ry, as qe_data.py ran")
    parser.add_argument("--kpts", type=int, nargs=3, default=[2, 2, 2])
    parser.add_argument("--np", type=int, default=1)
    parser.add_argument("--smearing", type=float, default=0.0, help="eV, as qe_data.py ran")
    args = parser.parse_args(argv)
    for name in args.names:
        print(json.dumps(start(name, args)), flush=True)


if __name__ == "__main__":
    main()
