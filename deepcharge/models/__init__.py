"""Density models. Importing this package registers every backend."""

from . import atom_centred, pseudo_atom  # noqa: F401  (register "atom_centred" and "pseudo_atom")
from .message_passing import painn, schnet  # noqa: F401  (register "painn" and "schnet")
from .base import MODEL_BUILDERS, build_model

__all__ = ["MODEL_BUILDERS", "build_model"]
