"""Neighbour lists for probe points and atoms under (partial) periodic boundary conditions.

A cell-list scheme in pure torch that scales linearly with the number of probes and atoms:
points are wrapped into the cell along periodic axes, the periodic images of the atoms that
can reach the wrapped points are built, points and atoms are sorted into Cartesian bins of
size about ``rcut / 3``, and the points of each bin, in tiles, are compared with the atoms of
the surrounding bins in batched distance computations. Works on the device and in the float
dtype of the inputs.
"""

import itertools
import math
from typing import Sequence, Tuple

import torch

Pairs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""(first index LongTensor(E), second index LongTensor(E), vectors Tensor(E, 3))."""

_BINS_PER_RCUT = 3
# Bins are a hair larger than rcut / _BINS_PER_RCUT so that rounding in the bin assignment can
# never hide a pair (see _bin_offsets).
_BIN_INFLATION = 1e-4
# Points per tile, and bound on the padded (point, atom image) pairs compared at once.
_TILE = 32
_MAX_CANDIDATES = 2**20


def probe_neighbours(probes: torch.Tensor, positions: torch.Tensor, cell: torch.Tensor, pbc: Sequence[bool],
                     rcut: float) -> Pairs:
    """Atoms (with periodic images) within rcut of each probe point.

    probes: (P,3) Cartesian Å; positions: (N,3); cell: (3,3) rows are lattice vectors;
    pbc: sequence of 3 bools; rcut: float.
    Returns (probe_index LongTensor(E), atom_index LongTensor(E), vectors Tensor(E,3)) with
    vectors = positions[atom_index] + shift - probes[probe_index] for an image shift (an integer
    combination of cell rows) and |vectors| < rcut. Every (probe, atom image) pair within rcut
    appears exactly once (a pair at distance 0 is kept); pairs are sorted by probe index.
    """
    return _pairs(probes, positions, cell, pbc, rcut)


def atom_neighbours(positions: torch.Tensor, cell: torch.Tensor, pbc: Sequence[bool], rcut: float) -> Pairs:
    """Atom pairs (centre i, neighbour j image) within rcut, without each atom's zero-shift self pair.

    Returns (i LongTensor(E), j LongTensor(E), vectors Tensor(E,3)) with
    vectors = positions[j] + shift - positions[i]; sorted by i.
    """
    i, j, vectors, shifts = _pairs(positions, positions, cell, pbc, rcut, with_shifts=True)
    keep = (i != j) | (shifts != 0).any(dim=1)
    return i[keep], j[keep], vectors[keep]


def pad_by_type(probe_index: torch.Tensor, atom_index: torch.Tensor, vectors: torch.Tensor, atom_types: torch.Tensor,
                sel: Sequence[int], nprobes: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-probe neighbour slots grouped by type, nearest first.

    Slots of type t are the block [sum(sel[:t]), sum(sel[:t+1])); beyond sel[t] neighbours of a
    type the farthest are dropped, and equal distances keep the order of the input pairs.
    Returns (nlist LongTensor(P, sum(sel)) padded with -1, vec Tensor(P, sum(sel), 3) zero padded,
    max_count LongTensor(ntypes): the largest number of neighbours of each type any probe has).
    Fastest when the pairs are sorted by probe, as probe_neighbours returns them.
    """
    device = vectors.device
    if len(probe_index) > 1 and not bool((probe_index[1:] >= probe_index[:-1]).all()):
        order = torch.argsort(probe_index, stable=True)
        probe_index, atom_index, vectors = probe_index[order], atom_index[order], vectors[order]
    types = atom_types.to(device)[atom_index]
    distances = torch.einsum("ij,ij->i", vectors, vectors)
    # Empty slots point to these trailing padding entries.
    atom_padded = torch.cat([atom_index, atom_index.new_tensor([-1])])
    vectors_padded = torch.cat([vectors, vectors.new_zeros(1, 3)])
    empty = len(atom_index)
    nearest = torch.full((nprobes, sum(sel)), empty, dtype=torch.long, device=device)
    max_count = torch.zeros(len(sel), dtype=torch.long, device=device)
    start = 0
    for t, width in enumerate(sel):
        # Pairs of type t in a dense (probe, column) table, one row per probe, sorted by distance.
        pairs = torch.nonzero(types == t, as_tuple=True)[0]
        probe = probe_index[pairs]
        counts = torch.bincount(probe, minlength=nprobes)
        most = int(counts.max()) if nprobes else 0
        max_count[t] = most
        if width and most:
            column = torch.arange(len(pairs), device=device) - (torch.cumsum(counts, 0) - counts)[probe]
            table = distances.new_full((nprobes, most), float("inf"))
            table[probe, column] = distances[pairs]
            table_pairs = torch.full((nprobes, most), empty, dtype=torch.long, device=device)
            table_pairs[probe, column] = pairs
            by_distance = torch.sort(table, dim=1, stable=True).indices[:, :width]
            nearest[:, start : start + by_distance.shape[1]] = table_pairs.gather(1, by_distance)
        start += width
    nlist = atom_padded.index_select(0, nearest.view(-1)).view(nearest.shape)
    vec = vectors_padded.index_select(0, nearest.view(-1)).view(*nearest.shape, 3)
    return nlist, vec, max_count


