"""Probe sampling policies: uniform over all structures, or DeepDFT's few structures per step."""

import torch

from deepcharge.data.sampler import batch_indices


def test_structures_per_step_draws_that_many_structures_evenly():
    sizes = torch.tensor([100, 50, 80, 30])
    starts = torch.cumsum(sizes, 0) - sizes
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(50):
        index = batch_indices(sizes, int(sizes.sum()), 10, 2, generator)
        owner = torch.searchsorted(starts, index, right=True) - 1
        structures, counts = torch.unique(owner, return_counts=True)
        assert len(structures) == 2 and counts.tolist() == [5, 5]
        assert bool((index < starts[owner] + sizes[owner]).all())
        seen.update(structures.tolist())
    assert seen == {0, 1, 2, 3}  # every structure takes its turn


def test_uniform_policy_spreads_over_all_probes():
    sizes = torch.tensor([10, 20])
    index = batch_indices(sizes, 30, 3000, 0, torch.Generator().manual_seed(1))
    assert int(index.min()) == 0 and int(index.max()) == 29
    share_first = float((index < 10).double().mean())
    assert abs(share_first - 1 / 3) < 0.05


def test_same_seed_same_batches():
    sizes = torch.tensor([7, 9, 11])
    first = batch_indices(sizes, 27, 12, 2, torch.Generator().manual_seed(5))
    second = batch_indices(sizes, 27, 12, 2, torch.Generator().manual_seed(5))
    assert torch.equal(first, second)
