"""The training input: one dargs schema that validates, fills defaults and documents every key.

As in DeePMD-kit (``deepmd/utils/argcheck.py``), keys starting with ``_`` are comments, variants are
chosen by a ``type`` key, and the same tree prints the documentation (``deepcharge doc-train-input``).
"""

import difflib
import json
import re
from pathlib import Path

import yaml
from dargs import Argument, ArgumentEncoder, Variant
from dargs.json_schema import generate_json_schema

from deepcharge.choices import ACTIVATION_FUNCTIONS, DENSITY_BLOCKS, PRECISIONS
from deepcharge.chunks import EVALUATION_CHUNK
from deepcharge.errors import DeepChargeError


def _positive(value) -> bool:
    return value > 0


def _positive_ints(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and v > 0 for v in values)


def _activation(value) -> bool:
    return value in ACTIVATION_FUNCTIONS


def _precision(value) -> bool:
    return value in PRECISIONS


def _either(names) -> str:
    """``"a" or "b"``: the choices ``names`` for a message."""
    return " or ".join(f'"{name}"' for name in names)


def embedding_args(neuron: list, paper: str):
    """Keys of the embedding nets every se_e2_a-type descriptor has."""
    return [
        Argument("neuron", list, optional=True, default=neuron, extra_check=_positive_ints,
                 extra_check_errmsg="must be a list of positive integers",
                 doc=f"Widths of the embedding net layers ({paper}: {neuron})."),
        Argument("activation_function", str, optional=True, default="tanh", extra_check=_activation,
                 extra_check_errmsg=f"must be one of {list(ACTIVATION_FUNCTIONS)}",
                 doc="Activation of the embedding net."),
        Argument("resnet_dt", bool, optional=True, default=False,
                 doc="Learnable timestep multiplying each embedding layer's output."),
    ]


