"""``deepcharge compare``: several models on the same grid points of the same files; tables and figures."""

import json
import logging
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from deepcharge.analysis.plots import (
    plot_accuracy_speed,
    plot_error_histograms,
    plot_lcurves,
    plot_model_parity,
    plot_slice,
    read_columns,
)
from deepcharge.config import load_input_file, normalize
from deepcharge.data.inputs import atom_types
from deepcharge.data.systems import expand_systems, load_system
from deepcharge.errors import DeepChargeError, FileFormatError
from deepcharge.infer.density_predictor import DensityPredictor
from deepcharge.infer.evaluate import check_reference, file_metrics, overall_metrics, sample_index
from deepcharge.snapshot import Snapshot
from deepcharge.train.freeze import freeze_model
from deepcharge.train.run import train_config
from deepcharge.utils import atomic_path, read_json, working_directory, write_json

log = logging.getLogger("deepcharge")

# the grid axis normal to each plane of slice.png
PLANE_NORMAL = {"xy": 2, "xz": 1, "yz": 0}
METRIC_COLUMNS = "ε_mae (%) | MAE (e/Å³) | RMSE (e/Å³) | max error (e/Å³) | electrons ref | electrons pred"


def run_compare(models: List[str], systems: List[str], output: str = "compare", numb_points: int = 0,
                seed: int = 0, slice_file: Optional[str] = None, plane: str = "xy", position: float = 0.0,
                checkpoint_dirs: Optional[List[str]] = None, device: str = "auto") -> dict:
    """Evaluate every model on the same points of every file; write summary.json, summary.md and figures to
    ``output``, plus lcurve.png from ``checkpoint_dirs`` (the directories the models were trained in)."""
    if not models:
        raise DeepChargeError("no models to compare: give frozen model files after -m (or input files after -i)")
    if not systems:
        raise DeepChargeError("no density files to compare on: give them after -s")
    if checkpoint_dirs and len(checkpoint_dirs) != len(models):
        raise DeepChargeError(f"{len(checkpoint_dirs)} checkpoint directories (-c) for {len(models)} models (-m): "
                              "give one per model, in the same order")
    lcurves = [str(Path(folder, "lcurve.out")) for folder in checkpoint_dirs or []]
    for path in lcurves:
        if not Path(path).is_file():
            raise FileFormatError(path, "no such file; -c takes the directory each model was trained in")
    systems = expand_systems(systems, ".", "-s")
    predictors = [DensityPredictor(model, device) for model in models]
    block = density_block_of(models, predictors)
    labels = model_labels(models)
    slice_path = slice_file or systems[0]
    slice_snapshot = check_species(load_system(slice_path, block), models, predictors)
    # the slice first: TorchScript optimises a model during its first calls, which the timing should not see
    slice_reference, slice_predictions, where, coordinates, axis_names = slice_maps(slice_snapshot, predictors,
                                                                                    labels, plane, position)

    runs = [{"files": [], "errors": [], "predictions": [], "seconds": 0.0} for _ in models]
    references = []
    for path in systems:
        snapshot = check_species(load_system(path, block), models, predictors)
        check_reference(predictors[0], snapshot, path)
        index = sample_index(snapshot, numb_points, seed)
        references.append(snapshot.density.reshape(-1)[index])
        for predictor, run in zip(predictors, runs):
            start = time.perf_counter()
            prediction = predictor.eval_index(snapshot, index)
            run["seconds"] += time.perf_counter() - start
            metrics, errors = file_metrics(path, snapshot, index, prediction)
            run["files"].append(metrics)
            run["errors"].append(errors)
            run["predictions"].append(prediction)
    reference = np.concatenate(references)
    summary = {"files": [str(path) for path in systems], "points_per_file": [len(r) for r in references],
               "models": [model_summary(model, predictor, run, reference.size, lcurve)
                          for model, predictor, run, lcurve in zip(models, predictors, runs,
                                                                  lcurves or [None] * len(models))]}
    predictions = {label: np.concatenate(run["predictions"]) for label, run in zip(labels, runs)}

    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = summary_markdown(summary, labels)
    write_json(folder / "summary.json", summary)
    with atomic_path(folder / "summary.md") as tmp:
        Path(tmp).write_text(markdown)
    plot_model_parity(reference, predictions, folder / "parity.png")
    plot_error_histograms(reference, predictions, folder / "error_hist.png")
    plot_slice(slice_reference, slice_predictions, folder / "slice.png", title=f"{Path(slice_path).name}, {where}",
               axis_names=axis_names, coordinates=coordinates)
    if lcurves:
        plot_lcurves(lcurves, folder / "lcurve.png", labels)
    plot_accuracy_speed({folder.name: summary["models"]}, folder / "accuracy_speed.png")
    print(markdown, end="")
    log.info("comparison of %d models written to %s/", len(models), folder)
    return summary


