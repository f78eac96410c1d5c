"""rliable 1.2.0's metrics, score distributions and stratified bootstrap, transcribed.

The reference that tests/test_stats_vs_rliable.py compares avgreward.stats
with: the functions of rliable/metrics.py and rliable/library.py (Agarwal et
al. 2021, the paper's own library; Apache License 2.0), with the same
arithmetic, on runs x tasks score matrices.  Transcribed rather than
imported: rliable is not a dependency of any extra.  Its one release since
2024 declares ``arch < 8`` and ``pandas >= 1.0``, and arch 7 fails to import
under pandas 3, so in a fresh install ``rliable.library`` (the bootstrap
and the performance profiles) cannot be imported at all; its
``StratifiedBootstrap`` also ignores ``random_state`` and draws from numpy's
global generator.  Where rliable is installed, a test checks this
transcription against ``rliable.metrics`` itself.
"""

import numpy as np
import scipy.stats


def aggregate_mean(scores):
    """rliable.metrics.aggregate_mean: the mean of the tasks' mean scores."""
    return np.mean(np.mean(scores, axis=0, keepdims=False), axis=0)


def aggregate_median(scores):
    """rliable.metrics.aggregate_median: the median of the tasks' mean scores."""
    return np.median(np.mean(scores, axis=0, keepdims=False), axis=0)


def aggregate_iqm(scores):
    """rliable.metrics.aggregate_iqm: the 25% trimmed mean of all runs of all tasks."""
    return scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=None)


def aggregate_optimality_gap(scores, gamma=1):
    """rliable.metrics.aggregate_optimality_gap."""
    return gamma - np.mean(np.minimum(scores, gamma))


def probability_of_improvement(scores_x, scores_y):
    """rliable.metrics.probability_of_improvement: P(X_m > Y_m), averaged over tasks m."""
    num_tasks = scores_x.shape[1]
    task_improvement_probabilities = []
    num_runs_x, num_runs_y = scores_x.shape[0], scores_y.shape[0]
    for task in range(num_tasks):
        if np.array_equal(scores_x[:, task], scores_y[:, task]):
            task_improvement_prob = 0.5
        else:
            task_improvement_prob, _ = scipy.stats.mannwhitneyu(
                scores_x[:, task], scores_y[:, task], alternative="greater")
            task_improvement_prob /= (num_runs_x * num_runs_y)
        task_improvement_probabilities.append(task_improvement_prob)
    return np.mean(task_improvement_probabilities)


def score_distributions(scores, tau_list):
    """rliable.library.score_distributions: the fraction of all runs scoring above each tau."""
    return np.array([np.mean(scores > tau) for tau in tau_list])


def interval_estimates(func, *scores, reps, size=0.95, seed=0):
    """rliable.library.get_interval_estimates with method="percentile".

    One matrix: ``StratifiedBootstrap``; several (probability of
    improvement): ``StratifiedIndependentBootstrap``.  Each resample draws,
    for each matrix in turn, ``choice(num_runs, (num_runs, num_tasks))``:
    the runs of each task resampled within the task.  The interval is
    arch's percentile one, ``np.percentile`` of the resampled statistics.
    rliable draws from numpy's global generator; here a
    ``RandomState(seed)``, the same stream as ``np.random.seed(seed)``.

    Returns
    -------
    low, high : ndarray of the shape of ``func``'s value
    """
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(reps):
        resampled = [m[rng.choice(m.shape[0], m.shape, replace=True), np.arange(m.shape[1])]
                     for m in scores]
        values.append(np.atleast_1d(func(*resampled)))
    values = np.asarray(values)
    alpha = (1.0 - size) / 2
    low = np.array([np.percentile(values[:, i], 100 * alpha) for i in range(values.shape[1])])
    high = np.array([np.percentile(values[:, i], 100 * (1 - alpha))
                     for i in range(values.shape[1])])
    return low, high
