"""Aggregate statistics (Agarwal et al. 2021) with scipy's stratified bootstrap; the t quantile."""

import math
import sys

import numpy as np
import pytest

scipy_stats = pytest.importorskip("scipy.stats")

from avgreward import stats  # noqa: E402
from avgreward.extras import MissingExtraError  # noqa: E402
from avgreward.plotting import confidence_band  # noqa: E402


def test_interquartile_mean_is_the_mean_of_the_middle_half():
    x = np.array([100.0, -50.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    middle = np.sort(x)[2:6]
    assert stats.interquartile_mean(x) == pytest.approx(middle.mean())
    m = stats.aggregate_metrics(x, optimum=5.0)
    assert m["iqm"].estimate == pytest.approx(middle.mean())
    # one task: the median and the mean of its mean score, both the mean of its runs
    assert m["median"].estimate == m["mean"].estimate == pytest.approx(x.mean())
    assert m["optimality_gap"].estimate == pytest.approx(np.maximum(5.0 - x, 0).mean())
    assert "optimality_gap" not in stats.aggregate_metrics(x)
    for interval in m.values():
        assert interval.low <= interval.estimate <= interval.high
        assert "stratified" in interval.method


def test_the_bootstrap_is_stratified_by_task():
    # Task A's runs all score 0, task B's all 1: a stratified resample keeps 5 runs
    # of A and 15 of B, so the IQM of the runs pooled (the middle 10 of 20) is 1 in
    # every resample, and the mean of the two tasks' means 0.5.
    a, b = np.zeros(5), np.ones(15)
    m = stats.aggregate_metrics([a, b])
    assert m["iqm"].estimate == m["iqm"].low == m["iqm"].high == 1.0
    assert m["mean"].estimate == m["mean"].low == m["mean"].high == pytest.approx(0.5)
    # runs x tasks, the same thing: the middle 6 of 12 runs, three 0s and three 1s
    grid = np.column_stack([np.zeros(6), np.ones(6)])
    iqm = stats.aggregate_metrics(grid)["iqm"]
    assert iqm.low == iqm.high == pytest.approx(0.5)


@pytest.mark.slow
def test_intervals_are_reproducible_and_cover_the_truth_about_as_often_as_they_claim():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    first = stats.aggregate_metrics(x, seed=3)["mean"]
    assert first == stats.aggregate_metrics(x, seed=3)["mean"]
    covered = 0
    for _ in range(200):
        sample = rng.normal(loc=1.0, size=30)
        m = stats.aggregate_metrics(sample, n_resamples=1000, seed=1)["mean"]
        covered += m.low <= 1.0 <= m.high
    # 95% nominal; the percentile bootstrap of n=30 under-covers a little.
    # Binomial(200, 0.94): 0.88 is 3 standard deviations below.
    assert 0.88 <= covered / 200 <= 0.99


def test_probability_of_improvement_is_the_mann_whitney_statistic():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.3, 1.0, size=25), rng.normal(0.0, 1.0, size=20)
    p = stats.probability_of_improvement(x, y)
    u = scipy_stats.mannwhitneyu(x, y).statistic
    assert p.estimate == pytest.approx(u / (x.size * y.size))
    assert p.low <= p.estimate <= p.high
    assert stats.probability_of_improvement(x + 100, y).estimate == 1.0
    ties = stats.probability_of_improvement(np.ones(4), np.ones(5))
    assert ties.estimate == ties.low == ties.high == 0.5
    # over two tasks: the mean of each task's probability
    two = stats.probability_of_improvement([x, np.ones(3)], [y, np.zeros(3)])
    assert two.estimate == pytest.approx((u / (x.size * y.size) + 1.0) / 2)
    with pytest.raises(ValueError, match="same tasks"):
        stats.probability_of_improvement([x, x], [y])


def test_performance_profile_counts_runs_above_each_threshold():
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    frac, low, high = stats.performance_profile(scores, [0.0, 0.15, 0.35, 0.5])
    assert np.allclose(frac, [1.0, 0.75, 0.25, 0.0])
    assert np.all(low <= frac) and np.all(frac <= high)
    frac2, _, _ = stats.performance_profile([scores, np.array([1.0, 1.0])], [0.5])
    assert frac2[0] == pytest.approx(0.5)  # task means: 0 and 1


@pytest.mark.parametrize("scores, message", [
    (np.array([]), "at least one run"), (np.array([1.0, np.nan]), "finite"),
    (np.zeros((2, 2, 2)), "shape"),
])
def test_bad_scores_are_refused(scores, message):
    with pytest.raises(ValueError, match=message):
        stats.aggregate_metrics(scores)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="confidence"):
        stats.aggregate_metrics([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        stats.aggregate_metrics([1.0, 2.0], n_resamples=10)
    with pytest.raises(ValueError, match="optimum"):
        stats.aggregate_metrics([1.0, 2.0], optimum=float("inf"))
    one = stats.aggregate_metrics([1.0])["iqm"]  # no interval from one run
    assert one.estimate == 1.0 and np.isnan(one.low) and np.isnan(one.high)


def test_without_scipy_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(MissingExtraError, match=r'avgreward\[analysis\]'):
        stats.aggregate_metrics([1.0, 2.0])


T_PROBABILITIES = (1e-6, 1e-4, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.49)


def test_t_quantile_agrees_with_scipy():
    # df 1..200, both tails; 1 - p for the upper one is exact, so each p is the
    # same number to both.
    for df in range(1, 201):
        for p in T_PROBABILITIES:
            for q in (p, 1.0 - p):
                assert stats.t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df),
                                                                rel=1e-12, abs=0)