def _pairs(probes, positions, cell, pbc, rcut, with_shifts=False):
    """(probe_index, atom_index, vectors) of all pairs within rcut, and their integer shifts if asked."""
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
    """The cell with its non-periodic rows replaced by an orthonormal basis of the periodic rows' complement.

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
    return offsets[gap.square().sum(dim=1) < k * k]


def _cell_list_pairs(points, atoms, labels, rcut):
    """(point index, label of the atom, atom - point) of all point-atom pairs closer than rcut.

    Points and atoms are sorted into bins; the points of a bin are cut into tiles of at most
    _TILE points, and each tile is compared with the atoms of the bins around its bin in one
    batched distance computation (tiles with similar candidate counts are batched together).
    Pairs are counted first and then written in place, sorted by point.
    """
    tiles = _tiles(points, atoms, rcut)
    candidates, candidate_first, candidate_count, point_ids, tile_first, tile_length = tiles
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
        """Point and atom indices of tiles a:b, padded to _TILE and width columns, and their coordinates."""
        column = torch.arange(width, device=device)
        point_slot = torch.where(slot < tile_length[a:b, None], tile_first[a:b, None] + slot, -1)
        atom_slot = torch.where(column < candidate_count[a:b, None], candidate_first[a:b, None] + column, -1)
        tile_points, tile_atoms = point_ids[point_slot], candidates[atom_slot]
        return tile_points, tile_atoms, points[tile_points], atoms[tile_atoms]

    # First pass: which padded pairs are close, and how many pairs each point has.
    batches = _batches(candidate_count, _TILE, _MAX_CANDIDATES)
    close = []
    pairs_per_point = torch.zeros(len(points), dtype=torch.long, device=device)
    for a, b, width in batches:
        tile_points, _, point_xyz, atom_xyz = batch(a, b, width)
        close.append(torch.cdist(point_xyz, atom_xyz, compute_mode="donot_use_mm_for_euclid_dist") < rcut)
        pairs_per_point[tile_points.view(-1)] = close[-1].sum(dim=2).view(-1)
    # The last entry (the padding point) has no pairs.
    point_first = torch.cumsum(pairs_per_point, 0) - pairs_per_point
    total = int(pairs_per_point.sum())

    # Second pass: write every point's pairs to its slice of the outputs, sorted by point.
    label = torch.empty(total, dtype=labels.dtype, device=device)
    vectors = points.new_empty(total, 3)
    for (a, b, width), mask in zip(batches, close):
        tile_points, tile_atoms, point_xyz, atom_xyz = batch(a, b, width)
        row, column = torch.nonzero(mask.view(-1, width), as_tuple=True)
        row_counts = mask.view(-1, width).sum(dim=1)
        destination = (point_first[tile_points.view(-1)] - torch.cumsum(row_counts, 0) + row_counts)[row]
        destination += torch.arange(len(row), device=device)
        column += torch.div(row, _TILE, rounding_mode="floor") * width
        label.index_copy_(0, destination, labels[tile_atoms.view(-1)].index_select(0, column))
        pair_vectors = atom_xyz.view(-1, 3).index_select(0, column) - point_xyz.view(-1, 3).index_select(0, row)
        vectors.index_copy_(0, destination, pair_vectors)
    point_index = torch.repeat_interleave(
        torch.arange(len(points), device=device), pairs_per_point, output_size=total
    )
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
