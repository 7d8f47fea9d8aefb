"""Figures from deepcharge's own files: learning curves (lcurve.out) and parity plots (test -d detail)."""

from pathlib import Path
from typing import List

import numpy as np

from ..errors import DeepChargeError
from ..utils import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_columns(path) -> np.ndarray:
    """A whitespace table with a ``#`` header naming its columns, as a structured array."""
    path = Path(path)
    if not path.is_file():
        raise DeepChargeError(f"{path}: no such file")
    first = path.read_text().splitlines()[:1]
    if not first or not first[0].startswith("#"):
        raise DeepChargeError(f"{path}: expected a '#' header line naming the columns (lcurve.out or test -d)")
    data = np.atleast_1d(np.genfromtxt(path, names=True))
    if data.size == 0:
        raise DeepChargeError(f"{path}: no data lines")
    return data


def plot_lcurves(files: List[str], output: str):
    """ε_mae against step and against training wall time, one line per file (and per trn/val)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for path in files:
        curve = read_columns(path)
        label = Path(path).parent.name or Path(path).name
        for column, style in (("eps_mae_val", "-"), ("eps_mae_trn", "--")):
            if column in curve.dtype.names:
                kind = column.rsplit("_", 1)[1]
                axes[0].plot(curve["step"], curve[column], style, label=f"{label} {kind}")
                axes[1].plot(curve["wall_s"] / 60, curve[column], style, label=f"{label} {kind}")
    for ax, xlabel in zip(axes, ("step", "training time (min)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ε_mae (%)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, output)


def plot_parity(files: List[str], output: str):
    """Predicted against reference density, and the histogram of absolute errors, from test -d files."""
    plt = _pyplot()
    fig, (parity, histogram) = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    low, high = np.inf, -np.inf
    for path in files:
        detail = read_columns(path)
        reference, prediction = detail["rho_ref"], detail["rho_pred"]
        error = np.abs(prediction - reference)
        eps = 100 * error.sum() / np.abs(reference).sum()
        label = f"{Path(path).name} (ε_mae {eps:.3f} %)"
        parity.scatter(reference, prediction, s=1, alpha=0.3, label=label, rasterized=True)
        histogram.hist(np.log10(np.maximum(error, 1e-12)), bins=100, histtype="step", label=label)
        low, high = min(low, reference.min()), max(high, reference.max())
    parity.plot([low, high], [low, high], "k-", linewidth=0.8)
    parity.set_xlabel("DFT density (e/Å³)")
    parity.set_ylabel("predicted density (e/Å³)")
    parity.legend(fontsize=8, markerscale=8)
    histogram.set_xlabel("log10 |error| (e/Å³)")
    histogram.set_ylabel("grid points")
    histogram.legend(fontsize=8)
    _save(fig, output)


def plot_files(files: List[str], output: str):
    """Learning curves or parity plots, by what the files hold (all files must be of one kind)."""
    kinds = {"lcurve" if "step" in read_columns(f).dtype.names else "detail" for f in files}
    if len(kinds) != 1:
        raise DeepChargeError("give either lcurve files or `deepcharge test -d` detail files, not both")
    (plot_lcurves if kinds == {"lcurve"} else plot_parity)(files, output)


def _save(fig, output: str):
    plt = _pyplot()
    suffix = Path(output).suffix or ".png"
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=110, format=suffix.lstrip("."))
    plt.close(fig)