def test_t_quantile_near_the_median_keeps_its_digits():
    # Near p = 0.5 scipy's t.ppf loses digits (at df 4, p = 0.499999, its own t.cdf
    # misses p by 4e-11, 4e-5 of the quantile), so the references there are the
    # closed forms of df 1 and 2 and, for df 3..200, scipy's t.cdf of our quantile.
    for p in (0.499999, 0.4999, 0.499, 0.3, 0.26, 0.24, 0.05, 0.500001, 0.5001, 0.9):
        assert stats.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)),
                                                       rel=1e-14, abs=0)
        exact2 = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
        assert stats.t_quantile(p, 2) == pytest.approx(exact2, rel=1e-14, abs=0)
        for df in range(3, 201):
            assert scipy_stats.t.cdf(stats.t_quantile(p, df), df) == pytest.approx(
                p, rel=0, abs=1e-13)
    assert stats.t_quantile(0.5, 7) == 0.0
    with pytest.raises(ValueError, match="p must"):
        stats.t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df must"):
        stats.t_quantile(0.9, 0)


def test_the_curves_bootstrap_band_agrees_with_scipys_percentile_bootstrap():
    rng = np.random.default_rng(2)
    samples = rng.exponential(size=(40, 3))
    mean, low, high = confidence_band(samples, band="bootstrap", n_resamples=20_000)
    for j in range(3):
        ref = scipy_stats.bootstrap((samples[:, j],), np.mean, n_resamples=20_000,
                                    method="percentile", rng=np.random.default_rng(0))
        width = ref.confidence_interval.high - ref.confidence_interval.low
        assert abs(low[j] - ref.confidence_interval.low) < 0.05 * width
        assert abs(high[j] - ref.confidence_interval.high) < 0.05 * width
    # a percentile band never leaves the range of the data: a reward at most 0 stays below 0
    negative = -rng.exponential(size=(10, 4)) * np.array([1, 1e-3, 1e-6, 0.0])
    _, _, top = confidence_band(negative, band="bootstrap")
    assert np.all(top <= 0.0)


@pytest.mark.slow
def test_the_cli_prints_iqm_intervals_and_the_probability_of_improvement(tmp_path, capsys):
    from avgreward.cli import main
    from avgreward.evaluation import optimal_reward_rate

    out = tmp_path / "sweep"
    assert main(["sweep", "avgreward/LoopMDP-v0", "--steps", "2000", "--seeds", "4",
                 "--grid", "alpha_theta=0.1,0.01", "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["stats", str(out), "--resamples", "500"]) == 0
    text = capsys.readouterr().out
    assert "stratified percentile bootstrap" in text and "optimum 0.4" in text
    assert "alpha_theta=0.1" in text and "optimality_gap" in text
    assert "P(alpha_theta=0.1 > alpha_theta=0.01) = " in text
    assert main(["stats", str(out), "--confidence", "2"]) == 2
    assert optimal_reward_rate("avgreward/LoopMDP-v0") == pytest.approx(0.4)
    assert optimal_reward_rate("avgreward/AccessControl-v0") == pytest.approx(2.7476, abs=1e-4)
    assert optimal_reward_rate("avgreward/PendulumSwingUp-v0") == 0.0
    assert optimal_reward_rate("avgreward/ShortCorridor-v0") is None  # episodic
    assert optimal_reward_rate("avgreward/AliasedGridworld-v0") is None  # aliased: a bound only


def test_rounding_is_a_tie_and_nested_lists_read_as_arrays():
    # the same rate summed two ways: a few ulps apart, a tie for P(X > Y)
    x = np.array([0.2 + 4e-17, 0.2 + 4e-17, 0.2 - 2e-17])
    y = np.array([0.2 + 1.2e-16, 0.2 + 1.2e-16, 0.2025])
    assert stats.probability_of_improvement(x, y).estimate == pytest.approx((6 * 0.5) / 9)
    rng = np.random.default_rng(3)
    grid = rng.normal(size=(4, 3))
    assert stats.aggregate_metrics(grid.tolist())["iqm"] == stats.aggregate_metrics(grid)["iqm"]
    assert (stats.probability_of_improvement(grid.tolist(), grid[::-1].tolist())
            == stats.probability_of_improvement(grid, grid[::-1]))
