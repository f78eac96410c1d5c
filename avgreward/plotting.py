"""Plots of results: learning curves, parameter sensitivity, pendulum policy and value maps.

Every function draws on a matplotlib ``Axes`` (a new figure if none is
given) and returns the figure, so scripts can save it (:func:`save_figure`)
and notebooks can show it.  The core functions take plain arrays; the
``learning_curves`` and ``sensitivity`` wrappers take saved experiments
(:mod:`avgreward.experiment`).

Confidence bands are over seeds (the independent runs): a Student-t interval
of the mean by default, or a percentile bootstrap (``band="bootstrap"``).

:func:`save_figure` writes any format matplotlib can write on this machine
(:func:`figure_formats`: PNG, SVG, PDF, EPS, JPEG, ...), chosen by the file's
extension, and creates the file's directory if needed.
"""

from __future__ import annotations

import errno
import math
import os
import sys
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from avgreward.stats import bin_means, exponential_average, mean_confidence_interval

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not before
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from avgreward.estimators import EstimatorLab
    from avgreward.result import Result

__all__ = [
    "confidence_band",
    "learning_curve",
    "exponential_average_curve",
    "learning_curves",
    "episode_curves",
    "curves_with_episodes",
    "sensitivity_curve",
    "sensitivity",
    "policy_map",
    "value_map",
    "optimum_line",
    "baseline_line",
    "estimator_lab",
    "save_figure",
    "figure_formats",
    "check_figure_path",
]

_PENDULUM_IDS = ("avgreward/PendulumSwingUp-v0", "avgreward/PendulumSwingUpContinuous-v0")
# Discrete pendulum actions 0, 1, 2 = torque -1, 0, +1: blue, grey, red.
_TORQUE_COLORS = ((0.23, 0.42, 0.80), (0.62, 0.62, 0.62), (0.84, 0.24, 0.20))


def _pyplot():
    import matplotlib

    backend = matplotlib.get_backend().lower()
    gui = backend not in ("agg", "pdf", "svg", "ps", "cairo") and "inline" not in backend
    if gui and os.name == "posix" and sys.platform != "darwin" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Scripts run headless and over ssh: never try to open a window there.  A
        # notebook's inline backend and a desktop's windows are the user's: kept.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(ax, figsize=(7.0, 4.2)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return fig, ax


