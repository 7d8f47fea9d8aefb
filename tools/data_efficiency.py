"""Deep Charge's Fig. 2a on our data: one input trained on 1, 2, 4, ... snapshots at equal steps; prints JSON.

Each run trains the input with ``training.training_data.systems`` replaced by the first k files of
``--train`` (its other keys, ``numb_steps`` and ``probes_per_system`` included, unchanged; validation data
dropped, so no test snapshot steers a run), freezes it, and measures ε_mae on every ``--test`` file over
all grid points (or ``-n`` random ones). A file seen in training is marked; those held out of every run
are the fair comparison. Runs go to ``--workdir/train_<k>/``.

    OMP_WAIT_POLICY=PASSIVE python tools/data_efficiency.py -i input_examples/si64_one_shot/input.json \
        --train input_examples/si64_one_shot/data/si64_{0,1,2,3}.CHGCAR.gz --counts 1 2 4 \
        --test input_examples/si64_one_shot/data/si64_{1,2,3,4}.CHGCAR.gz --json data_efficiency.json
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from deepcharge.config import load_input_file, normalize
from deepcharge.data.systems import system_label
from deepcharge.errors import DeepChargeError
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.infer.evaluate import evaluate_file
from deepcharge.train.freeze import freeze_model
from deepcharge.train.run import train_config
from deepcharge.utils import working_directory, write_json


def main(argv=None):
    try:
        run(argv)
    except DeepChargeError as err:  # a missing or malformed file, a bad input key: one line, no traceback
        sys.exit(f"data_efficiency: error: {err}")


def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input", required=True, help="input file (JSON or YAML)")
    parser.add_argument("--train", nargs="+", required=True, help="training density files, in the order they join")
    parser.add_argument("--counts", nargs="+", type=int, default=[1, 2, 4], help="snapshots per run (1 2 4)")
    parser.add_argument("--test", nargs="+", required=True, help="density files to measure every run on")
    parser.add_argument("-n", "--numb-points", type=int, default=0, help="grid points per test file (0: all)")
    parser.add_argument("--workdir", default="data_efficiency", help="runs go to WORKDIR/train_<k>/")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if max(args.counts) > len(args.train) or min(args.counts) < 1:
        raise DeepChargeError(f"--counts {args.counts}: each must lie between 1 and the number of --train files "
                              f"({len(args.train)})")

    raw = load_input_file(args.input)
    raw["training"].pop("validation_data", None)
    train_files = [str(Path(f).resolve()) for f in args.train]
    tests = [(system_label(f), f) for f in args.test]
    runs = []
    for count in args.counts:
        config = json.loads(json.dumps(raw))
        config["training"]["training_data"]["systems"] = train_files[:count]
        config = normalize(config, args.input)
        folder = Path(args.workdir) / f"train_{count}"
        folder.mkdir(parents=True, exist_ok=True)
        with working_directory(folder):
            start = time.perf_counter()
            train_config(config, Path(args.input).resolve().parent)
            seconds = time.perf_counter() - start
            freeze_model(".", "frozen_model.pth")
            predictor = DensityPredictor("frozen_model.pth", config["training"]["device"])
        seen = {system_label(f) for f in train_files[:count]}
        scores = {}
        for label, path in tests:
            metrics = evaluate_file(predictor, path, args.numb_points)[0]
            scores[label] = {"eps_mae_percent": metrics["eps_mae_percent"], "seen_in_training": label in seen}
        runs.append({"snapshots": count, "trained_on": sorted(seen), "train_seconds": seconds, "test": scores})
        shown = [f"{label} {score['eps_mae_percent']:.3f}{'*' if score['seen_in_training'] else ''}"
                 for label, score in scores.items()]
        print(f"{count} snapshot(s): " + "  ".join(shown), file=sys.stderr, flush=True)
    held_out = [label for label, _ in tests if not any(r["test"][label]["seen_in_training"] for r in runs)]
    result = {"input": args.input, "numb_steps": raw["training"].get("numb_steps"), "held_out_of_every_run": held_out,
              "threads": os.environ.get("OMP_NUM_THREADS"), "runs": runs}
    print(json.dumps(result, indent=1))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
