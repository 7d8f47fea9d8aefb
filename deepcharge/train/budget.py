"""``training.time_budget``: the input's run stretched or shrunk to the steps that fit a training time.

The input's ``numb_steps`` gives the run's shape; its first steps (at ``start_lr``) measure the steps per second,
and then ``numb_steps``, ``decay_steps``, ``disp_freq`` and ``save_freq`` are scaled by the same factor, so the
learning rate still falls from ``start_lr`` to ``stop_lr`` with as many decays, and the learning curve has as many
lines. The run also ends when the budget is spent. Training time is the trainer's clock: evaluations excluded.
"""

import logging

log = logging.getLogger("deepcharge")

# the rate is measured over at least this many steps and this much of the budget (or 20 s, when that is less)
CALIBRATION_STEPS = 20
CALIBRATION_SHARE = 0.03
CALIBRATION_SECONDS = 20.0
SCALED = ("numb_steps", "disp_freq", "save_freq")


class TimeBudget:
    """The budget of one run; ``scaled`` (the steps it allows) is None until :meth:`calibrate` ran."""

    def __init__(self, seconds: float, scaled=None):
        self.seconds = float(seconds)
        self.scaled = scaled

    @classmethod
    def of(cls, config: dict, checkpoint: dict = None):
        """The budget ``config`` asks for (None without one), calibrated as in ``checkpoint`` when it was; the
        checkpoint's scaled settings are then copied into ``config``."""
        seconds = config["training"].get("time_budget")
        if seconds is None:
            return None
        scaled = checkpoint.get("budget_steps") if checkpoint else None
        if scaled is not None:
            _copy_scaled(checkpoint["config"], config)
        return cls(seconds, scaled)

    def due(self, steps: int, seconds: float) -> bool:
        """Whether ``steps`` training steps in ``seconds`` are enough to measure the rate."""
        return (self.scaled is None and steps >= CALIBRATION_STEPS
                and seconds >= min(CALIBRATION_SHARE * self.seconds, CALIBRATION_SECONDS))

    def calibrate(self, config: dict, steps: int, seconds: float, done: int):
        """Scale ``config``'s schedule to the steps the budget allows at ``steps`` per ``seconds`` (``done``
        steps are behind the run already)."""
        training, lr = config["training"], config["learning_rate"]
        target = max(done + 1, int(self.seconds * steps / seconds))
        factor = target / max(training["numb_steps"], 1)
        for key in SCALED[1:]:
            training[key] = max(1, round(training[key] * factor))
        lr["decay_steps"] = max(1, round(lr["decay_steps"] * factor))
        training["numb_steps"] = self.scaled = target
        log.info("time budget %.0f s at %.1f steps/s: numb_steps %d, decay_steps %d, disp_freq %d, save_freq %d "
                 "(the input's, scaled by %.3g)", self.seconds, steps / seconds, target, lr["decay_steps"],
                 training["disp_freq"], training["save_freq"], factor)

    def end_at(self, config: dict, done: int):
        """End the run after ``done`` steps: the budget is spent."""
        config["training"]["numb_steps"] = self.scaled = done
        log.info("time budget of %.0f s spent at step %d", self.seconds, done)

    def spent(self, seconds: float) -> bool:
        """Whether ``seconds`` of training have used the budget up."""
        return seconds >= self.seconds


def _copy_scaled(source: dict, target: dict):
    for key in SCALED:
        target["training"][key] = source["training"][key]
    target["learning_rate"]["decay_steps"] = source["learning_rate"]["decay_steps"]


def restart_training_section(config: dict, checkpoint: dict) -> dict:
    """The ``training`` section a restart of ``checkpoint`` runs with: with a calibrated time budget, the
    checkpoint's scaled one."""
    if config["training"].get("time_budget") is not None and checkpoint.get("budget_steps") is not None:
        return checkpoint["config"]["training"]
    return config["training"]
