"""Does the loop's σ choose better labels than chance? For one iteration of a finished ``deepcharge loop``, label
every candidate it offered (taking the labels any of the given runs computed), retrain the next iteration's
ensemble on σ's choice and on ``--draws`` random choices of as many candidates (drawn uniformly from all such
choices, σ's among them; the choices of the runs given by ``--reuse``, random baselines of the same candidates,
count among the draws), and test each on the loop's test files. One JSON line per choice, then a summary line:
per test file σ's ε_mae, the random choices' mean, spread and range, and σ's rank among all choices trained.

    python tools/loop_choice_study.py input_examples/si64_one_shot/loop_si64.json runs/loop_si64/sigma \
        --reuse runs/loop_si64/random --draws 5 --out runs/loop_si64/choice

A rerun keeps what is done (labels in OUT/labels/task.NAME, trainings in OUT/train.NAME-NAME/done.json); a
choice a given run already trained at the next iteration is taken from it. Writes OUT/study.json.
"""

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

import numpy as np

from deepcharge.data.systems import system_label
from deepcharge.errors import DeepChargeError
from deepcharge.loop.config import load_loop_input
from deepcharge.loop.explore import read_candidates
from deepcharge.loop.label import Task, density_file, label_all
from deepcharge.loop.run import CANDIDATES, DONE, EXPLORE, LABEL, RECORD, TRAIN, iteration_folder, train_stage
from deepcharge.utils import read_json, write_json


def chosen_names(record: dict) -> tuple:
    return tuple(row["name"] for row in record["explore"]["candidates"] if row["chosen"])


def label_folder(name: str, runs, iteration: int, out: Path, label: dict) -> Path:
    """The folder of the candidate's label: a run's, where one holds it, else one under ``out``."""
    for run in runs:
        folder = run / iteration_folder(iteration) / LABEL / f"task.{name}"
        if density_file(folder, label).is_file():
            return folder
    return out / "labels" / f"task.{name}"


def trained_choices(runs, iteration: int) -> dict:
    """{choice: the next iteration's training result} of every run that trained one."""
    found = {}
    for run in runs:
        done = run / iteration_folder(iteration + 1) / TRAIN / DONE
        if done.is_file():
            found[chosen_names(read_json(run / iteration_folder(iteration) / RECORD))] = read_json(done)
    return found


def summary(rows: list, test_files: list) -> dict:
    """Per test file: σ's ε_mae, the random draws' mean, standard deviation and range, σ's rank (1 = best)."""
    sigma = next(row for row in rows if row["sigma"])
    drawn = [row for row in rows if row["drawn"]]
    result = {}
    for file in map(system_label, test_files):
        values = np.array([row["eps_mae_percent"][file] for row in drawn])
        everything = sorted({row["eps_mae_percent"][file] for row in rows})
        result[file] = {"sigma": sigma["eps_mae_percent"][file], "random_mean": float(values.mean()),
                        "random_std": float(values.std(ddof=1)) if len(values) > 1 else None,
                        "random_min": float(values.min()), "random_max": float(values.max()),
                        "sigma_rank": everything.index(sigma["eps_mae_percent"][file]) + 1, "of": len(everything)}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the loop input the run was made with")
    parser.add_argument("run", help="the loop's run directory (the one that chose by σ)")
    parser.add_argument("--reuse", nargs="*", default=[],
                        help="run directories of the same candidates that chose at random (the loop's `_random` "
                             "twin): their labels and trainings are taken, their choices count among the draws")
    parser.add_argument("--iteration", type=int, default=0)
    parser.add_argument("--draws", type=int, default=5, help="random choices to train (distinct)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        study(args)
    except DeepChargeError as err:
        sys.exit(f"loop_choice_study.py: error: {err}")


def study(args):
    """The study ``main`` describes, printed and written to OUT/study.json."""
    loop = load_loop_input(args.input)
    runs = [Path(run).resolve() for run in [args.run, *args.reuse]]
    out = Path(args.out).resolve()
    folder = runs[0] / iteration_folder(args.iteration)
    if not (folder / RECORD).is_file() or "label" not in read_json(folder / RECORD):
        raise DeepChargeError(f"{folder}: no labelled iteration of a loop here ({RECORD} with labels); give the run "
                              f"directory of a loop that went past iteration {args.iteration}'s labels")
    record = read_json(folder / RECORD)
    rows = record["explore"]["candidates"]
    structures = read_candidates(folder / EXPLORE / CANDIDATES)
    tasks = [Task(row["name"], row["origin"],
                  label_folder(row["name"], runs, args.iteration, out, loop.params["label"]), structure)
             for row, structure in zip(rows, structures)]
    labels = {label["name"]: label["file"] for label in label_all(tasks, loop.params["label"], loop.gpaw_python)}

    sigma = chosen_names(record)
    every = list(itertools.combinations([row["name"] for row in rows], len(sigma)))
    picks = np.random.default_rng(args.seed).choice(len(every), min(args.draws, len(every)), replace=False)
    known = trained_choices(runs, args.iteration)
    drawn = [every[index] for index in sorted(picks)] + [choice for choice in known if choice != sigma]
    measure = {row["name"]: row for row in rows}
    results = []
    for choice in dict.fromkeys([sigma, *drawn]):
        where = out / ("train." + "-".join(choice))
        if choice in known:
            trained = known[choice]
        elif (where / DONE).is_file():
            trained = read_json(where / DONE)
        else:
            files = record["train"]["files"] + [labels[name] for name in choice]
            trained = train_stage(loop, files, where, folder / TRAIN, args.device)
            write_json(where / DONE, trained)
        row = {"choice": list(choice), "sigma": choice == sigma, "drawn": choice in drawn,
               "measure_mean": float(np.mean([measure[name]["measure"] for name in choice])),
               "recipes": [measure[name]["recipe"] for name in choice],
               "eps_mae_percent": {system_label(test["file"]): test["eps_mae_percent"] for test in trained["test"]}}
        results.append(row)
        print(json.dumps(row), flush=True)
    report = {"run": str(runs[0]), "iteration": args.iteration, "choices": len(every), "seed": args.seed,
              "rows": results, "summary": summary(results, loop.test_data)}
    write_json(out / "study.json", report)
    print(json.dumps({"summary": report["summary"]}))


if __name__ == "__main__":
    main()
