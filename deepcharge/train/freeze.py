"""A checkpoint → a self-contained TorchScript file with the metadata :class:`~deepcharge.infer.predictor.Predictor`
reads (the inference side needs no model code)."""

import json
import logging
from pathlib import Path

import torch

from deepcharge import __version__
from deepcharge.analysis.electrons import fit_electrons_per_atom
from deepcharge.infer.predictor import METADATA_FILE
from deepcharge.models import build_model
from deepcharge.models.base import load_weights
from deepcharge.train.checkpoint import load_checkpoint, resolve_checkpoint
from deepcharge.utils import atomic_path, quiet_torchscript

log = logging.getLogger("deepcharge")


def freeze_model(checkpoint: str = ".", output: str = "frozen_model.pth") -> dict:
    """Script the checkpoint's model and save it with metadata (backend, type_map, training summary)."""
    state = load_checkpoint(checkpoint)
    config = state["config"]
    model = build_model(config["model"])
    load_weights(model, state["model_state"], resolve_checkpoint(checkpoint))
    model.eval()
    model.prepare_for_inference()  # a backend's exact rewrites for speed (folded normalisations)
    with quiet_torchscript():
        scripted = torch.jit.script(model)
    metadata = {
        "deepcharge_version": __version__,
        "backend": config["model"]["type"],
        "type_map": config["model"]["type_map"],
        "model": config["model"],
        "config_version": state["config_version"],
        "training": {"steps": int(state["step"]), "wall_time_s": float(state["wall_time"]),
                     "checkpoint": str(resolve_checkpoint(checkpoint)), "input": config},
        "parameters": sum(p.numel() for p in model.parameters()),
        "electrons_per_atom": fit_electrons_per_atom(list(state.get("electrons", {}).values())),
        "environments": state.get("environments"),
    }
    with atomic_path(output) as tmp, quiet_torchscript():
        torch.jit.save(scripted, tmp, _extra_files={METADATA_FILE: json.dumps(metadata)})
    log.info("frozen %s model (%d parameters, step %d) to %s", metadata["backend"], metadata["parameters"],
             metadata["training"]["steps"], output)
    _point_to_best(state, resolve_checkpoint(checkpoint))
    _say_what_electrons_mean(state)
    return metadata


def _say_what_electrons_mean(state: dict):
    """With one composition in the training data only its total electron count is known: say so, since
    --conserve-electrons on another composition relies on the split among species."""
    compositions = {tuple(sorted(counts.items())) for counts, _ in state.get("electrons", {}).values()}
    species = {symbol for composition in compositions for symbol, _ in composition}
    if len(compositions) == 1 and len(species) > 1:
        log.info("the training data has one composition: its electrons per atom (%s) reproduce its total but split it "
                 "among species in proportion to their counts, not by valence; --conserve-electrons on another "
                 "composition is then an estimate (give --electrons N when you know the count)",
                 ", ".join(f"{symbol} {value:.3f}" for symbol, value in
                           fit_electrons_per_atom(list(state["electrons"].values())).items()))


def _point_to_best(state: dict, frozen_from: Path):
    """Say when the run's ``<save_ckpt>-best.pt`` beside the frozen checkpoint holds another step: it has the
    lowest validation error of the run."""
    best_file = frozen_from.parent / f"{Path(state['config']['training']['save_ckpt']).name}-best.pt"
    if best_file.resolve() == frozen_from.resolve() or not best_file.is_file():
        return
    best = load_checkpoint(str(best_file))["best"]
    if best["step"] != int(state["step"]):
        log.warning("%s (step %d) has the run's lowest validation eps_mae (%.4f %%); to freeze it instead of step "
                    "%d: deepcharge freeze -c %s", best_file, best["step"], best["eps_mae_val"], int(state["step"]),
                    best_file)
