"""deepcharge: learn DFT electron densities on grids and predict them for new structures."""

__version__ = "0.1.0"
