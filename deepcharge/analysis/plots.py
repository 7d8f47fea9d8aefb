"""Figures from deepcharge's own files: learning curves (lcurve.out), parity plots (test -d detail), comparisons."""

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from deepcharge.errors import DeepChargeError
from deepcharge.utils import atomic_path

log = logging.getLogger("deepcharge")

# points per model in a comparison's parity plot (a regular stride through the rest)
PARITY_POINTS = 100_000


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(ax):
    """Label a log y axis with plain numbers (0.4, 2, 30) instead of 4×10⁻¹; over less than a decade the
    intermediate ticks are labelled too (matplotlib's choice of which), so a narrow range stays readable."""
    from matplotlib import ticker

    class PlainLogFormatter(ticker.LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.3g}"

    ax.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


# what `deepcharge plot` takes, named in its errors
PLOT_ACCEPTS = "plot takes lcurve.out files (from train) or detail files (from `deepcharge test -d`)"
# the columns that make a table a learning curve or a detail file
LCURVE_COLUMNS = {"step", "wall_s"}
DETAIL_COLUMNS = {"rho_ref", "rho_pred"}


def read_columns(path) -> np.ndarray:
    """A whitespace table with a ``#`` header naming its columns, as a structured array."""
    path = Path(path)
    if not path.is_file():
        raise DeepChargeError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        raise DeepChargeError(f"{path}: not a text table ({PLOT_ACCEPTS})") from None
    if not first.startswith("#"):
        raise DeepChargeError(f"{path}: expected a '#' header line naming the columns ({PLOT_ACCEPTS})")
    try:
        data = np.atleast_1d(np.genfromtxt(path, names=True))
    except (ValueError, UnicodeDecodeError):
        raise DeepChargeError(f"{path}: not a table of numbers under its '#' header ({PLOT_ACCEPTS})") from None
    if data.size == 0 or data.dtype.names is None:
        raise DeepChargeError(f"{path}: no data lines ({PLOT_ACCEPTS})")
    return data


