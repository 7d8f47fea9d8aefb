"""deepcharge: learn DFT electron densities on grids and predict them for new structures.

Python use: ``DensityPredictor("frozen_model.pth").eval(atoms, points)`` (see README "Python"); the names below
are imported on first use, so the command line starts without loading torch.
"""

__version__ = "0.1.0"

_PUBLIC = {"DensityPredictor": "deepcharge.infer.density_predictor",
           "DensityEnsemble": "deepcharge.infer.density_predictor", "DeepChargeError": "deepcharge.errors",
           "read_density": "deepcharge.io", "write_density": "deepcharge.io"}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'deepcharge' has no attribute {name!r}")
