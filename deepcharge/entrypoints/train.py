"""``deepcharge train``: validate the input, write out.json, train, checkpoint (every member of an ensemble)."""

import logging
import os
import time
from pathlib import Path
from typing import Optional

from deepcharge import distributed
from deepcharge.config import load_input_file, normalize
from deepcharge.errors import DeepChargeError
from deepcharge.train.ensemble import member_folders, member_seeds
from deepcharge.train.run import train_config

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