def table_kind(path, data: np.ndarray) -> str:
    """``"lcurve"`` or ``"detail"``, by the columns a table names (an error for any other table)."""
    names = set(data.dtype.names)
    for kind, columns in (("lcurve", LCURVE_COLUMNS), ("detail", DETAIL_COLUMNS)):
        if columns <= names and all(np.isfinite(data[name]).all() for name in columns):
            return kind
    raise DeepChargeError(f"{path}: neither a learning curve nor a detail file (columns {' '.join(data.dtype.names)}); "
                          f"{PLOT_ACCEPTS}")


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
        _plain_log_ticks(ax)
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
    """Predictions of several models against the reference at the same points: one panel per model on common
    axes (in its error_hist.png colour), so no model hides another; each title gives its ε_mae over all the points."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(predictions), figsize=(4.2 * len(predictions) + 0.6, 4.4), squeeze=False,
                             sharex=True, sharey=True, constrained_layout=True)
    step = max(1, reference.size // PARITY_POINTS)
    limits = [reference.min(), reference.max()]
    for index, (ax, (label, prediction)) in enumerate(zip(axes[0], predictions.items())):
        eps = 100 * np.abs(prediction - reference).sum() / np.abs(reference).sum()
        # the colour of the model's line in error_hist.png
        ax.scatter(reference[::step], prediction[::step], s=1, alpha=0.3, color=f"C{index}", rasterized=True)
        ax.plot(limits, limits, "k-", linewidth=0.8)
        ax.set_title(f"{label} (ε_mae {eps:.3f} %)", fontsize=9)
        ax.set_xlabel("DFT density (e/Å³)")
    axes[0, 0].set_ylabel("predicted density (e/Å³)")
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
               axis_names: Sequence[str] = ("x", "y"), coordinates: Optional[Tuple[np.ndarray, np.ndarray]] = None):
    """A grid plane: the reference and each model's prediction (one colour scale), each model's error below.

    Arrays are indexed (first in-plane grid axis, second); ``coordinates`` (X, Y) in Å of every point in the
    plane draw it as it is (a 60° cell as a rhombus), else it is drawn on the grid indices. The error maps share
    one symmetric scale.
    """
    plt = _pyplot()
    columns = len(predictions) + 1
    fig, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6), squeeze=False, constrained_layout=True)
    errors = {label: prediction - reference for label, prediction in predictions.items()}
    low = min(reference.min(), *(p.min() for p in predictions.values()))
    high = max(reference.max(), *(p.max() for p in predictions.values()))
    limit = max(np.abs(e).max() for e in errors.values()) or 1.0

    if coordinates is None:
        coordinates = np.meshgrid(np.arange(reference.shape[0]), np.arange(reference.shape[1]), indexing="ij")

    def show(ax, values, name, **scale):
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(axis_names[0], fontsize=8)
        ax.set_ylabel(axis_names[1], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_aspect("equal")
        return ax.pcolormesh(*coordinates, values, shading="nearest", rasterized=True, **scale)

    density = show(axes[0, 0], reference, "reference", cmap="viridis", vmin=low, vmax=high)
    for column, label in enumerate(predictions, start=1):
        show(axes[0, column], predictions[label], label, cmap="viridis", vmin=low, vmax=high)
        error = show(axes[1, column], errors[label], f"{label} − reference", cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1, 0].axis("off")
    fig.colorbar(density, ax=list(axes[0]), label="density (e/Å³)")
    fig.colorbar(error, ax=list(axes[1, 1:]), label="error (e/Å³)")
    fig.suptitle(title, fontsize=10)
    _save(fig, output)


def plot_accuracy_speed(studies: Dict[str, List[dict]], output):
    """ε_mae over all test points against predict probes/s: one marker per backend, one colour per study
    (a ``deepcharge compare`` summary's ``models``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    markers = {}
    for colour, (study, models) in enumerate(studies.items()):
        for model in models:
            marker = markers.setdefault(model["backend"], "osD^vP*X"[len(markers) % 8])
            ax.scatter(model["probes_per_second"], model["overall"]["eps_mae_percent"], marker=marker,
                       color=f"C{colour}", s=40)
        ax.scatter([], [], color=f"C{colour}", marker="s", label=study)
    for backend, marker in markers.items():
        ax.scatter([], [], color="0.4", marker=marker, label=backend)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.set_xlabel("predict speed (probes/s)")
    ax.set_ylabel("ε_mae over the test files (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, output)


def plot_loop(errors: Dict[str, List[Tuple[int, float]]], measures: List[Tuple[int, float, bool]],
              trust: Tuple[float, float], output):
    """A concurrent-learning loop by iteration: ε_mae (%) on each test file (``errors``: label → (iteration,
    ε)), and every candidate's σ measure (``measures``: (iteration, measure, chosen)) between the trust levels."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2 if errors else 1, figsize=(10 if errors else 5.5, 4), squeeze=False,
                             constrained_layout=True)
    if errors:
        for label, points in errors.items():
            if points:
                axes[0, 0].plot(*zip(*points), "o-", label=label)
        axes[0, 0].set_ylabel("ε_mae (%), mean of the models")
        axes[0, 0].legend(fontsize=8)
    sigma = axes[0, -1]
    for chosen, style in ((False, {"facecolors": "none", "edgecolors": "C0"}), (True, {"color": "C3"})):
        points = [(iteration, value) for iteration, value, picked in measures if picked == chosen]
        if points:
            sigma.scatter(*zip(*points), s=16, label="chosen" if chosen else "not chosen", **style)
    values = [value for _, value, _ in measures]
    for level, name in zip(trust, ("trust_lo", "trust_hi")):
        sigma.axhline(level, color="0.4", linestyle="--" if name == "trust_lo" else ":", linewidth=1, label=name)
    if values and min(values) > 0:  # log scale, the candidates in view with the trust levels near them
        shown = values + [level for level in trust if min(values) / 10 < level < max(values) * 10]
        sigma.set_yscale("log")
        _plain_log_ticks(sigma)
        sigma.set_ylim(min(shown) / 1.5, max(shown) * 1.5)
    sigma.set_ylabel("σ measure of a candidate (e/Å³)")
    sigma.legend(fontsize=8)
    for ax in axes[0]:
        ax.set_xlabel("iteration")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    _save(fig, output)


def plot_files(files: List[str], output: str):
    """Learning curves or parity plots, by what the files hold (all files must be of one kind)."""
    kinds = {table_kind(f, read_columns(f)) for f in files}
    if len(kinds) != 1:
        raise DeepChargeError("give either lcurve files or `deepcharge test -d` detail files, not both")
    lcurves = kinds == {"lcurve"}
    (plot_lcurves if lcurves else plot_parity)(files, output)
    log.info("%s written: %s of %s", output, "learning curves" if lcurves else "parity plot", ", ".join(files))


def _save(fig, output: str):
    plt = _pyplot()
    suffix = Path(output).suffix or ".png"
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=110, format=suffix.lstrip("."))
    plt.close(fig)
