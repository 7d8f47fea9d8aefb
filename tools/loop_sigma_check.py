"""Did the loop's σ point at the error? For every label of the loops in the given folders (``deepcharge loop`` run
directories), the measure it was chosen by and the ε_mae (%) on its new density of the ensemble that measured it
(the members' mean, every grid point), one JSON line per label, then Spearman's rank correlation of the two over
all labels.

    python tools/loop_sigma_check.py runs/si64_loop/sigma runs/si64_loop/random
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_model_devi import eps_mae, spearman  # noqa: E402

from deepcharge.data.systems import load_system  # noqa: E402
from deepcharge.infer.density_predictor import DensityEnsemble  # noqa: E402
from deepcharge.utils import read_json  # noqa: E402


def labels_with_errors(run: Path):
    """(iteration, candidate row, label file, ε_mae of that iteration's ensemble mean) of every label in ``run``."""
    for record_path in sorted(run.glob("iter.*/record.json")):
        record = read_json(record_path)
        if "label" not in record:
            continue
        ensemble = DensityEnsemble([str(run / model) for model in record["train"]["models"]], "cpu")
        rows = {row["name"]: row for row in record["explore"]["candidates"]}
        for label in record["label"]["labels"]:
            file = run / label["file"]  # relative to the run directory, unless absolute
            snapshot = load_system(str(file))
            mean, _ = ensemble.eval_grid(snapshot, snapshot.grid_shape)
            yield record["iteration"], rows[label["name"]], str(file), eps_mae(mean.reshape(snapshot.density.shape),
                                                                                snapshot.density)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="loop run directories")
    args = parser.parse_args(argv)
    measures, errors = [], []
    for run in args.runs:
        for iteration, row, file, error in labels_with_errors(Path(run)):
            measures.append(row["measure"])
            errors.append(error)
            print(json.dumps({"run": run, "iteration": iteration, "candidate": row["name"], "recipe": row["recipe"],
                              "measure": row["measure"], "sigma_mean": row["sigma_mean"], "file": file,
                              "eps_mae_percent": error}), flush=True)
    if len(measures) > 2:
        print(json.dumps({"labels": len(measures), "spearman_measure_error": spearman(np.array(measures),
                                                                                       np.array(errors))}))


if __name__ == "__main__":
    main()
