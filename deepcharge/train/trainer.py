"""The training loop shared by every backend: probe sets, Adam with the exp schedule, lcurve, checkpoints."""

import logging
import math
import time
from pathlib import Path
from typing import List, Optional

import torch

from ..analysis.metrics import DensityErrors
from ..chunks import EVALUATION_CHUNK
from ..data.inputs import InputSpec, Structure, auto_sel, max_neighbour_counts
from ..data.pool import TrainingPool
from ..data.probe_set import ProbeSet
from ..data.sampler import batch_indices, draw_probes, sample_grid_indices
from ..data.systems import load_system, resolve_systems
from ..errors import DeepChargeError
from ..models import build_model
from ..models.base import DTYPES, load_weights
from .. import distributed
from .checkpoint import load_checkpoint, save_best_checkpoint, save_checkpoint
from .loss import density_loss
from .lr import effective_decay_steps, exp_decay

log = logging.getLogger("deepcharge")

# training probes whose error is reported in lcurve.out as the training error
MONITOR_PROBES = 10000
# probes used to compute descriptor statistics
STAT_PROBES = 20000


class Trainer:
    """Train the model an input file describes; ``restart``/``init_model`` name a checkpoint."""

    def __init__(self, config: dict, base_dir: Path, restart: Optional[str] = None,
                 init_model: Optional[str] = None):
        self.config = config
        self.base_dir = Path(base_dir)
        self.checkpoint = load_checkpoint(restart) if restart else None
        initial = load_checkpoint(init_model) if init_model else None
        training = config["training"]
        self._fill_seeds(self.checkpoint)
        self.device = distributed.setup(training["device"])
        self.rank, self.world_size = distributed.rank_and_size()
        if training["training_data"]["batch_size"] % self.world_size:
            raise DeepChargeError(f"training.training_data.batch_size ({training['training_data']['batch_size']}) "
                                  f"must be a multiple of the number of processes ({self.world_size}): it is the "
                                  f"global batch, split evenly among them")
        self.dtype = DTYPES[config["model"]["precision"]]
        model_config = config["model"]

        data = training["training_data"]
        train_files = resolve_systems(data["systems"], self.base_dir, "training.training_data.systems")
        self.pool = TrainingPool(train_files, lambda path: load_system(path, data["density_block"]),
                                 data["probes_per_system"], data["importance_alpha"], data["pool_size"],
                                 data["pool_refresh"], training["seed"], data["importance_weighting"])
        self._resolve_sel()
        if self.checkpoint is not None:
            self._check_same_model(self.checkpoint, "--restart")

        self.model = build_model(model_config).to(self.device)
        spec, type_map = InputSpec.of(self.model), model_config["type_map"]
        self.pool.set_model_inputs(type_map, spec, self.device, self.dtype)
        start = self.pool.at_step(int(self.checkpoint["step"]) if self.checkpoint else 0)
        log.info("training probes: %d files, %d in the pool, %d probes", len(train_files), len(start.sources),
                 len(start))
        self.valid_set = None
        validation = training.get("validation_data")
        if validation:
            data_rng = torch.Generator().manual_seed(training["seed"])
            files = resolve_systems(validation["systems"], self.base_dir, "training.validation_data.systems")
            valid_snapshots = [load_system(f, validation["density_block"]) for f in files]
            valid_samples = [draw_probes(s, validation["probes_per_system"], data_rng) for s in valid_snapshots]
            self.valid_set = ProbeSet.build(valid_snapshots, valid_samples, type_map, spec, self.device, self.dtype)

        self.loss_scale = float(start.density.std())
        if initial is not None:
            self._check_same_model(initial, "--init-model")
            load_weights(self.model, initial["model_state"], init_model)
        elif self.checkpoint is None:
            # a random subset: the probe set is stored file by file, and a file drawn whole is in grid order
            first = torch.as_tensor(sample_grid_indices(len(start), STAT_PROBES,
                                                        torch.Generator().manual_seed(training["seed"])),
                                    device=self.device)
            stats_inputs, stats_density = start.take(first)
            began = time.perf_counter()
            self.model.fit_statistics(stats_inputs, stats_density, start.weight[first])
            # most of the set-up: descriptors of these probes, their whitening (a covariance and its eigenvectors)
            log.info("model statistics from %d training probes in %.1f s", len(first), time.perf_counter() - began)
        self._report_decay_steps()
        self.optimizer = torch.optim.Adam(self._parameter_groups(), lr=config["learning_rate"]["start_lr"])
        self.batch_rng = torch.Generator(device=self.device).manual_seed(training["seed"] + 1)
        self.start_step = 0
        self.wall_time = 0.0
        self.best = {"eps_mae_val": math.inf, "step": 0, "stale": 0}
        if self.checkpoint is not None:
            load_weights(self.model, self.checkpoint["model_state"], restart)
            self.optimizer.load_state_dict(self.checkpoint["optimizer_state"])
            self.batch_rng.set_state(self.checkpoint["batch_rng_state"])
            self.start_step = int(self.checkpoint["step"])
            self.wall_time = float(self.checkpoint["wall_time"])
            self.loss_scale = float(self.checkpoint["loss_scale"])
            self.best = dict(self.checkpoint["best"])
            self.pool.electrons.update(self.checkpoint["electrons"])
        self.trainable = self.model
        if self.world_size > 1:
            self.trainable = torch.nn.parallel.DistributedDataParallel(self.model)

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
        if not hasattr(self.model, "embedding_parameters"):
            return [{"params": list(self.model.parameters()), "lr_factor": 1.0}]
        embedding = list(self.model.embedding_parameters())
        own = {id(p) for p in embedding}
        return [{"params": [p for p in self.model.parameters() if id(p) not in own], "lr_factor": 1.0},
                {"params": embedding,
                 "lr_factor": self.config["learning_rate"]["descriptor_lr_factor"]}]

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

    def evaluate(self, probe_set: ProbeSet, chunk: int = EVALUATION_CHUNK) -> DensityErrors:
        """Errors of the current model on a whole probe set, ``chunk`` probes per forward pass."""
        errors = DensityErrors()
        self.model.eval()
        with torch.no_grad():
            for _, inputs, density in probe_set.chunks(chunk):
                errors.add(density, self.model(inputs))
        self.model.train()
        return errors

    def _validation_errors(self) -> Optional[DensityErrors]:
        """Errors on the validation set (None without one), ``validation_data.batch_size`` probes per pass."""
        if self.valid_set is None:
            return None
        return self.evaluate(self.valid_set, self.config["training"]["validation_data"]["batch_size"])

    def _state(self, step: int) -> dict:
        return {
            "config": self.config,
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "batch_rng_state": self.batch_rng.get_state(),
            "step": step,
            "wall_time": self.wall_time,
            "loss_scale": self.loss_scale,
            "best": dict(self.best),
            "electrons": dict(self.pool.electrons),
        }

    def run(self):
        """Train from ``start_step`` to ``numb_steps`` (or an early stop); returns the last checkpoint's path."""
        training = self.config["training"]
        numb_steps, batch_size = training["numb_steps"], training["training_data"]["batch_size"]
        loss_kind = self.config["loss"]["type"]
        structures_per_step = training["training_data"]["structures_per_step"]
        main = self.rank == 0
        lcurve = LearningCurve(training["disp_file"], self.valid_set is not None, self.start_step) if main else None
        checkpoint_path, done = None, self.start_step
        tick, tick_step = time.perf_counter(), self.start_step
        if self.start_step == 0 and main:
            valid_errors = self._validation_errors()
            train_errors = self.evaluate(self.pool.at_step(0).head(MONITOR_PROBES))
            lcurve.write(0, train_errors, valid_errors, self._lr(0), self.wall_time)
            shown = valid_errors or train_errors
            log.info("step 0/%d  eps_mae %s %.4f %%  rmse %.3e  (before training)", numb_steps,
                     "val" if valid_errors else "trn", shown.eps_mae_percent, shown.rmse)
            if valid_errors:  # the fitted statistics alone may beat a short run's end
                self._track_best(0, valid_errors.eps_mae_percent)
            tick = time.perf_counter()  # as below: evaluation time does not count as training time
        for step in range(self.start_step, numb_steps):
            lr = self._lr(step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group["lr_factor"]
            probes = self.pool.at_step(step)
            index = batch_indices(probes.system_sizes, len(probes), batch_size, structures_per_step, self.batch_rng)
            index = index.view(self.world_size, -1)[self.rank]  # every rank draws the global batch, takes its part
            inputs, density = probes.take(index)
            loss = density_loss(loss_kind, self.trainable(inputs), density, self.loss_scale, probes.weight[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            done = step + 1
            stop = False
            if (done % training["disp_freq"] == 0 or done == numb_steps) and main:
                now = time.perf_counter()
                self.wall_time += now - tick
                rate = (done - tick_step) / max(now - tick, 1e-9)
                tick, tick_step = now, done
                train_errors = self.evaluate(probes.head(MONITOR_PROBES))
                valid_errors = self._validation_errors()
                lcurve.write(done, train_errors, valid_errors, lr, self.wall_time)
                shown = valid_errors or train_errors
                log.info("step %d/%d  lr %.2e  eps_mae %s %.4f %%  rmse %.3e  %.1f steps/s  ETA %s", done,
                         numb_steps, lr, "val" if valid_errors else "trn", shown.eps_mae_percent, shown.rmse,
                         rate, _format_eta((numb_steps - done) / max(rate, 1e-9)))
                if valid_errors:
                    stop = self._track_best(done, valid_errors.eps_mae_percent)
                tick = time.perf_counter()  # evaluation time does not count as training time
            if done % training["disp_freq"] == 0 or done == numb_steps:
                stop = distributed.agree(stop, self.device)
            if (done % training["save_freq"] == 0 or done == numb_steps or stop) and main:
                self.wall_time += time.perf_counter() - tick
                tick = time.perf_counter()
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

    def __init__(self, path: str, has_validation: bool, start_step: int):
        self.columns = ["step"]
        self.columns += ["rmse_val", "rmse_trn", "eps_mae_val", "eps_mae_trn"] if has_validation else [
            "rmse_trn", "eps_mae_trn"]
        self.columns += ["lr", "wall_s"]
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

    def write(self, step: int, train: DensityErrors, valid: Optional[DensityErrors], lr: float, wall: float):
        values = [valid.rmse, train.rmse, valid.eps_mae_percent, train.eps_mae_percent] if self.has_validation \
            else [train.rmse, train.eps_mae_percent]
        self.handle.write(f" {step:14d}" + "".join(f"{v:14.6e}" for v in values) + f"{lr:14.6e}{wall:14.2f}\n")
        self.handle.flush()

    def close(self):
        self.handle.close()
