"""What every backend implements, and the registry that maps the input's ``model.type`` to a class.

A backend is a ``torch.nn.Module`` that TorchScript can compile, with:

- attributes ``backend`` (its ``model.type``), ``type_map`` (list of species), ``rcut`` (probe→atom cutoff,
  Å) and ``sel`` (per-type neighbour slots; empty for backends that take edge lists);
- ``forward(inputs: Dict[str, Tensor]) -> Tensor``: densities (e/Å³) at the probes described by ``inputs``,
  as built by :func:`deepcharge.data.inputs.probe_inputs`;
- ``fit_statistics(inputs, density)``: data statistics (normalisation, output shift and scale) from
  training probes, called once before training (not part of the compiled model).
"""

from typing import Callable, Dict

import torch

MODEL_BUILDERS: Dict[str, Callable[..., torch.nn.Module]] = {}


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
