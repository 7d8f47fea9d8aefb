"""Figures from deepcharge's own files: learning curves (lcurve.out), parity plots (test -d detail), comparisons."""

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import DeepChargeError
from ..utils import atomic_path

# points per model in a comparison's parity plot (a regular stride through the rest)
PARITY_POINTS = 100_000


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


def plot_lcurves(files: List[str], output: str, labels: Optional[List[str]] = None):
    """ε_mae against step and against training wall time, one line per file (and per trn/val).

    Lines are labelled by ``labels``, else by each file's directory.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for path, label in zip(files, labels or [Path(f).parent.name or Path(f).name for f in files]):
        curve = read_columns(path)
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


def plot_model_parity(reference: np.ndarray, predictions: Dict[str, np.ndarray], output):
    """Predictions of several models against the reference at the same points, one colour per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
    step = max(1, reference.size // PARITY_POINTS)
    for label, prediction in predictions.items():
        ax.scatter(reference[::step], prediction[::step], s=1, alpha=0.3, label=label, rasterized=True)
    ax.plot([reference.min(), reference.max()], [reference.min(), reference.max()], "k-", linewidth=0.8)
    ax.set_xlabel("DFT density (e/Å³)")
    ax.set_ylabel("predicted density (e/Å³)")
    ax.legend(fontsize=8, markerscale=8)
    _save(fig, output)


def plot_error_histograms(reference: np.ndarray, predictions: Dict[str, np.ndarray], output):
    """Histograms of log10 |error| of several models at the same points, on common bins."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    errors = {label: np.log10(np.maximum(np.abs(p - reference), 1e-12)) for label, p in predictions.items()}
    bins = np.histogram_bin_edges(np.concatenate(list(errors.values())), bins=100)
    for label, error in errors.items():
        ax.hist(error, bins=bins, histtype="step", label=label)
    ax.set_xlabel("log10 |error| (e/Å³)")
    ax.set_ylabel("grid points")
    ax.legend(fontsize=8)
    _save(fig, output)


def plot_slice(reference: np.ndarray, predictions: Dict[str, np.ndarray], output, title: str = "",
               axis_names: Sequence[str] = ("x", "y"), extent: Sequence[float] = (0, 1, 0, 1)):
    """A grid plane: the reference and each model's prediction (one colour scale), each model's error below.

    Arrays are indexed (horizontal, vertical); the error maps share one symmetric scale.
    """
    plt = _pyplot()
    columns = len(predictions) + 1
    fig, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6), squeeze=False, constrained_layout=True)
    errors = {label: prediction - reference for label, prediction in predictions.items()}
    low = min(reference.min(), *(p.min() for p in predictions.values()))
    high = max(reference.max(), *(p.max() for p in predictions.values()))
    limit = max(np.abs(e).max() for e in errors.values()) or 1.0

    def show(ax, values, name, **scale):
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"{axis_names[0]} (Å)", fontsize=8)
        ax.set_ylabel(f"{axis_names[1]} (Å)", fontsize=8)
        ax.tick_params(labelsize=7)
        return ax.imshow(values.T, origin="lower", extent=extent, **scale)

    density = show(axes[0, 0], reference, "reference", cmap="viridis", vmin=low, vmax=high)
    for column, label in enumerate(predictions, start=1):
        show(axes[0, column], predictions[label], label, cmap="viridis", vmin=low, vmax=high)
        error = show(axes[1, column], errors[label], f"{label} − reference", cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1, 0].axis("off")
    fig.colorbar(density, ax=list(axes[0]), label="density (e/Å³)")
    fig.colorbar(error, ax=list(axes[1, 1:]), label="error (e/Å³)")
    fig.suptitle(title, fontsize=10)
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