def descriptor_se_e2_a():
    """Keys of the se_e2_a descriptor."""
    return [
        Argument("sel", [list, str], optional=True, default="auto",
                 extra_check=lambda v: v == "auto" or _positive_ints(v),
                 extra_check_errmsg="must be a list of positive integers (one per type) or \"auto\"",
                 doc="Neighbour slots per atom type within `rcut`: a list of positive integers, one per entry of "
                     "`type_map`, or \"auto\" (largest count in the training data × 1.1, rounded up to a "
                     "multiple of 4, as `dp`). `deepcharge neighbor-stat` prints the counts."),
        Argument("rcut", float, optional=True, default=6.5, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Cut-off radius in Å (Deep Charge: 6.5)."),
        Argument("rcut_smth", float, optional=True, default=0.5,
                 doc="Where the 5th-order smooth switch starts, in Å (must be below `rcut`)."),
        *embedding_args([20, 40, 80], "Deep Charge"),
        Argument("axis_neuron", int, optional=True, default=16, alias=["n_axis_neuron"], extra_check=_positive,
                 extra_check_errmsg="must be positive",
                 doc="Number of columns of G< in D = (1/N²) Gᵀ R Rᵀ G< (at most the last embedding width)."),
        Argument("env_protection", float, optional=True, default=0.0,
                 doc="DeePMD-kit's env_protection: s(r) = w(r)/(r + env_protection), so a probe sitting on "
                     "an atom stays finite."),
        Argument("lmax", int, optional=True, default=1, extra_check=lambda v: v in (1, 2, 3),
                 extra_check_errmsg="must be 1, 2 or 3",
                 doc="Highest angular order of the environment matrix rows. 1 is DeePMD-kit's se_e2_a: rows "
                     "s·(1, x/r, y/r, z/r). 2 and 3 append s times the solid harmonics of those orders and add one "
                     "block Gᵀ R_l R_lᵀ G< per order to D, so the angle between two neighbours is resolved to "
                     "that order with the learned radial functions G."),
        Argument("three_body", [dict, None], [
            Argument("rcut", float, optional=True, default=3.6, extra_check=_positive,
                     extra_check_errmsg="must be positive", doc="Cut-off radius of the three-body terms in Å "
                                                                 "(at most the descriptor's `rcut`)."),
            Argument("rcut_smth", float, optional=True, default=0.5,
                     doc="Where their smooth switch starts, in Å (below `rcut`)."),
            Argument("sel", list, optional=True, default=[16], extra_check=_positive_ints,
                     extra_check_errmsg="must be a list of positive integers",
                     doc="How many of each type's nearest neighbour slots enter the pairs, one per type (a "
                         "single entry applies to every type); cost grows with its square."),
            Argument("num_radial", int, optional=True, default=8, extra_check=_positive,
                     extra_check_errmsg="must be positive", doc="Gaussian radial functions φ_a."),
            Argument("lmax", int, optional=True, default=4, extra_check=lambda v: v >= 0,
                     extra_check_errmsg="must be non-negative", doc="Highest Legendre order of the angle terms."),
        ], optional=True, default=None,
            doc="Adds Σ_jk φ_a(r_j) φ_b(r_k) P_l(cos θ_jk) over pairs of neighbours (θ the angle at the probe) "
                "to the fitting net's input: angular detail that se_e2_a, whose R Rᵀ carries cos θ only to "
                "first order, cannot express. null (default) leaves it out."),
        Argument("seed", [int, None], optional=True, default=None,
                 doc="Seed of the embedding nets' initialisation (default: derived from `training.seed`)."),
    ]


def fitting_net_args(neuron: list, resnet_dt: bool, trainable_skip: bool, descriptor_norm: str, paper: str,
                     extra: list, doc: str):
    """Keys of a density fitting net, with a family's defaults and its own ``extra`` keys."""
    return Argument("fitting_net", dict, [
        Argument("neuron", list, optional=True, default=neuron, alias=["n_neuron"],
                 extra_check=_positive_ints, extra_check_errmsg="must be a list of positive integers",
                 doc=f"Widths of the fitting net's hidden layers ({paper}: {neuron})."),
        Argument("activation_function", str, optional=True, default="tanh", extra_check=_activation,
                 extra_check_errmsg=f"must be one of {list(ACTIVATION_FUNCTIONS)}",
                 doc="Activation of the fitting net."),
        Argument("resnet_dt", bool, optional=True, default=resnet_dt,
                 doc="Learnable timestep multiplying each hidden layer's output."),
        Argument("trainable_skip", bool, optional=True, default=trainable_skip,
                 doc="Weight each ResNet skip connection by a learnable scalar (Deep Density's fitting net)."),
        Argument("descriptor_norm", str, optional=True, default=descriptor_norm,
                 extra_check=lambda v: v in ("whiten", "standardize"),
                 extra_check_errmsg="must be \"whiten\" or \"standardize\"",
                 doc="How the descriptor is normalised before the fitting net, with statistics of the training "
                     "data: \"standardize\" (per feature) or \"whiten\" (also decorrelated, which trains much "
                     "faster: se_e2_a features of probe points are strongly correlated)."),
        Argument("whiten_floor", float, optional=True, default=1e-4, extra_check=_positive,
                 extra_check_errmsg="must be positive",
                 doc="With \"whiten\": covariance eigenvalues below this fraction of the largest are raised to it, "
                     "so directions without signal are not amplified."),
        *extra,
        Argument("seed", [int, None], optional=True, default=None,
                 doc="Seed of the fitting net's initialisation (default: derived from `training.seed`)."),
    ], optional=True, default={}, doc=doc)


def radial_baseline_arg():
    """The pseudo-atom fitting net's radial baseline."""
    return Argument("radial_baseline", int, optional=True, default=32, extra_check=lambda v: v >= 0,
                    extra_check_errmsg="must be a non-negative integer",
                    doc="Gaussians per species of a radial baseline ρ₀(r) = Σ_atoms f_type(|r − R|), fitted to the "
                        "training density by least squares before training (and trained with the rest); the net "
                        "learns ρ − ρ₀, several times smaller than ρ, and reaches a lower error. 0 turns it off.")


def baseline_three_body_arg():
    """The pseudo-atom fitting net's linear three-body baseline."""
    return Argument("baseline_three_body", bool, optional=True, default=False,
                    doc="Adds a linear combination of the descriptor's three-body terms to the baseline ρ₀, fitted "
                        "by least squares together with the radial profiles before training and then kept fixed "
                        "(needs `descriptor.three_body`): least squares finds in seconds what gradient descent does "
                        "not find in thousands of steps, so the net only learns what it leaves.")


def descriptor_deep_density():
    """Keys of the atom-centred family's descriptor (Deep Density's values as defaults)."""
    return [
        Argument("rcut", float, optional=True, default=3.5, extra_check=_positive,
                 extra_check_errmsg="must be positive",
                 doc="Cut-off radius R_c in Å: an atom's neighbours, and the probes it contributes to, lie within "
                     "it (Deep Density: 3.5 for water, 4 for molecules, 6 for Al)."),
        Argument("rcut_smth", float, optional=True, default=2.5,
                 doc="R_cs in Å: where the cosine switch of φ(R) = w(R)/(R + δ) starts (below `rcut`)."),
        Argument("delta", float, optional=True, default=0.1, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="δ of φ(R) = 1/(R + δ) in Å: keeps φ finite for a probe "
                                                             "on an atom."),
        *embedding_args([5, 10, 20, 40], "Deep Density, water"),
        Argument("axis_neuron", [int, None], optional=True, default=None,
                 extra_check=lambda v: v is None or v > 0, extra_check_errmsg="must be positive or null",
                 doc="Columns of T< in D = Tᵀ T<; null (default) takes all M, the paper's full M×M (its upper "
                     "triangle: D is symmetric)."),
        Argument("seed", [int, None], optional=True, default=None,
                 doc="Seed of the embedding nets' initialisation (default: derived from `training.seed`)."),
    ]


def message_passing_args(name: str, interactions: int, num_basis: int, basis_doc: str, doc: str) -> Argument:
    """Keys of a DeepDFT message-passing family (the papers' values as defaults)."""
    return Argument(name, dict, [
        Argument("cutoff", float, optional=True, default=4.0, extra_check=_positive,
                 extra_check_errmsg="must be positive",
                 doc="Graph cutoff in Å: atoms within it exchange messages, and probes receive from atoms within "
                     "it (DeepDFT: 4)."),
        Argument("num_interactions", int, optional=True, default=interactions, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc=f"Interaction steps T (DeepDFT: {interactions})."),
        Argument("num_features", int, optional=True, default=128, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Hidden state size F (DeepDFT: 128)."),
        Argument("num_basis", int, optional=True, default=num_basis, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Radial basis functions: " + basis_doc),
        Argument("seed", [int, None], optional=True, default=None,
                 doc="Seed of the initial weights (default: derived from `training.seed`)."),
    ], doc=doc)


def model_args():
    """The ``model`` section; ``type`` picks the model family."""
    pseudo_atom = Argument("pseudo_atom", dict, [
        Argument("descriptor", dict, [], [Variant("type", [
            Argument("se_e2_a", dict, descriptor_se_e2_a(), alias=["se_a"],
                     doc="DeepPot-SE descriptor built from the real atoms around the probe."),
        ], optional=True, default_tag="se_e2_a", doc="The descriptor type.")],
            optional=True, default={}, doc="The descriptor of a probe point's environment."),
        fitting_net_args([200, 200, 200], True, False, "whiten", "Deep Charge",
                         [radial_baseline_arg(), baseline_three_body_arg()],
                         "The fitting net: a ResNet from descriptor to density, whose output is shifted and scaled "
                         "by the mean and std of the training density."),
    ], alias=["deep_charge"], doc="Deep Charge: every grid point is a pseudo-atom whose se_e2_a descriptor "
                                  "feeds a ResNet fitting net.")
    atom_centred = Argument("atom_centred", dict, [
        Argument("descriptor", dict, [], [Variant("type", [
            Argument("se_e2_a", dict, descriptor_deep_density(), alias=["se_a"],
                     doc="DeepPot-SE descriptor of an atom's neighbours within `rcut`, the probe included as "
                         "species 0."),
        ], optional=True, default_tag="se_e2_a", doc="The descriptor type.")],
            optional=True, default={}, doc="The descriptor of an atom and the probe."),
        fitting_net_args([50, 50, 50, 50, 50], False, True, "standardize", "Deep Density, water", [],
                         "Per species of the centre atom: a ResNet from the descriptor to the corrections (N, E) of "
                         "the ansatz, starting at zero."),
    ], alias=["deep_density"], doc="Deep Density: ρ(r) = Σ_I ρ_I(r) over atoms I within `rcut` of r, each "
                                   "w(R)(N + A R + B) exp(C R² + D R + E) with N, E from a fitting net on atom I's "
                                   "descriptor in which the probe is a neighbour of species 0.")
    schnet = message_passing_args(
        "schnet", interactions=6, num_basis=40,
        basis_doc="Gaussians exp(−(r − kΔ)²/2Δ²) with Δ = cutoff/num_basis (DeepDFT: 0.1 Å spacing).",
        doc="Invariant DeepDFT (SchNet-like, Jørgensen & Bhowmik 2020): continuous-filter convolutions among "
            "atoms; probe points only receive messages and update through a forget gate.")
    painn = message_passing_args(
        "painn", interactions=3, num_basis=20,
        basis_doc="sin(nπr/cutoff)/r for n = 1..num_basis, times a cosine cutoff (DeepDFT: 20).",
        doc="Equivariant DeepDFT (PaiNN-based, Jørgensen & Bhowmik 2022): scalar and vector states; probe "
            "points only receive messages, with the gated updates of its Eqs. 8-9.")
    return Argument("model", dict, [
        Argument("type_map", list, extra_check=lambda v: len(v) > 0 and all(isinstance(s, str) for s in v),
                 extra_check_errmsg="must be a non-empty list of element symbols",
                 doc="Element symbols the model knows, e.g. [\"Si\"]; their order fixes the type indices."),
        Argument("precision", str, optional=True, default="float32",
                 extra_check=_precision, extra_check_errmsg=f"must be {_either(PRECISIONS)}",
                 doc=f"Floating point precision of the model: {_either(PRECISIONS)}."),
    ], [Variant("type", [pseudo_atom, atom_centred, schnet, painn], optional=True, default_tag="pseudo_atom",
                doc="The model family.")], doc="The model: species, family and its hyperparameters.")


def learning_rate_args():
    """The ``learning_rate`` section."""
    exp = Argument("exp", dict, [
        Argument("start_lr", float, optional=True, default=1e-3, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Learning rate at step 0."),
        Argument("stop_lr", float, optional=True, default=1e-8, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Learning rate reached at the last step."),
        Argument("decay_steps", int, optional=True, default=5000, extra_check=_positive,
                 extra_check_errmsg="must be positive",
                 doc="The rate is multiplied by a constant factor every `decay_steps` steps. One of at least "
                     "`numb_steps` would never decay it, so it is replaced, as DeePMD-kit does, by 100 "
                     "(numb_steps // 100 + 1 when numb_steps ≤ 1009) and the log says so."),
        Argument("descriptor_lr_factor", float, optional=True, default=1.0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative",
                 doc="Multiplies the rate for the descriptor's parameters (the embedding nets); below 1 keeps "
                     "the whitened fitting inputs stable while the fitting net learns, 0 freezes them (their "
                     "descriptor is then computed once for a fixed probe set: see `training_data.cache_features`)."),
    ], doc="lr(t) = start_lr · r^⌊t/decay_steps⌋ with r chosen so that lr reaches stop_lr at `numb_steps`.")
    return Argument("learning_rate", dict, [], [Variant("type", [exp], optional=True, default_tag="exp")],
                    optional=True, default={}, doc="The learning rate schedule.")


def loss_args():
    """The ``loss`` section."""
    return Argument("loss", dict, [], [Variant("type", [
        Argument("mse", dict, hartree_args(), doc="Mean squared error of the density (scaled by the training "
                                                  "density's variance)."),
        Argument("mae", dict, hartree_args(), doc="Mean absolute error of the density (scaled by the training "
                                                  "density's std); trains directly for ε_mae."),
    ], optional=True, default_tag="mse", doc="The loss function.")], optional=True, default={},
        doc="The training loss.")


def hartree_args():
    """The loss's optional Hartree term (:mod:`deepcharge.train.hartree_term`)."""
    return [
        Argument("hartree_pref", float, optional=True, default=0.0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative",
                 doc="Weight of the Hartree term: pref · E_H[δρ]/E_H₀ is added to the loss every `hartree_every` "
                     "steps, E_H[δρ] the Coulomb energy of the model's error over a sub-grid of one training "
                     "snapshot (the held-out slab counts as no error), E_H₀ its first value. It weighs the error's "
                     "long-wavelength part, which a batch of scattered probes cannot see and which decides how far "
                     "an SCF started from the prediction is from its end. 0 (default) leaves it out; it needs every "
                     "training snapshot in memory (pool_size 0) and one process. README (\"Starting pw.x from a "
                     "prediction\") measures what it does on one-shot Si64."),
        Argument("hartree_every", int, optional=True, default=10, extra_check=lambda v: v > 0,
                 extra_check_errmsg="must be positive", doc="Steps between two Hartree terms."),
        Argument("hartree_stride", int, optional=True, default=2, extra_check=lambda v: v > 0,
                 extra_check_errmsg="must be positive",
                 doc="The sub-grid takes every stride-th grid point along each axis (the largest divisor of the "
                     "axis's size not above it), from an offset drawn each time: its cost is 1/stride³ of a pass "
                     "over the whole grid."),
    ]


def sampling_args():
    """Keys of ``training_data`` only: how batches and probes are drawn, and the rotating pool."""
    return [
        Argument("structures_per_step", int, optional=True, default=0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative",
                 doc="How a training batch is drawn: 0 takes `batch_size` probes from all structures together; "
                     "N > 0 draws N structures at random each step and splits the batch evenly among them "
                     "(DeepDFT: 2 structures × 1000 probes, i.e. `structures_per_step: 2`, `batch_size: 2000`)."),
        Argument("importance_alpha", float, optional=True, default=0.0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative",
                 doc="Importance sampling of probe points (Deep Density): grid points are drawn with probability "
                     "∝ |ρ|^α (with replacement), so training sees more of where the density is. 0 (default) "
                     "draws distinct points uniformly; Deep Density uses 1/2 for molecules, 6/5 for water, 1 for Al."),
        Argument("importance_weighting", bool, optional=True, default=False,
                 doc="With `importance_alpha` > 0: weight each probe's loss by 1/(M·p) (M grid points, p its "
                     "probability), so the loss is an unbiased estimate of the error over the whole grid. Off "
                     "(default, as Deep Density) the drawn probes count equally: the weights span orders of "
                     "magnitude between vacuum and nuclei, and in practice their noise slows training."),
        Argument("pool_size", int, optional=True, default=0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative",
                 doc="Snapshots held in memory at once: 0 holds all; N > 0 keeps a rotating pool of N (DeepDFT: "
                     "20), so training on hundreds of snapshots needs the memory of N."),
        Argument("holdout", [dict, None], [
            Argument("fraction", float, optional=True, default=0.25, extra_check=lambda v: 0 < v < 1,
                     extra_check_errmsg="must lie between 0 and 1",
                     doc="Thickness of the held-out slab, as a fraction of the cell along its longest lattice "
                         "vector; the slab is centred on the atoms."),
            Argument("margin", float, optional=True, default=1.0, extra_check=lambda v: v >= 0,
                     extra_check_errmsg="must be non-negative",
                     doc="Å on each side of the slab that neither training nor validation draws from."),
            Argument("probes_per_system", int, optional=True, default=20000, extra_check=_positive,
                     extra_check_errmsg="must be positive", doc="Validation probes drawn from each slab."),
        ], optional=True, default=None,
            doc="Honest validation from the training files themselves, for one-shot training: a slab of each "
                "training cell is held out (training draws only outside it and its margins) and its probes join "
                "the validation set, for the best checkpoint and early stopping. Random points held out of the "
                "training frame do not measure transfer (their neighbours are trained on); a slab's error follows "
                "the error on other frames. null (default): every grid point may be drawn for training."),
        Argument("cache_features", bool, optional=True, default=True,
                 doc="When the training probes stay the same all run (no rotating pool), compute once what no "
                     "trainable weight changes (pseudo_atom: normalised environment matrices, three-body terms, "
                     "the baseline's basis functions) for them and the validation probes, and train only the rest "
                     "at each step: the same model and gradients, several times faster. Needs memory: for the "
                     "shipped Si64 input about 4.3 kB a probe; skipped (with a log line) when it would take more "
                     "than half the device's memory. false recomputes everything at every step."),
        Argument("pool_refresh", int, optional=True, default=200, extra_check=_positive,
                 extra_check_errmsg="must be positive",
                 doc="With a pool: steps between replacing the pool's oldest snapshot by the next one (a seeded "
                     "order; each visit of a snapshot draws new probes)."),
    ]


def data_args(name: str, default_probes: int, doc: str, optional: bool, batch: tuple, extra=()):
    """``training_data`` / ``validation_data``: density files and the probes drawn from each; ``batch`` is
    ``batch_size``'s (default, doc)."""
    return Argument(name, dict, [
        Argument("systems", [list, str],
                 doc="Density files (CHGCAR, AECCAR, PARCHG, CHG, cube; `.gz` allowed), glob patterns, "
                     "directories (every density file inside) or dataset stores (`data.h5`: all its snapshots; "
                     "`data.h5::NAME`: one); relative paths are taken from the input file's directory."),
        Argument("probes_per_system", int, optional=True, default=default_probes,
                 doc="Grid points drawn (uniformly, without replacement) from each file; -1 takes them all."),
        Argument("batch_size", int, optional=True, default=batch[0], extra_check=_positive,
                 extra_check_errmsg="must be positive", doc=batch[1]),
        Argument("density_block", str, optional=True, default="total",
                 extra_check=lambda v: v in DENSITY_BLOCKS,
                 extra_check_errmsg=f"must be one of {', '.join(DENSITY_BLOCKS)}",
                 doc="Which block of a density file to learn: \"total\", \"magnetization\" (spin-polarised) or "
                     "\"magnetization_x\", \"_y\", \"_z\" (non-collinear)."),
        *extra,
    ], optional=optional, default=None if optional else {}, doc=doc)


def ensemble_args():
    """``training.ensemble``: several models from one input, for ``deepcharge model-devi``."""
    return Argument("ensemble", [dict, None], [
        Argument("members", int, extra_check=lambda v: v >= 2, extra_check_errmsg="must be at least 2",
                 doc="How many models to train, one after another, each in its own directory `member_<i>/`."),
        Argument("seeds", [list, None], optional=True, default=None,
                 extra_check=lambda v: v is None or all(isinstance(s, int) and not isinstance(s, bool) for s in v),
                 extra_check_errmsg="must be a list of integers",
                 doc="Each member's `training.seed`, one per member; null derives them: training.seed + 1000·i "
                     "(member 0 is the run without ensemble), or a random seed per member when training.seed is "
                     "absent. A member's seed replaces every seed of the input (the model's are derived from it)."),
    ], optional=True, default=None,
        doc="Train an ensemble: `members` models that differ only in their seeds (initial weights and probe "
            "sampling). `deepcharge freeze` on the run directory freezes them all; `deepcharge model-devi` "
            "evaluates their mean and deviation. null (default) trains one model.")


def training_args():
    """The ``training`` section."""
    return Argument("training", dict, [
        data_args("training_data", 100000, "The data trained on.", optional=False, extra=sampling_args(),
                  batch=(1024, "Probe points per training step (the global batch: torchrun's processes share it).")),
        data_args("validation_data", 10000, "Data evaluated every `disp_freq` steps (a fixed probe set per "
                                           "file) and written to `disp_file`.", optional=True,
                  batch=(EVALUATION_CHUNK, "Probe points per forward pass when the validation set is evaluated "
                                           "(DeePMD-kit's validation batch): it bounds the memory of an "
                                           "evaluation, not its result.")),
        Argument("numb_steps", int, alias=["stop_batch", "num_steps"], extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative", doc="Number of training steps."),
        Argument("time_budget", [int, float, None], optional=True, default=None,
                 extra_check=lambda v: v is None or v > 0, extra_check_errmsg="must be a positive number of seconds",
                 doc="Training time in seconds (evaluations excluded); null (default) trains `numb_steps`. With a "
                     "budget, `numb_steps` gives the run's shape: the first steps (at start_lr) measure the steps "
                     "per second, then numb_steps, decay_steps, disp_freq and save_freq are scaled by the same "
                     "factor to the steps the budget allows (the log and out.json say how many), and the run "
                     "also ends when the budget is spent. `deepcharge compare --budget` sets it for every input."),
        Argument("seed", [int, None], optional=True, default=None,
                 doc="Seed for probe sampling and (unless given in the model) the initial weights; "
                     "a random one is drawn and written to out.json when absent."),
        Argument("disp_file", str, optional=True, default="lcurve.out", doc="Learning curve file."),
        Argument("disp_freq", int, optional=True, default=1000, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Steps between learning-curve lines."),
        Argument("save_freq", int, optional=True, default=10000, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="Steps between checkpoints."),
        Argument("save_ckpt", str, optional=True, default="model.ckpt",
                 doc="Checkpoint prefix: files are `<save_ckpt>-<step>.pt`; `checkpoint` names the latest."),
        Argument("max_ckpt_keep", int, optional=True, default=5, extra_check=_positive,
                 extra_check_errmsg="must be positive", doc="How many checkpoints to keep."),
        Argument("early_stopping_patience", int, optional=True, default=0, extra_check=lambda v: v >= 0,
                 extra_check_errmsg="must be non-negative",
                 doc="Stop when the validation ε_mae has not improved for this many evaluations (every "
                     "`disp_freq` steps); 0 never stops early. With validation data the checkpoint of the lowest "
                     "validation error is always kept as `<save_ckpt>-best.pt` (freeze it with `-c`)."),
        ensemble_args(),
        Argument("device", str, optional=True, default="auto", extra_check=lambda v: v in ("auto", "cpu", "cuda")
                 or v.startswith("cuda:"), extra_check_errmsg="must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"",
                 doc="Where to train: \"auto\" takes a GPU when one is visible."),
    ], doc="The training run.")


def train_args() -> Argument:
    """The whole input file."""
    return Argument("input", dict, [model_args(), learning_rate_args(), loss_args(), training_args()])


def doc_train_input(out_type: str = "rst") -> str:
    """Documentation of every key, from the schema, as ``dp doc-train-input`` gives it: ``rst`` (text),
    ``json`` (dargs' encoding of the arguments) or ``json_schema`` (a JSON Schema of the input file)."""
    return doc_input([model_args(), learning_rate_args(), loss_args(), training_args()], out_type,
                     "A deepcharge input file.")


def doc_input(sections: list, out_type: str, doc: str) -> str:
    """Documentation of an input file's ``sections`` as ``rst``, ``json`` or ``json_schema`` (see
    :func:`doc_train_input`); ``doc`` describes the whole file in the JSON Schema."""
    if out_type == "rst":
        return "\n".join(arg.gen_doc(make_anchor=False) for arg in sections)
    if out_type == "json":
        return json.dumps(sections, cls=ArgumentEncoder)
    if out_type == "json_schema":
        return json.dumps(generate_json_schema(Argument("input", dict, sections, doc=doc)))
    raise DeepChargeError(f"--out-type {out_type}: expected rst, json or json_schema")


def model_range(model: dict) -> float:
    """How far (Å) a probe of the ``model`` section sees atoms: the descriptor's rcut, or a message-passing
    model's cutoff (per interaction)."""
    return float(model["descriptor"]["rcut"] if "descriptor" in model else model["cutoff"])


def load_input_file(path, sections: str = "model, learning_rate, loss, training") -> dict:
    """Read a JSON or YAML input file (a mapping of ``sections``), with errors that name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DeepChargeError(f"{path}: no such input file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DeepChargeError(f"{path}: line {err.lineno} column {err.colno}: invalid JSON ({err.msg})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise DeepChargeError(f"{path}: {where}invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise DeepChargeError(f"{path}: expected a mapping with sections {sections}")
    return data


def _explain(error: Exception, schema: Argument, data: dict) -> str:
    """Turn a dargs error into a message that names the key and where it belongs, or suggests a close match."""
    message = str(error)
    match = re.search(r"undefined key `(\w+)` is not allowed in strict mode", message)
    if match:
        key = match.group(1)
        location = re.match(r"\[at location `([^`]*)`\]", message)
        where = f" in `{location.group(1).replace('/', '.')}`" if location else " at the top level"
        places = _key_places(schema)
        if key in places:
            return f"unknown key `{key}`{where}; it belongs in " + " or ".join(f"`{p}`" for p in places[key])
        close = difflib.get_close_matches(key, list(places), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return f"unknown key `{key}`{where}{hint}"
    # a key of several allowed types: dargs adds a line per type it tried; the first says it all
    return message.splitlines()[0].rstrip(":")


def _key_places(argument: Argument, prefix: str = "") -> dict:
    """Every key (and alias) of the schema → the sections it may appear in (dotted paths; "" is the top)."""
    places: dict = {}
    subs = list(argument.sub_fields.values()) + [sub for variant in argument.sub_variants.values()
                                                  for choice in variant.choice_dict.values()
                                                  for sub in choice.sub_fields.values()]
    for sub in subs:
        for name in [sub.name, *sub.alias]:
            section = prefix or "the top level"
            if section not in places.setdefault(name, []):
                places[name].append(section)
        for name, sections in _key_places(sub, f"{prefix}.{sub.name}".lstrip(".")).items():
            places.setdefault(name, []).extend(s for s in sections if s not in places[name])
    return places


def normalize(data: dict, source: str = "input") -> dict:
    """Validate ``data`` against the schema and return it with every default filled in."""
    normalized = checked_input(train_args(), data, source)
    _check_consistency(normalized, source)
    return normalized


def checked_input(schema: Argument, data: dict, source: str) -> dict:
    """``data`` validated against ``schema`` (unknown keys rejected) with every default filled in; an error names
    the key and ``source``."""
    try:
        normalized = schema.normalize_value(data, trim_pattern="_*")
        # dargs inserts an optional section's default ({}) without filling it: a second pass does
        normalized = schema.normalize_value(normalized, trim_pattern="_*")
        schema.check_value(normalized, strict=True)
    except Exception as err:  # dargs raises ArgumentKeyError/ArgumentTypeError/ArgumentValueError
        raise DeepChargeError(f"{source}: {_explain(err, schema, data)}") from None
    return normalized


def _check_consistency(config: dict, source: str):
    """Checks that involve several keys."""
    model = config["model"]
    descriptor = model.get("descriptor")
    if descriptor is not None:
        if not descriptor["rcut_smth"] < descriptor["rcut"]:
            raise DeepChargeError(f"{source}: model.descriptor.rcut_smth ({descriptor['rcut_smth']}) must be "
                                  f"smaller than rcut ({descriptor['rcut']})")
        if (descriptor["axis_neuron"] or 0) > descriptor["neuron"][-1]:
            raise DeepChargeError(f"{source}: model.descriptor.axis_neuron ({descriptor['axis_neuron']}) must not "
                                  f"exceed the last embedding width ({descriptor['neuron'][-1]})")
        three_body = descriptor.get("three_body")
        if model.get("fitting_net", {}).get("baseline_three_body") and three_body is None:
            raise DeepChargeError(f"{source}: model.fitting_net.baseline_three_body needs three-body terms to fit: "
                                  f"set model.descriptor.three_body (e.g. {{}} for its defaults) or drop the key")
        if three_body is not None:
            if not three_body["rcut_smth"] < three_body["rcut"] <= descriptor["rcut"]:
                raise DeepChargeError(f"{source}: model.descriptor.three_body needs rcut_smth < rcut <= the "
                                      f"descriptor's rcut ({descriptor['rcut']})")
            if len(three_body["sel"]) == 1:
                three_body["sel"] = three_body["sel"] * len(model["type_map"])
            if len(three_body["sel"]) != len(model["type_map"]):
                raise DeepChargeError(f"{source}: model.descriptor.three_body.sel has {len(three_body['sel'])} "
                                      f"entries but type_map has {len(model['type_map'])}")
        sel = descriptor.get("sel")
        if isinstance(sel, list) and len(sel) != len(model["type_map"]):
            raise DeepChargeError(f"{source}: model.descriptor.sel has {len(sel)} entries but type_map has "
                                  f"{len(model['type_map'])}; give one neighbour count per type")
    training = config["training"]
    if training["early_stopping_patience"] and not (training.get("validation_data")
                                                    or training["training_data"]["holdout"]):
        raise DeepChargeError(f"{source}: training.early_stopping_patience needs training.validation_data or "
                              f"training.training_data.holdout to measure the validation error on")
    ensemble = training["ensemble"]
    if ensemble and ensemble["seeds"] is not None and len(ensemble["seeds"]) != ensemble["members"]:
        raise DeepChargeError(f"{source}: training.ensemble.seeds has {len(ensemble['seeds'])} entries but members "
                              f"is {ensemble['members']}; give one seed per member (or none)")
    lr = config["learning_rate"]
    if lr["stop_lr"] > lr["start_lr"]:
        raise DeepChargeError(f"{source}: learning_rate.stop_lr must not exceed start_lr")
