"""``deepcharge loop``: iterations of train → explore → label in ``iter.<i>/{00.train,01.explore,02.label}``, as
DP-GEN lays them out, in the current directory.

Each stage marks its end with ``done.json`` (its results); a rerun takes those as they are, continues an
interrupted training from its checkpoints and computes only the labels that are missing. Every stage also
rewrites the iteration's ``record.json``, the table ``loop.out`` and the figure ``loop.png``.
"""

import copy
import logging
import math
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from deepcharge.analysis.plots import plot_loop
from deepcharge.data.systems import load_system, system_label
from deepcharge.entrypoints.freeze import freeze_run
from deepcharge.infer.density_predictor import DensityEnsemble
from deepcharge.infer.evaluate import file_metrics, sample_index
from deepcharge.loop.config import LoopInput, load_loop_input
from deepcharge.loop.explore import explore_candidates, read_candidates, write_candidates
from deepcharge.loop.label import Task, label_all
from deepcharge.loop.select import deviation_measures, select_candidates, selection_summary
from deepcharge.train.ensemble import found_members, member_folders
from deepcharge.train.run import train_config
from deepcharge.utils import atomic_path, read_json, tagged_name, working_directory, write_json

log = logging.getLogger("deepcharge")

TRAIN, EXPLORE, LABEL = "00.train", "01.explore", "02.label"
DONE = "done.json"
RECORD = "record.json"
TABLE = "loop.out"
FIGURE = "loop.png"
CANDIDATES = "candidates.extxyz"
FROZEN = "frozen_model.pth"
TABLE_COLUMNS = ["iter", "train_files", "candidates", "above_lo", "above_hi", "chosen", "labels", "measure_max"]


def iteration_folder(iteration: int) -> Path:
    return Path(f"iter.{iteration:06d}")


def run_loop(param_file: str, device: str = "auto") -> List[dict]:
    """Run (or continue) the loop ``param_file`` describes in the current directory; return its records."""
    loop = load_loop_input(param_file)
    write_json("loop_input.json", loop.params)
    records: List[dict] = []
    for iteration in range(loop.params["iterations"]):
        folder = iteration_folder(iteration)
        record = {"iteration": iteration}
        records.append(record)
        previous = iteration_folder(iteration - 1) / TRAIN if iteration else None
        run_stage(records, loop, "train", folder / TRAIN,
                  lambda where: train_stage(loop, training_files(loop, records), where, previous, device))
        run_stage(records, loop, "explore", folder / EXPLORE,
                  lambda where: explore_stage(loop, iteration, where, record["train"]["models"],
                                              labelled_origins(records), device))
        record["stop"] = stop_reason(record["explore"]["summary"], loop.params, iteration)
        if record["stop"]:
            write_outputs(records, loop)
            log.info("loop stopped at iteration %d: %s; its models: %s", iteration, record["stop"],
                     " ".join(record["train"]["models"]))
            break
        run_stage(records, loop, "label", folder / LABEL,
                  lambda where: label_stage(loop, where, folder / EXPLORE, record["explore"]))
    return records


def run_stage(records: List[dict], loop: LoopInput, key: str, folder: Path, work: Callable[[Path], dict]):
    """Put the results of the stage in ``folder`` into the last record under ``key``: its ``done.json`` when an
    earlier run finished it, else ``work``'s (timed, written there, then the record, table and figure)."""
    done = folder / DONE
    if done.is_file():
        log.info("%s: done by an earlier run", folder)
        records[-1][key] = read_json(done)
        return
    log.info("%s ...", folder)
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    result = work(folder)
    result["seconds"] = time.perf_counter() - began
    write_json(done, result)
    records[-1][key] = result
    write_outputs(records, loop)


def training_files(loop: LoopInput, records: List[dict]) -> List[str]:
    """init_data and every label of the iterations before the last record's."""
    labels = [str(Path(label["file"]).resolve()) for record in records[:-1] for label in record["label"]["labels"]]
    return loop.init_data + labels


def labelled_origins(records: List[dict]) -> set:
    """Where the labels so far came from (a trajectory frame is labelled once)."""
    return {label["origin"] for record in records if "label" in record for label in record["label"]["labels"]}


def train_stage(loop: LoopInput, files: List[str], folder: Path, previous: Optional[Path], device: str) -> dict:
    """Train the ensemble on ``files`` in ``folder`` (from ``previous``'s members when the input says so;
    continuing from the members' checkpoints after an interruption), freeze it and test it."""
    config = copy.deepcopy(loop.template)
    training = config["training"]
    training["training_data"]["systems"] = files
    init_model = str(previous.resolve()) if previous is not None and loop.params["init_model"] else None
    if init_model and loop.params["init_model_steps"]:
        training["numb_steps"] = loop.params["init_model_steps"]
    latest = f"{training['save_ckpt']}.pt"
    with working_directory(folder):
        write_json("input.json", config)
        resumed = any(Path(member, latest).exists() for member in member_folders(loop.params["numb_models"]))
        began = time.perf_counter()
        train_config(config, loop.template_dir, latest if resumed else None, init_model)
        trained = time.perf_counter()
        freeze_run(".", FROZEN)
        models = [str(folder / tagged_name(FROZEN, member.name.rpartition("_")[2])) for member in found_members(".")]
    test = test_models(models, loop.test_data, loop.params["test_numb_points"], device)
    return {"files": files, "init_model": init_model, "models": models, "train_seconds": trained - began,
            "test": test}


