"""DeepPot-SE two-body embedding descriptor with full angular information (DeePMD-kit's ``se_e2_a``).

The centre is a probe point (a pseudo-atom in Deep Charge, the electron in Deep Density); its
neighbours are real atoms only, held in per-type slot blocks of sizes ``sel``.
"""

from typing import List

import torch
from torch import nn

from deepcharge.models.descriptor.env_mat import environment_matrix
from deepcharge.models.network import ResidualMLP

STD_FLOOR = 1e-2


class DescriptorSeA(nn.Module):
    """D = (1/N²) Gᵀ R̃ R̃ᵀ G<, flattened to ``neuron[-1] * axis_neuron`` numbers per centre.

    ``lmax`` > 1 extends each row of R̃ with the solid harmonics of orders 2..lmax of the neighbour's direction
    and adds one block Gᵀ R̃_l R̃_lᵀ G< per order: Σ_jk g(r_j) g(r_k) P_l(cos θ_jk) with learned radial g, the
    angular detail that rows of order 1 carry only as cos θ.
    """

    def __init__(self, ntypes: int, sel: List[int], rcut: float, rcut_smth: float, neuron: List[int],
                 axis_neuron: int, resnet_dt: bool, activation_function: str, env_protection: float,
                 generator: torch.Generator, dtype: torch.dtype, lmax: int = 1):
        super().__init__()
        if len(sel) != ntypes:
            raise ValueError(f"sel has {len(sel)} entries for {ntypes} types")
        self.ntypes = ntypes
        self.sel = list(sel)
        self.nnei = int(sum(sel))
        self.rcut = float(rcut)
        self.rcut_smth = float(rcut_smth)
        self.env_protection = float(env_protection)
        self.axis_neuron = int(axis_neuron)
        self.lmax = int(lmax)
        self.embedding_width = int(neuron[-1])
        self.embeddings = nn.ModuleList(
            ResidualMLP(1, neuron, activation_function, resnet_dt, generator, dtype) for _ in range(ntypes)
        )
        columns = (self.lmax + 1) ** 2
        self.register_buffer("mean", torch.zeros(self.nnei, columns, dtype=dtype))
        self.register_buffer("stddev", torch.ones(self.nnei, columns, dtype=dtype))

    @property
    def dim_out(self) -> int:
        return self.embedding_width * self.axis_neuron * self.lmax

    def environment(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) environment matrix (P, nnei, (lmax + 1)²)."""
        return environment_matrix(vectors, mask, self.rcut_smth, self.rcut, self.env_protection, lmax=self.lmax)

    @torch.jit.ignore
    def set_statistics(self, env_blocks: List[torch.Tensor]):
        """Set davg/dstd from raw environment matrices of training probes, one (P, sel_t, columns) per type.

        As DeePMD-kit: the mean of the radial column s and zero for the angular ones; the std of s and
        one pooled std for the components of each angular order; all slots (empty ones included) count.
        """
        mean = torch.zeros_like(self.mean)
        std = torch.ones_like(self.stddev)
        start = 0
        for sel_t, block in zip(self.sel, env_blocks):
            block = block.to(torch.float64).reshape(-1, block.shape[-1])
            radial = block[:, 0]
            mean[start:start + sel_t, 0] = radial.mean()
            std[start:start + sel_t, 0] = radial.std(unbiased=False).clamp_min(STD_FLOOR)
            for l in range(1, self.lmax + 1):
                angular = block[:, l * l:(l + 1) ** 2]
                std[start:start + sel_t, l * l:(l + 1) ** 2] = angular.pow(2).mean().sqrt().clamp_min(STD_FLOOR)
            start += sel_t
        self.mean.copy_(mean)
        self.stddev.copy_(std)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Descriptor of each probe from its neighbour vectors (P, nnei, 3) and slot mask (P, nnei)."""
        return self.from_environment(self.normalised_environment(vectors, mask))

    def normalised_environment(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The environment matrix normalised by the training statistics: no trainable weight enters it."""
        return (self.environment(vectors, mask) - self.mean) / self.stddev

    def from_environment(self, env: torch.Tensor) -> torch.Tensor:
        """The descriptor from a normalised environment matrix (P, nnei, columns): the embedding nets' part."""
        nprobes = env.shape[0]
        xyz_scatter = torch.zeros(nprobes, env.shape[2], self.embedding_width, dtype=env.dtype, device=env.device)
        start = 0
        for type_index, embedding in enumerate(self.embeddings):
            sel_t = self.sel[type_index]
            block = env[:, start:start + sel_t, :]
            g = embedding(block[:, :, :1])  # (P, sel_t, M)
            xyz_scatter = xyz_scatter + torch.matmul(block.transpose(1, 2), g)
            start += sel_t
        return contract_orders(xyz_scatter / self.nnei, self.axis_neuron, self.lmax)


def contract_orders(xyz_scatter: torch.Tensor, axis_neuron: int, lmax: int) -> torch.Tensor:
    """:func:`contract` of the rows of orders 0 and 1 (se_e2_a's D), then of each order 2..``lmax`` alone."""
    blocks = [contract(xyz_scatter[:, :4], axis_neuron)]
    for l in range(2, lmax + 1):
        blocks.append(contract(xyz_scatter[:, l * l:(l + 1) * (l + 1)], axis_neuron))
    return torch.cat(blocks, dim=1)


def contract(xyz_scatter: torch.Tensor, axis_neuron: int) -> torch.Tensor:
    """The invariant D = Tᵀ T< from T = (1/N) Σ_j R̃_jᵀ g_j (centres, 4, M), flattened to M · ``axis_neuron``."""
    descriptor = torch.matmul(xyz_scatter.transpose(1, 2), xyz_scatter[:, :, :axis_neuron])
    return descriptor.reshape(xyz_scatter.shape[0], -1)
