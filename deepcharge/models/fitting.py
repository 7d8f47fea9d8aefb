"""The fitting net: descriptor → density, a ResNet whose input is normalised and whose output is shifted
and scaled by statistics of the training data."""

from typing import List

import torch
from torch import nn

from deepcharge.models.base import weighted_mean_std
from deepcharge.models.network import ResidualMLP


class DensityFitting(nn.Module):
    """ρ̂ = bias + scale · MLP(W (D − D̄)/σ_D); D̄, σ_D, W, bias and scale come from the training data.

    Raw se_e2_a descriptors of probe points are strongly correlated (their effective rank is far below
    their length), which makes gradient descent on the fitting net slow. ``descriptor_norm`` chooses
    ``"standardize"`` (per-feature mean and std, W = 1) or ``"whiten"`` (W also decorrelates: the inverse
    square root of their covariance, eigenvalues floored at ``whiten_floor`` × the largest). Both are fixed
    linear maps that the first layer could absorb: they change how training proceeds, not what the model
    can represent.
    """

    def __init__(self, dim_in: int, neuron: List[int], resnet_dt: bool, activation_function: str,
                 descriptor_norm: str, whiten_floor: float, generator: torch.Generator, dtype: torch.dtype,
                 n_out: int = 1, trainable_skip: bool = False):
        super().__init__()
        self.net = ResidualMLP(dim_in, neuron, activation_function, resnet_dt, generator, dtype, n_out=n_out,
                               trainable_skip=trainable_skip)
        self.n_out = int(n_out)
        self.descriptor_norm = descriptor_norm
        self.whiten_floor = float(whiten_floor)
        self.register_buffer("input_mean", torch.zeros(dim_in, dtype=dtype))
        self.register_buffer("input_std", torch.ones(dim_in, dtype=dtype))
        self.register_buffer("input_transform", torch.eye(dim_in, dtype=dtype))
        output_shape = () if n_out == 1 else (n_out,)  # one output: a scalar density per probe
        self.register_buffer("bias", torch.zeros(output_shape, dtype=dtype))
        self.register_buffer("scale", torch.ones(output_shape, dtype=dtype))
        self.normalisation_folded = False

    @torch.jit.ignore
    def set_statistics(self, descriptor: torch.Tensor, density: torch.Tensor, weight: torch.Tensor):
        """Input normalisation from training descriptors; output shift and scale from their densities under
        the probes' loss weights."""
        self.set_input_statistics(descriptor)
        mean, std = weighted_mean_std(density, weight)
        self.bias.fill_(mean)
        self.scale.fill_(max(std, 1e-6))

    @torch.jit.ignore
    def set_input_statistics(self, descriptor: torch.Tensor):
        """Mean, std (and whitening map) of the inputs from training descriptors."""
        descriptor = descriptor.to(torch.float64)
        mean = descriptor.mean(dim=0)
        std = descriptor.std(dim=0, unbiased=False).clamp_min(1e-6)
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)
        if self.descriptor_norm == "whiten":
            standard = (descriptor - mean) / std
            eigenvalues, eigenvectors = torch.linalg.eigh(standard.T @ standard / standard.shape[0])
            floor = self.whiten_floor * eigenvalues.max()
            inverse_sqrt = eigenvalues.clamp_min(floor).rsqrt()
            self.input_transform.copy_((eigenvectors * inverse_sqrt) @ eigenvectors.T)

    @torch.jit.ignore
    def fold_normalisation(self):
        """For inference: fold the fixed input map x ↦ ((x − D̄)/σ_D) W into the first layer's weights and bias.

        The whitening matrix alone costs (descriptor length)² operations per probe, more than the fitting
        net; folded, the first layer does it for free. The function computed is unchanged (up to rounding).
        """
        first = self.net.layers[0] if len(self.net.layers) else None
        if first is None or first.skip or self.normalisation_folded:
            return
        with torch.no_grad():
            linear = self.input_transform.to(torch.float64) / self.input_std.to(torch.float64).unsqueeze(1)
            weight = linear @ first.weight.to(torch.float64)
            bias = first.bias.to(torch.float64) - self.input_mean.to(torch.float64) @ weight
            first.weight.copy_(weight)
            first.bias.copy_(bias)
        self.normalisation_folded = True

    @torch.jit.ignore
    def normalise(self, descriptor: torch.Tensor) -> torch.Tensor:
        """The fixed input map ((x − D̄)/σ_D) W on its own, for inputs that never change (fixed features)."""
        standard = (descriptor - self.input_mean) / self.input_std
        return standard @ self.input_transform if self.descriptor_norm == "whiten" else standard

    @torch.jit.ignore
    def from_normalised(self, normalised: torch.Tensor) -> torch.Tensor:
        """The fitting net on inputs :meth:`normalise` has mapped: what :meth:`forward` gives for the raw ones."""
        return self.output_map(self.net(normalised))

    def forward(self, descriptor: torch.Tensor) -> torch.Tensor:
        if self.normalisation_folded:
            output = self.net(descriptor)
        else:
            whitening = self.input_transform if self.descriptor_norm == "whiten" else None
            output = self.net((descriptor - self.input_mean) / self.input_std, whitening)
        return self.output_map(output)

    def output_map(self, output: torch.Tensor) -> torch.Tensor:
        """The net's output shifted and scaled to a density (one output: squeezed to one number per probe)."""
        output = output * self.scale + self.bias
        if self.n_out == 1:
            output = output.squeeze(-1)
        return output
