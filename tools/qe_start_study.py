"""What a good pw.x start needs (issue 25): the converged density of ``--workdir/<name>/`` with controlled errors,
each started in pw.x as the prediction of the model ``-m`` is (written to ``<name>/prediction/``).

Starts (δ = model − converged, on QE's FFT grid): ``model_x1`` (the prediction), ``model_xS`` (converged + S·δ),
``model_smooth`` and ``model_sharp`` (δ's Fourier components below / above ``--split`` Å⁻¹ alone), ``local``
(converged × (1 + a·white noise)) and ``smooth`` (converged × (1 + a·random plane waves of |G| ≤ 2·2π/L)), a set to
the model's ε_mae. One JSON line per start: ε_mae (%), E_H[δ] (eV), pw.x's first estimated accuracy, iterations,
the iterations to reach 1e-6 and 1e-8 Ry, wall seconds.

    python tools/qe_start_study.py -m frozen_model.pth --workdir runs/qe_si64 --name si64_1 --np 2
"""

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_model_devi import eps_mae  # noqa: E402
from qe_data import run_pw  # noqa: E402

from deepcharge.analysis.hartree import hartree_energy, wave_vectors  # noqa: E402
from deepcharge.io import read_density  # noqa: E402
from deepcharge.io.qe import write_qe  # noqa: E402


def wave_numbers(snapshot) -> np.ndarray:
    """|G| (Å⁻¹) of every FFT coefficient of the snapshot's grid."""
    return np.linalg.norm(wave_vectors(snapshot.density.shape, snapshot.cell), axis=-1)


def filtered(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.fft.ifftn(np.fft.fftn(values) * keep).real


def write_start(folder: Path, name: str, converged: Path, values: np.ndarray) -> np.ndarray:
    """``values`` written as ``folder``'s start (on the converged run's G sphere); returns what pw.x will read."""
    target = folder / "out" / f"{name}.save" / "charge-density.dat"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(converged.parent / "data-file-schema.xml", target.parent)
    write_qe(target, dataclasses.replace(read_density(converged), density=values))
    return read_density(target).density


def predict(model: str, converged: Path, target: Path) -> np.ndarray:
    """The model's density for the converged run's structure, written by ``deepcharge predict`` as pw.x reads it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(converged.parent / "data-file-schema.xml", target.parent)
    subprocess.run(["deepcharge", "predict", "-m", model, "-s", str(converged), "-o", str(target)], check=True,
                   capture_output=True)
    return read_density(target).density


def starts(reference, model, args) -> dict:
    """The controlled start densities, by name (before QE's G sphere is applied)."""
    rng = np.random.default_rng(args.seed)
    rho = reference.density
    delta = model - rho
    target = eps_mae(model, rho)
    g = wave_numbers(reference)
    out = {f"model_x{s:g}": rho + s * delta for s in args.scales}
    out["model_smooth"] = rho + filtered(delta, g < args.split)
    out["model_sharp"] = rho + filtered(delta, g >= args.split)
    noise = rng.standard_normal(rho.shape)
    longest = 2 * 2 * np.pi / max(np.linalg.norm(reference.cell, axis=1))
    waves = filtered(rng.standard_normal(rho.shape), (g > 0) & (g <= longest))
    for label, field in (("local", noise), ("smooth", waves)):
        shaped = rho * field
        out[label] = rho + shaped * target / eps_mae(rho + shaped, rho)
    return out


def first_below(accuracies, threshold):
    return next((i + 1 for i, value in enumerate(accuracies) if value < threshold), None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--ecutwfc", type=float, default=20.0, help="Ry, as qe_data.py ran")
    parser.add_argument("--kpts", type=int, nargs=3, default=[2, 2, 2])
    parser.add_argument("--np", type=int, default=1)
    parser.add_argument("--smearing", type=float, default=0.0, help="eV, as qe_data.py ran")
    parser.add_argument("--scales", type=float, nargs="*", default=[1, 0.5, 0.25, 0.1])
    parser.add_argument("--split", type=float, default=1.5, help="Å⁻¹ between model_smooth and model_sharp")
    parser.add_argument("--only", nargs="*", help="run these starts only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = Path(args.workdir, args.name)
    converged = folder / "out" / f"{args.name}.save" / "charge-density.dat"
    reference = read_density(converged)
    model = predict(args.model, converged, folder / "prediction" / f"{args.name}.save" / "charge-density.dat")
    for label, values in starts(reference, model, args).items():
        if args.only and label not in args.only:
            continue
        start_folder = folder / f"start_{label}"
        seen = write_start(start_folder, args.name, converged, values)
        row = {"name": args.name, "start": label, "eps_mae_percent": eps_mae(seen, reference.density),
               "hartree_error_ev": hartree_energy(seen - reference.density, reference.cell)}
        record = run_pw(reference, args.name, start_folder, args, "file")
        accuracies = record["scf_accuracy_ry"]
        row.update(first_accuracy_ry=accuracies[0], iterations=record["iterations"],
                   iterations_to_1e6=first_below(accuracies, 1e-6), iterations_to_1e8=first_below(accuracies, 1e-8),
                   wall_seconds=record["wall_seconds"], energy_ry=record["energy_ry"])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
