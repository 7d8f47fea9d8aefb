"""Density error metrics, accumulated over chunks of points: ε_mae, MAE, RMSE, max error."""

import math


class DensityErrors:
    """Running sums for ε_mae (%) = Σ|ρ−ρ̂|/Σ|ρ|·100, MAE and RMSE (e/Å³) and the largest |ρ−ρ̂|."""

    def __init__(self):
        self.count = 0
        self.abs_error = 0.0
        self.abs_reference = 0.0
        self.squared_error = 0.0
        self.max_abs_error = 0.0

    def add(self, reference, prediction):
        """Add points; accepts torch tensors or NumPy arrays of equal shape."""
        error = (prediction - reference)
        self.count += int(error.numel() if hasattr(error, "numel") else error.size)
        self.abs_error += float(abs(error).sum())
        self.abs_reference += float(abs(reference).sum())
        self.squared_error += float((error * error).sum())
        if self.count:
            self.max_abs_error = max(self.max_abs_error, float(abs(error).max()))
        return self

    def merge(self, other: "DensityErrors"):
        """Fold another accumulator into this one."""
        self.count += other.count
        self.abs_error += other.abs_error
        self.abs_reference += other.abs_reference
        self.squared_error += other.squared_error
        self.max_abs_error = max(self.max_abs_error, other.max_abs_error)
        return self

    @property
    def eps_mae_percent(self) -> float:
        return 100.0 * self.abs_error / self.abs_reference if self.abs_reference else float("nan")

    @property
    def mae(self) -> float:
        return self.abs_error / self.count if self.count else float("nan")

    @property
    def rmse(self) -> float:
        return math.sqrt(self.squared_error / self.count) if self.count else float("nan")

    def summary(self) -> dict:
        return {"eps_mae_percent": self.eps_mae_percent, "mae": self.mae, "rmse": self.rmse,
                "max_abs_error": self.max_abs_error, "points": self.count}
