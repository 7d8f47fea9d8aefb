"""Does the validation error follow the error on frames the run never sees? Trains one input and prints JSON.

Trains ``-i`` (with ``--set key=value`` overrides, dotted keys, JSON values) in ``--workdir`` and, at every
``disp_freq`` step, measures on ``-n`` random grid points of each ``--track`` file the model's ε_mae beside the
validation ε_mae of lcurve.out. The tracked files steer nothing: not the best checkpoint, not early stopping. Prints
the curves, each tracked file's Spearman and Pearson correlation with the validation error over the run, the
errors at the step validation picks (its best) and at the best step of each tracked file, and the error of the
model without its fitting net (ρ₀ plus the net's mean output): what the net adds.

    OMP_WAIT_POLICY=PASSIVE python tools/track_transfer.py -i input_examples/si64_one_shot/input.json \\
        --track input_examples/si64_one_shot/data/si64_{1,5}.CHGCAR.gz -n 40000 --json track.json \\
        [--set training.numb_steps=500 training.training_data.holdout=null]
"""

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepcharge.analysis.metrics import DensityErrors
from deepcharge.config import load_input_file, normalize
from deepcharge.data.inputs import InputSpec
from deepcharge.data.probe_set import ProbeSet
from deepcharge.data.sampler import draw_probes
from deepcharge.data.systems import load_system, system_label
from deepcharge.errors import DeepChargeError
from deepcharge.train.fixed_features import FixedFeatures
from deepcharge.train.trainer import Trainer
from deepcharge.utils import working_directory, write_json


def apply_overrides(raw: dict, overrides) -> dict:
    """``a.b.c=VALUE`` (VALUE as JSON, else a string) set in a copy of the raw input."""
    config = copy.deepcopy(raw)
    for item in overrides:
        key, _, value = item.partition("=")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        *path, last = key.split(".")
        section = config
        for name in path:
            section = section.setdefault(name, {})
        section[last] = value
    return config


class TrackingTrainer(Trainer):
    """A Trainer that, at each display, also measures the tracked probe sets (outside the training clock)."""

    def __init__(self, config: dict, base_dir: Path, tracked: dict, points: int, seed: int):
        super().__init__(config, base_dir)
        spec = InputSpec.of(self.model)
        generator = torch.Generator().manual_seed(seed)
        self.tracked = {}
        for label, path in tracked.items():
            snapshot = load_system(path)
            probes = ProbeSet.build([snapshot], [draw_probes(snapshot, points, generator)], self.model.type_map, spec,
                                    self.device, self.dtype)
            self.tracked[label] = (probes, FixedFeatures.compute(self.model, probes, float("inf")))
        self.curve = []
        self.without_net = {label: self._without_net(probes) for label, (probes, _) in self.tracked.items()}

    def _without_net(self, probes: ProbeSet) -> float:
        """ε_mae of ρ₀ plus the fitting net's mean output (its bias): the model's linear part alone."""
        errors = DensityErrors()
        with torch.no_grad():
            for _, inputs, density in probes.chunks(8192):
                fixed = self.model.fixed_features(inputs)
                errors.add(density, self.model.baseline_from_fixed(fixed) + self.model.fitting.bias)
        return errors.eps_mae_percent

    def _display(self, step, probes, lr, lcurve, rate):
        row = {"step": step}
        valid = self._validation_errors()
        if valid is not None:
            row["validation"] = valid.eps_mae_percent
        for label, (tracked, fixed) in self.tracked.items():
            row[label] = self.evaluate(tracked, fixed=fixed).eps_mae_percent
        self.curve.append(row)
        logging.getLogger("deepcharge").info("tracked: %s", "  ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                                      if k != "step"))
        return super()._display(step, probes, lr, lcurve, rate)


def correlations(curve, label: str) -> dict:
    """Spearman and Pearson correlation of ``label``'s error with the validation error over the run."""
    valid = np.array([row["validation"] for row in curve])
    other = np.array([row[label] for row in curve])
    if len(curve) < 3:
        return {}
    rank = lambda values: np.argsort(np.argsort(values))  # noqa: E731 (no ties in float errors)
    return {"spearman": float(np.corrcoef(rank(valid), rank(other))[0, 1]),
            "pearson": float(np.corrcoef(valid, other)[0, 1])}


def main(argv=None):
    try:
        run(argv)
    except DeepChargeError as err:
        sys.exit(f"track_transfer: error: {err}")


def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input", required=True, help="input file (JSON or YAML)")
    parser.add_argument("--track", nargs="+", required=True, help="density files to measure along the run")
    parser.add_argument("-n", "--numb-points", type=int, default=40000, help="random grid points per tracked file")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="input overrides (dotted keys)")
    parser.add_argument("--workdir", default="track_transfer", help="where the run trains")
    parser.add_argument("--seed", type=int, default=1, help="seed of the tracked points")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    config = normalize(apply_overrides(load_input_file(args.input), args.set), args.input)
    base_dir = Path(args.input).resolve().parent
    tracked = {system_label(path): str(Path(path).resolve()) for path in args.track}
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with working_directory(args.workdir):
        trainer = TrackingTrainer(config, base_dir, tracked, args.numb_points, args.seed)
        trainer.run()
    curve = trainer.curve
    result = {"input": args.input, "overrides": args.set, "points_per_tracked_file": args.numb_points,
              "training_wall_s": trainer.clock.wall_time, "total_wall_s": time.perf_counter() - began,
              "without_net": trainer.without_net, "curve": curve}
    if curve and "validation" in curve[0]:
        picked = min(curve, key=lambda row: row["validation"])
        result["at_best_validation"] = picked
        result["correlation_with_validation"] = {label: correlations(curve, label) for label in tracked}
        result["share_of_linear_error_removed"] = {
            label: 1.0 - picked[label] / trainer.without_net[label] for label in tracked}
    result["best_of_each_tracked"] = {label: min(curve, key=lambda row: row[label]) for label in tracked}
    print(json.dumps(result, indent=1))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
