"""Plots of results: learning curves with confidence bands.

Every function draws on a matplotlib ``Axes`` (a new figure if none is
given) and returns the figure, so scripts can save it and notebooks can show it.
"""

from __future__ import annotations

import numpy as np

from avgreward.stats import bin_means, mean_confidence_interval

__all__ = ["learning_curve", "save_figure"]


def _figure(ax, figsize=(7.0, 4.2)):
    import matplotlib

    if ax is not None:
        return ax.figure, ax
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        # Scripts run headless and over ssh: never try to open a window.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def learning_curve(
    rewards,
    bin_size: int | None = None,
    label: str | None = None,
    ax=None,
    confidence: float = 0.95,
    show_runs: bool = True,
    color=None,
    title: str | None = None,
):
    """Reward rate per step against steps: mean over seeds with a confidence band.

    Parameters
    ----------
    rewards : array_like, shape (n_seeds, n_steps)
        Per-step rewards of each seed's run.
    bin_size : int, optional
        Steps per point; by default about 200 points.
    label : str, optional
        Legend label of this curve.
    ax : matplotlib Axes, optional
        Draw here (several curves on one figure); a new figure otherwise.
    confidence : float, default 0.95
        Level of the Student-t band over seeds.
    show_runs : bool, default True
        Draw each seed's curve faintly behind the mean.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rewards = np.atleast_2d(np.asarray(rewards))
    n_seeds, n_steps = rewards.shape
    if bin_size is None:
        bin_size = max(1, n_steps // 200)
    binned = bin_means(rewards, bin_size)
    steps = (np.arange(binned.shape[1]) + 1) * bin_size
    mean, low, high = mean_confidence_interval(binned, confidence)
    fig, ax = _figure(ax)
    line = ax.plot(steps, mean, label=label, color=color, lw=1.8)[0]
    if show_runs and n_seeds > 1:
        ax.plot(steps, binned.T, color=line.get_color(), lw=0.5, alpha=0.15)
    if n_seeds > 1:
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, lw=0,
                        label=f"{confidence:.0%} CI ({n_seeds} seeds)" if label is None else None)
    ax.set_xlabel("step")
    ax.set_ylabel(f"reward per step (mean of {bin_size}-step bins)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if label is not None or n_seeds > 1:
        ax.legend(loc="lower right")
    return fig


def save_figure(fig, path) -> str:
    """Save ``fig`` (PNG or SVG by the file's extension) and close it; returns the path."""
    import matplotlib.pyplot as plt

    path = str(path)
    if not path.lower().endswith((".png", ".svg", ".pdf")):
        raise ValueError(f"path must end in .png, .svg or .pdf, got {path!r}")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
