"""Learning-rate schedules (DeePMD-kit's ``exp``)."""


def effective_decay_steps(decay_steps: int, numb_steps: int) -> int:
    """DeePMD-kit's rule (deepmd/pt LearningRateExp): a ``decay_steps`` of at least ``numb_steps`` would never
    decay, so it becomes 100, or ``numb_steps // 100 + 1`` when ``numb_steps // 10`` is at most 100."""
    if decay_steps < numb_steps:
        return decay_steps
    return 100 if numb_steps // 10 > 100 else numb_steps // 100 + 1


def exp_decay(step: int, start_lr: float, stop_lr: float, decay_steps: int, numb_steps: int) -> float:
    """lr(t) = start_lr · r^⌊t/decay_steps⌋ with r = (stop_lr/start_lr)^(decay_steps/numb_steps), decay_steps
    as :func:`effective_decay_steps` makes it."""
    if numb_steps <= 0:
        return start_lr
    decay_steps = effective_decay_steps(decay_steps, numb_steps)
    rate = (stop_lr / start_lr) ** (decay_steps / numb_steps)
    return start_lr * rate ** (step // decay_steps)
