"""Neighbour lists for probe points and atoms under (partial) periodic boundary conditions.

A cell-list scheme in pure torch that scales linearly with the number of probes and atoms:
points are wrapped into the cell along periodic axes, the periodic images of the atoms that
can reach the wrapped points are built, atoms are sorted into Cartesian bins of size about
``rcut / 3`` and every probe gathers the atoms of the bins that can lie within ``rcut``.
Works on the device and in the float dtype of the inputs.
"""

import itertools
import math

import torch

_BINS_PER_RCUT = 3
# Bins are a hair larger than rcut / _BINS_PER_RCUT so that rounding in the bin assignment can
# never hide a pair (see _bin_offsets).
_BIN_INFLATION = 1e-4
# Points per tile, and bound on the padded (point, atom image) pairs compared at once.
_TILE = 32
_MAX_CANDIDATES = 2**20


def probe_neighbours(probes, positions, cell, pbc, rcut):
    """Atoms (with periodic images) within rcut of each probe point.

    probes: (P,3) Cartesian Å; positions: (N,3); cell: (3,3) rows are lattice vectors;
    pbc: sequence of 3 bools; rcut: float.
    Returns (probe_index LongTensor(E), atom_index LongTensor(E), vectors Tensor(E,3)) with
    vectors = positions[atom_index] + shift - probes[probe_index] for an image shift (an integer
    combination of cell rows) and |vectors| < rcut. Every (probe, atom image) pair within rcut
    appears exactly once, in no particular order (a pair at distance 0 is kept).
    """
    return _pairs(probes, positions, cell, pbc, rcut)


def atom_neighbours(positions, cell, pbc, rcut):
    """Atom pairs (centre i, neighbour j image) within rcut, without each atom's zero-shift self pair.

    Returns (i LongTensor(E), j LongTensor(E), vectors Tensor(E,3)) with
    vectors = positions[j] + shift - positions[i], in no particular order.
    """
    i, j, vectors, shifts = _pairs(positions, positions, cell, pbc, rcut, with_shifts=True)
    keep = (i != j) | (shifts != 0).any(dim=1)
    return i[keep], j[keep], vectors[keep]


def pad_by_type(probe_index, atom_index, vectors, atom_types, sel, nprobes):
    """Per-probe neighbour slots grouped by type, nearest first.

    Slots of type t are the block [sum(sel[:t]), sum(sel[:t+1])); beyond sel[t] neighbours of a
    type the farthest are dropped.
    Returns (nlist LongTensor(P, sum(sel)) padded with -1, vec Tensor(P, sum(sel), 3) zero padded,
    max_count LongTensor(ntypes): the largest number of neighbours of each type any probe has).
    """
    device = vectors.device
    ntypes = len(sel)
    sel_t = torch.as_tensor(sel, dtype=torch.long, device=device)
    block_start = torch.cumsum(sel_t, 0) - sel_t
    nslots = int(sum(sel))

    types = atom_types.to(device=device, dtype=torch.long)[atom_index]
    by_distance = torch.argsort(vectors.square().sum(dim=1), stable=True)
    group, by_group = torch.sort(probe_index[by_distance] * ntypes + types[by_distance], stable=True)
    order = by_distance[by_group]

    counts = torch.bincount(group, minlength=nprobes * ntypes)
    rank = torch.arange(group.numel(), device=device) - (torch.cumsum(counts, 0) - counts)[group]
    max_count = counts.view(nprobes, ntypes).amax(dim=0) if nprobes else counts.new_zeros(ntypes)

    kept_types = types[order]
    keep = rank < sel_t[kept_types]
    slot = (block_start[kept_types] + rank)[keep]
    probe = probe_index[order][keep]
    flat = probe * nslots + slot
    nlist = torch.full((nprobes * nslots,), -1, dtype=torch.long, device=device)
    nlist[flat] = atom_index[order][keep]
    vec = vectors.new_zeros(nprobes * nslots, 3)
    vec[flat] = vectors[order][keep]
    return nlist.view(nprobes, nslots), vec.view(nprobes, nslots, 3), max_count


