"""The Hartree term of the loss: the Coulomb energy E_H[δρ] of the model's error over a whole training snapshot.

A batch of probes scattered over the grid sees each point's error, not how the errors add up over ångströms: the
long-wavelength part of the error, which the Hartree potential weighs as 1/G² and which sets how far an SCF started
from the prediction is from its end (README "Starting pw.x from a prediction"). Every ``hartree_every`` steps this
term evaluates the model on a sub-grid of one training snapshot (every ``hartree_stride``-th point along each axis,
from an offset drawn for the step) and adds ``hartree_pref`` · E_H[δρ] / E_H₀ to the step's loss, E_H₀ the value
first measured. Points of the held-out slab count as no error, so validation stays unseen.

The gradient is exact without holding the sub-grid's graph: E_H is quadratic in the prediction ρ̂, ∂E_H/∂ρ̂ is the
error's Hartree potential (by FFT, no gradient needed), and a second pass, chunk by chunk, backpropagates ⟨v, ρ̂⟩.
"""

import itertools
import logging
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from deepcharge.analysis.hartree import hartree_gradient
from deepcharge.chunks import EVALUATION_CHUNK
from deepcharge.data.pool import TrainingPool
from deepcharge.errors import DeepChargeError
from deepcharge.snapshot import Snapshot
from deepcharge.train.fixed_features import FixedFeatures, chunk_densities, memory_limit

log = logging.getLogger("deepcharge")


def sub_grid_strides(shape, stride: int) -> Tuple[int, ...]:
    """Per axis the largest divisor of the grid's size not above ``stride`` (a sub-grid must stay periodic)."""
    return tuple(max(s for s in range(1, stride + 1) if n % s == 0) for n in shape)


class HartreeTerm:
    """E_H of the error on the training snapshots' sub-grids, and its gradient, every ``every`` steps."""

    def __init__(self, loss: dict, pool: TrainingPool, model: torch.nn.Module, use_fixed: bool, seed: int):
        if pool.rotates:
            raise DeepChargeError("loss.hartree_pref needs every training snapshot in memory: set "
                                  "training.training_data.pool_size to 0")
        self.pref, self.every, self.stride = loss["hartree_pref"], loss["hartree_every"], loss["hartree_stride"]
        self.pool, self.model, self.use_fixed, self.seed = pool, model, use_fixed, seed
        self.snapshots: List[Snapshot] = [pool.load(reference) for reference in pool.references]
        self.sub_grids: Dict[Tuple[int, tuple], tuple] = {}
        self.scale: Optional[float] = None  # E_H₀ (eV)
        self.last: Optional[float] = None  # the latest E_H measured (eV)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def state(self) -> dict:
        return {"scale": self.scale, "last": self.last}

    def restore(self, state: Optional[dict]):
        if state:
            self.scale, self.last = state["scale"], state["last"]

    def _sub_grid(self, number: int, strides: tuple, offset: tuple):
        """(probe set, fixed features or None, held-out mask, shape) of one sub-grid, built at its first use."""
        key = (number, offset)
        if key not in self.sub_grids:
            snapshot = self.snapshots[number]
            axes = [np.arange(o, n, s) for o, n, s in zip(offset, snapshot.grid_shape, strides)]
            flat = np.ravel_multi_index(np.ix_(*axes), snapshot.grid_shape).reshape(-1)
            held_out = np.zeros(snapshot.density.size, dtype=bool)
            if self.pool.holdout is not None:
                held_out[self.pool.holdout.validation_points(snapshot)] = True
            probes = self.pool.build(snapshot, (snapshot.grid_points(flat), snapshot.density.reshape(-1)[flat],
                                           np.ones(len(flat))))
            fixed = None
            if self.use_fixed:
                fixed = FixedFeatures.compute(self.model, probes, memory_limit(probes.density.device))
            self.sub_grids[key] = (probes, fixed, held_out[flat], tuple(len(axis) for axis in axes))
        return self.sub_grids[key]

    def at_step(self, step: int):
        """The snapshot the term of ``step`` measures (one after another) and its sub-grid (probe set, fixed features
        or None, held-out mask, shape) at an offset drawn from the seed and the step."""
        number = (step // self.every) % len(self.snapshots)
        strides = sub_grid_strides(self.snapshots[number].grid_shape, self.stride)
        offsets = list(itertools.product(*(range(s) for s in strides)))
        offset = offsets[np.random.default_rng([self.seed, step]).integers(len(offsets))]
        return self.snapshots[number], self._sub_grid(number, strides, offset)

    def backward(self, step: int) -> float:
        """Add pref · ∂(E_H/E_H₀)/∂θ of this step's sub-grid to the parameters' gradients; return its E_H (eV)."""
        snapshot, (probes, fixed, held_out, shape) = self.at_step(step)
        with torch.no_grad():
            predicted = torch.cat(list(chunk_densities(self.model, probes, fixed, EVALUATION_CHUNK)))
        error = (predicted - probes.density).double().cpu().numpy()
        error[held_out] = 0.0
        gradient = hartree_gradient(error.reshape(shape), snapshot.cell).reshape(-1)
        gradient[held_out] = 0.0
        energy = float(0.5 * (error * gradient).sum())
        if self.scale is None:
            self.scale = energy if energy > 0 else 1.0
            log.info("Hartree term: E_H of the error on a %s sub-grid of %s at the start: %.3f meV",
                     "×".join(map(str, shape)), snapshot.source, 1e3 * energy)
        self.last = energy
        weights = torch.as_tensor(gradient * self.pref / self.scale, dtype=predicted.dtype, device=predicted.device)
        for chunk, part in zip(chunk_densities(self.model, probes, fixed, EVALUATION_CHUNK),
                               weights.split(EVALUATION_CHUNK)):
            (chunk * part).sum().backward()
        return energy
