"""avgreward.stats gives rliable's numbers (Agarwal et al. 2021) on the same score matrices.

The reference is rliable 1.2.0 transcribed (tests/rliable_reference.py says
why it is not imported); the transcription was checked to give rliable's
own numbers exactly, bootstrap intervals included (same seed), and is
checked against ``rliable.metrics`` here wherever rliable is installed.
Point estimates must agree to 1e-12.  Bootstrap intervals cannot agree
exactly: ours are scipy's bootstrap, which draws its resamples from its own
generator in another order than rliable's ``choice(num_runs, (num_runs,
num_tasks))``; the two estimate the same percentiles of the same stratified
bootstrap distribution, so with 5,000 resamples each they agree to within
their Monte Carlo error (a few percent of the interval's width), far closer
than an unstratified bootstrap or another confidence level comes.
"""

import numpy as np
import pytest

pytest.importorskip("scipy.stats")

import rliable_reference as ref  # noqa: E402
from avgreward import stats  # noqa: E402

CLOSE = dict(rel=1e-12, abs=1e-12)


def matrices():
    """Runs x tasks score matrices: several shapes, ties, heavy tails, one run per task."""
    rng = np.random.default_rng(0)
    return {
        "one task": rng.normal(size=(10, 1)),
        "5 runs x 3 tasks": rng.normal(size=(5, 3)) * [1.0, 10.0, 0.1],
        "3 runs x 7 tasks": rng.normal(size=(3, 7)),
        "odd runs, 4 tasks": rng.standard_t(2, size=(13, 4)),
        "ties": np.round(rng.normal(size=(8, 5)) * 2) / 2,
        "one run per task": rng.normal(size=(1, 6)),
        "all equal": np.full((4, 3), 0.25),
    }


@pytest.mark.parametrize("name", list(matrices()))
def test_iqm_median_mean_and_optimality_gap_are_rliables(name):
    scores = matrices()[name]
    gamma = float(np.quantile(scores, 0.7))
    ours = stats.aggregate_metrics(scores, optimum=gamma, n_resamples=100)
    assert ours["iqm"].estimate == pytest.approx(ref.aggregate_iqm(scores), **CLOSE)
    assert ours["median"].estimate == pytest.approx(ref.aggregate_median(scores), **CLOSE)
    assert ours["mean"].estimate == pytest.approx(ref.aggregate_mean(scores), **CLOSE)
    assert ours["optimality_gap"].estimate == pytest.approx(
        ref.aggregate_optimality_gap(scores, gamma), **CLOSE)
    assert stats.interquartile_mean(scores.ravel()) == pytest.approx(ref.aggregate_iqm(scores),
                                                                     **CLOSE)
    # a list of the tasks' runs is the same scores
    columns = [scores[:, j].copy() for j in range(scores.shape[1])]
    again = stats.aggregate_metrics(columns, optimum=gamma, n_resamples=100)
    assert {k: v.estimate for k, v in again.items()} == {k: v.estimate for k, v in ours.items()}


def test_the_median_is_of_the_tasks_mean_scores_not_of_all_runs():
    # Agarwal et al.'s (and rliable's) median: of each task's mean score.  Two
    # tasks of runs (0, 0, 9) and (1, 1, 1): task means 3 and 1, median 2;
    # the median of the six runs pooled would be 1.
    scores = np.array([[0.0, 1.0], [0.0, 1.0], [9.0, 1.0]])
    m = stats.aggregate_metrics(scores, n_resamples=100)
    assert m["median"].estimate == ref.aggregate_median(scores) == 2.0
    assert m["mean"].estimate == ref.aggregate_mean(scores) == 2.0


@pytest.mark.parametrize("name", list(matrices()))
def test_performance_profiles_are_rliables_score_distributions(name):
    scores = matrices()[name]
    # a grid of thresholds, and the scores themselves: ties with tau are not above it
    taus = np.concatenate([np.linspace(scores.min() - 1, scores.max() + 1, 41),
                           np.unique(scores)])
    fraction, low, high = stats.performance_profile(scores, taus, n_resamples=100)
    np.testing.assert_allclose(fraction, ref.score_distributions(scores, taus), rtol=0, atol=1e-12)
    assert fraction.shape == low.shape == high.shape == taus.shape


