"""Deep Density: ρ(r) = Σ_I ρ_I(r), a contribution of each atom I within ``rcut`` of r (Zepeda-Núñez et al.).

The probe (the electron, "species 0") enters atom I's se_e2_a-type descriptor as one more neighbour, so
the part from I's real neighbours is computed once per structure (``atom_states``) and each (probe, atom)
pair adds only its own term. Each contribution follows the paper's ansatz (Eqs. 11-12)

    ρ_I(r) = w(R) · (N_I + A_s R + B_s) · exp(C_s R² + D_s R + E_I),   R = |r − R_I|, s = species of I,

with N_I, E_I the two outputs of a species' ResNet fitting net on the descriptor, A..D per-species constants
fitted to the training density before training (and trained with the rest), and w the descriptor's cosine
switch (1 up to ``rcut_smth``, 0 at ``rcut``): it keeps the density continuous where an atom leaves the
probe's reach, and a probe farther than ``rcut`` from every atom gets exactly zero. The paper writes the
exponent as C (R − D)²; expanded, its constant joins A and B, and the family gains its C → 0 limit, a plain
exponential decay, which is what the fit finds for hydrogen in water (C (R − D)² needs D → ∞ there).

Descriptor (the paper's Eqs. 16-19): rows φ(R)(1, x/R', y/R', z/R'), φ = w(R)/(R + δ); the rows are divided
by a per-(species, neighbour species) spread but not shifted, so absent neighbours contribute zero and the
descriptor does not depend on a slot count; embedding nets g_{s(I), s(J)} of the scaled φ, T = Σ_J row_J g_Jᵀ
over I's neighbours and the probe, D = Tᵀ T< (all M columns by default, as the paper; its upper triangle
when square, since D is then symmetric).
"""

from typing import Dict, List

import torch
from torch import nn

from deepcharge.models.base import DTYPES, DescriptorModel, register_model
from deepcharge.models.descriptor.env_mat import cosine_weight, environment_matrix
from deepcharge.models.descriptor.se_e2_a import contract
from deepcharge.models.fitting import DensityFitting
from deepcharge.models.network import ResidualMLP

STD_FLOOR = 1e-2
# (probe, atom) pairs used for the statistics and the ansatz fit before training
STATISTICS_PAIRS = 50_000


class AtomCentre(nn.Module):
    """What one species of centre atom owns: embedding nets for each neighbour species (index 0: the
    probe), the descriptor's row scaling, and the fitting net with outputs (N, E)."""

    def __init__(self, ntypes: int, descriptor: dict, fitting_net: dict, embedding_generator: torch.Generator,
                 fitting_generator: torch.Generator, dtype: torch.dtype):
        super().__init__()
        neuron = list(descriptor["neuron"])
        self.embeddings = nn.ModuleList(
            ResidualMLP(1, neuron, descriptor["activation_function"], descriptor["resnet_dt"],
                        embedding_generator, dtype)
            for _ in range(ntypes + 1))
        self.register_buffer("env_std", torch.ones(ntypes + 1, 4, dtype=dtype))
        width = neuron[-1]
        self.axis_neuron = int(descriptor["axis_neuron"] or width)
        pairs = torch.triu_indices(width, width).T if self.axis_neuron == width else None
        features = torch.arange(width * self.axis_neuron) if pairs is None else pairs[:, 0] * width + pairs[:, 1]
        self.register_buffer("features", features)
        self.fitting = DensityFitting(len(features), fitting_net["neuron"], fitting_net["resnet_dt"],
                                      fitting_net["activation_function"], fitting_net["descriptor_norm"],
                                      fitting_net["whiten_floor"], fitting_generator, dtype, n_out=2,
                                      trainable_skip=fitting_net["trainable_skip"])

    def embed(self, rows: torch.Tensor, neighbour_type: int) -> torch.Tensor:
        """Scaled rows (Q, 4) of neighbours of one species (0: probe) → their terms row ⊗ g (Q, 4, M)."""
        scaled = rows / self.env_std[neighbour_type]
        g = torch.zeros(0)
        for index, embedding in enumerate(self.embeddings):
            if index == neighbour_type:
                g = embedding(scaled[:, :1])
        return scaled.unsqueeze(2) * g.unsqueeze(1)

    def describe_pairs(self, neighbour_sums: torch.Tensor, probe_rows: torch.Tensor,
                       neighbour_norm: torch.Tensor) -> torch.Tensor:
        """Descriptors of (probe, atom) pairs centred on this species: each atom's sum over its neighbours
        (Q, 4, M) with the probe's row (Q, 4) joined as species 0, contracted to the fitting net's input."""
        xyz_scatter = (neighbour_sums + self.embed(probe_rows, 0)) / neighbour_norm
        return contract(xyz_scatter, self.axis_neuron).index_select(1, self.features)


