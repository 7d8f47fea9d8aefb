"""The training loop shared by every backend: probe sets, Adam with the exp schedule, lcurve, checkpoints."""

import copy
import logging
import math
import time
from pathlib import Path
from typing import List, Optional

import torch
from tqdm import tqdm

from deepcharge import distributed
from deepcharge.analysis.environments import EnvironmentRanges
from deepcharge.analysis.metrics import DensityErrors
from deepcharge.chunks import EVALUATION_CHUNK, STATISTICS_CHUNK
from deepcharge.config import model_range
from deepcharge.data.holdout import Holdout
from deepcharge.data.inputs import InputSpec, Structure, auto_sel, max_neighbour_counts
from deepcharge.data.pool import TrainingPool
from deepcharge.data.probe_set import ProbeSet
from deepcharge.data.sampler import batch_indices, draw_probes, sample_grid_indices
from deepcharge.data.systems import load_system, resolve_systems
from deepcharge.errors import DeepChargeError
from deepcharge.models import build_model
from deepcharge.models.base import DTYPES, load_weights
from deepcharge.models.upgrade import CONFIG_VERSION
from deepcharge.train.budget import TimeBudget
from deepcharge.train.checkpoint import load_checkpoint, save_best_checkpoint, save_checkpoint
from deepcharge.train.fixed_features import FixedFeatures, FromFixed, chunk_densities, fixed_features_of
from deepcharge.train.hartree_term import HartreeTerm
from deepcharge.train.loss import density_loss
from deepcharge.train.lr import effective_decay_steps, exp_decay

log = logging.getLogger("deepcharge")

# training probes whose error is reported in lcurve.out as the training error
MONITOR_PROBES = 10000
# probes used to compute descriptor statistics
STAT_PROBES = 20000


