"""The loop input (``deepcharge loop param.json``): its dargs schema and a check that reads every file it names
before any work starts."""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from dargs import Argument, Variant

from deepcharge.config import checked_input, doc_input, load_input_file, normalize
from deepcharge.data.systems import load_frames, resolve_systems
from deepcharge.errors import DeepChargeError
from deepcharge.interfaces.gpaw import gpaw_python
from deepcharge.snapshot import Snapshot

SECTIONS = "train, init_data, explore, select, label, iterations"


def _non_negative_numbers(values) -> bool:
    return isinstance(values, list) and bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values)


def _files_arg(doc: str, optional: bool = False) -> Argument:
    return Argument("files", [list, str], optional=optional, doc=doc + " Relative paths start at the loop input's "
                                                                      "directory.")


def explore_args() -> Argument:
    """``explore``: where each iteration's candidates come from."""
    return Argument("explore", dict, [
        Argument("structures", [dict, None], [
            _files_arg("Structure files (anything `predict -s` reads: POSCAR, extxyz, a density file, ...); "
                       "every frame is a starting structure."),
            Argument("format", [str, None], optional=True, default=None,
                     doc="Their format, as `predict -f` takes it (ASE's or dpdata's name); null guesses."),
            Argument("rattle", list, optional=True, default=[0.05], extra_check=_non_negative_numbers,
                     extra_check_errmsg="must be a non-empty list of non-negative numbers",
                     doc="Rattle amplitudes in Å: the standard deviation of a Gaussian displacement of every "
                         "atom along each axis (as ASE's `rattle`)."),
            Argument("strain", list, optional=True, default=[0.0], extra_check=_non_negative_numbers,
                     extra_check_errmsg="must be a non-empty list of non-negative numbers",
                     doc="Strain amplitudes: the cell is multiplied by 1 + ε, ε a symmetric matrix with entries "
                         "drawn uniformly from [−amplitude, amplitude]; the atoms move with it."),
            Argument("count", int, optional=True, default=4, extra_check=lambda v: v > 0,
                     extra_check_errmsg="must be positive",
                     doc="Candidates per structure and per pair of rattle and strain amplitudes, drawn anew "
                         "every iteration."),
        ], optional=True, default=None, doc="Candidates made by straining and rattling given structures."),
        Argument("trajectories", [dict, None], [
            _files_arg("Trajectories (extxyz, LAMMPS dump, DeePMD systems, ...: anything `predict -s` reads)."),
            Argument("format", [str, None], optional=True, default=None,
                     doc="Their format, as `predict -f` takes it (e.g. lammps/dump); null guesses."),
            Argument("stride", int, optional=True, default=1, extra_check=lambda v: v > 0,
                     extra_check_errmsg="must be positive", doc="Every stride-th frame is a candidate."),
        ], optional=True, default=None,
            doc="Candidates that are frames of given trajectories: every iteration offers the frames not "
                "labelled yet."),
        Argument("seed", int, optional=True, default=1,
                 doc="Seed of the rattle and strain draws (each iteration draws from its own stream)."),
    ], doc="How candidates are made; give `structures`, `trajectories` or both.")