def _pairs(probes, positions, cell, pbc, rcut, with_shifts=False):
    """(probe_index, atom_index, vectors) of all pairs within rcut, and their integer image shifts if asked."""
    device, dtype = positions.device, positions.dtype
    probes = probes.to(device=device, dtype=dtype)
    pbc = [bool(p) for p in pbc]
    rcut = float(rcut)
    if not rcut > 0:
        raise ValueError(f"rcut must be positive, got {rcut}")
    lattice = _effective_lattice(torch.as_tensor(cell, device=device, dtype=dtype), pbc)
    inverse = torch.linalg.inv(lattice)

    probes_wrapped, probe_shifts = _wrap(probes, lattice, inverse, pbc)
    atoms_wrapped, atom_shifts = _wrap(positions, lattice, inverse, pbc)
    image_pos, image_atom, image_shifts = _images(atoms_wrapped, atom_shifts, lattice, inverse, pbc, rcut)

    if not with_shifts:
        return _cell_list_pairs(probes_wrapped, image_pos, image_atom, rcut)
    labels = torch.arange(len(image_pos), device=device)
    probe_index, image_index, vectors = _cell_list_pairs(probes_wrapped, image_pos, labels, rcut)
    shifts = image_shifts[image_index] - probe_shifts[probe_index]
    return probe_index, image_atom[image_index], vectors, shifts


def _effective_lattice(cell, pbc):
    """Cell whose non-periodic rows are replaced by an orthonormal basis of the complement of the periodic rows.

    The periodic rows are kept, so wrapping with it shifts by lattice vectors only; along
    non-periodic axes the cell may be zero or arbitrary.
    """
    mask = torch.tensor(pbc, device=cell.device)
    periodic = cell * mask[:, None].to(cell.dtype)
    if int(torch.linalg.matrix_rank(periodic)) < sum(pbc):
        raise ValueError("cell rows along periodic axes must be linearly independent")
    complement = torch.linalg.svd(periodic).Vh[sum(pbc):]
    lattice = periodic.clone()
    lattice[~mask] = complement
    return lattice


def _wrap(points, lattice, inverse, pbc):
    """Points moved into the cell along periodic axes, and the integer shifts applied."""
    frac = points @ inverse
    mask = torch.tensor(pbc, device=points.device)
    shifts = torch.where(mask, -torch.floor(frac), torch.zeros_like(frac))
    return points + shifts @ lattice, shifts.long()


def _images(atoms, atom_shifts, lattice, inverse, pbc, rcut):
    """Periodic images of wrapped atoms that can lie within rcut of a point wrapped into the cell.

    Returns (image positions (M,3), atom of each image (M,), integer shift of each image w.r.t. the
    unwrapped atom (M,3)).
    """
    device = atoms.device
    # Fractional reach of rcut along axis i is rcut * |b_i| (b: reciprocal vectors, columns of inverse).
    # The small margin covers rounding in the wrapped fractional coordinates.
    reach = (rcut * torch.linalg.norm(inverse, dim=0)).tolist()
    reach = [x + 1e-5 if p else 0.0 for x, p in zip(reach, pbc)]
    ranges = [torch.arange(-math.ceil(x), math.ceil(x) + 1, device=device) for x in reach]
    offsets = torch.cartesian_prod(*ranges).view(-1, 3)

    frac = (atoms @ inverse)[:, None, :] + offsets[None].to(atoms.dtype)
    reach_t = torch.tensor(reach, dtype=atoms.dtype, device=device)
    inside = ((frac >= -reach_t) & (frac < 1 + reach_t)) | ~torch.tensor(pbc, device=device)
    atom, offset = torch.nonzero(inside.all(dim=2), as_tuple=True)
    shifts = offsets[offset]
    image_pos = atoms[atom] + shifts.to(atoms.dtype) @ lattice
    return image_pos, atom, atom_shifts[atom] + shifts


