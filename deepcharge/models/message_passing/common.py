"""What the message-passing backends share: the atom/probe split, output scaling and seeded construction."""

import contextlib
from typing import Dict, List

import torch

from deepcharge.models.base import DTYPES, DensityModel, weighted_mean_std


@contextlib.contextmanager
def seeded(seed: int):
    """Initialise weights from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


class MessagePassingModel(DensityModel):
    """ρ̂ at probes that receive messages from atoms; atoms never receive from probes.

    Subclasses implement ``atom_states`` (the atom hidden states after every interaction, computed once
    per structure) and ``probe_density`` (probe states built from those, read out to a density in
    units of the training density's spread, shifted by its mean).
    """

    def __init__(self, backend: str, type_map: List[str], cutoff: float, precision: str):
        super().__init__()
        self.backend = backend
        self.type_map = list(type_map)
        self.sel = []
        self.rcut = float(cutoff)
        self.atom_cutoff = float(cutoff)
        dtype = DTYPES[precision]
        self.register_buffer("bias", torch.zeros((), dtype=dtype))
        self.register_buffer("scale", torch.ones((), dtype=dtype))

    @classmethod
    def from_config(cls, model_config: dict) -> "MessagePassingModel":
        return cls(model_config["type_map"], model_config["cutoff"], model_config["num_interactions"],
                   model_config["num_features"], model_config["num_basis"], model_config["precision"],
                   model_config["seed"])

    @torch.jit.ignore
    def fit_statistics(self, inputs: Dict[str, torch.Tensor], density: torch.Tensor, weight: torch.Tensor):
        """Output shift and scale: (weighted) mean and std of the training density."""
        mean, std = weighted_mean_std(density, weight)
        self.bias.fill_(mean)
        self.scale.fill_(max(std, 1e-6))
