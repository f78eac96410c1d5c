"""Statistics of runs: learning-curve intervals, and the aggregate metrics the field expects.

Learning curves (numpy only, part of the core): binning and the Student-t
interval of a mean, whose quantile comes from the regularized incomplete
beta function (continued fraction, as in Numerical Recipes), exact to about
1e-15 (the tests compare it with scipy's and with closed forms).

Aggregate metrics of final performance (Agarwal et al. 2021, "Deep RL at
the edge of the statistical precipice"): the interquartile mean, median,
mean and optimality gap with stratified bootstrap confidence intervals
(:func:`aggregate_metrics`), performance profiles
(:func:`performance_profile`) and the probability of improvement of one
setting over another (:func:`probability_of_improvement`), defined as the
paper's ``rliable`` library defines them (the tests compare the numbers
with it on the same scores).  The bootstrap is
``scipy.stats.bootstrap`` (the ``analysis`` extra): passed one sample per
task, it resamples the runs of each task separately, which is exactly the
stratified bootstrap; percentile intervals, as ``rliable``'s.  Scores are a
1-D array of runs (one task, say one environment), or a 2-D array (or nested
lists) of runs x tasks, or a list of 1-D numpy arrays, one per task (their
lengths may differ);
scores of several tasks should be normalized by the caller first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["bin_means", "t_quantile", "mean_confidence_interval", "exponential_average",
           "Interval", "interquartile_mean", "aggregate_metrics", "performance_profile",
           "probability_of_improvement"]


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


def _betainc(a, b, x, y):
    """Regularized incomplete beta I_x(a, b), given ``x`` and ``y = 1 - x``.

    Both are passed so that neither is found as ``1 - other``, which would
    lose the digits of a small one.
    """
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log(y))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def _t_density(t, df):
    return math.exp(math.lgamma((df + 1) / 2.0) - math.lgamma(df / 2.0)
                    - 0.5 * math.log(df * math.pi) - (df + 1) / 2.0 * math.log1p(t * t / df))


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Without scipy, and as exact: within 2e-15 of the closed forms of df 1
    and 2, and of ``scipy.stats.t.ppf`` to 1e-12 for df 1 to 200 and p from
    1e-6 to 1 - 1e-6 (near p = 0.5 closer than scipy's, which loses digits
    there).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if p == 0.5:
        return 0.0
    # Solve for the probability the distribution puts between 0 and t, or beyond
    # t, whichever is smaller (each an incomplete beta function of its own, found
    # directly): |p - 0.5| and 1 - p are exact where they are used, while p
    # reflected as 1 - p, or a tail near 0.5, would lose digits.
    central = 0.25 < p < 0.75
    target = abs(p - 0.5) if central else min(p, 1.0 - p)

    def short(t):
        """How far ``t`` falls short of the quantile, in probability (> 0: too small)."""
        x, y = df / (df + t * t), t * t / (df + t * t)
        if central:
            return target - 0.5 * _betainc(0.5, df / 2.0, y, x)
        return 0.5 * _betainc(df / 2.0, 0.5, x, y) - target

    # Newton's method, kept inside a bracket that bisection narrows whenever a
    # Newton step would leave it.
    lo, hi = 0.0, 1.0
    while short(hi) > 0.0:
        lo, hi = hi, 2.0 * hi
    t = 0.5 * (lo + hi)
    for _ in range(100):
        gap = short(t)
        if gap == 0.0:
            break
        if gap > 0.0:
            lo = t
        else:
            hi = t
        following = t + gap / _t_density(t, df)
        if not lo < following < hi:
            following = 0.5 * (lo + hi)
        done = abs(following - t) <= 2e-16 * following
        t = following
        if done:
            break
    return t if p > 0.5 else -t


def mean_confidence_interval(samples: np.ndarray, confidence: float = 0.95, axis: int = 0
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


# --- aggregate metrics with stratified bootstrap intervals (Agarwal et al. 2021) ---------


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval.

    Attributes
    ----------
    estimate, low, high : float
        ``low`` and ``high`` are NaN when no interval can be given (a task
        with fewer than two runs).
    confidence : float
    method : str
        How the interval was made (for a figure's caption).
    """

    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    def __str__(self):
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}]"


#: Scores of runs: runs (1-D), runs x tasks (2-D), or a list of numpy arrays, one per task.
Scores = ArrayLike | list


def _scipy_stats():
    from avgreward.extras import require

    return require("scipy.stats", "analysis", "bootstrap confidence intervals")


