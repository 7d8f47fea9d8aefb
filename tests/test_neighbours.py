import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list

from deepcharge.geometry import neighbours
from deepcharge.geometry.neighbours import atom_neighbours, pad_by_type, probe_neighbours


def brute_force(probes, positions, cell, pbc, rcut):
    """Dict (probe, atom, integer shift) -> vector, by an explicit loop over image shifts."""
    inverse = np.linalg.inv(cell)
    reach = [int(np.ceil(rcut * np.linalg.norm(b))) + 2 if p else 0 for b, p in zip(inverse.T, pbc)]
    # Probes may lie far outside the cell: count shifts from each probe's own cell.
    probe_cells = np.floor(probes @ inverse) * np.asarray(pbc)
    atom_cells = np.floor(positions @ inverse) * np.asarray(pbc)
    found = {}
    for n in itertools.product(*[range(-r, r + 1) for r in reach]):
        shifts = (np.asarray(n) + probe_cells[:, None, :] - atom_cells[None, :, :]).astype(int)
        vectors = positions[None, :, :] + shifts @ cell - probes[:, None, :]
        i, j = np.nonzero(np.linalg.norm(vectors, axis=2) < rcut)
        keys = np.column_stack([i, j, shifts[i, j]]).tolist()
        found.update(zip(map(tuple, keys), vectors[i, j]))
    return found


def as_dict(probe_index, atom_index, vectors, probes, positions, cell):
    """Dict (probe, atom, integer shift) -> vector of a neighbour list; asserts shifts are integer."""
    vectors = vectors.double().numpy()
    frac = (vectors + probes[probe_index.numpy()] - positions[atom_index.numpy()]) @ np.linalg.inv(cell)
    shifts = np.round(frac).astype(int)
    np.testing.assert_allclose(frac, shifts, atol=1e-4)
    keys = np.column_stack([probe_index.numpy(), atom_index.numpy(), shifts]).tolist()
    found = dict(zip(map(tuple, keys), vectors))
    assert len(found) == len(vectors), "duplicate pairs"
    return found


def assert_same_pairs(got, expected, atol):
    assert got.keys() == expected.keys()
    np.testing.assert_allclose(np.array(list(got.values())), np.array([expected[k] for k in got]), atol=atol)


def invertible(cell):
    """The cell with zero rows (along non-periodic axes) replaced by unit vectors."""
    cell = np.array(cell, dtype=float)
    for i in range(3):
        if not cell[i].any():
            cell[i, i] = 1.0
    return cell


