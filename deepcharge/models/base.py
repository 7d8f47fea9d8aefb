"""What every backend implements, and the registry that maps the input's ``model.type`` to a class.

A backend is a ``torch.nn.Module`` that TorchScript can compile, with:

- attributes ``backend`` (its ``model.type``), ``type_map`` (list of species), ``rcut`` (probe→atom cutoff,
  Å), ``sel`` (per-type neighbour slots; empty: every neighbour within ``rcut``, nearest first) and
  ``atom_cutoff`` (atom→atom graph cutoff, Å; 0 when the backend needs no atom graph);
- ``atom_states(inputs) -> Dict[str, Tensor]``: what the backend computes once per structure (empty for
  backends that need nothing), from the atom inputs of :func:`deepcharge.data.inputs.structure_inputs`;
- ``probe_density(states, inputs) -> Tensor``: densities (e/Å³) at the probes of ``inputs``
  (:func:`deepcharge.data.inputs.probe_inputs`), so that large grids are evaluated in chunks against one
  ``atom_states``; ``forward(inputs)`` does both on inputs holding atoms and probes;
- ``fit_statistics(inputs, density, weight)``: data statistics (normalisation, output shift and scale) from
  training probes and their loss weights (1 unless probes are importance-sampled), called once before
  training (not part of the compiled model).
"""

from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from ..errors import DeepChargeError

MODEL_BUILDERS: Dict[str, Callable[..., torch.nn.Module]] = {}


class DensityModel(nn.Module):
    """The interface attributes every backend sets, and ``forward`` from its two exported halves."""

    backend: str
    type_map: List[str]
    sel: List[int]
    rcut: float
    atom_cutoff: float

    def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.probe_density(self.atom_states(inputs), inputs)


class DescriptorModel(DensityModel):
    """The descriptor families (``pseudo_atom``, ``atom_centred``): built from ``descriptor`` and ``fitting_net``;
    each names its embedding nets' parameters in ``embedding_parameters()`` (``descriptor_lr_factor`` scales
    their learning rate)."""

    @classmethod
    def from_config(cls, model_config: dict) -> "DescriptorModel":
        return cls(model_config["type_map"], model_config["descriptor"], model_config["fitting_net"],
                   model_config["precision"])


def register_model(name: str):
    """Class decorator adding a backend to the registry under its ``model.type`` name."""

    def decorator(cls):
        MODEL_BUILDERS[name] = cls
        return cls

    return decorator


def build_model(model_config: dict) -> torch.nn.Module:
    """The backend named by ``model_config["type"]``, built from the normalised ``model`` section."""
    return MODEL_BUILDERS[model_config["type"]].from_config(model_config)


DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""Model precisions by their input-file names (the input schema's choices)."""


def weighted_mean_std(values: torch.Tensor, weight: torch.Tensor) -> Tuple[float, float]:
    """Mean and standard deviation of ``values`` under loss weights (importance-sampled probes)."""
    values, weight = values.to(torch.float64), weight.to(torch.float64)
    weight = weight / weight.sum()
    mean = (weight * values).sum()
    return float(mean), float((weight * (values - mean) ** 2).sum().sqrt())


def load_weights(model: nn.Module, state: Dict[str, torch.Tensor], source: str):
    """``model.load_state_dict(state)``, also for a state saved before an optional part of the model existed:
    keys missing from it must belong to empty tensors (parts that are switched off). Anything else that does
    not fit is an error naming ``source``."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    own = model.state_dict()
    if unexpected or any(own[key].numel() for key in missing):
        raise DeepChargeError(f"{source}: its weights do not fit the model its input describes (written by another "
                              f"deepcharge version?); missing {sorted(missing)[:3]}, "
                              f"unexpected {sorted(unexpected)[:3]}")