def _bin_offsets():
    """Bin offsets (O,3) whose bins can hold points closer than rcut = _BINS_PER_RCUT bins."""
    k = _BINS_PER_RCUT
    offsets = torch.tensor(list(itertools.product(range(-k, k + 1), repeat=3)))
    gap = (offsets.abs() - 1).clamp(min=0)
    return offsets[gap.square().sum(dim=1) < k * k - 1]


def _cell_list_pairs(points, atoms, labels, rcut):
    """(point index, label of the atom, atom - point) of all point-atom pairs closer than rcut.

    Points and atoms are sorted into bins; the points of a bin are cut into tiles of at most
    _TILE points, and each tile is compared with the atoms of the bins around its bin in one
    batched distance computation (tiles with similar candidate counts are batched together).
    Pairs are counted first and then written in place, which avoids concatenating parts.
    """
    candidates, candidate_first, candidate_count, point_ids, tile_first, tile_length = _tiles(points, atoms, rcut)
    device = points.device
    # A trailing NaN entry pads tiles: its distances compare false.
    nan = points.new_full((1, 3), float("nan"))
    points = torch.cat([points, nan])
    atoms = torch.cat([atoms, nan])
    labels = torch.cat([labels, labels.new_zeros(1)])
    point_ids = torch.cat([point_ids, point_ids.new_tensor([len(points) - 1])])
    candidates = torch.cat([candidates, candidates.new_tensor([len(atoms) - 1])])
    slot = torch.arange(_TILE, device=device)

    def batch(a, b, width):
        """Point and atom indices of tiles a:b padded to (b - a, _TILE) and (b - a, width), with coordinates."""
        column = torch.arange(width, device=device)
        tile_points = point_ids[torch.where(slot < tile_length[a:b, None], tile_first[a:b, None] + slot, -1)]
        tile_atoms = candidates[torch.where(column < candidate_count[a:b, None], candidate_first[a:b, None] + column, -1)]
        return tile_points, tile_atoms, points[tile_points], atoms[tile_atoms]

    batches = _batches(candidate_count, _TILE, _MAX_CANDIDATES)
    close = []
    for a, b, width in batches:
        _, _, point_xyz, atom_xyz = batch(a, b, width)
        close.append(torch.cdist(point_xyz, atom_xyz, compute_mode="donot_use_mm_for_euclid_dist") < rcut)

    sizes = torch.stack([mask.sum() for mask in close]).tolist() if close else []
    point_index = torch.empty(sum(sizes), dtype=torch.long, device=device)
    label = torch.empty(sum(sizes), dtype=labels.dtype, device=device)
    vectors = points.new_empty(sum(sizes), 3)
    start = 0
    for (a, b, width), mask, size in zip(batches, close, sizes):
        tile_points, tile_atoms, point_xyz, atom_xyz = batch(a, b, width)
        row, column = torch.nonzero(mask.view(-1, width), as_tuple=True)
        column += torch.div(row, _TILE, rounding_mode="floor") * width
        stop = start + size
        torch.index_select(tile_points.view(-1), 0, row, out=point_index[start:stop])
        torch.index_select(labels[tile_atoms.view(-1)], 0, column, out=label[start:stop])
        torch.index_select(atom_xyz.view(-1, 3), 0, column, out=vectors[start:stop])
        vectors[start:stop] -= point_xyz.view(-1, 3).index_select(0, row)
        start = stop
    return point_index, label, vectors