CASES = {
    "cubic": (np.eye(3) * 6.0, (True, True, True), 3.0),
    "triclinic": (np.array([[5.0, 0.0, 0.0], [4.3, 3.0, 0.0], [-3.5, 2.8, 4.0]]), (True, True, True), 3.5),
    "skewed": (np.array([[4.0, 0.0, 0.0], [7.6, 1.5, 0.0], [-6.2, 3.3, 2.2]]), (True, True, True), 3.5),
    "small_cell": (np.eye(3) * 2.0, (True, True, True), 5.0),
    "mixed_pbc": (np.array([[4.0, 0.0, 0.0], [1.5, 3.5, 0.0], [0.0, 0.0, 0.0]]), (True, True, False), 4.2),
    # The non-periodic row is arbitrary (not orthogonal to the periodic ones).
    "mixed_pbc_skewed": (np.array([[3.5, 0.0, 0.0], [1.0, 1.0, 7.0], [0.5, 0.2, 4.0]]), (True, False, True), 3.0),
    "molecule": (np.zeros((3, 3)), (False, False, False), 3.0),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_probe_neighbours_match_brute_force(case, dtype):
    cell, pbc, rcut = CASES[case]
    rng = np.random.default_rng(0)
    box = invertible(cell) if any(pbc) else np.eye(3) * 5.0
    positions = rng.random((7, 3)) @ box
    # Probes inside and well outside the cell.
    probes = (rng.random((40, 3)) * 3.0 - 1.0) @ box
    expected = brute_force(probes, positions, invertible(cell), pbc, rcut)
    got = probe_neighbours(*(torch.tensor(x, dtype=dtype) for x in (probes, positions, cell)), pbc, rcut)
    assert got[2].dtype == dtype and got[0].dtype == got[1].dtype == torch.long
    assert (got[0].diff() >= 0).all(), "pairs are sorted by probe"
    assert len(expected) > 0
    assert_same_pairs(as_dict(*got, probes, positions, invertible(cell)), expected, atol=1e-4)


@pytest.mark.parametrize("case", sorted(CASES))
def test_atom_neighbours_match_ase(case):
    cell, pbc, rcut = CASES[case]
    rng = np.random.default_rng(1)
    box = invertible(cell) if any(pbc) else np.eye(3) * 5.0
    positions = rng.random((6, 3)) @ box
    i, j, shifts, vectors = neighbor_list("ijSD", Atoms("H6", positions=positions, cell=cell, pbc=pbc), rcut)
    expected = {(int(a), int(b), *s): v for a, b, s, v in zip(i, j, shifts, vectors)}
    got = atom_neighbours(torch.tensor(positions), torch.tensor(cell), pbc, rcut)
    assert len(expected) > 0 and (got[0].diff() >= 0).all()
    assert_same_pairs(as_dict(*got, positions, positions, invertible(cell)), expected, atol=1e-9)


def test_probe_on_atom_and_cell_boundaries():
    cell = torch.eye(3, dtype=torch.float64) * 4.0
    positions = torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], dtype=torch.float64)
    # On atoms (also on an image of one), on cell faces and corners, and outside the cell.
    probes = torch.tensor(
        [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0], [4.0, 4.0, 4.0], [1.0, 0.0, 4.0], [-4.0, 2.0, 1.0], [3.0, 3.0, 3.0]],
        dtype=torch.float64,
    )
    rcut = 3.0
    pi, ai, vec = probe_neighbours(probes, positions, cell, (True, True, True), rcut)
    expected = brute_force(probes.numpy(), positions.numpy(), cell.numpy(), (True,) * 3, rcut)
    assert_same_pairs(as_dict(pi, ai, vec, probes.numpy(), positions.numpy(), cell.numpy()), expected, atol=1e-12)
    zero = vec.norm(dim=1) == 0
    assert {(int(p), int(a)) for p, a in zip(pi[zero], ai[zero])} == {(0, 0), (1, 1), (2, 0)}