def _tasks(scores, name="scores") -> list[np.ndarray]:
    """Scores as a list of 1-D float64 arrays, one per task; ValueError naming ``name``."""
    if isinstance(scores, (list, tuple)) and scores and all(
            isinstance(task, np.ndarray) for task in scores):
        # A list of arrays is one per task (their lengths may differ); nested lists of
        # numbers are read as an array, runs x tasks, like the same numbers in an array.
        tasks = [np.asarray(task, dtype=np.float64) for task in scores]
    else:
        array = np.asarray(scores, dtype=np.float64)
        if array.ndim == 1:
            tasks = [array]
        elif array.ndim == 2:
            tasks = [array[:, j] for j in range(array.shape[1])]
        else:
            raise ValueError(f"{name} must be runs (1-D), runs x tasks (2-D) or a list of "
                             f"1-D arrays, got shape {array.shape}")
    if not tasks or any(task.ndim != 1 or task.size == 0 for task in tasks):
        raise ValueError(f"{name} must hold at least one run of each task")
    if not all(np.isfinite(task).all() for task in tasks):
        raise ValueError(f"{name} must be finite (leave failed runs out, or score them)")
    return tasks


def _check_confidence(confidence, n_resamples):
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")


def interquartile_mean(x: ArrayLike, axis: int = -1) -> np.ndarray | float:
    """The mean of the middle 50% of ``x`` along ``axis`` (25% trimmed from each end).

    ``scipy.stats.trim_mean(x, 0.25)``: robust to the outlying runs that move
    a mean, more efficient than the median.
    """
    return _scipy_stats().trim_mean(x, 0.25, axis=axis)


def _metric_functions(optimum):
    stats = _scipy_stats()

    def iqm(x, axis):
        return stats.trim_mean(x, 0.25, axis=axis)

    def optimality_gap(x, axis):
        return np.mean(np.maximum(optimum - x, 0.0), axis=axis)

    # Taken over the runs of all tasks pooled: IQM and optimality gap.  Over the
    # tasks' mean scores, each task counting once: median and mean.
    pooled = {"iqm": iqm}
    if optimum is not None:
        pooled["optimality_gap"] = optimality_gap
    return pooled, {"median": np.median, "mean": np.mean}


def _bootstrap(tasks, statistic, confidence, n_resamples, seed):
    """(low, high) of ``statistic(*tasks, axis)`` by the stratified percentile bootstrap."""
    if min(task.size for task in tasks) < 2:
        shape = np.shape(statistic(*tasks, axis=-1))
        return np.full(shape, np.nan), np.full(shape, np.nan)
    stats = _scipy_stats()
    # scipy 1.15 renamed random_state to rng; the extra admits 1.11.
    import inspect

    generator = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    result = stats.bootstrap(tuple(tasks), statistic, n_resamples=n_resamples,
                             confidence_level=confidence, method="percentile",
                             vectorized=True, paired=False, batch=200,
                             **{generator: np.random.default_rng(seed)})
    return result.confidence_interval.low, result.confidence_interval.high


def _method(n_resamples):
    return f"stratified percentile bootstrap, {n_resamples} resamples"


