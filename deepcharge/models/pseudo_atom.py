"""Deep Charge: every probe is a pseudo-atom whose se_e2_a descriptor feeds a ResNet fitting net."""

from typing import Dict, List

import torch
from torch import nn

from .base import DTYPES, DescriptorModel, register_model
from .descriptor.se_e2_a import DescriptorSeA
from .descriptor.three_body import ThreeBodyDescriptor
from .fitting import DensityFitting
from .radial_baseline import RadialBaseline


@register_model("pseudo_atom")
class PseudoAtomModel(DescriptorModel):
    """ρ̂(r) = ρ₀(r) + F(D(r)): D the se_e2_a descriptor of the real atoms around probe r, ρ₀ a fitted
    superposition of per-species radial profiles (``fitting_net.radial_baseline`` functions; 0: none)."""

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
            generator=generator, dtype=dtype, lmax=descriptor.get("lmax", 1),
        )
        three_body = descriptor.get("three_body")  # absent from inputs written before it existed
        self.angular = nn.ModuleList([] if three_body is None else [ThreeBodyDescriptor(
            self.sel, three_body["sel"], three_body["rcut"], three_body["rcut_smth"], three_body["num_radial"],
            three_body["lmax"], descriptor["env_protection"], dtype)])
        generator.manual_seed(int(fitting_net["seed"]))
        self.fitting = DensityFitting(
            self.descriptor.dim_out + sum(extra.dim_out for extra in self.angular), fitting_net["neuron"], fitting_net["resnet_dt"],
            fitting_net["activation_function"], fitting_net["descriptor_norm"], fitting_net["whiten_floor"],
            generator, dtype, trainable_skip=fitting_net.get("trainable_skip", False),
        )
        self.baseline = RadialBaseline(self.sel, self.rcut, descriptor["rcut_smth"], fitting_net["radial_baseline"],
                                       dtype)

    @torch.jit.ignore
    def fit_statistics(self, inputs: Dict[str, torch.Tensor], density: torch.Tensor, weight: torch.Tensor):
        """Descriptor davg/dstd, the radial baseline and the output shift/scale from training probes (the
        last two under the probes' loss weights)."""
        vectors, mask = inputs["probe_vectors"], inputs["probe_nlist"] >= 0
        env = self.descriptor.environment(vectors, mask)
        self.descriptor.set_statistics(list(torch.split(env, self.sel, dim=1)))
        with torch.no_grad():
            if self.baseline.num_basis:
                self.baseline.fit(vectors, mask, density, weight)
            residual = density - self.baseline(vectors, mask)
            self.fitting.set_statistics(self.describe(vectors, mask), residual, weight)

    @torch.jit.ignore
    def embedding_parameters(self):
        return self.descriptor.parameters()

    @torch.jit.ignore
    def prepare_for_inference(self):
        """Fold the fitting net's input normalisation into its first layer (see DensityFitting)."""
        self.fitting.fold_normalisation()

    @torch.jit.export
    def atom_states(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Nothing to compute per structure: every probe is described by its own environment."""
        states: Dict[str, torch.Tensor] = {}
        return states

    @torch.jit.export
    def probe_density(self, states: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Densities (e/Å³) at the probes of ``inputs``: the fitting net's correction on the radial baseline."""
        vectors, mask = inputs["probe_vectors"], inputs["probe_nlist"] >= 0
        return self.fitting(self.describe(vectors, mask)) + self.baseline(vectors, mask)

    def describe(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The fitting net's input: the se_e2_a descriptor, and the three-body one when configured."""
        features = [self.descriptor(vectors, mask)]
        for extra in self.angular:
            features.append(extra(vectors, mask))
        return torch.cat(features, dim=1)