class Trainer:
    """Train the model an input file describes; ``restart``/``init_model`` name a checkpoint.

    ``config`` is the normalised input; ``self.config`` is that input with what it leaves open filled in (seeds,
    ``sel: auto``): what out.json records. The construction runs in the order its steps need: seeds before the
    data (sampling) and the model (weights); the training data before ``sel: auto`` and ``sel`` before the model;
    the model before the probe inputs (their layout is the model's); a restart's states last.
    """

    def __init__(self, config: dict, base_dir: Path, restart: Optional[str] = None,
                 init_model: Optional[str] = None):
        self.config = copy.deepcopy(config)
        self.base_dir = Path(base_dir)
        checkpoint = load_checkpoint(restart) if restart else None
        initial = load_checkpoint(init_model) if init_model else None
        self.start_step = int(checkpoint["step"]) if checkpoint else 0
        self._fill_seeds(checkpoint)
        self.budget = TimeBudget.of(self.config, checkpoint)
        self._join_processes()
        self.dtype = DTYPES[self.config["model"]["precision"]]
        self.pool = self._training_pool()
        self.validation_files = self._validation_files()
        self._resolve_sel()
        if checkpoint is not None:
            self._check_same_model(checkpoint, "--restart")
        self.model = build_model(self.config["model"]).to(self.device)
        spec = InputSpec.of(self.model)
        self.pool.set_model_inputs(self.config["model"]["type_map"], spec, self.device, self.dtype)
        start = self.pool.at_step(self.start_step)
        log.info("training probes: %d files, %d in the pool, %d probes", len(self.pool.references),
                 len(start.sources), len(start))
        self.valid_set = self._validation_set(spec)
        self.loss_scale = float(start.density.std())
        if initial is not None:
            self._check_same_model(initial, "--init-model")
            load_weights(self.model, initial["model_state"], init_model)
        elif checkpoint is None:
            self._fit_statistics(start)
        self._report_decay_steps()
        self.optimizer = torch.optim.Adam(self._parameter_groups(), lr=self.config["learning_rate"]["start_lr"])
        self.batch_rng = torch.Generator(device=self.device).manual_seed(self.config["training"]["seed"] + 1)
        self.clock = TrainingClock(0.0, self.start_step)
        self.best = {"eps_mae_val": math.inf, "step": 0, "stale": 0}
        if checkpoint is not None:
            self._resume(checkpoint, restart)
        self.fixed_train, self.fixed_valid = self._fixed_features()
        self.hartree = self._hartree_term(checkpoint)
        self.trainable = self.model if self.fixed_train is None else FromFixed(self.model)
        if self.world_size > 1:
            self.trainable = torch.nn.parallel.DistributedDataParallel(self.trainable)

    def _join_processes(self):
        """The device, this process's rank and the number of processes (torchrun's, else 0 and 1)."""
        batch_size = self.config["training"]["training_data"]["batch_size"]
        self.device = distributed.setup(self.config["training"]["device"])
        self.rank, self.world_size = distributed.rank_and_size()
        if batch_size % self.world_size:
            raise DeepChargeError(f"training.training_data.batch_size ({batch_size}) must be a multiple of the "
                                  f"number of processes ({self.world_size}): it is the global batch, split evenly "
                                  f"among them")

    def _training_pool(self) -> TrainingPool:
        """The training files' probes, drawn anew at every visit of a snapshot (see :class:`TrainingPool`)."""
        training = self.config["training"]
        data = training["training_data"]
        files = resolve_systems(data["systems"], self.base_dir, "training.training_data.systems")
        return TrainingPool(files, lambda path: load_system(path, data["density_block"]), data["probes_per_system"],
                            data["importance_alpha"], data["pool_size"], data["pool_refresh"], training["seed"],
                            data["importance_weighting"], Holdout.from_config(data["holdout"]),
                            model_range(self.config["model"]))

    def _validation_files(self) -> List[str]:
        """The files of ``validation_data`` (none without it), resolved and checked before any file is read."""
        validation = self.config["training"].get("validation_data")
        if not validation:
            return []
        return resolve_systems(validation["systems"], self.base_dir, "training.validation_data.systems")

    def _validation_set(self, spec: InputSpec) -> Optional[ProbeSet]:
        """A fixed probe set, seeded by training.seed: the held-out slab of every training file
        (``training_data.holdout``) and the files of ``validation_data``; None without either."""
        training = self.config["training"]
        validation = training.get("validation_data")
        holdout = self.pool.holdout
        if not validation and holdout is None:
            return None
        data_rng = torch.Generator().manual_seed(training["seed"])
        snapshots, samples = [], []
        if holdout is not None:
            for reference in self.pool.references:
                snapshot = load_system(reference, training["training_data"]["density_block"])
                snapshots.append(snapshot)
                samples.append(draw_probes(snapshot, holdout.probes_per_system, data_rng,
                                           points=holdout.validation_points(snapshot)))
            log.info("validation probes: %d from the held-out slab of each training file", holdout.probes_per_system)
        if validation:
            for snapshot in (load_system(f, validation["density_block"]) for f in self.validation_files):
                snapshots.append(snapshot)
                samples.append(draw_probes(snapshot, validation["probes_per_system"], data_rng))
        return ProbeSet.build(snapshots, samples, self.config["model"]["type_map"], spec, self.device, self.dtype)

    def _fit_statistics(self, start: ProbeSet):
        """A new model's statistics from a random subset of the first step's probes."""
        # a random subset: the probe set is stored file by file, and a file drawn whole is in grid order
        first = torch.as_tensor(sample_grid_indices(len(start), STAT_PROBES,
                                                    torch.Generator().manual_seed(self.config["training"]["seed"])),
                                device=self.device)
        stats_inputs, stats_density = start.take(first)
        began = time.perf_counter()
        log.info("model statistics: descriptors of %d training probes, then a pass over all %d ...", len(first),
                 len(start))
        self.model.fit_statistics(stats_inputs, stats_density, start.weight[first])
        chunks = tqdm(start.chunks(STATISTICS_CHUNK), total=-(-len(start) // STATISTICS_CHUNK), unit="chunk",
                      desc="statistics", disable=None, leave=False)  # a bar on a terminal only
        self.model.refine_statistics((inputs, density, start.weight[index]) for index, inputs, density in chunks)
        # most of the set-up: descriptors of these probes, their whitening (a covariance and its eigenvectors), and
        # the baseline's columns of every training probe
        log.info("model statistics from %d training probes (the least-squares baseline from all %d) in %.1f s",
                 len(first), len(start), time.perf_counter() - began)

    def _fixed_features(self):
        """Fixed features of the training probes (when they stay the same all run: no rotating pool) and of the
        validation set, computed once the model's statistics are set (see :mod:`deepcharge.train.fixed_features`);
        None for each where they are off, not offered or too large."""
        if not self.config["training"]["training_data"]["cache_features"] or self.pool.rotates:
            return None, None
        train = fixed_features_of(self.model, self.pool.at_step(self.start_step), "training probes")
        if train is None or self.valid_set is None:
            return train, None
        return train, fixed_features_of(self.model, self.valid_set, "validation probes")

    def _hartree_term(self, checkpoint: Optional[dict]) -> Optional[HartreeTerm]:
        """The loss's Hartree term (None when ``loss.hartree_pref`` is 0), its scale taken from a restart's
        ``checkpoint``."""
        loss = self.config["loss"]
        if not loss["hartree_pref"]:
            return None
        if self.world_size > 1:
            raise DeepChargeError("loss.hartree_pref is not implemented for several processes (torchrun): train "
                                  "with one process or set it to 0")
        term = HartreeTerm(loss, self.pool, self.model, self.fixed_train is not None, self.config["training"]["seed"])
        term.restore(checkpoint.get("hartree") if checkpoint else None)
        return term

    def _resume(self, checkpoint: dict, path: str):
        """Continue the run ``checkpoint`` holds: weights, optimizer, batch draws, clock, best, electrons."""
        load_weights(self.model, checkpoint["model_state"], path)
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        except ValueError as err:  # e.g. a run with descriptor_lr_factor 0 written before frozen nets left Adam
            raise DeepChargeError(f"{path}: its optimizer state does not fit this version's parameter groups "
                                  f"({err}); start a new run from its weights with --init-model {path}") from None
        self.batch_rng.set_state(checkpoint["batch_rng_state"])
        self.clock = TrainingClock(float(checkpoint["wall_time"]), self.start_step)
        self.loss_scale = float(checkpoint["loss_scale"])
        self.best = dict(checkpoint["best"])
        self.pool.electrons.update(checkpoint["electrons"])
        if "environments" in checkpoint:
            self.pool.environments.merge(EnvironmentRanges.from_dict(checkpoint["environments"]))

    def _report_decay_steps(self):
        """Say when ``decay_steps`` ≥ ``numb_steps`` is replaced (it would keep the rate at start_lr throughout)."""
        given, numb_steps = self.config["learning_rate"]["decay_steps"], self.config["training"]["numb_steps"]
        used = effective_decay_steps(given, numb_steps)
        if used != given and numb_steps > 0:
            log.warning("learning_rate.decay_steps %d ≥ training.numb_steps %d would never decay the rate (stop_lr "
                        "would be ignored); decaying every %d steps instead, as DeePMD-kit does", given, numb_steps,
                        used)

    def _parameter_groups(self) -> List[dict]:
        """The embedding nets (of the descriptor families) learn at ``descriptor_lr_factor`` × the rate."""
        embedding = list(self.model.embedding_parameters())
        if not embedding:
            return [{"params": list(self.model.parameters()), "lr_factor": 1.0}]
        own = {id(p) for p in embedding}
        groups = [{"params": [p for p in self.model.parameters() if id(p) not in own], "lr_factor": 1.0}]
        factor = self.config["learning_rate"]["descriptor_lr_factor"]
        if factor == 0:  # frozen: no gradient is computed for them, and their descriptor can be computed once
            for parameter in embedding:
                parameter.requires_grad_(False)
            return groups
        return groups + [{"params": embedding, "lr_factor": factor}]

    def _fill_seeds(self, checkpoint: Optional[dict]):
        """Draw the seeds an input leaves open (or take the restarted run's), so out.json records them."""
        training, model = self.config["training"], self.config["model"]
        previous = checkpoint["config"] if checkpoint else None
        if training["seed"] is None:
            training["seed"] = previous["training"]["seed"] if previous else int(torch.randint(0, 2**31 - 1, ()))
        if model.get("seed", 0) is None:
            model["seed"] = training["seed"] + 17
        for index, section in enumerate(("descriptor", "fitting_net")):
            if section in model and model[section].get("seed", 0) is None:
                model[section]["seed"] = training["seed"] + 17 * (index + 1)

    def _resolve_sel(self):
        """Replace ``sel: auto`` by counts from the training probes (every snapshot's first draw)."""
        descriptor = self.config["model"].get("descriptor")
        if descriptor is None or descriptor.get("sel") != "auto":
            return
        type_map = self.config["model"]["type_map"]
        counts = torch.zeros(len(type_map), dtype=torch.long)
        for snapshot, (positions, _, _) in self.pool.first_visits():
            structure = Structure.from_snapshot(snapshot, type_map, self.device, self.dtype)
            probes = torch.as_tensor(positions, dtype=self.dtype, device=self.device)
            counts = torch.maximum(counts, max_neighbour_counts(structure, probes, descriptor["rcut"],
                                                                len(type_map)).cpu())
        descriptor["sel"] = auto_sel(counts)
        log.info("sel auto: largest neighbour counts %s -> sel %s", counts.tolist(), descriptor["sel"])

    def _check_same_model(self, checkpoint: dict, flag: str):
        """The checkpoint must hold the architecture this input describes (initialisation seeds aside)."""
        if _architecture(checkpoint["config"]["model"]) != _architecture(self.config["model"]):
            raise DeepChargeError(f"{flag}: the checkpoint's model section differs from this input's; "
                                  f"use the same `model` section (see the checkpoint run's out.json)")

    def evaluate(self, probe_set: ProbeSet, chunk: int = EVALUATION_CHUNK,
                 fixed: Optional[FixedFeatures] = None) -> DensityErrors:
        """Errors of the current model on a whole probe set (from its ``fixed`` features when given), ``chunk``
        probes per forward pass."""
        errors = DensityErrors()
        self.model.eval()
        with torch.no_grad():
            for density, predicted in zip(probe_set.density.split(chunk),
                                          chunk_densities(self.model, probe_set, fixed, chunk)):
                errors.add(density, predicted)
        self.model.train()
        return errors

    def _validation_errors(self) -> Optional[DensityErrors]:
        """Errors on the validation set (None without one), ``validation_data.batch_size`` probes per pass."""
        if self.valid_set is None:
            return None
        validation = self.config["training"].get("validation_data")
        return self.evaluate(self.valid_set, validation["batch_size"] if validation else EVALUATION_CHUNK,
                             self.fixed_valid)

    def _state(self, step: int) -> dict:
        return {
            "config": self.config,
            "config_version": CONFIG_VERSION,
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "batch_rng_state": self.batch_rng.get_state(),
            "step": step,
            "wall_time": self.clock.wall_time,
            "loss_scale": self.loss_scale,
            "best": dict(self.best),
            "electrons": dict(self.pool.electrons),
            "budget_steps": self.budget.scaled if self.budget else None,
            "environments": self.pool.environments.to_dict(),
            "hartree": self.hartree.state() if self.hartree else None,
        }

    def run(self):
        """Train from ``start_step`` to ``numb_steps`` (or an early stop); returns the last checkpoint's path.

        Every ``disp_freq`` steps (and at the end) rank 0 evaluates and logs, and every rank learns whether to stop
        early; every ``save_freq`` steps, at the end and at an early stop rank 0 writes a checkpoint.
        """
        training = self.config["training"]
        main = self.rank == 0
        lcurve = LearningCurve(training["disp_file"], self.valid_set is not None, self.start_step,
                               self.hartree is not None) if main else None
        self.clock.resume()
        if self.start_step == 0 and main:  # the fitted statistics alone may beat a short run's end
            self._display(0, self.pool.at_step(0), self._lr(0), lcurve, rate=None)
            # the model before training (pseudo_atom: its least-squares baseline), for comparison
            save_checkpoint(training["save_ckpt"], 0, self._state(0), training["max_ckpt_keep"])
        checkpoint_path, done = None, self.start_step
        while done < training["numb_steps"] or self._calibrating():
            step = done
            probes = self._train_step(step)
            done = step + 1
            self._follow_budget(done)
            numb_steps = training["numb_steps"] if not self._calibrating() else math.inf
            stop = False
            if done % training["disp_freq"] == 0 or done == numb_steps:
                if main:
                    stop = self._display(done, probes, self._lr(step), lcurve, rate=self.clock.lap(done))
                stop = distributed.agree(stop, self.device)
            if main and (done % training["save_freq"] == 0 or done == numb_steps or stop):
                self.clock.lap(done)
                checkpoint_path = save_checkpoint(training["save_ckpt"], done, self._state(done),
                                                  training["max_ckpt_keep"])
            if stop:
                log.info("early stop at step %d: validation eps_mae has not improved for %d evaluations; "
                         "best %.4f %% at step %d (%s-best.pt)", done, self.best["stale"],
                         self.best["eps_mae_val"], self.best["step"], training["save_ckpt"])
                break
        if not main:
            return None
        lcurve.close()
        if checkpoint_path is None and done == self.start_step:
            checkpoint_path = save_checkpoint(training["save_ckpt"], done, self._state(done), training["max_ckpt_keep"])
        self._report_best(done)
        return checkpoint_path

    def _calibrating(self) -> bool:
        """Whether a time budget still measures the rate (its steps do not count against ``numb_steps``)."""
        return self.budget is not None and self.budget.scaled is None

    def _follow_budget(self, done: int):
        """With ``training.time_budget``: scale the schedule once the rate is measured, and end the run (its
        ``numb_steps`` becomes ``done``) when the budget is spent. Every rank follows rank 0's clock."""
        if self.budget is None:
            return
        seconds = self.clock.elapsed()
        steps, elapsed = done - self.start_step, seconds - self.clock.started_at
        if distributed.agree(self.budget.due(steps, elapsed), self.device):
            self.budget.calibrate(self.config, steps, distributed.broadcast_float(elapsed, self.device), done)
        if (distributed.agree(self.budget.spent(seconds), self.device)
                and (self._calibrating() or done < self.config["training"]["numb_steps"])):
            self.budget.end_at(self.config, done)

    def _train_step(self, step: int) -> ProbeSet:
        """One optimizer step on this rank's share of the global batch; the probe set it was drawn from."""
        training = self.config["training"]
        lr = self._lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_factor"]
        probes = self.pool.at_step(step)
        index = batch_indices(probes.system_sizes, len(probes), training["training_data"]["batch_size"],
                              training["training_data"]["structures_per_step"], self.batch_rng)
        index = index.view(self.world_size, -1)[self.rank]  # every rank draws the global batch, takes its part
        if self.fixed_train is None:
            inputs, density = probes.take(index)
            predicted = self.trainable(inputs)
        else:
            predicted, density = self.trainable(self.fixed_train.take(index)), probes.density[index]
        loss = density_loss(self.config["loss"]["type"], predicted, density, self.loss_scale, probes.weight[index])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.hartree is not None and self.hartree.due(step):
            self.hartree.backward(step)
        self.optimizer.step()
        return probes

    def _display(self, step: int, probes: ProbeSet, lr: float, lcurve: "LearningCurve",
                 rate: Optional[float]) -> bool:
        """Evaluate after ``step`` steps (``rate``: steps/s since the last display; None before training), write
        lcurve.out's line and the log's, keep the best checkpoint; True when patience has run out. The time this
        takes is not training time."""
        numb_steps = self.config["training"]["numb_steps"]
        monitor = probes.head(MONITOR_PROBES)
        fixed = None if self.fixed_train is None else FixedFeatures(self.fixed_train.take(slice(0, MONITOR_PROBES)))
        train_errors = self.evaluate(monitor, fixed=fixed)
        valid_errors = self._validation_errors()
        hartree = self.hartree.last if self.hartree is not None else None
        lcurve.write(step, train_errors, valid_errors, lr, self.clock.wall_time, hartree)
        shown, which = (valid_errors, "val") if valid_errors is not None else (train_errors, "trn")
        if rate is None:
            log.info("step 0/%d  eps_mae %s %.4f %%  rmse %.3e  (before training)", numb_steps, which,
                     shown.eps_mae_percent, shown.rmse)
        else:
            log.info("step %d/%d  lr %.2e  eps_mae %s %.4f %%  rmse %.3e  %s%.1f steps/s  ETA %s", step, numb_steps,
                     lr, which, shown.eps_mae_percent, shown.rmse,
                     f"E_H trn {1e3 * hartree:.3f} meV  " if hartree is not None else "", rate,
                     _format_eta((numb_steps - step) / max(rate, 1e-9)))
        stop = valid_errors is not None and self._track_best(step, valid_errors.eps_mae_percent)
        self.clock.resume()
        return stop and rate is not None  # before training there is nothing to stop

    def _report_best(self, last_step: int):
        """Say which checkpoint has the lowest validation error and how to freeze it (``freeze`` takes the last)."""
        best_step = self.best["step"]
        if not math.isfinite(self.best["eps_mae_val"]):
            return
        best_file = f"{self.config['training']['save_ckpt']}-best.pt"
        if best_step == last_step:
            log.info("the last step has the lowest validation eps_mae (%.4f %%); `deepcharge freeze` freezes it",
                     self.best["eps_mae_val"])
        else:
            log.info("lowest validation eps_mae %.4f %% at step %d, in %s (the last checkpoint, step %d, is what "
                     "`deepcharge freeze` takes); to freeze the best: deepcharge freeze -c %s -o frozen_model.pth",
                     self.best["eps_mae_val"], best_step, best_file, last_step, best_file)

    def _lr(self, step: int) -> float:
        lr_config = self.config["learning_rate"]
        if self._calibrating():  # until the budget's schedule is known
            return lr_config["start_lr"]
        return exp_decay(step, lr_config["start_lr"], lr_config["stop_lr"], lr_config["decay_steps"],
                         self.config["training"]["numb_steps"])

    def _track_best(self, step: int, eps_mae_val: float) -> bool:
        """Keep ``<save_ckpt>-best.pt`` at the lowest validation error; True when patience has run out."""
        if eps_mae_val < self.best["eps_mae_val"]:
            self.best.update(eps_mae_val=eps_mae_val, step=step, stale=0)
            save_best_checkpoint(self.config["training"]["save_ckpt"], self._state(step))
        else:
            self.best["stale"] += 1
        patience = self.config["training"]["early_stopping_patience"]
        return bool(patience) and self.best["stale"] >= patience


def _architecture(model_config: dict) -> dict:
    """A model section without its initialisation seeds."""
    return {key: _architecture(value) if isinstance(value, dict) else value
            for key, value in model_config.items() if key != "seed"}


def _format_eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LearningCurve:
    """``lcurve.out``: a ``#`` header naming the columns, one line every ``disp_freq`` steps.

    On restart the lines after the checkpoint's step are dropped, so the file continues seamlessly.
    """

    def __init__(self, path: str, has_validation: bool, start_step: int, has_hartree: bool = False):
        self.columns = ["step"]
        self.columns += ["rmse_val", "rmse_trn", "eps_mae_val", "eps_mae_trn"] if has_validation else [
            "rmse_trn", "eps_mae_trn"]
        self.columns += ["lr", "wall_s"] + (["hartree_trn"] if has_hartree else [])
        header = "#" + "".join(f"{name:>14s}" for name in self.columns)
        kept = []
        if start_step > 0 and Path(path).is_file():
            for line in Path(path).read_text().splitlines():
                if line.startswith("#") or (line.split() and int(line.split()[0]) <= start_step):
                    kept.append(line)
        self.handle = open(path, "w")
        self.handle.write("\n".join(kept or [header]) + "\n")
        self.handle.flush()
        self.has_validation = has_validation
        self.has_hartree = has_hartree

    def write(self, step: int, train: DensityErrors, valid: Optional[DensityErrors], lr: float, wall: float,
              hartree: Optional[float] = None):
        """One line; ``hartree``: the Hartree term's latest E_H (eV), written in meV (nan before it is measured)
        where the file has that column."""
        values = [valid.rmse, train.rmse, valid.eps_mae_percent, train.eps_mae_percent] if self.has_validation \
            else [train.rmse, train.eps_mae_percent]
        extra = f"{1e3 * hartree if hartree is not None else math.nan:14.6e}" if self.has_hartree else ""
        self.handle.write(f" {step:14d}" + "".join(f"{v:14.6e}" for v in values) + f"{lr:14.6e}{wall:14.2f}"
                          + extra + "\n")
        self.handle.flush()

    def close(self):
        self.handle.close()


class TrainingClock:
    """Training time, evaluations left out: ``wall_time`` (carried over a restart) and steps per second."""

    def __init__(self, wall_time: float, step: int):
        self.wall_time = self.started_at = wall_time
        self._since, self._step = time.perf_counter(), step

    def elapsed(self) -> float:
        """Training time so far, this lap included."""
        return self.wall_time + time.perf_counter() - self._since

    def lap(self, step: int) -> float:
        """Add the time since the last lap (or :meth:`resume`) to ``wall_time``; the steps per second in it."""
        now = time.perf_counter()
        elapsed = now - self._since
        self.wall_time += elapsed
        rate = (step - self._step) / max(elapsed, 1e-9)
        self._since, self._step = now, step
        return rate

    def resume(self):
        """Count time from now on (after work that is not training: an evaluation)."""
        self._since = time.perf_counter()