@pytest.mark.parametrize("name", list(matrices()))
def test_probability_of_improvement_is_rliables(name):
    x = matrices()[name]
    rng = np.random.default_rng(1)
    cases = [
        (x, x),  # the same scores: 0.5
        (x, x[::-1]),  # the same scores per task in another order: also 0.5
        (x, np.round(x * 2) / 2),  # ties across the two
        (x, rng.normal(0.3, 1.0, size=(x.shape[0] + 3, x.shape[1]))),  # more runs of Y
        (x + 100.0, x),  # always better: 1
    ]
    for a, b in cases:
        ours = stats.probability_of_improvement(a, b, n_resamples=100).estimate
        assert ours == pytest.approx(ref.probability_of_improvement(a, b), **CLOSE)


def scale_matters():
    # Tasks on very different scales: the stratified bootstrap keeps each task's
    # share of runs, an unstratified one would not (and is much wider).
    rng = np.random.default_rng(4)
    return rng.normal(size=(12, 3)) * [0.1, 1.0, 5.0] + [0.0, 2.0, -3.0]


def close_to(ours, theirs, width):
    return np.all(np.abs(np.asarray(ours) - np.asarray(theirs)) <= 0.05 * width)


def test_bootstrap_intervals_agree_with_rliables_to_monte_carlo_error():
    # IQM, median, mean and the performance profile
    scores = scale_matters()
    m = stats.aggregate_metrics(scores, n_resamples=5000, seed=1)
    for name, function in [("iqm", ref.aggregate_iqm), ("median", ref.aggregate_median),
                           ("mean", ref.aggregate_mean)]:
        (low,), (high,) = ref.interval_estimates(function, scores, reps=5000, seed=2)
        width = high - low
        assert close_to([m[name].low, m[name].high], [low, high], width), (name, m[name], low, high)
    taus = np.linspace(-4.0, 3.0, 8)
    _, plow, phigh = stats.performance_profile(scores, taus, n_resamples=5000, seed=1)
    low, high = ref.interval_estimates(lambda s: ref.score_distributions(s, taus), scores,
                                       reps=5000, seed=2)
    # Fractions of 36 runs: a percentile may land on the neighbouring multiple of 1/36.
    step = 1 / scores.size + 1e-12
    assert np.all(np.abs(plow - low) <= step) and np.all(np.abs(phigh - high) <= step)
    assert np.mean(np.isclose(plow, low)) > 0.5 and np.mean(np.isclose(phigh, high)) > 0.5


@pytest.mark.slow  # rliable's probability of improvement: 15,000 Mann-Whitney tests
def test_the_probability_of_improvements_interval_agrees_with_rliables():
    scores = scale_matters()
    other = scores[::-1] + 0.2
    p = stats.probability_of_improvement(other, scores, n_resamples=5000, seed=1)
    (low,), (high,) = ref.interval_estimates(ref.probability_of_improvement, other, scores,
                                             reps=5000, seed=2)
    assert close_to([p.low, p.high], [low, high], high - low), (p, low, high)


def test_a_run_that_is_nan_is_refused_where_rliable_returns_nan():
    scores = matrices()["5 runs x 3 tasks"].copy()
    scores[2, 1] = np.nan
    assert np.isnan(ref.aggregate_mean(scores)) and np.isnan(ref.aggregate_iqm(scores))
    with pytest.raises(ValueError, match="finite"):
        stats.aggregate_metrics(scores)
    with pytest.raises(ValueError, match="finite"):
        stats.performance_profile(scores, [0.0])
    with pytest.raises(ValueError, match="finite"):
        stats.probability_of_improvement(scores, np.zeros((5, 3)))


def test_the_transcription_is_rliable():
    metrics = pytest.importorskip("rliable.metrics")
    for scores in matrices().values():
        y = np.round(scores[::-1] * 2) / 2 + 0.1
        assert ref.aggregate_iqm(scores) == metrics.aggregate_iqm(scores)
        assert ref.aggregate_median(scores) == metrics.aggregate_median(scores)
        assert ref.aggregate_mean(scores) == metrics.aggregate_mean(scores)
        assert ref.aggregate_optimality_gap(scores, 0.3) == metrics.aggregate_optimality_gap(
            scores, 0.3)
        assert ref.probability_of_improvement(scores, y) == metrics.probability_of_improvement(
            scores, y)
