"""``deepcharge train``: validate the input, write out.json, train, checkpoint (every member of an ensemble)."""

import logging
import os
import time
from pathlib import Path
from typing import Optional

from ..config import load_input_file, normalize
from ..errors import DeepChargeError
from ..train import distributed
from ..train.checkpoint import load_checkpoint, resolve_checkpoint
from ..train.ensemble import is_finished, member_config, member_folders, member_seeds
from ..train.trainer import Trainer
from ..utils import working_directory, write_json

log = logging.getLogger("deepcharge")


def run_train(input_file: str, restart: Optional[str] = None, init_model: Optional[str] = None,
              output: str = "out.json") -> str:
    """Train from ``input_file``; returns the final checkpoint's path (an ensemble's: the run directory)."""
    if restart and init_model:
        raise DeepChargeError("--restart and --init-model exclude each other: restart continues a run, "
                              "init-model starts a new one from its weights")
    config = normalize(load_input_file(input_file), str(input_file))
    started = time.time()
    try:
        return train_config(config, Path(input_file).resolve().parent, restart, init_model, output)
    except KeyboardInterrupt:
        if distributed.is_main():
            _report_interrupt(input_file, config["training"], started)
        raise


def train_config(config: dict, base_dir: Path, restart: Optional[str] = None, init_model: Optional[str] = None,
                 output: str = "out.json") -> str:
    """Train from a normalised input whose relative paths start at ``base_dir``; returns the final checkpoint
    (an ensemble's: the run directory, which ``deepcharge freeze -c`` takes)."""
    if config["training"]["ensemble"]:
        return train_ensemble(config, base_dir, restart, init_model, output)
    if restart:
        state = load_checkpoint(restart)
        if is_finished(state, config["training"]):  # say so before loading any data
            step, numb_steps = int(state["step"]), config["training"]["numb_steps"]
            how = "training.numb_steps" if step >= numb_steps else "training.early_stopping_patience (it stopped early)"
            log.info("%s: this run has already finished (step %d, numb_steps %d); nothing to train. Raise %s to "
                     "continue it", restart, step, numb_steps, how)
            return str(resolve_checkpoint(restart))
    trainer = Trainer(config, base_dir, restart=restart, init_model=init_model)
    if distributed.is_main():  # with torchrun, rank 0 writes the files
        write_json(output, trainer.config)
        log.info("normalised input written to %s", output)
    checkpoint = trainer.run()
    log.info("training finished; last checkpoint %s", checkpoint)
    return str(checkpoint)


def train_ensemble(config: dict, base_dir: Path, restart: Optional[str] = None, init_model: Optional[str] = None,
                   output: str = "out.json") -> str:
    """Train the members of ``training.ensemble`` one after another, each in ``member_<i>/`` with its own seed.

    ``restart`` names the checkpoint inside each member's directory: finished members are skipped, an
    interrupted one continues, members not yet started start. Returns the run directory.
    """
    seeds = member_seeds(config["training"])
    folders = member_folders(len(seeds))
    started = [restart is not None and _has_checkpoint(folder / restart) for folder in folders]
    if restart and (Path(restart).is_absolute() or not any(started)):
        raise DeepChargeError(f"--restart {restart}: with training.ensemble, name the checkpoint inside each "
                              f"member's directory (e.g. model.ckpt.pt) and run from the directory holding "
                              f"{folders[0]}/ ... {folders[-1]}/")
    init_model = init_model and str(Path(init_model).resolve())  # members train in their own directories
    if None not in seeds:
        config["training"]["ensemble"]["seeds"] = seeds
    if distributed.is_main():
        write_json(output, config)
    for number, (folder, seed, resume) in enumerate(zip(folders, seeds, started)):
        member = member_config(config, seed)
        if resume and is_finished(load_checkpoint(str(folder / restart)), member["training"]):
            log.info("ensemble member %d/%d in %s/ has finished; skipped", number + 1, len(folders), folder)
            continue
        log.info("ensemble member %d/%d in %s/%s", number + 1, len(folders), folder,
                 "" if seed is None else f", seed {seed}")
        with working_directory(folder):
            train_config(member, base_dir, restart if resume else None, init_model, Path(output).name)
    log.info("ensemble of %d members trained; `deepcharge freeze` freezes them all", len(folders))
    return str(Path.cwd())


def _has_checkpoint(path: Path) -> bool:
    """Whether ``path`` names a checkpoint: a file, ``<prefix>`` of ``<prefix>.pt``, or a directory with one."""
    return path.is_file() or Path(f"{path}.pt").is_file() or (path / "checkpoint").is_file()


def _report_interrupt(input_file: str, training: dict, started: float):
    """After Ctrl-C: the last checkpoint this run wrote and the command that continues from it."""
    latest = f"{training['save_ckpt']}.pt"
    folders = member_folders(len(member_seeds(training))) if training["ensemble"] else [Path(".")]
    written = [folder / latest for folder in folders
               if (folder / latest).is_file() and (folder / latest).stat().st_mtime >= started]
    if not written:
        log.warning("interrupted before the first checkpoint (every save_freq = %d steps); nothing to restart from",
                    training["save_freq"])
        return
    last = written[-1]
    log.warning("interrupted; last checkpoint %s; continue with: deepcharge train %s --restart %s",
                last.parent / os.path.realpath(last).rpartition(os.sep)[2], input_file, latest)