def confidence_band(samples: ArrayLike, confidence: float = 0.95, band: str = "t",
                    n_resamples: int = 2000, seed: int = 0,
                    bounds: tuple[float, float] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and a confidence interval of that mean.

    Parameters
    ----------
    samples : array_like, shape (n_seeds, ...)
        One row per independent run.
    confidence : float, default 0.95
        Level of the interval, in (0, 1).
    band : {"t", "bootstrap", "none"}
        ``"t"``: Student-t interval ``mean +- t * s / sqrt(n)``, which can
        reach past the largest possible reward when runs are skewed.
        ``"bootstrap"``: percentile bootstrap over seeds (``n_resamples``
        resamples drawn with ``np.random.default_rng(seed)``, so plots are
        reproducible), which stays within the range of the runs.
        ``"none"``: no interval (``low = high = mean``).
    n_resamples, seed : int
        Bootstrap only.
    bounds : (float, float), optional
        Known bounds of the mean (the reward's range, e.g.
        :func:`avgreward.evaluation.reward_bounds`): the interval is clipped
        to them.  The true mean lies within them, so clipping removes only
        the part of a t interval that cannot contain it.

    Returns
    -------
    mean, low, high : ndarray
        Of shape ``samples.shape[1:]``.  With one seed ``low = high = mean``
        (no interval can be given).
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 0 or samples.shape[0] == 0:
        raise ValueError("samples must have at least one seed (row)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if bounds is not None:
        lo, hi = _check_bounds(bounds)
        mean, low, high = confidence_band(samples, confidence, band, n_resamples, seed)
        return mean, np.clip(low, lo, hi), np.clip(high, lo, hi)
    if band == "t":
        return mean_confidence_interval(samples, confidence)
    if band == "none":
        mean = samples.mean(axis=0)
        return mean, mean.copy(), mean.copy()
    if band != "bootstrap":
        raise ValueError(f'band must be "t", "bootstrap" or "none", got {band!r}')
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    # Resampling seeds with replacement = multinomial counts: a matrix product
    # instead of an (n_resamples, n, ...) gather.
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples) / n
    means = (weights @ samples.reshape(n, -1)).reshape(n_resamples, *samples.shape[1:])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return mean, low, high


def _check_bounds(bounds):
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be (low, high), got {bounds!r}") from None
    if not lo <= hi:
        raise ValueError(f"bounds must be (low, high) with low <= high, got {bounds!r}")
    return lo, hi


def _merge_at(binned, steps, starts, stop):
    """Merge the bins ``starts[j]:starts[j+1]`` (the last group ends at ``stop``).

    Groups are weighted by the bins' widths in steps, so a group's value is
    the mean reward of its steps; a point is drawn at its group's last step.
    """
    widths = np.diff(steps[:stop], prepend=0).astype(np.float64)
    sums = np.add.reduceat(binned[:, :stop] * widths, starts, axis=1)
    ends = np.append(starts[1:], stop)
    return sums / np.add.reduceat(widths, starts), steps[ends - 1]


def _binned(rewards, steps, bin_size, points, xscale="linear"):
    """(values per seed and point, step of each point, y label) of a learning curve."""
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim == 1:
        rewards = rewards[None, :]
    if rewards.ndim != 2 or rewards.shape[1] == 0:
        raise ValueError(f"rewards must have shape (n_seeds, n), got {rewards.shape}")
    if xscale not in ("linear", "log"):
        raise ValueError(f'xscale must be "linear" or "log", got {xscale!r}')
    n = rewards.shape[1]
    if steps is None:
        if xscale == "linear":
            if bin_size is None:
                bin_size = max(1, n // points)
            binned = bin_means(rewards, bin_size)
            return (binned, (np.arange(binned.shape[1]) + 1) * bin_size,
                    f"reward per step (mean of {bin_size:,}-step bins)")
        steps = np.arange(1, n + 1)  # every step is a bin of one step
    steps = np.asarray(steps)
    if steps.shape != (n,):
        raise ValueError(f"steps must have one entry per bin ({n}), got shape {steps.shape}")
    if xscale == "log":
        # Groups of bins growing geometrically: even spacing on the log axis.
        starts = np.unique(np.geomspace(1, n + 1, points + 1)[:-1].astype(np.int64) - 1)
        values, positions = _merge_at(rewards, steps, starts, n)
        return values, positions, "reward per step (mean of log-spaced bins)"
    width = int(steps[0])
    k = max(1, math.ceil(n / points) if bin_size is None else round(bin_size / width))
    stop = max(1, n // k) * k if n >= k else n
    values, positions = _merge_at(rewards, steps, np.arange(0, stop, k), stop)
    return values, positions, f"reward per step (mean of {k * width:,}-step bins)"


def _draw(ax, x, values, label, color, show_runs, confidence, band, lw=1.8, bounds=None,
          noun="reward"):
    """Mean line, faint runs and the confidence band of ``values`` [n_seeds, len(x)]."""
    n_seeds = values.shape[0]
    mean, low, high = confidence_band(values, confidence, band, bounds=bounds)
    name = None if label is None else f"{label} ({n_seeds} seed{'s' if n_seeds > 1 else ''})"
    line = ax.plot(x, mean, label=name, color=color, lw=lw, zorder=3)[0]
    if show_runs and n_seeds > 1:
        ax.plot(x, values.T, color=line.get_color(), lw=0.5, alpha=0.12, zorder=1)
    if n_seeds > 1 and band != "none":
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, lw=0, zorder=2,
                        label=None if label is not None else
                        f"{confidence:.0%} CI of the mean ({n_seeds} seeds)"
                        + _clip_note(band, bounds, noun))
    return line


def _finish(ax, title, legend_title, steps_axis=True):
    if steps_axis:
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        if ax.get_xscale() == "linear":
            # Few enough ticks that "100,000" labels never run together.
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="lower right", title=legend_title, fontsize=9, title_fontsize=9)


def _band_name(confidence, band, bounds=None, noun="reward"):
    if band == "none":
        return "mean over seeds"
    name = f"mean, {confidence:.0%} CI ({'Student t' if band == 't' else 'bootstrap'})"
    return name + _clip_note(band, bounds, noun)


def _clip_note(band, bounds, noun="reward"):
    """What the band was clipped to (``noun``: what the bounds bound), for a legend."""
    # A bootstrap interval stays within the runs' range: only a t interval is cut.
    if bounds is None or band != "t":
        return ""
    if bounds == "several":  # curves of tasks with different bounds share the legend
        return f",\nclipped to each {noun}'s known range"
    lo, hi = bounds
    if math.isinf(hi):
        return f",\nclipped to {noun} >= {lo:.3g}"
    if math.isinf(lo):
        return f",\nclipped to {noun} <= {hi:.3g}"
    return f",\nclipped to the {noun}'s range [{lo:.3g}, {hi:.3g}]"


def _per_run(x, run_steps):
    """``x`` as a fraction of a run of ``run_steps`` steps (unchanged if None), and the label."""
    if run_steps is None:
        return x, "step"
    return np.asarray(x, dtype=np.float64) / run_steps, "fraction of the run's steps"


def optimum_line(ax: Axes, value: float, label: str | None = None) -> Line2D:
    """A dashed horizontal line at the best possible reward rate ``value``."""
    return ax.axhline(value, color="0.25", ls="--", lw=1.0, zorder=1,
                      label=label or f"optimum ({value:.4g})")


def baseline_line(ax: Axes, value: float, label: str | None = None) -> Line2D:
    """A dotted horizontal line at a baseline's reward rate ``value`` (e.g. the random policy's)."""
    return ax.axhline(value, color="0.45", ls=":", lw=1.2, zorder=1,
                      label=label or f"baseline ({value:.4g})")


def learning_curve(
    rewards,
    bin_size: int | None = None,
    label: str | None = None,
    ax=None,
    confidence: float = 0.95,
    show_runs: bool = True,
    color=None,
    title: str | None = None,
    *,
    steps=None,
    points: int = 200,
    band: str = "t",
    xscale: str = "linear",
    run_steps: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> Figure:
    """Reward rate per step against steps: mean over seeds with a confidence band.

    Parameters
    ----------
    rewards : array_like, shape (n_seeds, n)
        Either per-step rewards of each seed's run (``steps`` omitted), or
        binned mean rewards, one column per bin, with ``steps`` giving the
        step count at the end of each bin (``Experiment.rewards(i)`` and
        ``Experiment.bin_steps``).
    bin_size : int, optional
        Steps per plotted point; by default about ``points`` points.  With
        binned input, consecutive stored bins are merged (weighted by their
        widths) into points of about ``bin_size`` steps.
    label : str, optional
        Legend label of this curve (the number of seeds is appended).
    ax : matplotlib Axes, optional
        Draw here (several curves on one figure); a new figure otherwise.
    confidence : float, default 0.95
        Level of the band over seeds.
    show_runs : bool, default True
        Draw each seed's curve faintly behind the mean.
    color : matplotlib color, optional
    title : str, optional
    steps : array_like of int, shape (n,), optional
        Step count at the end of each bin of binned ``rewards``.
    points : int, default 200
        Target number of points when ``bin_size`` is not given.
    band : {"t", "bootstrap", "none"}, default "t"
        See :func:`confidence_band`.
    xscale : {"linear", "log"}, default "linear"
        ``"log"``: a log step axis (fast early learning and slow refinement
        on one figure), with bins growing geometrically (``bin_size`` is
        ignored).
    run_steps : int, optional
        Draw against the fraction of a run of this many steps instead of
        steps (runs of different lengths on one figure).
    bounds : (float, float), optional
        The reward's known range: the band is clipped to it (see
        :func:`confidence_band`), and the legend says so.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values, x, ylabel = _binned(rewards, steps, bin_size, points, xscale)
    x, xlabel = _per_run(x, run_steps)
    fig, ax = _figure(ax)
    _draw(ax, x, values, label, color, show_runs, confidence, band, bounds=bounds)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale(xscale)
    _finish(ax, title, _band_name(confidence, band, bounds) if label is not None else None,
            steps_axis=run_steps is None)
    return fig


def _binned_exponential_average(binned, steps, step_size):
    """Bias-corrected exponential average evaluated at bin ends, from bin means.

    Each bin of ``B`` steps is one update with the step size
    ``1 - (1 - step_size)^B`` of ``B`` per-step updates, and the bias
    correction ``o`` advances the same way, so ``o = 1 - (1 - step_size)^t``
    at step ``t`` exactly as per step.  The result equals the per-step
    average at the bin ends when the reward is constant within each bin;
    otherwise the steps of a bin are weighted equally rather than
    exponentially (a difference that vanishes for bins short against
    ``1 / step_size``).
    """
    widths = np.diff(np.concatenate([[0], steps])).astype(np.float64)
    out = np.empty_like(binned)
    avg = np.zeros(binned.shape[0])
    trace = 0.0
    for k, width in enumerate(widths):
        beta = -math.expm1(width * math.log1p(-step_size))
        trace += beta * (1.0 - trace)
        avg = avg + (beta / trace) * (binned[:, k] - avg)
        out[:, k] = avg
    return out


def exponential_average_curve(
    rewards,
    step_size: float = 0.01,
    label: str | None = None,
    ax=None,
    confidence: float = 0.95,
    show_runs: bool = True,
    color=None,
    title: str | None = None,
    *,
    steps=None,
    points: int = 1000,
    band: str = "t",
    xscale: str = "linear",
    run_steps: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> Figure:
    """Bias-corrected exponential average of the reward against steps, over seeds.

    The curve usually shown for the pendulum swing-up: each run's reward is
    averaged with :func:`avgreward.stats.exponential_average` (Sutton &
    Barto, exercise 2.7: a recency-weighted average without the bias
    towards 0 at the start), then the mean over seeds is drawn with a
    confidence band.

    Parameters
    ----------
    rewards : array_like, shape (n_seeds, n)
        Per-step rewards, or binned mean rewards with ``steps`` (see
        :func:`learning_curve`).  From bins, each bin is one update with the
        step size of its ``B`` steps, ``1 - (1 - step_size)^B``: exact at
        the bin ends when the reward is constant within each bin, and
        otherwise weighting a bin's steps equally instead of exponentially.
    step_size : float, default 0.01
        Step size of the per-step average (time constant ``1 / step_size`` steps).
    points : int, default 1000
        At most this many points are drawn (the curve is already smooth).
    xscale : {"linear", "log"}, default "linear"
        A log step axis draws points spaced evenly on it.

    Other parameters are those of :func:`learning_curve`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not 0.0 < step_size <= 1.0:
        raise ValueError(f"step_size must lie in (0, 1], got {step_size!r}")
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim == 1:
        rewards = rewards[None, :]
    if rewards.ndim != 2 or rewards.shape[1] == 0:
        raise ValueError(f"rewards must have shape (n_seeds, n), got {rewards.shape}")
    if steps is None:
        averaged = exponential_average(rewards, step_size)
        x = np.arange(1, rewards.shape[1] + 1)
    else:
        x = np.asarray(steps)
        if x.shape != (rewards.shape[1],):
            raise ValueError(f"steps must have one entry per bin ({rewards.shape[1]}), "
                             f"got shape {x.shape}")
        averaged = _binned_exponential_average(rewards, x, step_size)
    n = averaged.shape[1]
    if xscale == "log":
        keep = np.unique(np.geomspace(1, n, points).astype(np.int64) - 1)
    elif xscale == "linear":
        every = max(1, math.ceil(n / points))
        keep = np.arange(every - 1, n, every)
    else:
        raise ValueError(f'xscale must be "linear" or "log", got {xscale!r}')
    fig, ax = _figure(ax)
    xs, xlabel = _per_run(x[keep], run_steps)
    _draw(ax, xs, averaged[:, keep], label, color, show_runs, confidence, band,
          bounds=bounds)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"exponential average of reward (step size {step_size:g})")
    ax.set_xscale(xscale)
    _finish(ax, title, _band_name(confidence, band, bounds) if label is not None else None,
            steps_axis=run_steps is None)
    return fig


def _as_list(experiments):
    if isinstance(experiments, (list, tuple)):
        return list(experiments)
    return [experiments]


def _experiment_name(experiment):
    from pathlib import Path

    return Path(experiment.path).name


def _names_by_difference(curves):
    """Name curves of several experiments by what differs between them, where that tells them apart.

    ``curves``: (experiment, agent index, default name).  The environment,
    the steps and every agent setting are compared over all curves; a
    curve's name lists those that differ (``alpha_w=2^1``, as
    ``Experiment.label``).  If that leaves two curves with one name, the
    defaults (directory names) stay.
    """
    from avgreward.runner.view import format_settings

    def described(experiment, i):
        return {"env": str(getattr(experiment, "env_id", "")).split("/")[-1],
                "steps": getattr(experiment, "steps", None),
                **experiment.agents[i].to_dict(complete=True)}

    dicts = [described(e, i) for e, i, _ in curves]
    keys = []
    for d in dicts:
        keys.extend(k for k in d if k not in keys)
    varying = [k for k in keys if len({repr(d.get(k)) for d in dicts}) > 1]
    names = format_settings(dicts, varying)
    if not varying or len(set(names)) < len(names):
        return curves
    return [(e, i, name) for (e, i, _), name in zip(curves, names)]


def _curves(experiments, agents, labels):
    """``(curves, drawable)``: (experiment, agent index, legend name) of every curve asked
    for, and of those with a finished run (a ValueError if there is none)."""
    curves = []
    for experiment in experiments:
        indices = range(len(experiment.agents)) if agents is None else agents
        for i in indices:
            name = experiment.label(i)
            if len(experiments) > 1:
                prefix = _experiment_name(experiment)
                name = f"{prefix}: {name}" if name and len(experiment.agents) > 1 else prefix
            curves.append((experiment, i, name or None))
    if len(experiments) > 1:
        curves = _names_by_difference(curves)
    if labels is not None:
        if len(labels) != len(curves):
            raise ValueError(f"labels must have one entry per curve ({len(curves)}), "
                             f"got {len(labels)}")
        curves = [(e, i, lab) for (e, i, _), lab in zip(curves, labels)]
    drawable = [(e, i, name) for e, i, name in curves if e.finished_seeds(i)]
    if not drawable:
        # An empty figure would look like a plotting bug, not like failed runs.
        where = ", ".join(str(e.path) for e in experiments)
        which = "no run" if agents is None else f"no run of agents {list(agents)}"
        raise ValueError(f"nothing to draw: {which} finished in {where} "
                         f"({'; '.join(e.summary() for e in experiments)})")
    return curves, drawable


def learning_curves(
    experiments,
    *,
    agents=None,
    labels=None,
    exponential: bool = False,
    step_size: float = 0.01,
    ax=None,
    title: str | None = None,
    confidence: float = 0.95,
    show_runs: bool = True,
    band: str = "t",
    points: int | None = None,
    xscale: str = "linear",
    x: str = "steps",
    optimum: float | None = None,
    bounds="auto",
    baseline: float | None = None,
    baseline_label: str | None = None,
) -> Figure:
    """Learning curves of saved experiments, one curve per agent, on one figure.

    Parameters
    ----------
    experiments : Experiment or list of Experiment
        From :func:`avgreward.experiment.run_experiment` or ``load_experiment``.
    agents : list of int, optional
        Indices of the agents to draw (the same for every experiment);
        default all.
    labels : list of str, optional
        One legend label per curve, in order.  By default ``Experiment.label(i)``
        (the settings that differ between the agents); with several
        experiments, what differs between all the curves (environment, steps,
        settings, as ``alpha_w=2^1``), or the directory's name where that does
        not tell them apart.
    exponential : bool, default False
        Draw the bias-corrected exponential average of reward
        (:func:`exponential_average_curve`, with ``step_size``) instead of
        the binned reward rate (:func:`learning_curve`).
    ax, title, confidence, show_runs, band, points, xscale
        As in :func:`learning_curve`.
    x : {"steps", "fraction"}, default "steps"
        The x axis: steps, or the fraction of each experiment's steps (runs
        of different lengths compared without squashing the short ones).
    optimum : float, optional
        Draw a dashed line at this best possible reward rate
        (:func:`avgreward.evaluation.optimal_reward_rate`).
    bounds : "auto", (float, float) or None, default "auto"
        Clip each band to the reward's range: ``"auto"``, each experiment's
        environment's range where it is known
        (:func:`avgreward.evaluation.reward_bounds`); None, never.
    baseline : float, optional
        Draw a dotted line at this reward rate, e.g. the uniform random
        policy's (:func:`avgreward.evaluation.random_policy_rate`): what
        learning must beat.
    baseline_label : str, optional
        Its legend label (default ``"baseline (R)"``).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no run of the chosen agents finished (every one failed or none
        has run yet): there would be nothing to draw.  Agents with no
        finished run among others that have one are left out.
    """
    experiments = _as_list(experiments)
    if x not in ("steps", "fraction"):
        raise ValueError(f'x must be "steps" or "fraction", got {x!r}')
    curves, drawable = _curves(experiments, agents, labels)
    if isinstance(bounds, str) and bounds != "auto":
        raise ValueError(f'bounds must be "auto", (low, high) or None, got {bounds!r}')
    fig, ax = _figure(ax)
    if optimum is not None:
        optimum_line(ax, optimum)
    if baseline is not None:
        baseline_line(ax, baseline, baseline_label)
    ylabels = set()
    for experiment, i, name in drawable:
        rewards = experiment.rewards(i)
        known = bounds
        if bounds == "auto":
            from avgreward.evaluation import reward_bounds

            known = reward_bounds(experiment.env_id)
        # With one curve the band's own legend entry explains the shading.
        lab = name if len(curves) > 1 or labels is not None else None
        run_steps = experiment.steps if x == "fraction" else None
        if exponential:
            exponential_average_curve(rewards, step_size, lab, ax, confidence, show_runs,
                                      steps=experiment.bin_steps, band=band,
                                      points=points or 1000, xscale=xscale,
                                      run_steps=run_steps, bounds=known)
        else:
            learning_curve(rewards, None, lab, ax, confidence, show_runs,
                           steps=experiment.bin_steps, band=band, points=points or 200,
                           xscale=xscale, run_steps=run_steps, bounds=known)
        ylabels.add(ax.get_ylabel())
    if len(ylabels) > 1:  # experiments binned differently: no single bin width to name
        ax.set_ylabel("reward per step (binned means)")
    if title:
        ax.set_title(title)
    return fig


def _episode_points(runs, steps, points):
    """(values per run and point, step of each point) of an episode curve.

    ``runs``: per run, ``(end_steps, values)`` of its episodes.  A point
    covers ``width`` steps: each run's value there is the mean of its
    episodes that ended in them, or, if none did, that of the last point
    where some did (an episode longer than a point spans several); points
    before every run's first end are not drawn.
    """
    width = max(1, -(-steps // points))
    n = -(-steps // width)
    rows = []
    for ends, values in runs:
        b = (np.asarray(ends) - 1) // width
        counts = np.bincount(b, minlength=n)[:n]
        sums = np.bincount(b, weights=values, minlength=n)[:n]
        filled = np.where(counts > 0, np.arange(n), -1)
        last = np.maximum.accumulate(filled)  # the latest point with an episode
        row = np.full(n, np.nan)
        seen = last >= 0
        row[seen] = sums[last[seen]] / counts[last[seen]]
        rows.append(row)
    values = np.array(rows)
    first = int(np.argmax(np.isfinite(values).all(axis=0)))
    x = np.minimum(np.arange(1, n + 1) * width, steps)
    return values[:, first:], x[first:], width


def episode_curves(
    experiments,
    *,
    agents=None,
    labels=None,
    axes=None,
    title: str | None = None,
    confidence: float = 0.95,
    show_runs: bool = True,
    band: str = "t",
    points: int = 100,
    xscale: str = "linear",
    x: str = "steps",
    bounds="auto",
) -> Figure:
    """Episode return and episode length against steps: mean over seeds with a band.

    For an episodic task (``Experiment.has_episodes``): one panel of the
    episodes' returns, one of their lengths, one curve per agent as
    :func:`learning_curves` draws the reward rate (the same names and
    colours in the same order).  A point covers ``steps / points`` steps; a
    run's value there is the mean over its episodes that ended in those
    steps (or, where none did, over those of the last point where some
    did); the line is the mean over seeds, the band the ``confidence``
    interval of that mean (:func:`confidence_band`), as the legend says,
    clipped as the reward rate's is to what the mean can be: a length to
    ``[1, cap]`` (``cap`` the longest episode where known, the agent's
    ``max_episode_steps`` or the id's registered time limit, see
    :func:`avgreward.evaluation.episode_cap`; else at least 1), a return to
    the reward's range times the length where the reward's range is known
    (:func:`avgreward.evaluation.episode_bounds`); the legend says so.

    Parameters
    ----------
    experiments, agents, labels, title, confidence, show_runs, band, xscale, x
        As in :func:`learning_curves`.
    bounds : "auto", (float, float) or None, default "auto"
        The reward's range per step, for the returns' bounds: ``"auto"``,
        each environment's where known
        (:func:`avgreward.evaluation.reward_bounds`); None, no band is
        clipped (lengths neither).
    axes : (Axes, Axes), optional
        Where to draw the returns and the lengths; a new figure of two
        panels otherwise.
    points : int, default 100
        Points per curve.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no finished run of the chosen agents has an episode with its end
        step (a continuing task; parallel actors do not record end steps).
    """
    experiments = _as_list(experiments)
    if x not in ("steps", "fraction"):
        raise ValueError(f'x must be "steps" or "fraction", got {x!r}')
    if not (isinstance(points, int) and points >= 1):
        raise ValueError(f"points must be a positive int, got {points!r}")
    if isinstance(bounds, str) and bounds != "auto":
        raise ValueError(f'bounds must be "auto", (low, high) or None, got {bounds!r}')
    curves, drawable = _curves(experiments, agents, labels)
    if axes is None:
        fig, axes = _pyplot().subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    fig = axes[0].figure
    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    drawn, widths, clipped = 0, set(), {"return": set(), "length": set()}
    for n, (experiment, i, name) in enumerate(drawable):
        runs = [e for e in experiment.episodes(i) if e["end_step"] is not None
                and e["return"].size]
        if not runs:
            continue
        lab = name if len(curves) > 1 or labels is not None else None
        run_steps = experiment.steps if x == "fraction" else None
        known = dict(zip(("length", "return"), _episode_bounds(experiment, i, bounds)))
        for ax, key in zip(axes, ("return", "length")):
            values, steps, width = _episode_points(
                [(e["end_step"], e[key].astype(np.float64)) for e in runs],
                experiment.steps, points)
            where, xlabel = _per_run(steps, run_steps)
            _draw(ax, where, values, lab, colors[n % len(colors)], show_runs, confidence, band,
                  bounds=known[key], noun=f"episode {key}")
            clipped[key].add(known[key])
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"episode {key}")
            widths.add(width)
        drawn += 1
    if not drawn:
        where = ", ".join(str(e.path) for e in experiments)
        raise ValueError(f"no episodes to draw: no finished run in {where} has an episode "
                         "with its end step (a continuing task, or parallel actors)")
    bins = f"{widths.pop():,}-step bins" if len(widths) == 1 else "bins"
    for ax, key in zip(axes, ("return", "length")):
        ax.set_xscale(xscale)
        what = f"episode {key}: mean of the episodes ending in {bins}"
        shared = clipped[key] - {None}
        note = None if not shared else shared.pop() if len(shared) == 1 else "several"
        _finish(ax, f"{title}: {what}" if title else what,
                _band_name(confidence, band, note, f"episode {key}")
                if len(curves) > 1 or labels is not None else None, steps_axis=x == "steps")
    return fig


def _episode_bounds(experiment, i, bounds):
    """``(length, returns)`` bounds of agent ``i``'s episode curves (None where not clipped)."""
    if bounds is None:
        return None, None
    from avgreward.evaluation import episode_bounds, episode_cap

    cap = episode_cap(experiment.env_id, experiment.agents[i])
    return episode_bounds(experiment.env_id, cap, bounds)


def curves_with_episodes(experiments, *, exponential: bool = False,
                         optimum: float | None = None, bounds="auto",
                         baseline: float | None = None, baseline_label: str | None = None,
                         **kwargs) -> Figure:
    """Three panels side by side: :func:`learning_curves` and the two :func:`episode_curves`.

    What ``avgreward plot`` draws for an episodic task: the reward rate,
    the episode return and the episode length against a shared step axis.
    ``exponential``, ``optimum`` and ``baseline`` go to the reward rate's
    panel, ``bounds`` to all three (the reward's range: the episodes' bands
    are clipped as :func:`episode_curves` says), the other keywords (``agents``, ``labels``, ``title``, ``confidence``,
    ``show_runs``, ``band``, ``xscale``, ``x``) to all three.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` is the reward rate's panel.
    """
    fig, axes = _pyplot().subplots(1, 3, figsize=(16.0, 4.2), sharex=True,
                                   layout="constrained")
    learning_curves(experiments, exponential=exponential, optimum=optimum, ax=axes[0],
                    bounds=bounds, baseline=baseline, baseline_label=baseline_label,
                    **kwargs)
    episode_curves(experiments, axes=axes[1:], bounds=bounds, **kwargs)
    return fig


def _power_of_two(value):
    """``k`` if ``value == 2**k`` for an integer ``k``, else None."""
    if value <= 0:
        return None
    k = math.log2(value)
    return int(round(k)) if abs(k - round(k)) < 1e-9 else None


def _value_formatter(values):
    """Format a setting's values: as powers of two ``2^k`` when all of them are."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values) and all(
            _power_of_two(v) is not None for v in numbers):
        return lambda v: f"$2^{{{_power_of_two(v)}}}$"
    return lambda v: f"{v:g}" if isinstance(v, float) else str(v)


def sensitivity_curve(
    x,
    performance,
    label: str | None = None,
    ax=None,
    confidence: float = 0.95,
    *,
    band: str = "t",
    log2: bool = True,
    xlabel: str | None = None,
    ylabel: str = "final reward rate",
    title: str | None = None,
    color=None,
    marker: str = "o",
) -> Figure:
    """Performance against a parameter value, with confidence bars over seeds.

    The standard parameter-study figure of Sutton & Barto: one line per
    setting of the other parameters (call once per line with the same ``ax``).

    Parameters
    ----------
    x : array_like, shape (n_points,)
        Parameter values (step sizes), drawn on a log2 axis by default.
    performance : sequence of array_like
        ``performance[j]`` holds the per-seed performance at ``x[j]``; the
        sequences may differ in length (failed runs), and a point with no
        seed is left out of the line.
    label : str, optional
        Legend label of the line.
    confidence : float, default 0.95
        Level of the bars (see :func:`confidence_band`; none with one seed).
    log2 : bool, default True
        Log axis in base 2 with ticks labelled ``2^k``.
    xlabel, ylabel, title : str, optional
    color, marker : matplotlib style, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.asarray(x, dtype=np.float64)
    if len(performance) != x.size:
        raise ValueError(f"performance must have one entry per x value ({x.size}), "
                         f"got {len(performance)}")
    order = np.argsort(x)
    xs, means, lows, highs = [], [], [], []
    for j in order:
        samples = np.asarray(performance[j], dtype=np.float64).ravel()
        samples = samples[np.isfinite(samples)]
        if samples.size == 0:
            continue
        mean, low, high = confidence_band(samples[:, None], confidence, band)
        xs.append(x[j])
        means.append(mean[0])
        lows.append(low[0])
        highs.append(high[0])
    fig, ax = _figure(ax, figsize=(6.4, 4.4))
    means, lows, highs = np.array(means), np.array(lows), np.array(highs)
    ax.errorbar(xs, means, yerr=np.stack([means - lows, highs - means]) if xs else None,
                label=label, color=color, marker=marker, ms=5, lw=1.6, capsize=3)
    if log2:
        from matplotlib.ticker import LogLocator, LogFormatterMathtext

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(LogLocator(base=2))
        ax.xaxis.set_major_formatter(LogFormatterMathtext(base=2))
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _finish(ax, title, None, steps_axis=False)
    return fig


def sensitivity(
    experiment,
    x: str = "alpha_theta",
    lines: str | None = "alpha_w",
    *,
    fraction: float = 0.1,
    ax=None,
    confidence: float = 0.95,
    band: str = "t",
    title: str | None = None,
    ylabel: str | None = None,
    legend: bool = True,
    optimum: float | None = None,
) -> Figure:
    """Parameter sensitivity of a sweep: final performance against one setting.

    Parameters
    ----------
    experiment : Experiment
        A sweep (its agents differ in some settings).
    x : str, default "alpha_theta"
        The setting on the (log2) x axis.
    lines : str or None, default "alpha_w"
        The setting that distinguishes the lines.  Agents that also differ
        in other settings (besides ``x``) get separate lines too, labelled
        with every setting that differs.  None: lines by all settings other
        than ``x`` that vary.
    fraction : float, default 0.1
        Performance = mean reward over the last ``fraction`` of each run's
        steps (``Experiment.final_performance``); 1.0 = the whole run, which
        also rewards fast learning.
    ax, confidence, band, title, ylabel
        As in :func:`sensitivity_curve`.
    legend : bool, default True
        Draw the legend (False: e.g. one legend for several panels,
        ``fig.legend(*ax.get_legend_handles_labels())``).
    optimum : float, optional
        Draw a dashed line at this best possible reward rate.

    Notes
    -----
    A point's mean and bar are over the seeds whose run finished; points
    where runs failed (diverged) are annotated "k failed", and a setting
    whose runs all failed is marked with an x at the bottom of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    settings = [a.to_dict(complete=True) for a in experiment.agents]
    if any(x not in s for s in settings):
        raise ValueError(f"x={x!r} is not a setting of every agent; settings: "
                         f"{sorted(settings[0])}")
    if lines is not None and any(lines not in s for s in settings):
        raise ValueError(f"lines={lines!r} is not a setting of every agent; settings: "
                         f"{sorted(settings[0])}")
    varying = [k for k in settings[0]
               if k != x and len({repr(s.get(k)) for s in settings}) > 1]
    if lines is not None and lines in varying:
        varying.remove(lines)
        varying.insert(0, lines)
    groups: dict = {}
    for i, s in enumerate(settings):
        key = tuple((k, s[k]) for k in varying)
        groups.setdefault(key, []).append(i)
    def order(item):
        return [(0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))
                for _, v in item[0]]

    from avgreward.runner.view import format_settings
    fig, ax = _figure(ax, figsize=(6.4, 4.4))
    n_seeds = len(experiment.seeds)
    all_failed_label = "all runs failed"
    ordered = sorted(groups.items(), key=order)
    # the same text as Experiment.label and the CLI: alpha_w=2^1
    texts = format_settings([dict(key) for key, _ in ordered], varying)
    for j, (key, members) in enumerate(ordered):
        label = texts[j] or None
        color = f"C{j % 10}"
        xs = [settings[i][x] for i in members]
        perf = [experiment.final_performance(i, fraction) for i in members]
        sensitivity_curve(xs, perf, label, ax, confidence, band=band, xlabel=x, color=color,
                          ylabel=ylabel or (f"mean reward, last {fraction:.0%} of steps"
                                            if fraction < 1 else "mean reward over the run"))
        # Failed (diverged) runs have no performance: say so rather than hide them.
        for value, p in zip(xs, perf):
            if p.size == 0:
                ax.plot([value], [0.02], "x", color=color, ms=7, mew=2,
                        transform=ax.get_xaxis_transform(), label=all_failed_label)
                all_failed_label = None
            elif p.size < n_seeds:
                ax.annotate(f"{n_seeds - p.size} failed", (value, float(np.mean(p))),
                            xytext=(4, 4), textcoords="offset points", fontsize=7,
                            color=color)
    if optimum is not None:
        optimum_line(ax, optimum)
    if title:
        ax.set_title(title)
    handles, _ = ax.get_legend_handles_labels()
    if handles and legend:
        ax.legend(fontsize=9, title=f"{n_seeds} seeds, " + (
            "mean" if band == "none" else f"{confidence:.0%} CI"), title_fontsize=9)
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    return fig


# ---------------------------------------------------------------------------
# Pendulum maps


def _pendulum_grid(result, resolution):
    """Grid cell centres over (angle, velocity), their active features, and the grid shape.

    Rows of the grid are velocities and columns angles (imshow's layout).
    """
    if getattr(result, "env_id", None) not in _PENDULUM_IDS:
        raise ValueError(f"result must come from a pendulum swing-up run ({_PENDULUM_IDS}), "
                         f"got env {getattr(result, 'env_id', None)!r}")
    if np.ndim(resolution) == 0:
        resolution = (resolution, resolution)
    n_angle, n_velocity = (int(r) for r in resolution)
    if n_angle < 2 or n_velocity < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution!r}")
    angle_edges = np.linspace(-math.pi, math.pi, n_angle + 1)
    velocity_edges = np.linspace(-2 * math.pi, 2 * math.pi, n_velocity + 1)
    angles = (angle_edges[:-1] + angle_edges[1:]) / 2
    velocities = (velocity_edges[:-1] + velocity_edges[1:]) / 2
    A, V = np.meshgrid(angles, velocities)
    points = np.column_stack([A.ravel(), V.ravel()])
    return points, result.features.indices_batch(points), (n_velocity, n_angle)


def _grid_values(result, resolution):
    """The learned policy and value at every grid cell, vectorised over the cells.

    Returns a dict with ``points`` (m, 2), ``shape`` (n_velocity, n_angle),
    ``value`` (m,), and ``probs`` (m, n_actions) for a softmax actor or
    ``mean`` and ``sigma`` (m,) for a Gaussian one: the same numbers as
    ``Result.policy`` / ``Result.value`` at each point.
    """
    from avgreward.agents import SoftmaxActorCritic

    points, idx, shape = _pendulum_grid(result, resolution)
    out = {"points": points, "shape": shape, "value": result.weights["w"][idx].sum(axis=1)}
    if isinstance(result.agent, SoftmaxActorCritic):
        # theta[idx].sum(axis=1), one active feature at a time: the same
        # additions in the same order (bit for bit), without the (cells,
        # active, actions) copy, which took 4x as long (43 ms of a map).
        theta = result.weights["theta"]
        prefs = np.take(theta, idx[:, 0], axis=0)
        for k in range(1, idx.shape[1]):
            prefs += np.take(theta, idx[:, k], axis=0)
        prefs /= result.agent.tau
        prefs -= prefs.max(axis=1, keepdims=True)
        probs = np.exp(prefs)
        out["probs"] = probs / probs.sum(axis=1, keepdims=True)
    else:
        out["mean"] = result.weights["theta_mu"][idx].sum(axis=1)
        h_sigma = result.weights["theta_sigma"][idx].sum(axis=1)
        out["sigma"] = result.agent.sigma_min + np.exp(h_sigma)
    return out


def _pi_ticks(ax):
    ax.set_xticks(np.arange(-2, 3) * math.pi / 2,
                  ["$-\\pi$", "$-\\pi/2$", "0", "$\\pi/2$", "$\\pi$"])
    ax.set_yticks(np.arange(-2, 3) * math.pi,
                  ["$-2\\pi$", "$-\\pi$", "0", "$\\pi$", "$2\\pi$"])
    ax.set_xlabel("angle $\\beta$ (rad, 0 = upright)")
    ax.set_ylabel("angular velocity $\\dot\\beta$ (rad/s)")


def _trajectory(ax, trajectory):
    """Draw a path over (angle, velocity), broken where the angle wraps around."""
    if trajectory is None:
        return
    path = np.asarray(trajectory, dtype=np.float64)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"trajectory must have shape (T, 2) of (angle, velocity), "
                         f"got {path.shape}")
    jumps = np.flatnonzero(np.abs(np.diff(path[:, 0])) > math.pi) + 1
    for k, piece in enumerate(np.split(path, jumps)):
        ax.plot(piece[:, 0], piece[:, 1], color="black", lw=1.0, alpha=0.8,
                label="trajectory from hanging down" if k == 0 else None)
    ax.plot(path[0, 0], path[0, 1], "o", color="black", ms=5)


def _image(ax, values, **kwargs):
    return ax.imshow(values, origin="lower", aspect="auto", interpolation="nearest",
                     extent=(-math.pi, math.pi, -2 * math.pi, 2 * math.pi), **kwargs)


def policy_map(result: Result, ax: Axes | None = None, resolution: int = 200, *,
               trajectory: ArrayLike | None = None, title: str | None = None) -> Figure:
    """The learned pendulum policy over angle x velocity.

    Softmax actor: the colour is the most likely action's torque (-1, 0,
    +1), paler where that action is less certain (white = uniform over the
    three actions).  Gaussian actor: two panels, the mean torque and the
    standard deviation sigma.

    Parameters
    ----------
    result : avgreward.Result
        A run on ``avgreward/PendulumSwingUp-v0`` or its continuous version.
    ax : Axes, or a pair of Axes for the Gaussian actor, optional
        Draw here; a new figure otherwise.
    resolution : int or (int, int), default 200
        Grid cells along angle and velocity.  The policy of every cell is
        computed at once from ``features.indices_batch``.
    trajectory : array_like, shape (T, 2), optional
        A path of (angle, velocity) to draw on the map, e.g.
        ``avgreward.animation.rollout(result, 300).observations``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = _grid_values(result, resolution)
    shape = grid["shape"]
    if "probs" in grid:
        probs = grid["probs"]
        best = probs.argmax(axis=1)
        n_actions = probs.shape[1]
        # Certainty 0 (uniform) .. 1 (deterministic) sets the saturation.
        certainty = (probs.max(axis=1) - 1.0 / n_actions) / (1.0 - 1.0 / n_actions)
        colors = np.array(_TORQUE_COLORS)[best]
        shade = 0.15 + 0.85 * certainty[:, None]
        rgb = (1.0 - shade) + shade * colors
        fig, ax = _figure(ax, figsize=(6.4, 4.8))
        _image(ax, rgb.reshape(*shape, 3))
        from matplotlib.patches import Patch

        handles = [Patch(color=c, label=f"torque {t:+d}" if t else "torque 0")
                   for c, t in zip(_TORQUE_COLORS, (-1, 0, 1))]
        _trajectory(ax, trajectory)
        _pi_ticks(ax)
        extra = ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles + extra, loc="upper right", fontsize=8, framealpha=0.85,
                  title="most likely action\n(paler = less certain)", title_fontsize=8)
        ax.set_title(title or "Policy: most likely action")
        return fig

    mean = grid["mean"].reshape(shape)
    sigma = grid["sigma"].reshape(shape)
    if ax is None:
        fig, axes = _pyplot().subplots(1, 2, figsize=(11.0, 4.4), layout="constrained")
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError("the Gaussian policy map needs a pair of Axes (mean, sigma)")
        fig = axes[0].figure
    limit = 3.0  # the environment clips torques to [-3, 3]
    im = _image(axes[0], mean, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(im, ax=axes[0], label="mean torque $\\mu(s)$ (clipped to $\\pm 3$)",
                 extend="both")
    axes[0].set_title("Policy mean")
    from matplotlib.colors import LogNorm

    low, high = float(sigma.min()), float(sigma.max())
    norm = LogNorm(low, high) if high > 10 * low else None
    im = _image(axes[1], sigma, cmap="viridis", norm=norm)
    fig.colorbar(im, ax=axes[1], label="standard deviation $\\sigma(s)$")
    axes[1].set_title("Policy standard deviation")
    for a in axes:
        _trajectory(a, trajectory)
        _pi_ticks(a)
    if trajectory is not None:
        axes[0].legend(loc="upper right", fontsize=8, framealpha=0.85)
    if title:
        fig.suptitle(title)
    return fig


def value_map(result: Result, ax: Axes | None = None, resolution: int = 200, *,
              trajectory: ArrayLike | None = None, title: str | None = None) -> Figure:
    """The learned critic ``v(s) = w . x(s)`` over the pendulum's angle x velocity.

    Parameters are those of :func:`policy_map`.  The values are
    differential: relative to the reward rate, so only differences between
    states mean something.

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = _grid_values(result, resolution)
    values = grid["value"].reshape(grid["shape"])
    fig, ax = _figure(ax, figsize=(6.4, 4.8))
    im = _image(ax, values, cmap="viridis")
    fig.colorbar(im, ax=ax, label="differential value $\\hat v(s)$")
    _trajectory(ax, trajectory)
    _pi_ticks(ax)
    if trajectory is not None:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    ax.set_title(title or "Value: the critic's estimate")
    return fig


# The estimator lab's estimators by family (colour, legend), and their short labels.
_LAB_FAMILIES = (
    (("total return", "reward-to-go"), "black", "no baseline (total return, reward-to-go)"),
    (("discounted reward-to-go",), "tab:purple", "discounted reward-to-go"),
    (("constant baseline", "total return, mean b", "total return, optimal b",
      "time baseline"), "tab:blue", "constant / optimal b* / time baselines"),
    (("state value (exact)", "state value (learned)"), "tab:cyan", "state-value baseline"),
    (("TD advantage (exact)", "TD advantage (learned)"), "tab:green", "TD advantage (critic)"),
    (("reward-to-go + entropy bonus",), "tab:brown", "reward-to-go + entropy bonus"),
)
_LAB_SHORT = {"total return": "R", "reward-to-go": "RTG", "discounted reward-to-go": "disc",
              "constant baseline": "RTG-b", "total return, mean b": "R-b",
              "total return, optimal b": "R-b*", "time baseline": "b_t",
              "state value (exact)": "v", "state value (learned)": "v̂",
              "TD advantage (exact)": "δ", "TD advantage (learned)": "δ̂",
              "reward-to-go + entropy bonus": "+H"}


def estimator_lab(lab: EstimatorLab, ax: Axes | None = None, title: str | None = None
                  ) -> Figure:
    """Bias squared against variance of every estimator of an estimator lab, on log axes.

    Each estimator is a point: its exact squared bias ``|E[estimate] - grad J|^2``
    (from the model) against the variance of one episode's estimate (the trace
    of its covariance, measured).  Estimators that the exact analysis says are
    unbiased (bias below 1e-12 of ``|grad J|^2``) are drawn as triangles on
    the noise floor, the median variance over the number of episodes: below it
    a bias cannot be told from zero by the lab's sample.  GAE(lambda) with the
    exact and the learned critic are joined in order of lambda.

    Parameters
    ----------
    lab : avgreward.estimators.EstimatorLab
        From :func:`avgreward.estimators.estimator_lab`.
    ax : matplotlib.axes.Axes, optional
        Drawn into; a new figure otherwise.
    title : str, optional
        The axes' title (default: the number of episodes).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _figure(ax, figsize=(7.0, 5.4))
    bias2 = np.array([b @ b for b in lab.exact_bias()])
    exactly_unbiased = bias2 <= 1e-12 * float(lab.exact_gradient @ lab.exact_gradient)
    variance = lab.variance_per_episode
    floor = float(np.median(variance)) / lab.episodes
    shown = np.maximum(bias2, floor)
    for names, colour, legend in _LAB_FAMILIES:
        idx = [lab.names.index(n) for n in names if n in lab.names]
        for i in idx:
            unbiased = exactly_unbiased[i]
            ax.scatter(variance[i], shown[i], color=colour, s=46, zorder=3,
                       marker="v" if unbiased else "o",
                       label=legend if i == idx[0] else None)
            # The unbiased ones share the floor: their names go upright above it.
            ax.annotate(_LAB_SHORT[lab.names[i]], (variance[i], shown[i]), fontsize=7,
                        xytext=(0, 7) if unbiased else (4, 4), textcoords="offset points",
                        rotation=90 if unbiased else 0, ha="center" if unbiased else "left",
                        va="bottom")
    lambdas = lab.settings["lambdas"]
    for kind, colour in (("exact", "tab:orange"), ("learned", "tab:red")):
        idx = [lab.names.index(f"GAE({lam:g}) ({kind})") for lam in lambdas]
        ax.plot(variance[idx], shown[idx], "-s", color=colour, ms=5, lw=1, zorder=2,
                label=f"GAE(λ), {kind} v: λ = {', '.join(f'{x:g}' for x in lambdas)}"
                      " (left to right)")
    ax.axhline(floor, color="gray", ls=":", lw=1)
    ax.text(0.99, 0.01, "▼ unbiased (exact bias 0), drawn at the noise floor ·····\n"
            "(median variance / episodes)", transform=ax.transAxes, fontsize=7,
            color="gray", ha="right", va="bottom")
    ax.set_ylim(floor / 3, shown.max() * 5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("variance of one episode's estimate (trace of covariance)")
    ax.set_ylabel("bias² = |E[estimate] − ∇J|² (exact)")
    ax.set_title(title or f"{lab.episodes:,} episodes", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return fig


# Formats matplotlib hands to Pillow: present only if Pillow was built with them.
_PILLOW_FORMATS = ("png", "gif", "jpg", "jpeg", "tif", "tiff", "webp", "avif")


def figure_formats() -> dict[str, str]:
    """The file formats :func:`save_figure` can write here: extension -> description.

    Those matplotlib supports (``FigureCanvasBase.get_supported_filetypes``:
    png, svg, pdf, eps, ps, jpg, tif, webp, ...) that also work on this
    machine: PGF only when its TeX program (``rcParams["pgf.texsystem"]``)
    is installed, and the formats matplotlib writes with Pillow only when
    Pillow can write them.

    Returns
    -------
    dict of str to str
        Lower-case extensions without the dot, sorted.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    return {ext: description for ext, description in sorted(supported.items())
            if _writable(ext, supported)}


def _writable(ext, supported):
    """Whether :func:`save_figure` can write ``ext`` (one of matplotlib's ``supported``) here."""
    import shutil

    import matplotlib
    from PIL import Image

    if ext not in supported:
        return False
    if ext == "pgf":
        return shutil.which(matplotlib.rcParams["pgf.texsystem"]) is not None
    if ext not in _PILLOW_FORMATS:
        return True
    # Pillow's common plugins (PNG, GIF, JPEG among them) first: loading all
    # of them, as Image.registered_extensions does, took 28 ms a process.
    Image.preinit()
    if f".{ext}" not in Image.EXTENSION:
        Image.init()
    return Image.EXTENSION.get(f".{ext}") in Image.SAVE


def check_figure_path(path: str | os.PathLike) -> str:
    """The lower-case format of a figure file by its extension, if :func:`save_figure` can write it.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        The extension without the dot, e.g. ``"png"``.

    Raises
    ------
    ValueError
        If the extension is not one of :func:`figure_formats`; the message
        lists them.
    """
    from pathlib import Path

    from matplotlib.backend_bases import FigureCanvasBase

    ext = Path(path).suffix.lower().lstrip(".")
    if not _writable(ext, FigureCanvasBase.get_supported_filetypes()):
        formats = figure_formats()
        raise ValueError(f"a figure's file must end in one of "
                         f"{', '.join('.' + e for e in formats)}; got {str(path)!r}")
    return ext


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> str:
    """Save ``fig`` in the format of the file's extension and close it; returns the path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Ends in one of :func:`figure_formats` (``.png``, ``.svg``, ``.pdf``,
        ``.eps``, ``.jpg``, ...); missing parent directories are created.
    dpi : int, default 120
        Resolution of raster formats.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If the extension names no format that can be written here.
    OSError
        If the directory cannot be created or the file cannot be written.
    """
    from pathlib import Path

    plt = _pyplot()
    path = str(path)
    check_figure_path(path)  # before closing anything: the caller may try another name
    try:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as err:
            # mkdir's "File exists" names a file standing where a directory
            # must be: "Not a directory" says what is wrong.
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                     err.filename) from None
        fig.savefig(path, dpi=dpi)
    finally:
        # A failed save must not leave the figure open: scripts save many.
        plt.close(fig)
    return path
