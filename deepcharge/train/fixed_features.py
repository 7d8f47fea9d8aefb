"""Training on a fixed probe set without recomputing what never changes.

A one-shot run draws its probes once. Much of what the model computes from them does not depend on any trainable
weight (for ``pseudo_atom``: the normalised environment matrices, the three-body terms, the baseline's basis
functions): :class:`FixedFeatures` computes it once, and every step takes its batch's rows and runs only the
trainable part (:meth:`DensityModel.density_from_fixed`). The densities, losses and gradients are those of the full
model, up to the order of float sums.
"""

import logging
import os
import time
from typing import Dict, Optional

import torch
from torch import nn

from deepcharge.chunks import STATISTICS_CHUNK
from deepcharge.data.probe_set import ProbeSet

log = logging.getLogger("deepcharge")


class FixedFeatures:
    """One probe set's fixed features (``model.fixed_features``), row i for probe i."""

    def __init__(self, tensors: Dict[str, torch.Tensor]):
        self.tensors = tensors

    @classmethod
    def compute(cls, model: nn.Module, probes: ProbeSet, memory_limit: float,
                chunk: int = STATISTICS_CHUNK) -> Optional["FixedFeatures"]:
        """The features of every probe, ``chunk`` probes at a time; None when the model has none to offer, needs
        an atom graph (which a batch of rows cannot carry), or when they would take more than ``memory_limit``
        bytes (judged from the first chunk)."""
        if probes.needs_atoms or len(probes) == 0:
            return None
        tensors: Dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for index, inputs, _ in probes.chunks(chunk):
                fixed = model.fixed_features(inputs)
                if fixed is None:
                    return None
                if not tensors:  # filled in place, so the features are never held twice
                    per_probe = sum(t.numel() * t.element_size() for t in fixed.values()) / len(index)
                    if per_probe * len(probes) > memory_limit:
                        log.info("fixed features of %d probes would take %.0f MB, more than the %.0f MB allowed: "
                                 "computed at every step instead", len(probes), per_probe * len(probes) / 2**20,
                                 memory_limit / 2**20)
                        return None
                    tensors = {key: value.new_empty((len(probes),) + value.shape[1:]) for key, value in fixed.items()}
                for key, value in fixed.items():
                    tensors[key][index] = value
        return cls(tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def take(self, index: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The rows of the probes at ``index``."""
        return {key: value[index] for key, value in self.tensors.items()}

    def chunks(self, size: int):
        """Consecutive pieces of at most ``size`` rows, in probe order."""
        count = next(iter(self.tensors.values())).shape[0]
        for start in range(0, count, size):
            yield {key: value[start:start + size] for key, value in self.tensors.items()}


class FromFixed(nn.Module):
    """The model's trainable part as a module of its own (``forward(fixed)``), so DistributedDataParallel can wrap
    it; it shares the model's parameters."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fixed: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.density_from_fixed(fixed)


def chunk_densities(model: nn.Module, probes: ProbeSet, fixed: Optional[FixedFeatures], chunk: int):
    """The model's density on ``probes``, ``chunk`` probes at a time in probe order, from their ``fixed`` features
    when given (with the graph when gradients are enabled)."""
    if fixed is None:
        for _, inputs, _ in probes.chunks(chunk):
            yield model(inputs)
    else:
        for rows in fixed.chunks(chunk):
            yield model.density_from_fixed(rows)


def memory_limit(device: torch.device) -> float:
    """Bytes fixed features may take: half of the GPU's free memory, or of the machine's physical memory."""
    if device.type == "cuda":
        return 0.5 * torch.cuda.mem_get_info(device)[0]
    return 0.5 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fixed_features_of(model: nn.Module, probes: ProbeSet, what: str) -> Optional[FixedFeatures]:
    """:meth:`FixedFeatures.compute` within :func:`memory_limit`, with a log line naming ``what`` they are for,
    their memory and time."""
    began = time.perf_counter()
    fixed = FixedFeatures.compute(model, probes, memory_limit(probes.density.device))
    if fixed is not None:
        log.info("fixed features of the %s (%d probes): %.0f MB, computed once in %.1f s", what, len(probes),
                 fixed.nbytes / 2**20, time.perf_counter() - began)
    return fixed
