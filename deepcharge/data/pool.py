"""The training probes a run draws its batches from: every training snapshot at once, or a rotating pool.

With ``pool_size`` N > 0 only N snapshots are held (as probe sets) at a time: every ``pool_refresh`` steps the
oldest leaves and the next one of a seeded order comes in, as DeepDFT's rotating pool. Which snapshots are
in the pool, and which probes are drawn from each visit of a snapshot, depend only on the seed and the step,
so a restarted run sees exactly the data the killed one would have seen.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from deepcharge.analysis.electrons import composition_and_electrons
from deepcharge.analysis.environments import EnvironmentRanges
from deepcharge.data.holdout import Holdout
from deepcharge.data.inputs import InputSpec
from deepcharge.data.probe_set import ProbeSet
from deepcharge.data.sampler import draw_probes
from deepcharge.snapshot import Snapshot

Member = Tuple[int, int]  # (snapshot number, how many times the pool has cycled through all of them)


class TrainingPool:
    """Probe sets of the training snapshots, drawn lazily and held for the snapshots in the pool."""

    def __init__(self, references: Sequence[str], load: Callable[[str], Snapshot], probes_per_system: int,
                 alpha: float, pool_size: int, pool_refresh: int, seed: int, weighted: bool = False,
                 holdout: Optional[Holdout] = None, environment_radius: float = 6.0):
        self.references = list(references)
        self.load = load
        self.probes_per_system = probes_per_system
        self.alpha = alpha
        self.weighted = weighted
        self.holdout = holdout
        count = len(self.references)
        self.size = count if pool_size <= 0 else min(pool_size, count)
        self.refresh = pool_refresh
        self.seed = seed
        self.order = list(range(count))
        if self.rotates:
            self.order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
        self.build = None
        self.held: Dict[Member, ProbeSet] = {}
        self.drawn: Dict[Member, tuple] = {}
        self.members: List[Member] = []
        self.electrons: Dict[int, tuple] = {}  # snapshot number → (atoms per species, integrated electrons)
        self.environments = EnvironmentRanges(environment_radius)  # what the model sees, for extrapolation checks
        self.probes = None

    def set_model_inputs(self, type_map: Sequence[str], spec: InputSpec, device, dtype):
        """How drawn probes become model inputs (known once the model is built)."""
        self.build = lambda snapshot, sample: ProbeSet.build([snapshot], [sample], type_map, spec, device, dtype)

    @property
    def rotates(self) -> bool:
        return self.size < len(self.references)

    def members_at(self, step: int) -> List[Member]:
        """The snapshots in the pool at ``step``."""
        if not self.rotates:
            return [(number, 0) for number in range(len(self.references))]
        first = step // self.refresh
        count = len(self.references)
        return [(self.order[(first + j) % count], (first + j) // count) for j in range(self.size)]

    def at_step(self, step: int) -> ProbeSet:
        """The probe set of the pool at ``step`` (rebuilt only when the pool changes)."""
        members = self.members_at(step)
        if members != self.members:
            self.held = {member: self.held.get(member) or self.build(*self.draw(member)) for member in members}
            self.drawn.clear()
            self.members = members
            self.probes = ProbeSet.concat([self.held[member] for member in members])
        return self.probes

    def draw(self, member: Member):
        """(snapshot, drawn probes) of one visit of a snapshot, reproducible from the seed."""
        if member in self.drawn:
            return self.drawn[member]
        number, cycle = member
        snapshot = self.load(self.references[number])
        if number not in self.electrons:
            self.environments.add(snapshot)
        self.electrons[number] = composition_and_electrons(snapshot)
        seed = int(np.random.SeedSequence([self.seed, number, cycle]).generate_state(1)[0])
        points = None if self.holdout is None else self.holdout.training_points(snapshot)
        return snapshot, draw_probes(snapshot, self.probes_per_system, torch.Generator().manual_seed(seed),
                                     self.alpha, self.weighted, points)

    def first_visits(self):
        """(snapshot, drawn probes) of every snapshot's first visit, one at a time (kept for the pool when
        every snapshot fits in it, so nothing is read twice)."""
        for number in range(len(self.references)):
            member = (number, 0)
            snapshot, sample = self.draw(member)
            if not self.rotates:
                self.drawn[member] = (snapshot, sample)
            yield snapshot, sample
