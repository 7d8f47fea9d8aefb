"""Learning-rate schedules (DeePMD-kit's ``exp``)."""


def exp_decay(step: int, start_lr: float, stop_lr: float, decay_steps: int, numb_steps: int) -> float:
    """lr(t) = start_lr · r^⌊t/decay_steps⌋ with r = (stop_lr/start_lr)^(decay_steps/numb_steps)."""
    if numb_steps <= 0:
        return start_lr
    decay_steps = min(decay_steps, numb_steps)
    rate = (stop_lr / start_lr) ** (decay_steps / numb_steps)
    return start_lr * rate ** (step // decay_steps)