def select_args() -> Argument:
    """``select``: which candidates are labelled, by the ensemble's σ."""
    return Argument("select", dict, [
        Argument("measure", str, optional=True, default="quantile",
                 extra_check=lambda v: v in ("mean", "quantile"), extra_check_errmsg="must be \"mean\" or \"quantile\"",
                 doc="A candidate's measure of the ensemble's σ (standard deviation over the models, ddof 0, at "
                     "every grid point): its \"mean\" over the grid, or its `quantile`."),
        Argument("quantile", float, optional=True, default=0.95, extra_check=lambda v: 0 < v <= 1,
                 extra_check_errmsg="must lie in (0, 1]", doc="The quantile q of σ over the grid (1: its maximum)."),
        Argument("spacing", float, optional=True, default=0.3, extra_check=lambda v: v > 0,
                 extra_check_errmsg="must be positive",
                 doc="Largest spacing (Å) of the grid σ is evaluated on (as `predict --spacing`)."),
        Argument("trust_lo", float, extra_check=lambda v: v >= 0, extra_check_errmsg="must be non-negative",
                 doc="Lower trust level (e/Å³): below it the ensemble agrees and a candidate teaches little."),
        Argument("trust_hi", float, extra_check=lambda v: v > 0, extra_check_errmsg="must be positive",
                 doc="Upper trust level (e/Å³): candidates at or above it are rejected as probably unphysical "
                     "(the models disagree wildly); those in [trust_lo, trust_hi) are eligible."),
        Argument("pick", str, optional=True, default="largest",
                 extra_check=lambda v: v in ("largest", "random"),
                 extra_check_errmsg="must be \"largest\" or \"random\"",
                 doc="Which eligible candidates fill max_per_iter: those of the \"largest\" measure, or a "
                     "\"random\" draw among them (seeded by explore.seed and the iteration): the baseline that "
                     "shows what σ's choice is worth."),
        Argument("max_per_iter", int, optional=True, default=10, extra_check=lambda v: v > 0,
                 extra_check_errmsg="must be positive",
                 doc="Labels per iteration at most (see pick)."),
    ], doc="Which candidates are labelled.")


def label_args() -> Argument:
    """``label``: the DFT code that labels the chosen candidates."""
    return Argument("label", dict, [
        Argument("parallel", int, optional=True, default=1, extra_check=lambda v: v > 0,
                 extra_check_errmsg="must be positive", doc="Labels computed side by side."),
    ], [Variant("type", [
        Argument("gpaw", dict, [
            Argument("parameters", dict,
                     doc="GPAW keywords in JSON form, as `deepcharge.interfaces.gpaw.run_scf` takes them (`mode` as "
                         "{\"name\": \"pw\", \"ecut\": 350}); GPAW's log goes to `txt` (default gpaw.txt) in the "
                         "label's folder. The label is GPAW's smooth pseudo density on its coarse grid, as in "
                         "the shipped data."),
            Argument("threads", int, optional=True, default=1, extra_check=lambda v: v > 0,
                     extra_check_errmsg="must be positive", doc="OpenMP threads of each GPAW run."),
        ], doc="GPAW 22.8 through deepcharge's interface, in the Python that has it ($DEEPCHARGE_GPAW_PYTHON, "
               "else this one, else /usr/bin/python3); writes density.CHGCAR in the label's folder."),
        Argument("command", dict, [
            Argument("command", str,
                     doc="A shell command run in the label's folder; `{structure}` is replaced by the path of "
                         "the candidate's POSCAR there. It must exit with status 0."),
            Argument("output", str,
                     doc="The density file it leaves in the folder (CHGCAR, cube, XSF: whatever deepcharge "
                         "reads), e.g. CHGCAR."),
        ], doc="Any DFT code, run by a command (VASP, Quantum ESPRESSO, ... with its own set-up)."),
    ], doc="The labeller.")], doc="How the chosen candidates are labelled.")


