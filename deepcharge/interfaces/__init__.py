"""Bridges from deepcharge predictions to DFT codes (each imports its code lazily)."""