@register_model("atom_centred")
class AtomCentredModel(DescriptorModel):
    """Deep Density's atom-centred decomposition of the density (see the module docstring)."""

    def __init__(self, type_map: List[str], descriptor: dict, fitting_net: dict, precision: str = "float32"):
        super().__init__()
        dtype = DTYPES[precision]
        self.backend = "atom_centred"
        self.type_map = list(type_map)
        self.sel = []  # every atom within rcut of a probe is a centre: no slot budget
        self.rcut = float(descriptor["rcut"])
        self.rcut_smth = float(descriptor["rcut_smth"])
        self.delta = float(descriptor["delta"])
        self.atom_cutoff = self.rcut  # a centre's descriptor needs its own neighbours within rcut
        self.embedding_width = int(descriptor["neuron"][-1])
        embedding_generator = torch.Generator().manual_seed(int(descriptor["seed"]))
        fitting_generator = torch.Generator().manual_seed(int(fitting_net["seed"]))
        self.centres = nn.ModuleList(
            AtomCentre(len(type_map), descriptor, fitting_net, embedding_generator, fitting_generator, dtype)
            for _ in type_map)
        self.register_buffer("neighbour_norm", torch.ones((), dtype=dtype))
        # the ansatz's per-species constants A, B, C, D (Eqs. 11-12, exponent expanded), fitted in fit_statistics
        ntypes = len(type_map)
        self.slope = nn.Parameter(torch.zeros(ntypes, dtype=dtype))
        self.offset = nn.Parameter(torch.ones(ntypes, dtype=dtype))
        self.curvature = nn.Parameter(-torch.ones(ntypes, dtype=dtype))
        self.decay = nn.Parameter(torch.zeros(ntypes, dtype=dtype))

    def rows(self, vectors: torch.Tensor) -> torch.Tensor:
        """Unscaled descriptor rows φ(R)(1, x/R', y/R', z/R') of vectors (Q, 3) from a centre."""
        present = torch.ones(vectors.shape[0], 1, dtype=torch.bool, device=vectors.device)
        return environment_matrix(vectors.unsqueeze(1), present, self.rcut_smth, self.rcut, self.delta,
                                  "cosine").squeeze(1)

    @torch.jit.export
    def atom_states(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Each atom's sum over its real neighbours, Σ_J row_IJ g_IJᵀ (N, 4, M), before a probe joins."""
        types = inputs["atom_types"]
        center, neighbour = inputs["atom_edge_center"], inputs["atom_edge_neighbour"]
        rows = self.rows(inputs["atom_edge_vectors"])
        center_types, neighbour_types = types[center], types[neighbour]
        sums = rows.new_zeros(types.shape[0], 4, self.embedding_width)
        for t, centre in enumerate(self.centres):
            for u in range(len(self.type_map)):
                edges = torch.nonzero((center_types == t) & (neighbour_types == u)).squeeze(1)
                if edges.numel() > 0:
                    sums.index_add_(0, center[edges], centre.embed(rows[edges], u + 1))
        return {"neighbour_sums": sums, "atom_types": types}

    @torch.jit.export
    def probe_density(self, states: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities (e/Å³) at the probes: the sum of the contributions of the atoms within ``rcut``."""
        pairs = self.pairs(inputs, states["atom_types"])
        outputs = self.pair_outputs(states["neighbour_sums"], pairs)
        contributions = self.contribution(pairs["distance"], pairs["centre_type"], outputs)
        density = contributions.new_zeros(inputs["probe_nlist"].shape[0])
        return density.index_add(0, pairs["probe"], contributions)

    def pairs(self, inputs: Dict[str, torch.Tensor], atom_types: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Every (probe, atom within rcut) pair: indices, the probe's offset from the atom, its distance and its
        descriptor row."""
        nlist = inputs["probe_nlist"]
        index = torch.nonzero(nlist >= 0)
        probe, slot = index[:, 0], index[:, 1]
        atom = nlist[probe, slot]
        offset = -inputs["probe_vectors"][probe, slot]
        return {"probe": probe, "atom": atom, "offset": offset, "distance": torch.linalg.norm(offset, dim=1),
                "rows": self.rows(offset), "centre_type": atom_types[atom]}

    def pair_outputs(self, neighbour_sums: torch.Tensor, pairs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The fitting nets' (N, E) for every pair (Q, 2)."""
        outputs = neighbour_sums.new_zeros(pairs["probe"].shape[0], 2)
        for t, centre in enumerate(self.centres):
            chosen = torch.nonzero(pairs["centre_type"] == t).squeeze(1)
            if chosen.numel() > 0:
                descriptor = centre.describe_pairs(neighbour_sums[pairs["atom"][chosen]], pairs["rows"][chosen],
                                                   self.neighbour_norm)
                outputs = outputs.index_copy(0, chosen, centre.fitting(descriptor))
        return outputs

    def contribution(self, distance: torch.Tensor, types: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """ρ_I = w(R) (N + A R + B) exp(C R² + D R + E) for each pair."""
        amplitude = outputs[:, 0] + self.slope[types] * distance + self.offset[types]
        exponent = (self.curvature[types] * distance + self.decay[types]) * distance + outputs[:, 1]
        return cosine_weight(distance, self.rcut_smth, self.rcut) * amplitude * torch.exp(exponent)

    @torch.jit.ignore
    def embedding_parameters(self):
        return (parameter for centre in self.centres for parameter in centre.embeddings.parameters())

    @torch.jit.ignore
    def fit_statistics(self, inputs: Dict[str, torch.Tensor], density: torch.Tensor, weight: torch.Tensor):
        """Row scales, the ansatz constants (least squares under the probes' loss weights, the nets' outputs at
        zero) and the fitting nets' input normalisation and output scales, from training probes; the model
        starts as the fitted ansatz."""
        ntypes = len(self.type_map)
        with torch.no_grad():
            types = inputs["atom_types"]
            edge_rows = self.rows(inputs["atom_edge_vectors"])
            center_types = types[inputs["atom_edge_center"]]
            neighbour_types = types[inputs["atom_edge_neighbour"]]
            pairs = self.pairs(inputs, types)
            for t, centre in enumerate(self.centres):
                centre.env_std[0].copy_(_row_spread(pairs["rows"][pairs["centre_type"] == t], centre.env_std[0]))
                for u in range(ntypes):
                    chosen = (center_types == t) & (neighbour_types == u)
                    centre.env_std[u + 1].copy_(_row_spread(edge_rows[chosen], centre.env_std[u + 1]))
            self.neighbour_norm.fill_(1.0 + inputs["atom_edge_center"].shape[0] / max(1, types.shape[0]))
        self._fit_ansatz(pairs, density, weight)
        with torch.no_grad():
            sums = self.atom_states(inputs)["neighbour_sums"]
            keep = torch.randperm(pairs["probe"].shape[0], generator=torch.Generator().manual_seed(0))
            keep = keep[:STATISTICS_PAIRS].to(pairs["probe"].device)
            sample = {key: value[keep] for key, value in pairs.items()}
            for t, centre in enumerate(self.centres):
                chosen = torch.nonzero(sample["centre_type"] == t).squeeze(1)
                if chosen.numel() < 2:
                    continue
                centre.fitting.set_input_statistics(centre.describe_pairs(
                    sums[sample["atom"][chosen]], sample["rows"][chosen], self.neighbour_norm))
                distance = sample["distance"][chosen]
                amplitude = self.slope[t] * distance + self.offset[t]
                centre.fitting.scale.copy_(torch.stack([amplitude.pow(2).mean().sqrt().clamp_min(1e-6),
                                                        torch.ones_like(amplitude[0])]))
                centre.fitting.bias.zero_()
                centre.fitting.net.output.weight.zero_()
                centre.fitting.net.output.bias.zero_()

    def _fit_ansatz(self, pairs: Dict[str, torch.Tensor], density: torch.Tensor, weight: torch.Tensor,
                    iterations: int = 200):
        """A, B, C, D of every species: least squares of Σ_I w (A R + B) exp(C R² + D R) against the density.

        By variable projection: for given C ≤ 0 and D the amplitudes A, B are a linear least-squares
        problem, so L-BFGS searches only (C, D).
        """
        distance = pairs["distance"].detach().to(torch.float64)
        types, probe = pairs["centre_type"], pairs["probe"]
        root_weight = weight.detach().to(torch.float64).sqrt()
        target = density.detach().to(torch.float64) * root_weight
        switch = cosine_weight(distance, self.rcut_smth, self.rcut) * root_weight[probe]
        ntypes = len(self.type_map)
        softness = torch.full((ntypes,), 0.5413, dtype=torch.float64, device=distance.device, requires_grad=True)
        linear = torch.zeros(ntypes, dtype=torch.float64, device=distance.device, requires_grad=True)

        def amplitudes(curvature, linear_):
            base = switch * torch.exp(curvature[types] * distance ** 2 + linear_[types] * distance)
            design = target.new_zeros(target.shape[0], 2 * ntypes)
            design = design.index_put((probe, 2 * types), base * distance, accumulate=True)
            design = design.index_put((probe, 2 * types + 1), base, accumulate=True)
            gram = design.T @ design
            ridge = 1e-12 * gram.diagonal().sum() * torch.eye(2 * ntypes, dtype=gram.dtype, device=gram.device)
            coefficients = torch.linalg.solve(gram + ridge, design.T @ target)
            return coefficients, design

        optimizer = torch.optim.LBFGS([softness, linear], max_iter=iterations, tolerance_grad=1e-12,
                                      tolerance_change=1e-15, line_search_fn="strong_wolfe")
        norm = float(target.pow(2).sum())

        def closure():
            optimizer.zero_grad()
            coefficients, design = amplitudes(-nn.functional.softplus(softness), linear)
            loss = (design @ coefficients - target).pow(2).sum() / norm
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            curvature = -nn.functional.softplus(softness)
            coefficients, _ = amplitudes(curvature, linear)
            constants = (coefficients[0::2], coefficients[1::2], curvature, linear)
            if all(bool(torch.isfinite(c).all()) for c in constants):
                for mine, fitted in zip((self.slope, self.offset, self.curvature, self.decay), constants):
                    mine.copy_(fitted)


def _row_spread(rows: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Root-mean-square of the radial column and of the pooled angular ones (descriptor rows are scaled by
    it, not shifted); ``current`` when there are no rows of this kind."""
    if rows.shape[0] == 0:
        return current
    rows = rows.to(torch.float64)
    radial = rows[:, 0].pow(2).mean().sqrt().clamp_min(STD_FLOOR)
    angular = rows[:, 1:].pow(2).mean().sqrt().clamp_min(STD_FLOOR)
    return torch.stack([radial, angular, angular, angular]).to(current.dtype)
