"""Equivariant DeepDFT (PaiNN): scalar and vector states, sinc radial basis, gated probe updates."""

from typing import Dict, List, Tuple

import torch
from torch import nn

from deepcharge.models.base import DTYPES, register_model
from deepcharge.models.message_passing.common import MessagePassingModel, seeded
from deepcharge.models.message_passing.layers import SincBasis, atom_edges, cosine_cutoff, scatter_sum, two_layer


class EquivariantMessage(nn.Module):
    """Eqs. 4-5: Δs = Σ φ_s(s_j) ∘ W_s; Δv = Σ v_j ∘ φ_vv(s_j) ∘ W_vv + φ_vs(s_j) ∘ W_vs r̂_ij (filters × f_cut)."""

    def __init__(self, features: int, num_basis: int, dtype: torch.dtype):
        super().__init__()
        self.features = features
        self.phi = two_layer(features, features, 3 * features, nn.SiLU(), dtype)
        self.filter = nn.Linear(num_basis, 3 * features, dtype=dtype)

    def forward(self, s: torch.Tensor, v: torch.Tensor, receiver: torch.Tensor, sender: torch.Tensor,
                basis: torch.Tensor, cut: torch.Tensor, unit: torch.Tensor,
                size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.phi(s).index_select(0, sender) * self.filter(basis) * cut
        ds, dvv, dvs = torch.split(x, self.features, dim=-1)
        dv = v.index_select(0, sender) * dvv.unsqueeze(1) + dvs.unsqueeze(1) * unit.unsqueeze(-1)
        return scatter_sum(ds, receiver, size), scatter_sum(dv, receiver, size)

    def padded(self, s: torch.Tensor, v: torch.Tensor, sender: torch.Tensor, basis: torch.Tensor, cut: torch.Tensor,
               unit: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The same sums for receivers with padded neighbour slots: ``sender`` (P, K), ``basis`` (P, K, n),
        ``cut`` (P, K, 1) zero on empty slots, ``unit`` (P, K, 3). Sums over slots replace the scatter, and the
        r̂ term is a batched matrix product, so no (edge, 3, F) tensor is built for it."""
        flat = sender.reshape(-1)
        x = self.phi(s).index_select(0, flat).view(sender.shape + (3 * self.features,)) * self.filter(basis) * cut
        ds, dvv, dvs = torch.split(x, self.features, dim=-1)
        gathered = v.index_select(0, flat).view(sender.shape + v.shape[1:])
        dv = torch.matmul(unit.transpose(1, 2), dvs) + (gathered * dvv.unsqueeze(2)).sum(dim=1)
        return ds.sum(dim=1), dv


class EquivariantUpdate(nn.Module):
    """Eqs. 6-7: s += a_ss + a_sv ⟨Uv, Vv⟩; v += a_vv ∘ Uv, with a = MLP(s, |Vv|)."""

    def __init__(self, features: int, dtype: torch.dtype):
        super().__init__()
        self.features = features
        self.u = nn.Linear(features, features, bias=False, dtype=dtype)
        self.v = nn.Linear(features, features, bias=False, dtype=dtype)
        self.a = two_layer(2 * features, features, 3 * features, nn.SiLU(), dtype)

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        uv, vv = self.u(v), self.v(v)
        norm = torch.sqrt(vv.pow(2).sum(dim=1) + 1e-8)  # ε keeps the gradient finite where Vv = 0
        a_vv, a_sv, a_ss = torch.split(self.a(torch.cat([s, norm], dim=-1)), self.features, dim=-1)
        return s + a_ss + a_sv * (uv * vv).sum(dim=1), v + a_vv.unsqueeze(1) * uv


class ProbeGate(nn.Module):
    """Eqs. 8-9: s ← G_s ∘ s + (1 − G_s) ∘ Δs and v ← G_v ∘ v + (1 − G_v) ∘ Δv, gates from Δs."""

    def __init__(self, features: int, dtype: torch.dtype):
        super().__init__()
        self.scalar = nn.Sequential(two_layer(features, features, features, nn.SiLU(), dtype), nn.Sigmoid())
        self.vector = nn.Sequential(two_layer(features, features, features, nn.SiLU(), dtype), nn.Sigmoid())

    def forward(self, s: torch.Tensor, v: torch.Tensor, ds: torch.Tensor, dv: torch.Tensor):
        gate_s, gate_v = self.scalar(ds), self.vector(ds).unsqueeze(1)
        return gate_s * s + (1.0 - gate_s) * ds, gate_v * v + (1.0 - gate_v) * dv


@register_model("painn")
class PaiNNDensityModel(MessagePassingModel):
    """Equivariant DeepDFT: T PaiNN interactions among atoms; probe layer t listens to the atoms after layer t."""

    def __init__(self, type_map: List[str], cutoff: float = 4.0, num_interactions: int = 3,
                 num_features: int = 128, num_basis: int = 20, precision: str = "float32", seed: int = 0):
        super().__init__("painn", type_map, cutoff, precision)
        dtype = DTYPES[precision]
        with seeded(seed):
            self.embedding = nn.Embedding(len(type_map), num_features, dtype=dtype)
            self.basis = SincBasis(cutoff, num_basis, dtype)
            self.atom_messages = nn.ModuleList(
                EquivariantMessage(num_features, num_basis, dtype) for _ in range(num_interactions))
            self.atom_updates = nn.ModuleList(EquivariantUpdate(num_features, dtype) for _ in range(num_interactions))
            self.probe_messages = nn.ModuleList(
                EquivariantMessage(num_features, num_basis, dtype) for _ in range(num_interactions))
            self.probe_gates = nn.ModuleList(ProbeGate(num_features, dtype) for _ in range(num_interactions))
            self.probe_updates = nn.ModuleList(EquivariantUpdate(num_features, dtype) for _ in range(num_interactions))
            self.readout = two_layer(num_features, num_features, 1, nn.SiLU(), dtype)
        self.num_features = num_features

    def _edge_features(self, vectors: torch.Tensor):
        distance = torch.linalg.norm(vectors, dim=-1)
        unit = vectors / distance.clamp_min(1e-9).unsqueeze(-1)
        return self.basis(distance), cosine_cutoff(distance, self.rcut).unsqueeze(-1), unit

    @torch.jit.export
    def atom_states(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Scalar ``s{t}`` (N, F) and vector ``v{t}`` (N, 3, F) atom states after each interaction."""
        receiver, sender, vectors = atom_edges(inputs)
        basis, cut, unit = self._edge_features(vectors)
        s = self.embedding(inputs["atom_types"])
        v = torch.zeros(s.shape[0], 3, self.num_features, dtype=s.dtype, device=s.device)
        states: Dict[str, torch.Tensor] = {}
        for t, (message, update) in enumerate(zip(self.atom_messages, self.atom_updates)):
            ds, dv = message(s, v, receiver, sender, basis, cut, unit, s.shape[0])
            s, v = update(s + ds, v + dv)
            states["s" + str(t)] = s
            states["v" + str(t)] = v
        return states

    @torch.jit.export
    def probe_density(self, states: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities (e/Å³) at the probes of ``inputs`` from the atom states (on the padded neighbour slots)."""
        nlist = inputs["probe_nlist"]
        basis, cut, unit = self._edge_features(inputs["probe_vectors"])
        cut = cut * (nlist >= 0).unsqueeze(-1).to(cut.dtype)
        atom = nlist.clamp_min(0)
        nprobes = nlist.shape[0]
        s = torch.zeros(nprobes, self.num_features, dtype=basis.dtype, device=basis.device)
        v = torch.zeros(nprobes, 3, self.num_features, dtype=basis.dtype, device=basis.device)
        for t, (message, gate, update) in enumerate(zip(self.probe_messages, self.probe_gates, self.probe_updates)):
            ds, dv = message.padded(states["s" + str(t)], states["v" + str(t)], atom, basis, cut, unit)
            s, v = gate(s, v, ds, dv)
            s, v = update(s, v)
        return self.readout(s).squeeze(-1) * self.scale + self.bias
