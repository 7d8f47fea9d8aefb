"""Density models. Importing this package registers every backend."""

from deepcharge.models import atom_centred, pseudo_atom  # noqa: F401  (register "atom_centred" and "pseudo_atom")
from deepcharge.models.base import MODEL_BUILDERS, build_model
from deepcharge.models.message_passing import painn, schnet  # noqa: F401  (register "painn" and "schnet")

__all__ = ["MODEL_BUILDERS", "build_model"]
