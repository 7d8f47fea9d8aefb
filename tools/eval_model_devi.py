"""Does an ensemble's deviation σ point at its errors? Prints JSON, per held-out density file and over all of them.

    python tools/eval_model_devi.py -m frozen_model_*.pth -s si64_1.CHGCAR.gz si64_2.CHGCAR.gz [-n N] [--json F]

For the ensemble mean ρ̄ and the per-point standard deviation σ over the models (ddof 0, as `model-devi`):
- ``spearman``: rank correlation between σ and the true error |ρ̄ − ρ_ref| over the points;
- ``top1_capture``: the fraction of the 1 % points of largest error that are among the 1 % of largest σ
  (0.01 for a σ unrelated to the error);
- ``eps_mae_mean``, ``eps_mae_members``: ε_mae (%) = Σ|ρ − ρ_ref| / Σ|ρ_ref| × 100 of the mean, of each model;
- ``mae_mean``, ``avg_sigma`` (e/Å³): mean |ρ̄ − ρ_ref| and mean σ, and ``sigma_over_mae``, their ratio (about 1 for
  a calibrated spread).
``-n N`` takes N random grid points per file (the same for every model); the default, 0, takes all.
"""

import argparse
import json
import sys

import numpy as np

from deepcharge.data.systems import expand_systems, load_system
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.infer.evaluate import sample_index


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks."""
    return float(np.corrcoef(average_ranks(a), average_ranks(b))[0, 1])


def top_capture(sigma: np.ndarray, error: np.ndarray, fraction: float = 0.01) -> float:
    """The share of the ``fraction`` largest errors that are among the ``fraction`` largest σ."""
    count = max(1, int(round(fraction * len(error))))
    largest_error = np.argpartition(error, -count)[-count:]
    largest_sigma = np.argpartition(sigma, -count)[-count:]
    return len(np.intersect1d(largest_error, largest_sigma)) / count


def eps_mae(prediction: np.ndarray, reference: np.ndarray) -> float:
    return float(100 * np.abs(prediction - reference).sum() / np.abs(reference).sum())


def scores(members: np.ndarray, reference: np.ndarray) -> dict:
    """The scores of an ensemble's predictions ``members`` (models × points) against ``reference``."""
    mean, sigma = members.mean(axis=0), members.std(axis=0)
    error = np.abs(mean - reference)
    return {"points": int(reference.size), "spearman": spearman(sigma, error),
            "top1_capture": top_capture(sigma, error), "eps_mae_mean": eps_mae(mean, reference),
            "eps_mae_members": [eps_mae(member, reference) for member in members],
            "mae_mean": float(error.mean()), "avg_sigma": float(sigma.mean()),
            "sigma_over_mae": float(sigma.mean() / error.mean())}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--models", nargs="+", required=True, help="frozen models of one ensemble")
    parser.add_argument("-s", "--systems", nargs="+", required=True, help="held-out density files")
    parser.add_argument("-n", "--numb-points", type=int, default=0, help="random grid points per file (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the -n sample")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    predictors = [DensityPredictor(model, "cpu") for model in args.models]
    files, all_members, all_references = [], [], []
    for path in expand_systems(args.systems, ".", "-s"):
        snapshot = load_system(path)
        index = sample_index(snapshot, args.numb_points, args.seed)
        members = np.stack([predictor.eval_index(snapshot, index) for predictor in predictors])
        reference = snapshot.density.reshape(-1)[index]
        files.append({"file": path, **scores(members, reference)})
        all_members.append(members)
        all_references.append(reference)
        print(f"{path}: {json.dumps(files[-1])}", file=sys.stderr)
    result = {"models": args.models,
              "training": [{key: predictor.metadata["training"][key] for key in ("steps", "wall_time_s")}
                           for predictor in predictors],
              "files": files,
              "overall": scores(np.concatenate(all_members, axis=1), np.concatenate(all_references))}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
