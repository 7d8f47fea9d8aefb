"""Dense building blocks shared by every backend: activations and the DeePMD-style ResNet MLP."""

from typing import List, Optional

import torch
from torch import nn

from deepcharge.choices import ACTIVATION_FUNCTIONS

ACTIVATIONS = {name: getattr(nn, module) for name, module in ACTIVATION_FUNCTIONS.items()}
"""Activation modules by their input-file names (the input schema's choices)."""


def get_activation(name: str) -> nn.Module:
    """An activation module by its input-file name."""
    return ACTIVATIONS[name]()


class ResidualLayer(nn.Module):
    """y = act(x W + b) [* timestep] [+ α x or + α (x, x)], as DeePMD-kit's ResNet layers.

    The skip is added when the width is unchanged (``+ x``) or doubled (``+ (x, x)``);
    ``resnet_dt`` multiplies the activation by a learnable per-unit timestep; ``trainable_skip`` weights
    the skip by a learnable scalar α (Deep Density's ResNet), otherwise α = 1.
    """

    def __init__(self, n_in: int, n_out: int, activation: str, resnet_dt: bool,
                 generator: torch.Generator, dtype: torch.dtype, resnet: bool = True, trainable_skip: bool = False):
        super().__init__()
        std = 1.0 / (n_in + n_out) ** 0.5
        self.weight = nn.Parameter(torch.randn(n_in, n_out, generator=generator, dtype=torch.float64).to(dtype) * std)
        self.bias = nn.Parameter(torch.randn(n_out, generator=generator, dtype=torch.float64).to(dtype))
        self.timestep = (
            nn.Parameter((0.1 + 0.001 * torch.randn(n_out, generator=generator, dtype=torch.float64)).to(dtype))
            if resnet_dt else None
        )
        self.activation = get_activation(activation)
        self.skip = 0
        if resnet and n_out == n_in:
            self.skip = 1
        elif resnet and n_out == 2 * n_in:
            self.skip = 2
        self.skip_weight = nn.Parameter(torch.ones((), dtype=dtype)) if trainable_skip and self.skip else None

    def forward(self, x: torch.Tensor, input_map: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``input_map`` (n_in × n_in): the layer sees x · input_map, computed as x · (input_map · W), which
        is cheaper when there are more rows than outputs."""
        weight = self.weight if input_map is None else torch.matmul(input_map, self.weight)
        y = self.activation(torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), weight))
        y = y.reshape(x.shape[:-1] + (y.shape[-1],))
        if input_map is not None and self.skip:
            x = torch.matmul(x, input_map)
        timestep = self.timestep
        if timestep is not None:
            y = y * timestep
        skip = x
        if self.skip == 2:
            skip = torch.cat([x, x], dim=-1)
        skip_weight = self.skip_weight
        if skip_weight is not None:
            skip = skip * skip_weight
        if self.skip:
            y = y + skip
        return y


class ResidualMLP(nn.Module):
    """A stack of :class:`ResidualLayer` with an optional final linear output layer."""

    def __init__(self, n_in: int, neuron: List[int], activation: str, resnet_dt: bool,
                 generator: torch.Generator, dtype: torch.dtype, n_out: Optional[int] = None,
                 trainable_skip: bool = False):
        super().__init__()
        widths = [n_in] + list(neuron)
        self.layers = nn.ModuleList(
            ResidualLayer(a, b, activation, resnet_dt, generator, dtype, trainable_skip=trainable_skip)
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.output = None
        if n_out is not None:
            self.output = nn.Linear(widths[-1], n_out, dtype=dtype)
            with torch.no_grad():
                std = 1.0 / (widths[-1] + n_out) ** 0.5
                self.output.weight.copy_(torch.randn(n_out, widths[-1], generator=generator, dtype=torch.float64) * std)
                self.output.bias.copy_(torch.randn(n_out, generator=generator, dtype=torch.float64))

    def forward(self, x: torch.Tensor, input_map: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The stack on x, or on x · ``input_map`` (folded into the first layer, see ResidualLayer)."""
        for index, layer in enumerate(self.layers):
            x = layer(x, input_map if index == 0 else None)
        output = self.output
        if output is not None:
            x = output(x)
        return x