def aggregate_metrics(scores: Scores, optimum: float | None = None, *, confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> dict[str, Interval]:
    """IQM, median, mean (and optimality gap) of the runs' scores, with bootstrap intervals.

    Parameters
    ----------
    scores : array_like or list of array_like
        One score per run (say, its mean reward over the last 10% of steps):
        runs (1-D), runs x tasks (2-D or nested lists), or a list of 1-D
        numpy arrays, one per task.  As Agarwal et al. and ``rliable``
        define them, the IQM and the optimality gap are taken over all runs
        of all tasks pooled, the median and the mean over the tasks' mean
        scores (each task counting once; of one task, both are the mean of
        its runs).
    optimum : float, optional
        The best possible score (0 for the pendulum swing-up, the exact
        optimal reward rate of a tabular task): adds the optimality gap,
        ``mean(max(optimum - score, 0))``, the shortfall from it (the runs'
        scores above it count as meeting it).
    confidence : float, default 0.95
    n_resamples : int, default 2000
    seed : int, default 0
        The bootstrap's generator: same scores and seed, same intervals.

    Returns
    -------
    dict of str to Interval
        ``"iqm"``, ``"median"``, ``"mean"`` and, given ``optimum``,
        ``"optimality_gap"``.

    Raises
    ------
    ValueError
        On scores that are empty or not finite, or bad settings.
    avgreward.extras.MissingExtraError
        Without scipy (``pip install "avgreward[analysis]"``).

    Examples
    --------
    >>> import numpy as np
    >>> from avgreward import stats
    >>> scores = np.array([-0.02, -0.01, -0.012, -0.3, -0.011, -0.013, -0.009, -0.015])
    >>> m = stats.aggregate_metrics(scores, optimum=0.0)
    >>> round(m["iqm"].estimate, 4), m["iqm"].low <= m["iqm"].estimate <= m["iqm"].high
    (-0.0127, True)
    """
    tasks = _tasks(scores)
    _check_confidence(confidence, n_resamples)
    if optimum is not None and not math.isfinite(optimum):
        raise ValueError(f"optimum must be a finite number, got {optimum!r}")
    over_runs, over_tasks = _metric_functions(optimum)
    statistics = {}
    for name, function in over_runs.items():
        def pooled(*samples, axis=-1, function=function):
            return function(np.concatenate(samples, axis=axis), axis=axis)

        statistics[name] = pooled
    for name, function in over_tasks.items():
        def of_task_means(*samples, axis=-1, function=function):
            return function([np.mean(x, axis=axis) for x in samples], axis=0)

        statistics[name] = of_task_means
    out = {}
    for name in ["iqm", "median", "mean", "optimality_gap"]:
        if name in statistics:
            low, high = _bootstrap(tasks, statistics[name], confidence, n_resamples, seed)
            out[name] = Interval(float(statistics[name](*tasks)), float(low), float(high),
                                 confidence, _method(n_resamples))
    return out


def performance_profile(scores: Scores, thresholds: ArrayLike, *, confidence: float = 0.95,
                        n_resamples: int = 2000, seed: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fraction of runs scoring above each threshold, with bootstrap bands.

    Averaged over tasks (each task's fraction of its runs), as Agarwal et al.'s
    run-score distributions.

    Parameters
    ----------
    scores : array_like or list of array_like
        As :func:`aggregate_metrics`.
    thresholds : array_like of float
        The scores ``tau`` at which ``P(score > tau)`` is taken.

    Returns
    -------
    fraction, low, high : ndarray
        Each of the shape of ``thresholds``.
    """
    tasks = _tasks(scores)
    _check_confidence(confidence, n_resamples)
    taus = np.asarray(thresholds, dtype=np.float64)
    if taus.ndim != 1 or taus.size == 0 or not np.isfinite(taus).all():
        raise ValueError("thresholds must be a non-empty 1-D array of finite numbers")

    def profile(*samples, axis=-1):
        # scipy wants the statistic's own axis (the thresholds) before the resamples'
        parts = [np.moveaxis(np.mean(np.moveaxis(x, axis, -1)[..., None, :] > taus[:, None],
                                     axis=-1), -1, 0) for x in samples]
        return np.mean(parts, axis=0)

    low, high = _bootstrap(tasks, profile, confidence, n_resamples, seed)
    return profile(*tasks), np.asarray(low), np.asarray(high)


def probability_of_improvement(x: Scores, y: Scores, *, confidence: float = 0.95, n_resamples: int = 2000,
                               seed: int = 0) -> Interval:
    """``P(X > Y)``: the probability that a run of setting X scores above a run of Y.

    Per task, the Mann-Whitney statistic ``(1 / (m n)) sum_ij S(x_i, y_j)``
    with ``S`` 1 if ``x_i > y_j``, 1/2 on a tie (equal to a relative
    1e-12: the same reward rate summed two ways), 0 otherwise; averaged over
    tasks.  0.5 means neither is better; the interval resamples the runs of
    X and of Y of each task separately.

    Parameters
    ----------
    x, y : array_like or list of array_like
        The two settings' scores on the same tasks (as :func:`aggregate_metrics`).

    Returns
    -------
    Interval
    """
    xs, ys = _tasks(x, "x"), _tasks(y, "y")
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} task(s) and y {len(ys)}: compare on the same tasks")
    _check_confidence(confidence, n_resamples)
    k = len(xs)

    def improvement(*samples, axis=-1):
        total = 0.0
        for a, b in zip(samples[:k], samples[k:]):
            a = np.moveaxis(a, axis, -1)[..., :, None]
            b = np.moveaxis(b, axis, -1)[..., None, :]
            # Equal up to rounding is a tie: reward rates that are the same number
            # come out of different sums a few ulps apart.
            tie = np.isclose(a, b, rtol=1e-12, atol=1e-15)
            total = total + np.mean((a > b) & ~tie, axis=(-2, -1)) + 0.5 * np.mean(
                tie, axis=(-2, -1))
        return total / k

    low, high = _bootstrap(xs + ys, improvement, confidence, n_resamples, seed)
    return Interval(float(improvement(*xs, *ys)), float(low), float(high), confidence,
                    _method(n_resamples))