def loop_sections() -> List[Argument]:
    """Every key of the loop input."""
    return [
        Argument("train", str,
                 doc="The training input (JSON or YAML) each iteration trains: its training_data.systems become "
                     "init_data and the labels so far, its training.ensemble `numb_models` members."),
        Argument("numb_models", int, optional=True, default=4, extra_check=lambda v: v >= 2,
                 extra_check_errmsg="must be at least 2", doc="Members of each iteration's ensemble."),
        Argument("init_model", bool, optional=True, default=True,
                 doc="From the second iteration on, member i starts from the previous iteration's member i "
                     "(`train --init-model`); false trains every iteration from scratch."),
        Argument("init_model_steps", [int, None], optional=True, default=None,
                 extra_check=lambda v: v is None or v > 0, extra_check_errmsg="must be positive or null",
                 doc="training.numb_steps of the iterations that start from earlier weights (DP-GEN's "
                     "training_reuse_numb_steps); null keeps the input's."),
        Argument("init_data", [list, str],
                 doc="Density files labelled already (files, globs, directories, stores), relative to the loop "
                     "input's directory."),
        Argument("test_data", [list, str, None], optional=True, default=None,
                 doc="Density files every iteration's models are tested on (ε_mae per file in record.json, "
                     "loop.out and loop.png)."),
        Argument("test_numb_points", int, optional=True, default=0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative", doc="Random grid points per test file; 0 takes all."),
        explore_args(),
        select_args(),
        label_args(),
        Argument("iterations", int, extra_check=lambda v: v > 0, extra_check_errmsg="must be positive",
                 doc="Iterations at most; the last one trains and explores but labels nothing."),
        Argument("stop", float, optional=True, default=0.05, extra_check=lambda v: 0 <= v <= 1,
                 extra_check_errmsg="must lie in [0, 1]",
                 doc="The loop stops once the share of candidates whose measure reaches trust_lo falls below "
                     "this; 0 runs every iteration."),
    ]


def doc_loop_input(out_type: str = "rst") -> str:
    """Documentation of every key of the loop input (as :func:`deepcharge.config.doc_train_input`)."""
    return doc_input(loop_sections(), out_type, "A deepcharge loop input file.")


@dataclass
class LoopInput:
    """A checked loop input: its keys with defaults filled in, and what the files it names hold."""

    source: str
    params: dict
    template: dict  # the training input, normalised, training_data.systems = init_data
    template_dir: Path  # where the training input's own relative paths start
    init_data: List[str]  # absolute references
    test_data: List[str]
    structures: List[Tuple[str, Snapshot]]  # (where it came from, structure)
    frames: List[Tuple[str, Snapshot]]  # (file[frame], structure)
    gpaw_python: Optional[str]  # the interpreter that runs GPAW labels

    @property
    def type_map(self) -> List[str]:
        return self.template["model"]["type_map"]


def load_loop_input(path) -> LoopInput:
    """Read and check the loop input ``path`` and every file it names; errors name the key."""
    source = str(path)
    params = checked_input(Argument("loop", dict, loop_sections()), load_input_file(path, SECTIONS), source)
    base = Path(path).resolve().parent
    explore, select = params["explore"], params["select"]
    if explore["structures"] is None and explore["trajectories"] is None:
        raise DeepChargeError(f"{source}: explore: give `structures`, `trajectories` or both")
    if select["trust_lo"] >= select["trust_hi"]:
        raise DeepChargeError(f"{source}: select.trust_lo ({select['trust_lo']}) must be below trust_hi "
                              f"({select['trust_hi']})")
    init_data = resolve_systems(params["init_data"], base, "init_data")
    test_data = resolve_systems(params["test_data"], base, "test_data") if params["test_data"] else []
    template_path = base / params["train"]
    raw = load_input_file(template_path)
    raw.setdefault("training", {}).setdefault("training_data", {})["systems"] = init_data
    raw["training"]["ensemble"] = {"members": params["numb_models"]}
    template = normalize(raw, str(template_path))
    type_map = template["model"]["type_map"]
    structures, frames = [], []
    if explore["structures"] is not None:
        structures = _read(explore["structures"], base, type_map, "explore.structures.files")
    if explore["trajectories"] is not None:
        frames = _read(explore["trajectories"], base, type_map, "explore.trajectories.files",
                       explore["trajectories"]["stride"])
    python = gpaw_python() if params["label"]["type"] == "gpaw" else None
    return LoopInput(source, params, template, template_path.parent, init_data, test_data, structures, frames,
                     python)


def _read(section: dict, base: Path, type_map: List[str], where: str, stride: int = 1
          ) -> List[Tuple[str, Snapshot]]:
    """(name, structure) of every ``stride``-th frame of each file ``section`` names; an error names ``where``
    and the file."""
    files = [section["files"]] if isinstance(section["files"], str) else section["files"]
    if not files:
        raise DeepChargeError(f"{where}: the list of files is empty")
    found = []
    for name in files:
        path = base / name
        try:
            frames = load_frames(str(path), section["format"], type_map)
        except DeepChargeError as err:
            raise DeepChargeError(f"{where}: {err}") from None
        for number, frame in list(enumerate(frames))[::stride]:
            unknown = sorted(set(frame.symbols) - set(type_map))
            if unknown:
                raise DeepChargeError(f"{where}: {path} holds {', '.join(unknown)}, which the training input's "
                                      f"type_map {type_map} lacks")
            found.append((str(path) if len(frames) == 1 else f"{path}[{number}]", frame))
    return found

