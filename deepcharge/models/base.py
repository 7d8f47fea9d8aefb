"""The backend interface (:class:`DensityModel`, all a new model family implements), the registry that maps the
input's ``model.type`` to a class, and helpers the families share."""

from abc import ABC, abstractmethod
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

from deepcharge.choices import PRECISIONS
from deepcharge.errors import DeepChargeError

MODEL_BUILDERS: Dict[str, Callable[..., torch.nn.Module]] = {}


class DensityModel(nn.Module, ABC):
    """A model family (backend): a ``torch.nn.Module`` that TorchScript compiles (``deepcharge freeze``).

    A backend sets these attributes in ``__init__``:

    - ``backend``: its ``model.type``; ``type_map``: the species, in type-index order;
    - ``rcut``: probe→atom cutoff (Å); ``sel``: per-type neighbour slots of a probe (empty: every neighbour
      within ``rcut``, nearest first);
    - ``atom_cutoff``: atom→atom graph cutoff (Å); 0 when the backend needs no atom graph.

    It implements :meth:`from_config`, :meth:`atom_states` and :meth:`probe_density` (the compiled model: mark
    the two with ``@torch.jit.export``) and :meth:`fit_statistics`; :meth:`embedding_parameters` and
    :meth:`prepare_for_inference` are optional hooks (defaults: none, nothing). Methods not in the compiled model
    carry ``@torch.jit.ignore``. Register the class with :func:`register_model` and give its input section in
    ``deepcharge/config.py`` (``model_args``); a key added to a saved section later gets its old value in
    :mod:`deepcharge.models.upgrade`. (Abstract methods, as DeePMD-kit's ``deepmd/pt`` base model: a class that
    lacks one cannot be instantiated.)
    """

    backend: str
    type_map: List[str]
    sel: List[int]
    rcut: float
    atom_cutoff: float

    @classmethod
    @abstractmethod
    def from_config(cls, model_config: dict) -> "DensityModel":
        """The model the normalised ``model`` section describes."""

    @abstractmethod
    def atom_states(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """What the backend computes once per structure (empty for backends that need nothing), from the atom
        inputs of :func:`deepcharge.data.inputs.structure_inputs`."""

    @abstractmethod
    def probe_density(self, states: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities (e/Å³) at the probes of ``inputs`` (:func:`deepcharge.data.inputs.probe_inputs`) given one
        structure's ``atom_states``, so that large grids are evaluated in chunks against them."""

    def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities at the probes of ``inputs`` holding both atoms and probes."""
        return self.probe_density(self.atom_states(inputs), inputs)

    @torch.jit.ignore
    @abstractmethod
    def fit_statistics(self, inputs: Dict[str, torch.Tensor], density: torch.Tensor, weight: torch.Tensor):
        """Data statistics (normalisation, output shift and scale) from training probes and their loss weights
        (1 unless probes are importance-sampled), called once before training."""

    @torch.jit.ignore
    def refine_statistics(self, batches: Iterable[Tuple[Dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]):
        """After :meth:`fit_statistics`: the statistics that gain from every training probe rather than a sample
        of them, from (inputs, densities, weights) chunks of the whole training set; none by default."""

    @torch.jit.ignore
    def embedding_parameters(self) -> Iterable[nn.Parameter]:
        """The parameters whose learning rate ``learning_rate.descriptor_lr_factor`` scales (the descriptor
        families' embedding nets); none by default."""
        return []

    @torch.jit.ignore
    def fixed_features(self, inputs: Dict[str, torch.Tensor]) -> Optional[Dict[str, torch.Tensor]]:
        """Per-probe tensors that no trainable weight enters, from probe inputs (no atom graph), so training on a
        fixed probe set computes them once; None (the default) when the backend has none to offer. A backend
        that returns them also implements ``density_from_fixed(fixed)``: the densities :meth:`probe_density` gives
        for the same probes (training calls it only on what ``fixed_features`` returned)."""
        return None

    @torch.jit.ignore
    def prepare_for_inference(self):
        """Exact rewrites for speed (e.g. folded normalisations) before the model is frozen; none by default."""


class DescriptorModel(DensityModel):
    """The descriptor families (``pseudo_atom``, ``atom_centred``): built from ``descriptor`` and ``fitting_net``;
    each names its embedding nets' parameters in ``embedding_parameters()``."""

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


DTYPES = {name: getattr(torch, name) for name in PRECISIONS}
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
