"""``deepcharge compress``: a frozen pseudo_atom model → the same model with its embedding nets tabulated."""

import json
import logging
from typing import Dict, Optional

import torch

from deepcharge.errors import DeepChargeError
from deepcharge.infer.predictor import METADATA_FILE, load_frozen
from deepcharge.models import build_model
from deepcharge.models.base import load_weights
from deepcharge.models.descriptor.tabulate import TabulatedSeA, embedding_input_range
from deepcharge.utils import atomic_path, quiet_torchscript

log = logging.getLogger("deepcharge")

# probes of the consistency checks (synthetic environments spanning the table)
CHECK_PROBES = 512
# largest |difference| between the rebuilt and the frozen model, relative to the largest density
REBUILD_TOLERANCE = 1e-4


def rebuild_model(module: torch.jit.ScriptModule, metadata: dict, path) -> torch.nn.Module:
    """The Python model behind a frozen pseudo_atom module, in the state ``freeze`` left it (normalisation folded)."""
    model = build_model(metadata["model"])
    model.eval()
    model.prepare_for_inference()  # as freeze did, so that the frozen (folded) weights mean the same
    load_weights(model, module.state_dict(), str(path))
    check = random_environments(model, 0.0)
    reference = densities(module, check)
    if float((densities(model, check) - reference).abs().max()) > REBUILD_TOLERANCE * float(reference.abs().max()):
        raise DeepChargeError(f"{path}: the model its metadata describes differs from the frozen one (frozen by "
                              "another deepcharge version?); freeze its checkpoint again")
    return model


def random_environments(model: torch.nn.Module, min_distance: float, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Probe inputs with neighbours at uniform distances in [min_distance, rcut] and one slot in five empty."""
    generator = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    shape = (CHECK_PROBES, sum(model.sel))
    distance = min_distance + (model.rcut - min_distance) * torch.rand(*shape, 1, generator=generator,
                                                                      dtype=torch.float64)
    direction = torch.randn(*shape, 3, generator=generator, dtype=torch.float64)
    occupied = torch.rand(*shape, generator=generator) > 0.2
    vectors = (direction / direction.norm(dim=-1, keepdim=True) * distance * occupied.unsqueeze(-1)).to(dtype)
    return {"probe_vectors": vectors, "probe_nlist": torch.where(occupied, 0, -1)}


def densities(model, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
    """A pseudo_atom model's densities on probe ``inputs`` (it keeps no atom states)."""
    with torch.no_grad():
        states: Dict[str, torch.Tensor] = {}
        return model.probe_density(states, inputs)


def compress_model(model_path: str = "frozen_model.pth", output: str = "frozen_model_compressed.pth",
                   step: float = 0.01, extrapolate: float = 5.0, min_distance: Optional[float] = None) -> dict:
    """Tabulate the se_e2_a embedding nets of a frozen pseudo_atom model and save it, metadata kept.

    The table spans ŝ from an empty slot to an atom at ``min_distance`` (Å; default 0, a probe on an atom,
    which needs ``env_protection`` > 0), then up to ``extrapolate`` × that bound with a 10× coarser stride.
    """
    if step <= 0 or extrapolate < 1:
        raise DeepChargeError(f"--step must be > 0 and --extrapolate >= 1 (got {step} and {extrapolate})")
    module, metadata = load_frozen(model_path, "cpu")
    backend = metadata.get("backend")
    if backend != "pseudo_atom":
        raise DeepChargeError(f"{model_path}: a model of backend {backend}; only pseudo_atom models (se_e2_a "
                              "embedding nets) can be compressed")
    if "compressed" in metadata:
        raise DeepChargeError(f"{model_path}: already compressed; compress the frozen model it came from")
    model = rebuild_model(module, metadata, model_path)
    descriptor = model.descriptor
    if min_distance is None:
        if descriptor.env_protection <= 0:
            raise DeepChargeError(f"{model_path}: env_protection is 0, so s = 1/r has no bound near an atom; give "
                                  "--min-distance, the closest probe–atom distance (Å) the table must cover")
        min_distance = 0.0
    if not 0 <= min_distance < descriptor.rcut:
        raise DeepChargeError(f"--min-distance must lie in [0, rcut = {descriptor.rcut}) Å (got {min_distance})")
    lower, upper = embedding_input_range(descriptor, min_distance)
    table = TabulatedSeA(descriptor, lower, upper, step, extrapolate)
    model.descriptor = table
    with quiet_torchscript():
        scripted = torch.jit.script(model)
    check = random_environments(model, min_distance)
    deviation = float((densities(scripted, check) - densities(module, check)).abs().max())
    metadata["compressed"] = {
        "step": step, "extrapolate": extrapolate, "min_distance": min_distance,
        "range": [table.lower, table.upper, table.maximum], "intervals": table.intervals, "block": table.block,
        "max_abs_deviation": deviation,
    }
    with atomic_path(output) as tmp, quiet_torchscript():
        torch.jit.save(scripted, tmp, _extra_files={METADATA_FILE: json.dumps(metadata)})
    log.info("compressed %s: %d intervals over s in [%g, %g] (step %g, then %g up to %g); largest density change "
             "%.3g e/Å³ on %d random environments; written to %s", model_path, table.intervals, table.lower,
             table.upper, step, 10 * step, table.maximum, deviation, CHECK_PROBES, output)
    return metadata
