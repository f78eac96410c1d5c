"""Small statistics for learning curves: binning and Student-t confidence intervals.

numpy only: the t quantile comes from the regularized incomplete beta
function (continued fraction, as in Numerical Recipes), which is exact to
far better than a plot needs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bin_means", "t_quantile", "mean_confidence_interval", "exponential_average"]


def bin_means(values: np.ndarray, bin_size: int) -> np.ndarray:
    """Means of consecutive bins of ``bin_size`` along the last axis (a partial last bin is dropped)."""
    values = np.asarray(values)
    if bin_size < 1:
        raise ValueError(f"bin_size must be >= 1, got {bin_size}")
    n_bins = values.shape[-1] // bin_size
    if n_bins == 0:
        raise ValueError(f"bin_size {bin_size} is longer than the {values.shape[-1]} values")
    trimmed = values[..., : n_bins * bin_size]
    return trimmed.reshape(*values.shape[:-1], n_bins, bin_size).mean(axis=-1, dtype=np.float64)


def _betacf(a, b, x):
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a, b, x):
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t, df):
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_confidence_interval(samples: np.ndarray, confidence: float = 0.95, axis: int = 0):
    """Mean and Student-t confidence interval over ``axis`` (the seeds).

    Returns
    -------
    mean, low, high : ndarray
        With one sample, ``low = high = mean`` (no interval can be given).
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[axis]
    mean = samples.mean(axis=axis)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    sem = samples.std(axis=axis, ddof=1) / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sem
    return mean, mean - half, mean + half


def exponential_average(rewards: np.ndarray, step_size: float = 0.01) -> np.ndarray:
    """Bias-corrected exponential recency-weighted average (Sutton & Barto, exercise 2.7).

    ``o_t = o_{t-1} + beta (1 - o_{t-1})``, ``avg_t = avg_{t-1} + (beta / o_t)(R_t - avg_{t-1})``:
    no bias towards the initial 0, unlike a plain exponential average.
    Works along the last axis.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(rewards)
    avg = np.zeros(rewards.shape[:-1])
    trace = 0.0
    for t in range(rewards.shape[-1]):
        trace += step_size * (1.0 - trace)
        avg = avg + (step_size / trace) * (rewards[..., t] - avg)
        out[..., t] = avg
    return out
