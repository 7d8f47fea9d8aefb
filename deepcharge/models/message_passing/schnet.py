"""Invariant DeepDFT (SchNet-like): continuous-filter convolutions, probes with a forget gate."""

from typing import Dict, List

import torch
from torch import nn

from deepcharge.models.base import DTYPES, register_model
from deepcharge.models.message_passing.common import MessagePassingModel, seeded
from deepcharge.models.message_passing.layers import (
    GaussianBasis,
    ShiftedSoftplus,
    atom_edges,
    probe_edges,
    scatter_sum,
    soft_cutoff,
    two_layer,
)


class ContinuousFilterMessage(nn.Module):
    """Σ_w (W₁ h_w) ⊙ c(d) g(W₃ g(W₂ e_vw)): sender states times a learned radial filter."""

    def __init__(self, features: int, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.node = nn.Linear(features, features, dtype=dtype)
        self.filter = nn.Sequential(two_layer(num_basis, features, features, ShiftedSoftplus(), dtype),
                                    ShiftedSoftplus())

    def forward(self, senders: torch.Tensor, receiver: torch.Tensor, sender: torch.Tensor, basis: torch.Tensor,
                cut: torch.Tensor, size: int) -> torch.Tensor:
        messages = self.node(senders).index_select(0, sender) * self.filter(basis) * cut
        return scatter_sum(messages, receiver, size)


class AtomInteraction(nn.Module):
    """h ← h + W₅ g(W₄ m) (Eq. 4)."""

    def __init__(self, features: int, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.message = ContinuousFilterMessage(features, num_basis, dtype)
        self.transition = two_layer(features, features, features, ShiftedSoftplus(), dtype)

    def forward(self, h: torch.Tensor, receiver: torch.Tensor, sender: torch.Tensor, basis: torch.Tensor,
                cut: torch.Tensor) -> torch.Tensor:
        return h + self.transition(self.message(h, receiver, sender, basis, cut, h.shape[0]))


class ProbeInteraction(nn.Module):
    """h ← F ⊙ h + (1 − F) ⊙ W₅ g(W₄ m) with the forget gate F = σ(W₇ g(W₆ m)) (Eqs. 5-6)."""

    def __init__(self, features: int, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.message = ContinuousFilterMessage(features, num_basis, dtype)
        self.transition = two_layer(features, features, features, ShiftedSoftplus(), dtype)
        self.gate = nn.Sequential(two_layer(features, features, features, ShiftedSoftplus(), dtype), nn.Sigmoid())

    def forward(self, h: torch.Tensor, atoms: torch.Tensor, probe: torch.Tensor, atom: torch.Tensor,
                basis: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        m = self.message(atoms, probe, atom, basis, cut, h.shape[0])
        forget = self.gate(m)
        return forget * h + (1.0 - forget) * self.transition(m)


@register_model("schnet")
class SchNetDensityModel(MessagePassingModel):
    """Invariant DeepDFT: T interactions among atoms; probe layer t listens to the atoms after layer t."""

    def __init__(self, type_map: List[str], cutoff: float = 4.0, num_interactions: int = 6,
                 num_features: int = 128, num_basis: int = 40, precision: str = "float32", seed: int = 0):
        super().__init__("schnet", type_map, cutoff, precision)
        dtype = DTYPES[precision]
        with seeded(seed):
            self.embedding = nn.Embedding(len(type_map), num_features, dtype=dtype)
            self.basis = GaussianBasis(cutoff, num_basis, dtype)
            self.atom_layers = nn.ModuleList(
                AtomInteraction(num_features, num_basis, dtype) for _ in range(num_interactions))
            self.probe_layers = nn.ModuleList(
                ProbeInteraction(num_features, num_basis, dtype) for _ in range(num_interactions))
            self.readout = two_layer(num_features, num_features, 1, ShiftedSoftplus(), dtype)
        self.num_features = num_features

    def _edge_features(self, vectors: torch.Tensor):
        distance = torch.linalg.norm(vectors, dim=-1)
        return self.basis(distance), soft_cutoff(distance, self.rcut).unsqueeze(-1)

    @torch.jit.export
    def atom_states(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Atom states after each interaction: ``h0`` … ``h{T-1}``."""
        receiver, sender, vectors = atom_edges(inputs)
        basis, cut = self._edge_features(vectors)
        h = self.embedding(inputs["atom_types"])
        states: Dict[str, torch.Tensor] = {}
        for t, layer in enumerate(self.atom_layers):
            h = layer(h, receiver, sender, basis, cut)
            states["h" + str(t)] = h
        return states

    @torch.jit.export
    def probe_density(self, states: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities (e/Å³) at the probes of ``inputs`` from the atom states."""
        probe, atom, vectors = probe_edges(inputs)
        basis, cut = self._edge_features(vectors)
        h = torch.zeros(inputs["probe_nlist"].shape[0], self.num_features, dtype=basis.dtype, device=basis.device)
        for t, layer in enumerate(self.probe_layers):
            h = layer(h, states["h" + str(t)], probe, atom, basis, cut)
        return self.readout(h).squeeze(-1) * self.scale + self.bias