def train_and_compare(inputs: List[str], systems: List[str], output: str = "compare", seed: Optional[int] = None,
                      budget_minutes: Optional[float] = None, **options) -> dict:
    """Train and freeze every input in ``output``/train_<input name>/ (all with training.seed ``seed`` and a
    training time of ``budget_minutes`` when given), then compare the frozen models with their learning curves;
    ``options`` go to :func:`run_compare`.

    A model frozen by an earlier call with the same input is taken as it is, and an interrupted training
    resumes from its last checkpoint, so a half-done study continues where it stopped. Each model is frozen from
    its run's best checkpoint on the validation data when it has one (the last otherwise)."""
    if not inputs:
        raise DeepChargeError("no input files to train: give them after -i")
    if not systems:
        raise DeepChargeError("no density files to compare on: give them after -s")
    if budget_minutes is not None and budget_minutes <= 0:
        raise DeepChargeError(f"--budget {budget_minutes}: give a positive number of minutes")
    folders = [Path(output, f"train_{Path(path).stem}") for path in inputs]
    if len(set(folders)) < len(folders):
        raise DeepChargeError(f"input files {' '.join(map(str, inputs))}: give them distinct names; each trains "
                              f"in {output}/train_<name>/")
    configs = [normalize(load_input_file(path), str(path)) for path in inputs]  # every input checked first
    for path, config, folder in zip(inputs, configs, folders):
        if seed is not None:
            config["training"]["seed"] = seed
        if budget_minutes is not None:
            config["training"]["time_budget"] = 60.0 * budget_minutes
        train_in(folder, path, config)
    return run_compare([str(folder / "frozen_model.pth") for folder in folders], systems, output,
                       seed=seed or 0, checkpoint_dirs=[str(folder) for folder in folders], **options)


def train_in(folder: Path, path: str, config: dict):
    """Train ``config`` (read from ``path``) in ``folder`` and freeze it there; skip what an earlier call with
    the same input did (a frozen model), continue what it left (its last checkpoint)."""
    recorded = folder / "compare_input.json"
    as_recorded = json.loads(json.dumps(config))
    if recorded.is_file() and read_json(recorded) != as_recorded:
        raise DeepChargeError(f"{folder} holds a training of another version of {path} (its input is "
                              f"{recorded}); remove {folder} to train it again, or compare into another -o")
    if recorded.is_file() and (folder / "frozen_model.pth").is_file():
        log.info("%s: trained and frozen by an earlier run of this comparison; taken as it is", folder)
        return
    restart = "." if (folder / "checkpoint").is_file() else None
    base_dir = Path(path).resolve().parent  # relative paths in the input are taken from its directory
    with working_directory(folder):  # training writes to the current directory
        write_json("compare_input.json", as_recorded)
        log.info("%s %s in %s", "continuing" if restart else "training", path, folder)
        train_config(config, base_dir, restart=restart)
        best = Path(f"{config['training']['save_ckpt']}-best.pt")
        freeze_model(str(best) if best.is_file() else ".", "frozen_model.pth")


def density_block_of(models: List[str], predictors: List[DensityPredictor]) -> str:
    """The density block every model learnt (the files' block they are compared with); an error when they
    differ."""
    blocks = {predictor.density_block for predictor in predictors}
    if len(blocks) > 1:
        learnt = ", ".join(f"{model}: {predictor.density_block}" for model, predictor in zip(models, predictors))
        raise DeepChargeError(f"the models learnt different density blocks ({learnt}); compare models of one block")
    return blocks.pop()


def check_species(snapshot: Snapshot, models: List[str], predictors: List[DensityPredictor]) -> Snapshot:
    """``snapshot``, once every model knows its species; else an error naming the model and the file."""
    for model, predictor in zip(models, predictors):
        try:
            atom_types(snapshot, predictor.type_map)
        except DeepChargeError as err:
            raise DeepChargeError(f"model {model} cannot handle {err}") from None
    return snapshot


def model_labels(models: List[str]) -> List[str]:
    """Names of the models in tables and legends: file names, or parent/name where file names repeat."""
    names = [Path(model).name for model in models]
    if len(set(names)) == len(names):
        return names
    return [f"{Path(model).parent.name}/{Path(model).name}" for model in models]


def hyperparameters(model: dict) -> dict:
    """The key hyperparameters of a model section."""
    if "descriptor" in model:  # pseudo_atom, atom_centred
        descriptor = model["descriptor"]
        keys = ("rcut", "rcut_smth", "sel", "neuron", "axis_neuron")
        return {**{key: descriptor[key] for key in keys if key in descriptor},
                "fitting_neuron": model["fitting_net"]["neuron"]}
    return {key: model[key] for key in ("cutoff", "num_interactions", "num_features", "num_basis")}


