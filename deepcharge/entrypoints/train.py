"""``deepcharge train``: validate the input, write out.json, train, checkpoint."""

import logging
from pathlib import Path
from typing import Optional

from ..config import load_input_file, normalize
from ..errors import DeepChargeError
from ..train import distributed
from ..train.trainer import Trainer
from ..utils import write_json

log = logging.getLogger("deepcharge")


def run_train(input_file: str, restart: Optional[str] = None, init_model: Optional[str] = None,
              output: str = "out.json") -> str:
    """Train from ``input_file``; returns the final checkpoint's path."""
    if restart and init_model:
        raise DeepChargeError("--restart and --init-model exclude each other: restart continues a run, "
                              "init-model starts a new one from its weights")
    config = normalize(load_input_file(input_file), str(input_file))
    return train_config(config, Path(input_file).resolve().parent, restart, init_model, output)


def train_config(config: dict, base_dir: Path, restart: Optional[str] = None, init_model: Optional[str] = None,
                 output: str = "out.json") -> str:
    """Train from a normalised input whose relative paths start at ``base_dir``; returns the final checkpoint."""
    trainer = Trainer(config, base_dir, restart=restart, init_model=init_model)
    if distributed.is_main():  # with torchrun, rank 0 writes the files
        write_json(output, trainer.config)
        log.info("normalised input written to %s", output)
    checkpoint = trainer.run()
    log.info("training finished; last checkpoint %s", checkpoint)
    return str(checkpoint)
