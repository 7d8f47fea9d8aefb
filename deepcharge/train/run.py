"""A normalised input → a trained run in the current directory: one model, or an ensemble's members in turn."""

import logging
from pathlib import Path
from typing import Optional

from deepcharge import distributed
from deepcharge.errors import DeepChargeError
from deepcharge.train.budget import restart_training_section
from deepcharge.train.checkpoint import load_checkpoint, resolve_checkpoint
from deepcharge.train.ensemble import (
    is_finished,
    member_config,
    member_folders,
    member_init_models,
    member_seeds,
)
from deepcharge.train.trainer import Trainer
from deepcharge.utils import working_directory, write_json

log = logging.getLogger("deepcharge")


def train_config(config: dict, base_dir: Path, restart: Optional[str] = None, init_model: Optional[str] = None,
                 output: str = "out.json") -> str:
    """Train from a normalised input whose relative paths start at ``base_dir``; returns the final checkpoint
    (an ensemble's: the run directory, which ``deepcharge freeze -c`` takes)."""
    if config["training"]["ensemble"]:
        return train_ensemble(config, base_dir, restart, init_model, output)
    if restart:
        state = load_checkpoint(restart)
        training = restart_training_section(config, state)
        if is_finished(state, training):  # say so before loading any data
            step, numb_steps = int(state["step"]), training["numb_steps"]
            how = "training.numb_steps" if step >= numb_steps else "training.early_stopping_patience (it stopped early)"
            log.info("%s: this run has already finished (step %d, numb_steps %d); nothing to train. Raise %s to "
                     "continue it", restart, step, numb_steps, how)
            return str(resolve_checkpoint(restart))
    trainer = Trainer(config, base_dir, restart=restart, init_model=init_model)
    if distributed.is_main():  # with torchrun, rank 0 writes the files
        write_json(output, trainer.config)
        log.info("normalised input written to %s", output)
    checkpoint = trainer.run()
    if distributed.is_main() and trainer.budget is not None:  # the schedule the budget set
        write_json(output, trainer.config)
    log.info("training finished; last checkpoint %s", checkpoint)
    return str(checkpoint)


def train_ensemble(config: dict, base_dir: Path, restart: Optional[str] = None, init_model: Optional[str] = None,
                   output: str = "out.json") -> str:
    """Train the members of ``training.ensemble`` one after another, each in ``member_<i>/`` with its own seed.

    ``restart`` names the checkpoint inside each member's directory: finished members are skipped, an
    interrupted one continues, members not yet started start (from ``init_model``: see
    :func:`member_init_models`). Returns the run directory.
    """
    seeds = member_seeds(config["training"])
    folders = member_folders(len(seeds))
    started = [restart is not None and _has_checkpoint(folder / restart) for folder in folders]
    if restart and (Path(restart).is_absolute() or not any(started)):
        raise DeepChargeError(f"--restart {restart}: with training.ensemble, name the checkpoint inside each "
                              f"member's directory (e.g. model.ckpt.pt) and run from the directory holding "
                              f"{folders[0]}/ ... {folders[-1]}/")
    init_models = member_init_models(init_model, len(folders))
    if None not in seeds:
        config["training"]["ensemble"]["seeds"] = seeds
    if distributed.is_main():
        write_json(output, config)
    for number, (folder, seed, resume, init) in enumerate(zip(folders, seeds, started, init_models)):
        member = member_config(config, seed)
        if resume and is_finished(load_checkpoint(str(folder / restart)), member["training"]):
            log.info("ensemble member %d/%d in %s/ has finished; skipped", number + 1, len(folders), folder)
            continue
        log.info("ensemble member %d/%d in %s/%s", number + 1, len(folders), folder,
                 "" if seed is None else f", seed {seed}")
        continued, started_from = (restart, None) if resume else (None, init)
        with working_directory(folder):
            train_config(member, base_dir, continued, started_from, Path(output).name)
    log.info("ensemble of %d members trained; `deepcharge freeze` freezes them all", len(folders))
    return str(Path.cwd())


def _has_checkpoint(path: Path) -> bool:
    """Whether ``path`` names a checkpoint: a file, ``<prefix>`` of ``<prefix>.pt``, or a directory with one."""
    return path.is_file() or Path(f"{path}.pt").is_file() or (path / "checkpoint").is_file()