def test_pairs_just_inside_and_outside_rcut_in_all_directions():
    """The lone atom sits on a bin corner, so probes near rcut along diagonals land in far-off bins."""
    rcut = 3.0
    atom = torch.tensor([[0.25, -0.5, 0.125]], dtype=torch.float64)
    axes = [d for d in itertools.product([-1.0, 0.0, 1.0], repeat=3) if any(d)]
    random = torch.randn(200, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    directions = torch.cat([torch.tensor(axes, dtype=torch.float64), random])
    directions /= directions.norm(dim=1, keepdim=True)
    inside, outside = atom + 0.999 * rcut * directions, atom + 1.001 * rcut * directions
    probes = torch.cat([inside, outside, atom + rcut * torch.eye(3)])
    for cell, pbc in [(torch.zeros(3, 3), (False,) * 3), (torch.eye(3) * 20.0, (True,) * 3)]:
        pi, ai, vec = probe_neighbours(probes, atom, cell.double(), pbc, rcut)
        assert sorted(pi.tolist()) == list(range(len(directions)))
        assert torch.allclose(vec, -0.999 * rcut * directions[pi])


def test_pad_by_type_matches_loop():
    rng = np.random.default_rng(2)
    cell = torch.eye(3, dtype=torch.float64) * 5.0
    positions = torch.tensor(rng.random((10, 3)) * 5.0)
    probes = torch.tensor(rng.random((7, 3)) * 5.0)
    atom_types = torch.tensor([0, 1, 2, 0, 1, 0, 0, 1, 0, 2])
    sel = [20, 3, 0]
    pi, ai, vec = probe_neighbours(probes, positions, cell, (True, True, True), 4.0)
    nlist, padded, max_count = pad_by_type(pi, ai, vec, atom_types, sel, len(probes))

    assert nlist.shape == (7, 23) and padded.shape == (7, 23, 3)
    expected_max = np.zeros(3, dtype=int)
    for p in range(len(probes)):
        start = 0
        for t, width in enumerate(sel):
            mine = [
                (float(vec[e].norm()), int(ai[e]), vec[e])
                for e in range(len(pi))
                if pi[e] == p and atom_types[ai[e]] == t
            ]
            expected_max[t] = max(expected_max[t], len(mine))
            mine.sort(key=lambda x: x[0])
            mine = mine[:width]
            block = slice(start, start + width)
            assert nlist[p, block].tolist() == [m[1] for m in mine] + [-1] * (width - len(mine))
            for s, m in enumerate(mine):
                assert torch.equal(padded[p, start + s], m[2])
            assert not padded[p, start + len(mine) : start + width].any()
            start += width
    assert max_count.tolist() == expected_max.tolist()
    assert expected_max[1] > sel[1]
    # Pairs in any order give the same result.
    shuffle = torch.randperm(len(pi), generator=torch.Generator().manual_seed(0))
    shuffled = pad_by_type(pi[shuffle], ai[shuffle], vec[shuffle], atom_types, sel, len(probes))
    for a, b in zip(shuffled, (nlist, padded, max_count)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("periodic", [True, False])
def test_dense_probes_with_small_tiles_and_batches(periodic, monkeypatch):
    """Many pairs near rcut and probes up to rcut away from the atoms; small tiles and batches exercise tiling."""
    cell = np.array([[6.0, 0.0, 0.0], [2.0, 5.5, 0.0], [1.0, -1.5, 7.0]])
    rng = np.random.default_rng(3)
    positions = rng.random((40, 3)) @ cell
    grid = np.stack(np.meshgrid(*[np.linspace(-0.7, 1.7, 11)] * 3, indexing="ij"), -1).reshape(-1, 3)
    probes = grid @ cell + rng.normal(scale=0.05, size=grid.shape)
    pbc = (periodic,) * 3
    expected = brute_force(probes, positions, cell, pbc, 4.0)
    monkeypatch.setattr(neighbours, "_TILE", 8)
    monkeypatch.setattr(neighbours, "_MAX_CANDIDATES", 20000)
    got = probe_neighbours(*(torch.tensor(x) for x in (probes, positions, cell)), pbc, 4.0)
    assert_same_pairs(as_dict(*got, probes, positions, cell), expected, atol=1e-9)


def test_empty_inputs():
    cell = torch.eye(3) * 4.0
    none = torch.zeros(0, 3)
    some = torch.rand(5, 3) * 4.0
    for probes, positions in [(none, some), (some, none), (some + 100.0, some)]:
        pi, ai, vec = probe_neighbours(probes, positions, cell, (False, False, False), 3.0)
        assert pi.shape == ai.shape == (0,) and vec.shape == (0, 3)
    i, j, vec = atom_neighbours(some[:1], cell, (False, False, False), 3.0)
    assert i.shape == (0,) and vec.shape == (0, 3)


def test_invalid_input():
    with pytest.raises(ValueError, match="linearly independent"):
        flat = torch.diag(torch.tensor([1.0, 1.0, 0.0]))
        probe_neighbours(torch.zeros(1, 3), torch.zeros(1, 3), flat, (True,) * 3, 2.0)
    with pytest.raises(ValueError, match="rcut"):
        probe_neighbours(torch.zeros(1, 3), torch.zeros(1, 3), torch.eye(3), (True,) * 3, 0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu():
    cell, pbc, rcut = CASES["skewed"]
    rng = np.random.default_rng(4)
    positions = torch.tensor(rng.random((20, 3)) @ cell)
    probes = torch.tensor((rng.random((500, 3)) * 2 - 0.5) @ cell)
    cpu = probe_neighbours(probes, positions, torch.tensor(cell), pbc, rcut)
    gpu = probe_neighbours(probes.cuda(), positions.cuda(), torch.tensor(cell).cuda(), pbc, rcut)
    assert gpu[2].is_cuda
    expected = as_dict(*cpu, probes.numpy(), positions.numpy(), cell)
    got = as_dict(*(x.cpu() for x in gpu), probes.numpy(), positions.numpy(), cell)
    assert_same_pairs(got, expected, atol=1e-9)