def _tiles(points, atoms, rcut):
    """Bin points and atoms, and cut the points of every bin into tiles of at most _TILE points.

    Returns (candidates: atom indices, the candidate atoms of each bin one list after another;
    candidate_first, candidate_count: each tile's slice of candidates; point_ids: point indices
    sorted by bin; tile_first, tile_length: each tile's slice of point_ids), tiles sorted by
    decreasing candidate count and those without candidates left out.
    """
    device = points.device
    k = _BINS_PER_RCUT
    size = rcut / k * (1 + _BIN_INFLATION)
    low = atoms.amin(dim=0) if len(atoms) else points.new_zeros(3)
    atom_bins = torch.floor((atoms - low) / size).long()
    point_bins = torch.floor((points - low) / size).long()

    # Bin coordinates are shifted by 2k so that every point bin that can see an atom, and all its
    # neighbour bins, have coordinates in [0, dims): linear keys then never alias.
    dims = atom_bins.new_zeros(3) if len(atoms) == 0 else atom_bins.amax(dim=0)
    dims = dims + 4 * k + 1
    strides = torch.stack([dims[1] * dims[2], dims[2], torch.ones_like(dims[2])])
    near = ((point_bins >= -k) & (point_bins < dims - 3 * k)).all(dim=1)
    point_ids = torch.nonzero(near, as_tuple=True)[0]
    point_keys = ((point_bins[point_ids] + 2 * k) * strides).sum(dim=1)
    point_keys, order = torch.sort(point_keys)
    point_ids = point_ids[order]
    point_bin_keys, points_per_bin = torch.unique_consecutive(point_keys, return_counts=True)

    # Atom bins, padded with one empty bin that neighbour bins without atoms point to.
    atom_keys, atom_order = torch.sort(((atom_bins + 2 * k) * strides).sum(dim=1))
    atom_bin_keys, atoms_per_bin = torch.unique_consecutive(atom_keys, return_counts=True)
    atom_bin_keys = torch.cat([atom_bin_keys, atom_bin_keys.new_tensor([-1])])
    atoms_per_bin = torch.cat([atoms_per_bin, atoms_per_bin.new_zeros(1)])
    atom_bin_first = torch.cumsum(atoms_per_bin, 0) - atoms_per_bin

    # Candidate atoms of every point bin: the atoms of its neighbour bins.
    neighbour_keys = point_bin_keys[:, None] + (_bin_offsets().to(device) * strides).sum(dim=1)
    found = torch.searchsorted(atom_bin_keys[:-1], neighbour_keys)
    found = torch.where(atom_bin_keys[found] == neighbour_keys, found, len(atom_bin_keys) - 1)
    counts = atoms_per_bin[found]
    candidates = atom_order[_concat_ranges(atom_bin_first[found].flatten(), counts.flatten())]
    candidates_per_bin = counts.sum(dim=1)

    tiles_per_bin = (points_per_bin + _TILE - 1) // _TILE * (candidates_per_bin > 0)
    tile_bin = torch.repeat_interleave(torch.arange(len(tiles_per_bin), device=device), tiles_per_bin)
    tile_in_bin = _concat_ranges(torch.zeros_like(tiles_per_bin), tiles_per_bin)
    candidate_count, order = torch.sort(candidates_per_bin[tile_bin], descending=True, stable=True)
    tile_bin, tile_in_bin = tile_bin[order], tile_in_bin[order]
    candidate_first = (torch.cumsum(candidates_per_bin, 0) - candidates_per_bin)[tile_bin]
    tile_first = (torch.cumsum(points_per_bin, 0) - points_per_bin)[tile_bin] + tile_in_bin * _TILE
    tile_length = (points_per_bin[tile_bin] - tile_in_bin * _TILE).clamp(max=_TILE)
    return candidates, candidate_first, candidate_count, point_ids, tile_first, tile_length


def _concat_ranges(starts, counts):
    """Concatenation of arange(s, s + c) over (s, c) pairs, without a Python loop."""
    total = int(counts.sum())
    first = torch.cumsum(counts, 0) - counts
    return torch.arange(total, device=counts.device) + torch.repeat_interleave(
        starts - first, counts, output_size=total
    )


def _batches(candidate_count, tile, budget):
    """(start, stop, width) of consecutive tiles, sorted by decreasing candidate count, padded to width.

    Each batch holds at most budget padded pairs, or a single tile.
    """
    counts = candidate_count.tolist()
    batches, start = [], 0
    while start < len(counts):
        width = counts[start]
        stop = min(start + max(budget // (tile * width), 1), len(counts))
        batches.append((start, stop, width))
        start = stop
    return batches
