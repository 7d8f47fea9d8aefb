"""The smooth environment matrix of DeePMD-kit's se_e2_a descriptor."""

import math

import torch


def smooth_weight(r: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """5th-order switch: 1 below ``rcut_smth``, 0 beyond ``rcut``, u³(−6u² + 15u − 10) + 1 between."""
    u = ((r - rcut_smth) / (rcut - rcut_smth)).clamp(0.0, 1.0)
    return u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0


def cosine_weight(r: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """Deep Density's switch (its Eq. 16 without the 1/(R + δ)): 1 below ``rcut_smth``, ½cos(πu) + ½ up to
    ``rcut``, 0 beyond; C¹."""
    u = ((r - rcut_smth) / (rcut - rcut_smth)).clamp(0.0, 1.0)
    return 0.5 * torch.cos(torch.pi * u) + 0.5


def environment_matrix(vectors: torch.Tensor, mask: torch.Tensor, rcut_smth: float, rcut: float,
                       protection: float = 0.0, switch: str = "polynomial", lmax: int = 1) -> torch.Tensor:
    """Rows s(r)·(1, x/r, y/r, z/r) with s(r) = w(r)/(r + protection); empty slots are zero rows.

    ``protection`` is DeePMD-kit's ``env_protection``: it keeps s finite for a probe sitting on an atom
    (the angular part uses (r + protection)² likewise, as DeePMD-kit does). ``switch`` picks w:
    ``"polynomial"`` (:func:`smooth_weight`, DeePMD-kit) or ``"cosine"`` (:func:`cosine_weight`, Deep Density,
    whose δ is ``protection``). ``lmax`` 2 or 3 appends s·Y_l(v) for l = 2..lmax, v = r/(|r| + protection)
    (:func:`solid_harmonics`), (lmax + 1)² columns in all.

    Args:
        vectors: (..., nnei, 3) neighbour minus centre, Å.
        mask: (..., nnei) True where the slot holds a neighbour.
    Returns:
        (..., nnei, (lmax + 1)²) environment matrix.
    """
    length = torch.linalg.norm(vectors, dim=-1, keepdim=True)
    empty = (~mask).unsqueeze(-1).to(length.dtype)
    length = length + empty  # keeps empty slots away from 1/0; they are zeroed by the weight
    if switch == "cosine":
        weight = cosine_weight(length, rcut_smth, rcut) * (1.0 - empty)
    else:
        weight = smooth_weight(length, rcut_smth, rcut) * (1.0 - empty)
    inv = weight / (length + protection)
    rows = [inv, vectors * (inv / (length + protection))]
    if lmax > 1:
        direction = vectors / (length + protection)
        for l in range(2, lmax + 1):
            rows.append(inv * solid_harmonics(direction, l))
    return torch.cat(rows, dim=-1)


def solid_harmonics(v: torch.Tensor, l: int) -> torch.Tensor:
    """Real solid harmonics of order ``l`` (2 or 3) of vectors v (..., 3), Racah-normalised: Σ_m Y_lm(v)² = |v|^2l,
    so Σ_m Y_lm(a) Y_lm(b) = |a|^l |b|^l P_l(cos θ_ab) is rotation-invariant. (..., 2l + 1)."""
    x, y, z = v.unbind(-1)
    if l == 2:
        return torch.stack([math.sqrt(3.0) * x * y, math.sqrt(3.0) * y * z, 0.5 * (2 * z * z - x * x - y * y),
                            math.sqrt(3.0) * x * z, 0.5 * math.sqrt(3.0) * (x * x - y * y)], dim=-1)
    if l == 3:
        in_plane = x * x + y * y
        return torch.stack([math.sqrt(5.0 / 8.0) * y * (3 * x * x - y * y), math.sqrt(15.0) * x * y * z,
                            math.sqrt(3.0 / 8.0) * y * (4 * z * z - in_plane), 0.5 * z * (2 * z * z - 3 * in_plane),
                            math.sqrt(3.0 / 8.0) * x * (4 * z * z - in_plane),
                            0.5 * math.sqrt(15.0) * z * (x * x - y * y),
                            math.sqrt(5.0 / 8.0) * x * (x * x - 3 * y * y)], dim=-1)
    raise ValueError(f"solid harmonics are implemented for l = 2 and 3, not {l}")

