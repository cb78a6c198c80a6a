"""Statistics over seeds: mean and a Student-t 95% confidence interval."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the two-sided t interval). The half-width is NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1) * sem)