def test_models(models: List[str], files: List[str], numb_points: int, device: str) -> List[dict]:
    """Each model's ε_mae (%) on each file (the same points for all), and their mean."""
    if not files:
        return []
    ensemble = DensityEnsemble(models, device)
    results = []
    for path in files:
        snapshot = load_system(path)
        index = sample_index(snapshot, numb_points)
        errors = [file_metrics(path, snapshot, index, member.eval_index(snapshot, index))[0]["eps_mae_percent"]
                  for member in ensemble.members]
        results.append({"file": path, "eps_mae_percent": sum(errors) / len(errors), "members": errors})
        log.info("test %s: ε_mae %.4f %% (mean of %d models)", path, results[-1]["eps_mae_percent"], len(errors))
    return results


def explore_stage(loop: LoopInput, iteration: int, folder: Path, models: List[str], labelled: set,
                  device: str) -> dict:
    """This iteration's candidates (written to candidates.extxyz), their σ measure and which are chosen, why."""
    candidates = explore_candidates(loop, iteration, labelled)
    write_candidates(folder / CANDIDATES, candidates)
    ensemble = DensityEnsemble(models, device)
    select = loop.params["select"]
    measured = [deviation_measures(ensemble, candidate.structure, select) for candidate in candidates]
    draw = np.random.default_rng([loop.params["explore"]["seed"], iteration, 1])  # for pick "random"
    decisions = select_candidates([row["measure"] for row in measured], select, draw)
    rows = [{"name": candidate.name, "origin": candidate.origin, "recipe": candidate.recipe, **row,
             "extrapolation": ensemble.members[0].extrapolation(candidate.structure), "chosen": chosen,
             "reason": reason}
            for candidate, row, (chosen, reason) in zip(candidates, measured, decisions)]
    summary = selection_summary([row["measure"] for row in measured], decisions, select)
    log.info("%d candidates, %d reach trust_lo, %d at or above trust_hi, %d chosen", summary["candidates"],
             summary["above_lo"], summary["above_hi"], summary["chosen"])
    return {"candidates": rows, "summary": summary}


def stop_reason(summary: dict, params: dict, iteration: int) -> Optional[str]:
    """Why the loop ends after this iteration's exploration, or None."""
    if summary["candidates"] == 0:
        return "no candidates left (every trajectory frame is labelled)"
    if summary["share_above_lo"] < params["stop"]:
        return (f"converged: {summary['share_above_lo']:.1%} of the candidates reach trust_lo, below stop "
                f"({params['stop']:.1%})")
    if iteration == params["iterations"] - 1:
        return f"iterations ({params['iterations']}) reached"
    if summary["chosen"] == 0:
        return ("every candidate that reaches trust_lo is at or above trust_hi; raise select.trust_hi or explore "
                "gentler perturbations")
    return None


def label_stage(loop: LoopInput, folder: Path, explore_folder: Path, explored: dict) -> dict:
    """Label the chosen candidates, each in ``task.<name>/``; those labelled by an earlier run are kept."""
    structures = read_candidates(explore_folder / CANDIDATES)
    tasks = [Task(row["name"], row["origin"], folder / f"task.{row['name']}", structure)
             for row, structure in zip(explored["candidates"], structures) if row["chosen"]]
    return {"labels": label_all(tasks, loop.params["label"], loop.gpaw_python)}


def write_outputs(records: List[dict], loop: LoopInput):
    """The last iteration's record.json, the table loop.out and the figure loop.png."""
    record = records[-1]
    write_json(iteration_folder(record["iteration"]) / RECORD, record)
    write_table(records, loop.test_data)
    select = loop.params["select"]
    errors = {system_label(path): [(r["iteration"], t["eps_mae_percent"]) for r in records if "train" in r
                                   for t in r["train"]["test"] if t["file"] == path] for path in loop.test_data}
    measures = [(r["iteration"], c["measure"], c["chosen"]) for r in records if "explore" in r
                for c in r["explore"]["candidates"]]
    plot_loop(errors, measures, (select["trust_lo"], select["trust_hi"]), FIGURE)


def write_table(records: List[dict], test_data: List[str]):
    """loop.out: one row per iteration (nan where a stage has not run), ε_mae (%) per test file (the models'
    mean), the reason the loop stopped after a ``#``; ``numpy.genfromtxt(path, names=True)`` reads it."""
    columns = TABLE_COLUMNS + [f"eps_{system_label(path)}" for path in test_data]
    lines = ["#" + "".join(f"{name:>14s}" for name in columns)]
    for record in records:
        summary = record.get("explore", {}).get("summary", {})
        tests = {test["file"]: test["eps_mae_percent"] for test in record.get("train", {}).get("test", [])}
        values = [record["iteration"], len(record["train"]["files"]) if "train" in record else None,
                  *(summary.get(key) for key in ("candidates", "above_lo", "above_hi", "chosen")),
                  len(record["label"]["labels"]) if "label" in record else None, summary.get("measure_max"),
                  *(tests.get(path) for path in test_data)]
        stop = f"  # {record['stop']}" if record.get("stop") else ""
        lines.append(" " + "".join(_cell(value) for value in values) + stop)
    with atomic_path(TABLE) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'nan':>14s}"
    return f"{value:14d}" if isinstance(value, int) else f"{value:14.6e}"