def model_summary(model: str, predictor: DensityPredictor, run: dict, points: int,
                  lcurve: Optional[str] = None) -> dict:
    """One model's entry of summary.json: what it is, how it was trained, how fast and how accurate it is.

    ``steps_run`` and the training time are the whole run's, from its ``lcurve`` when given (the frozen
    checkpoint may be the run's best, earlier one); probe passes are steps run × the batch size."""
    metadata = predictor.metadata
    training = metadata["training"]
    steps_run, wall_time = training["steps"], training["wall_time_s"]
    if lcurve is not None:
        last = read_columns(lcurve)[-1]
        steps_run, wall_time = int(last["step"]), float(last["wall_s"])
    batch_size = training["input"]["training"]["training_data"]["batch_size"]
    return {"model": str(model), "backend": metadata["backend"], "hyperparameters": hyperparameters(metadata["model"]),
            "parameters": metadata["parameters"], "training_steps": training["steps"], "steps_run": steps_run,
            "training_wall_time_s": wall_time, "probe_passes": steps_run * batch_size,
            "probes_per_second": points / run["seconds"],
            "overall": overall_metrics(run["errors"]), "files": run["files"]}


def compare_studies(results: List[str], output: str = "compare") -> dict:
    """accuracy_speed.png and studies.md in ``output`` from the summary.json of earlier comparisons (one
    directory each, named as the study)."""
    studies = {}
    for folder in results:
        path = Path(folder, "summary.json")
        if not path.is_file():
            raise FileFormatError(str(path), "no such file; --results takes directories `deepcharge compare` "
                                             "wrote (-o)")
        studies[Path(folder).resolve().name] = read_json(path)["models"]
    lines = ["# deepcharge compare: studies", "",
             "| study | model | backend | parameters | training time (s) | probes/s | ε_mae (%) |", "|---" * 7 + "|"]
    for study, models in studies.items():
        for model in models:
            lines.append(f"| {study} | {Path(model['model']).parent.name or model['model']} | {model['backend']} | "
                         f"{model['parameters']} | {model['training_wall_time_s']:.0f} | "
                         f"{model['probes_per_second']:.0f} | {model['overall']['eps_mae_percent']:.4f} |")
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "studies.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    plot_accuracy_speed(studies, folder / "accuracy_speed.png")
    print("\n".join(lines))
    return studies


def slice_maps(snapshot: Snapshot, predictors: List[DensityPredictor], labels: List[str], plane: str,
               position: float):
    """(reference, {label: prediction}, description, (X, Y) in Å, axis names) on the grid plane nearest to the
    fractional ``position`` along the axis normal to ``plane``: X along the plane's first cell vector, Y normal to
    it in the plane, so a non-orthogonal cell is drawn as it is."""
    normal, shape = PLANE_NORMAL[plane], snapshot.grid_shape
    layer = int(round(position * shape[normal])) % shape[normal]
    index = np.take(np.arange(snapshot.density.size).reshape(shape), layer, axis=normal)
    points = snapshot.grid_points(index.reshape(-1))
    predictions = {label: predictor.eval(snapshot, points).reshape(index.shape)
                   for label, predictor in zip(labels, predictors)}
    first, second = (snapshot.cell[axis] for axis in range(3) if axis != normal)
    along = first / np.linalg.norm(first)
    across = second - (second @ along) * along
    across /= np.linalg.norm(across)
    offsets = (points - points[0]).reshape(*index.shape, 3)
    coordinates = (offsets @ along, offsets @ across)
    names = "abc"[[axis for axis in range(3) if axis != normal][0]]
    axis_names = (f"along {names} (Å)", f"normal to {names}, in the plane (Å)")
    description = f"{plane} grid plane at {'xyz'[normal]} = {layer}/{shape[normal]}"
    return (np.take(snapshot.density, layer, axis=normal), predictions, description, coordinates, axis_names)


def summary_markdown(summary: dict, labels: List[str]) -> str:
    """summary.md: one row per model over all files, then one row per model and file."""
    def metric_cells(m):
        electrons = f"{m['electrons_ref']:.4f} | {m['electrons_pred']:.4f}" if "electrons_ref" in m else "– | –"
        return (f"{m['eps_mae_percent']:.4f} | {m['mae']:.3e} | {m['rmse']:.3e} | {m['max_abs_error']:.3e} | "
                f"{electrons}")

    lines = ["# deepcharge compare", "", f"Files: {', '.join(summary['files'])}; grid points per file: "
             f"{', '.join(map(str, summary['points_per_file']))}.", "",
             f"| model | backend | parameters | steps run (frozen) | training time (s) | probe passes | probes/s | "
             f"{METRIC_COLUMNS} |", "|---" * 13 + "|"]
    for label, model in zip(labels, summary["models"]):
        lines.append(f"| {label} | {model['backend']} | {model['parameters']} | {model['steps_run']} "
                     f"({model['training_steps']}) | {model['training_wall_time_s']:.1f} | "
                     f"{model['probe_passes']:.3g} | {model['probes_per_second']:.0f} | "
                     f"{metric_cells(model['overall'])} |")
    lines += ["", f"| model | file | points | {METRIC_COLUMNS} |", "|---" * 9 + "|"]
    for label, model in zip(labels, summary["models"]):
        for m in model["files"]:
            lines.append(f"| {label} | {Path(m['file']).name} | {m['points']} | {metric_cells(m)} |")
    return "\n".join(lines) + "\n"
