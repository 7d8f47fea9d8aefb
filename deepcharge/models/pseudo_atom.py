"""Deep Charge: every probe is a pseudo-atom whose se_e2_a descriptor feeds a ResNet fitting net."""

from typing import Dict, List, Optional

import torch
from torch import nn

from deepcharge.chunks import STATISTICS_CHUNK as STAT_CHUNK
from deepcharge.models.base import DTYPES, DescriptorModel, register_model
from deepcharge.models.descriptor.se_e2_a import DescriptorSeA
from deepcharge.models.descriptor.three_body import ThreeBodyDescriptor
from deepcharge.models.fitting import DensityFitting
from deepcharge.models.radial_baseline import LeastSquaresMoments, RadialBaseline, least_squares


@register_model("pseudo_atom")
class PseudoAtomModel(DescriptorModel):
    """ρ̂(r) = ρ₀(r) + F(D(r)): D the se_e2_a descriptor of the real atoms around probe r (and the three-body
    terms when configured), F the fitting net, ρ₀ a baseline fitted by least squares before training: a
    superposition of per-species radial profiles (``fitting_net.radial_baseline`` functions; 0: none) plus,
    with ``fitting_net.baseline_three_body``, a linear combination of the three-body terms."""

    def __init__(self, type_map: List[str], descriptor: dict, fitting_net: dict, precision: str = "float32"):
        super().__init__()
        dtype = DTYPES[precision]
        generator = torch.Generator().manual_seed(int(descriptor["seed"]))
        self.backend = "pseudo_atom"
        self.type_map = list(type_map)
        self.sel = [int(s) for s in descriptor["sel"]]
        self.rcut = float(descriptor["rcut"])
        self.atom_cutoff = 0.0  # atoms need no graph of their own: probes see them through the descriptor
        self.descriptor = DescriptorSeA(
            ntypes=len(type_map), sel=self.sel, rcut=self.rcut, rcut_smth=descriptor["rcut_smth"],
            neuron=descriptor["neuron"], axis_neuron=descriptor["axis_neuron"], resnet_dt=descriptor["resnet_dt"],
            activation_function=descriptor["activation_function"], env_protection=descriptor["env_protection"],
            generator=generator, dtype=dtype, lmax=descriptor["lmax"],
        )
        three_body = descriptor["three_body"]
        self.angular = nn.ModuleList([] if three_body is None else [ThreeBodyDescriptor(
            self.sel, three_body["sel"], three_body["rcut"], three_body["rcut_smth"], three_body["num_radial"],
            three_body["lmax"], descriptor["env_protection"], dtype)])
        generator.manual_seed(int(fitting_net["seed"]))
        self.fitting = DensityFitting(
            self.descriptor.dim_out + sum(extra.dim_out for extra in self.angular), fitting_net["neuron"],
            fitting_net["resnet_dt"],
            fitting_net["activation_function"], fitting_net["descriptor_norm"], fitting_net["whiten_floor"],
            generator, dtype, trainable_skip=fitting_net["trainable_skip"],
        )
        with torch.no_grad():  # the net starts at zero: before training the model is its least-squares baseline
            self.fitting.net.output.weight.zero_()
            self.fitting.net.output.bias.zero_()
        self.baseline = RadialBaseline(self.sel, self.rcut, descriptor["rcut_smth"], fitting_net["radial_baseline"],
                                       dtype)
        self.baseline_three_body = bool(fitting_net["baseline_three_body"]) and three_body is not None
        three_body_dim = sum(extra.dim_out for extra in self.angular) if self.baseline_three_body else 0
        # fixed at the least-squares solution: Adam's steps of size ~lr on each of these many, strongly coupled
        # coefficients would throw the fit away
        self.register_buffer("three_body_coefficients", torch.zeros(three_body_dim, dtype=dtype))

    @torch.jit.ignore
    def fit_statistics(self, inputs: Dict[str, torch.Tensor], density: torch.Tensor, weight: torch.Tensor):
        """Descriptor davg/dstd, the baseline and the output shift/scale from training probes (the last two
        under the probes' loss weights)."""
        vectors, mask = inputs["probe_vectors"], inputs["probe_nlist"] >= 0
        env = self.descriptor.environment(vectors, mask)
        self.descriptor.set_statistics(list(torch.split(env, self.sel, dim=1)))
        with torch.no_grad():
            features = torch.cat([self.describe(v, m)
                                  for v, m in zip(vectors.split(STAT_CHUNK), mask.split(STAT_CHUNK))])
            columns = self.baseline_columns(vectors, mask, features[:, self.descriptor.dim_out:])
            if columns:
                self._set_baseline_coefficients(least_squares(torch.cat(columns, dim=1), density, weight))
            residual = density - self.baseline_density(vectors, mask, features[:, self.descriptor.dim_out:])
            self.fitting.set_statistics(features, residual, weight)

    @torch.jit.ignore
    def refine_statistics(self, batches):
        """The least-squares baseline again, from every training probe (its columns need no statistics; the
        Gram matrix is accumulated chunk by chunk), and the fitting net's output shift and scale from the
        residual it leaves."""
        if not self.baseline.num_basis and not self.baseline_three_body:
            return
        moments = LeastSquaresMoments()
        with torch.no_grad():
            for inputs, density, weight in batches:
                vectors, mask = inputs["probe_vectors"], inputs["probe_nlist"] >= 0
                three_body = (torch.cat([extra(vectors, mask) for extra in self.angular], dim=1)
                              if self.baseline_three_body else None)
                moments.add(torch.cat(self.baseline_columns(vectors, mask, three_body), dim=1), density, weight)
            coefficients, mean, std = moments.solve()
            self._set_baseline_coefficients(coefficients)
            self.fitting.bias.fill_(mean)
            self.fitting.scale.fill_(max(std, 1e-6))

    @torch.jit.ignore
    def _set_baseline_coefficients(self, coefficients: torch.Tensor):
        """Split a least-squares solution over :meth:`baseline_columns` into the radial profiles' coefficients and
        the three-body ones."""
        radial, three_body = coefficients.split([coefficients.numel() - self.three_body_coefficients.numel(),
                                                 self.three_body_coefficients.numel()])
        self.baseline.coefficients.copy_(radial.reshape(self.baseline.coefficients.shape))
        self.three_body_coefficients.copy_(three_body)

    @torch.jit.ignore
    def baseline_columns(self, vectors: torch.Tensor, mask: torch.Tensor,
                         three_body: Optional[torch.Tensor]) -> List[torch.Tensor]:
        """The columns ρ₀ is a linear combination of, before its mean: the radial profiles' basis functions
        summed per species, and the three-body terms (given, as the fitting net sees them) when configured."""
        columns = [self.baseline.features(vectors, mask).flatten(1)] if self.baseline.num_basis else []
        if self.baseline_three_body:
            columns.append(three_body)
        return columns

    @torch.jit.ignore
    def embedding_parameters(self):
        return self.descriptor.parameters()

    @torch.jit.ignore
    def prepare_for_inference(self):
        """Fold the fitting net's input normalisation into its first layer (see DensityFitting)."""
        self.fitting.fold_normalisation()

    @torch.jit.ignore
    def fixed_features(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """What :meth:`probe_density` computes from the probes that no trainable weight enters: the normalised
        environment matrix, the three-body terms, the radial profiles' basis functions and the linear three-body
        part of ρ₀. Training on a fixed probe set computes them once (:meth:`density_from_fixed`).

        With the embedding nets frozen (``descriptor_lr_factor`` 0: no parameter of theirs requires a gradient)
        the whole fitting input is fixed, and it is kept already normalised (``fitting_input``)."""
        vectors, mask = inputs["probe_vectors"], inputs["probe_nlist"] >= 0
        fixed = {"radial": self.baseline.features(vectors, mask)}
        three_body = [torch.cat([extra(vectors, mask) for extra in self.angular], dim=1)] if self.angular else []
        if three_body and self.baseline_three_body:
            fixed["three_body_baseline"] = three_body[0] @ self.three_body_coefficients
        environment = self.descriptor.normalised_environment(vectors, mask)
        if any(p.requires_grad for p in self.descriptor.parameters()):
            fixed["environment"] = environment
            if three_body:
                fixed["three_body"] = three_body[0]
        else:
            descriptor = torch.cat([self.descriptor.from_environment(environment)] + three_body, dim=1)
            fixed["fitting_input"] = self.fitting.normalise(descriptor)
        return fixed

    @torch.jit.ignore
    def density_from_fixed(self, fixed: Dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`probe_density` from :meth:`fixed_features`: the same densities, the trainable parts only."""
        if "fitting_input" in fixed:
            density = self.fitting.from_normalised(fixed["fitting_input"])
        else:
            features = [self.descriptor.from_environment(fixed["environment"])]
            if "three_body" in fixed:
                features.append(fixed["three_body"])
            density = self.fitting(torch.cat(features, dim=1))
        return density + self.baseline_from_fixed(fixed)

    @torch.jit.ignore
    def baseline_from_fixed(self, fixed: Dict[str, torch.Tensor]) -> torch.Tensor:
        """ρ₀ from :meth:`fixed_features`: the radial profiles, plus the linear three-body part when configured."""
        density = self.baseline.from_features(fixed["radial"])
        if "three_body_baseline" in fixed:
            density = density + fixed["three_body_baseline"]
        return density

    @torch.jit.export
    def atom_states(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Nothing to compute per structure: every probe is described by its own environment."""
        states: Dict[str, torch.Tensor] = {}
        return states

    @torch.jit.export
    def probe_density(self, states: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities (e/Å³) at the probes of ``inputs``: the fitting net's correction on the baseline."""
        vectors, mask = inputs["probe_vectors"], inputs["probe_nlist"] >= 0
        features = self.describe(vectors, mask)
        return self.fitting(features) + self.baseline_density(vectors, mask, features[:, self.descriptor.dim_out:])

    def describe(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The fitting net's input: the se_e2_a descriptor, and the three-body one when configured."""
        features = [self.descriptor(vectors, mask)]
        for extra in self.angular:
            features.append(extra(vectors, mask))
        return torch.cat(features, dim=1)

    def baseline_density(self, vectors: torch.Tensor, mask: torch.Tensor, three_body: torch.Tensor) -> torch.Tensor:
        """ρ₀ at the probes: the radial profiles, plus the linear three-body part when configured."""
        density = self.baseline(vectors, mask)
        if self.baseline_three_body:
            density = density + three_body @ self.three_body_coefficients
        return density
