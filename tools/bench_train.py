"""Training speed: probe passes per second and per CPU-second of one input, features cached or not; prints JSON.

Each case builds the input's trainer in a process of its own (so peak memory is its own), takes ``--warmup``
optimizer steps and times the next ``--steps``: wall and CPU seconds (all threads), probe passes (steps × batch)
per second and per CPU-second, and the process's peak resident memory, set-up included. Cases are the input as
given (``input``) and, with ``--compare-uncached``, the same input with ``training_data.cache_features`` false (what
every step computed before fixed features existed); ``--set`` applies overrides as tools/track_transfer.py does.

    OMP_WAIT_POLICY=PASSIVE python tools/bench_train.py -i input_examples/si64_one_shot/input.json \\
        --compare-uncached --json bench_train.json
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch


def measure(input_path: str, overrides, warmup: int, steps: int) -> dict:
    """Time ``steps`` training steps of the input (after ``warmup``) in this process."""
    from track_transfer import apply_overrides

    from deepcharge.config import load_input_file, normalize
    from deepcharge.train.trainer import Trainer
    from deepcharge.utils import working_directory

    config = normalize(apply_overrides(load_input_file(input_path), overrides), input_path)
    config["training"]["numb_steps"] = warmup + steps
    began = time.perf_counter()
    with working_directory(os.environ.get("TMPDIR", "/tmp")):
        trainer = Trainer(config, Path(input_path).resolve().parent)
    setup = time.perf_counter() - began
    for step in range(warmup):
        trainer._train_step(step)
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(warmup, warmup + steps):
        trainer._train_step(step)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    passes = steps * config["training"]["training_data"]["batch_size"]
    return {"setup_s": setup, "steps": steps, "wall_s": wall, "cpu_s": cpu, "probe_passes_per_s": passes / wall,
            "probe_passes_per_cpu_s": passes / cpu, "cached": trainer.fixed_train is not None,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="input overrides (dotted keys)")
    parser.add_argument("--compare-uncached", action="store_true",
                        help="also time the input with training_data.cache_features false")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.input, args.set, args.warmup, args.steps)))
        return
    cases = {"input": args.set}
    if args.compare_uncached:
        cases["uncached"] = args.set + ["training.training_data.cache_features=false"]
    results = {}
    for name, overrides in cases.items():
        command = [sys.executable, __file__, "--child", "-i", args.input, "--warmup", str(args.warmup),
                   "--steps", str(args.steps), "--set", *overrides]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        print(f"{name}: {results[name]['probe_passes_per_cpu_s']:.0f} probe passes per CPU-second, "
              f"{results[name]['probe_passes_per_s']:.0f} per second", file=sys.stderr, flush=True)
    result = {"input": args.input, "overrides": args.set, "load_average": os.getloadavg(), "cases": results}
    if "uncached" in results:
        result["ratio_per_cpu_s"] = (results["input"]["probe_passes_per_cpu_s"]
                                     / results["uncached"]["probe_passes_per_cpu_s"])
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
