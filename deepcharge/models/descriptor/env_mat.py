"""The smooth environment matrix of DeePMD-kit's se_e2_a descriptor."""

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
                       protection: float = 0.0, switch: str = "polynomial") -> torch.Tensor:
    """Rows s(r)·(1, x/r, y/r, z/r) with s(r) = w(r)/(r + protection); empty slots are zero rows.

    ``protection`` is DeePMD-kit's ``env_protection``: it keeps s finite for a probe sitting on an atom
    (the angular part uses (r + protection)² likewise, as DeePMD-kit does). ``switch`` picks w:
    ``"polynomial"`` (:func:`smooth_weight`, DeePMD-kit) or ``"cosine"`` (:func:`cosine_weight`, Deep Density,
    whose δ is ``protection``).

    Args:
        vectors: (..., nnei, 3) neighbour minus centre, Å.
        mask: (..., nnei) True where the slot holds a neighbour.
    Returns:
        (..., nnei, 4) environment matrix.
    """
    length = torch.linalg.norm(vectors, dim=-1, keepdim=True)
    empty = (~mask).unsqueeze(-1).to(length.dtype)
    length = length + empty  # keeps empty slots away from 1/0; they are zeroed by the weight
    if switch == "cosine":
        weight = cosine_weight(length, rcut_smth, rcut) * (1.0 - empty)
    else:
        weight = smooth_weight(length, rcut_smth, rcut) * (1.0 - empty)
    inv = weight / (length + protection)
    return torch.cat([inv, vectors * (inv / (length + protection))], dim=-1)
