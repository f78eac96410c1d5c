"""Plots and animations: right-sized non-empty images, honest confidence bands, exact maps."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from PIL import Image

import avgreward
from avgreward import plotting
from avgreward.animation import animate_policy, rollout
from avgreward.plotting import (
    confidence_band,
    exponential_average_curve,
    learning_curve,
    policy_map,
    save_figure,
    sensitivity_curve,
    value_map,
)
from avgreward.stats import exponential_average

DISCRETE = "avgreward/PendulumSwingUp-v0"
CONTINUOUS = "avgreward/PendulumSwingUpContinuous-v0"


def _check_image(fig, path, dpi=120):
    """Save ``fig``; the PNG must have the figure's pixel size and visible content."""
    width, height = fig.get_size_inches()
    save_figure(fig, path, dpi=dpi)
    with Image.open(path) as image:
        assert image.size == (round(width * dpi), round(height * dpi))
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    # Not a blank canvas: a good share of the pixels are not background.
    assert (pixels < 250).mean() > 0.02
    assert path.stat().st_size > 10_000


@pytest.fixture(scope="module")
def softmax_result():
    agent = avgreward.SoftmaxActorCritic.pendulum_reference()
    return avgreward.train(DISCRETE, agent, 3000, seed=0)


@pytest.fixture(scope="module")
def gaussian_result():
    return avgreward.train(CONTINUOUS, avgreward.GaussianActorCritic.pendulum_default(), 3000, 0)


def _synthetic_rewards(n_seeds, n_steps=2000, seed=0):
    rng = np.random.default_rng(seed)
    trend = -np.exp(-np.arange(n_steps) / 400.0)
    return trend + rng.normal(0.0, 0.5, size=(n_seeds, n_steps))


@pytest.mark.parametrize("band", ["t", "bootstrap"])
def test_confidence_band_contains_the_mean_and_narrows_with_more_seeds(band):
    samples = _synthetic_rewards(40, 300)
    widths = []
    for n in (4, 10, 40):
        mean, low, high = confidence_band(samples[:n], 0.95, band)
        assert np.all(low <= mean) and np.all(mean <= high)
        np.testing.assert_allclose(mean, samples[:n].mean(axis=0))
        widths.append(np.mean(high - low))
    assert widths[0] > widths[1] > widths[2]
    # The half-width shrinks about as 1/sqrt(n).
    assert widths[1] / widths[2] == pytest.approx(2.0, rel=0.3)


def test_confidence_band_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    samples = rng.normal(0.0, 1.0, size=(10, 4000))  # 4000 independent 10-seed experiments
    for band in ("t", "bootstrap"):
        _, low, high = confidence_band(samples, 0.95, band)
        coverage = np.mean((low <= 0.0) & (0.0 <= high))
        # The percentile bootstrap is known to undercover with 10 samples.
        assert (0.93 if band == "t" else 0.88) < coverage < 0.97


def test_one_seed_has_no_band_and_bad_arguments_are_named():
    mean, low, high = confidence_band(np.ones((1, 5)))
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)
    with pytest.raises(ValueError, match="band"):
        confidence_band(np.ones((3, 5)), band="normal")
    with pytest.raises(ValueError, match="confidence"):
        confidence_band(np.ones((3, 5)), confidence=95)


def test_learning_curve_image_and_binned_input_draw_the_same_curve(tmp_path):
    rewards = _synthetic_rewards(8)
    fig = learning_curve(rewards, title="per step")
    per_step = fig.axes[0].lines[0].get_ydata()
    _check_image(fig, tmp_path / "per_step.png")

    binned = rewards.reshape(8, -1, 5).mean(axis=2)  # what an experiment stores
    steps = np.arange(1, binned.shape[1] + 1) * 5
    fig = learning_curve(binned, steps=steps, label="binned", band="bootstrap")
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), per_step)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 201) * 10)
    assert "8 seeds" in fig.axes[0].get_legend().get_texts()[0].get_text()
    _check_image(fig, tmp_path / "binned.png")


def test_several_curves_share_one_figure_with_a_legend(tmp_path):
    fig = learning_curve(_synthetic_rewards(5, seed=1), label="first")
    learning_curve(_synthetic_rewards(5, seed=2) - 0.2, label="second", ax=fig.axes[0])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(texts) == 2 and texts[0].startswith("first") and texts[1].startswith("second")
    _check_image(fig, tmp_path / "two.png")


def test_exponential_average_from_bins_is_exact_when_bins_are_constant(tmp_path):
    rng = np.random.default_rng(3)
    bin_values = rng.normal(size=(3, 40))
    per_step = np.repeat(bin_values, 25, axis=1)  # constant within 25-step bins
    steps = np.arange(1, 41) * 25
    fig = exponential_average_curve(bin_values, 0.01, steps=steps, show_runs=True)
    drawn = fig.axes[0].lines[0].get_ydata()
    expected = exponential_average(per_step, 0.01)[:, 24::25].mean(axis=0)
    np.testing.assert_allclose(drawn, expected, rtol=1e-12, atol=1e-12)
    _check_image(fig, tmp_path / "exp.png")


def test_sensitivity_curve_image_with_log2_axis_and_a_missing_point(tmp_path):
    x = 2.0 ** np.arange(-4, 2)
    rng = np.random.default_rng(0)
    perf = [rng.normal(-1 + 0.1 * k, 0.1, size=10) for k in range(6)]
    perf[5] = np.array([])  # every run of this setting failed
    fig = sensitivity_curve(x, perf, label="alpha_w = 2^1", xlabel="alpha_theta")
    sensitivity_curve(x, [p - 0.5 for p in perf], label="alpha_w = 2^0", ax=fig.axes[0])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.lines[0].get_xdata()) == 5
    _check_image(fig, tmp_path / "sensitivity.png")


def test_policy_map_equals_the_learned_policy_and_makes_an_image(softmax_result, tmp_path):
    grid = plotting._grid_values(softmax_result, (30, 20))
    assert grid["probs"].shape == (600, 3)
    for k in (0, 137, 599):
        point = grid["points"][k]
        np.testing.assert_allclose(grid["probs"][k], softmax_result.policy(point), atol=1e-12)
        assert grid["value"][k] == pytest.approx(softmax_result.value(point), abs=1e-9)
    # Summed one active feature at a time: the numbers of theta[idx].sum(axis=1), bit for bit.
    _points, idx, _shape = plotting._pendulum_grid(softmax_result, (30, 20))
    prefs = softmax_result.weights["theta"][idx].sum(axis=1) / softmax_result.agent.tau
    prefs -= prefs.max(axis=1, keepdims=True)
    probs = np.exp(prefs)
    assert np.array_equal(grid["probs"], probs / probs.sum(axis=1, keepdims=True))
    path = rollout(softmax_result, 100).observations
    fig = policy_map(softmax_result, trajectory=path)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:3] == [
        "torque -1", "torque 0", "torque +1"]
    _check_image(fig, tmp_path / "policy.png")
    fig = value_map(softmax_result)
    assert len(fig.axes) == 2  # the map and its colorbar
    _check_image(fig, tmp_path / "value.png")


def test_gaussian_policy_map_shows_mean_and_sigma(gaussian_result, tmp_path):
    grid = plotting._grid_values(gaussian_result, 25)
    mean, sigma = gaussian_result.policy(grid["points"][300])
    assert grid["mean"][300] == pytest.approx(mean, abs=1e-9)
    assert grid["sigma"][300] == pytest.approx(sigma, rel=1e-9)
    fig = policy_map(gaussian_result, resolution=50)
    assert len(fig.axes) == 4  # mean, sigma and their colorbars
    _check_image(fig, tmp_path / "gaussian.png")


def test_maps_refuse_results_of_other_environments():
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = avgreward.train("avgreward/LoopMDP-v0", agent, 100, seed=0)
    with pytest.raises(ValueError, match="pendulum"):
        policy_map(result)


def test_rollout_is_reproducible_and_greedy_is_deterministic(softmax_result):
    a = rollout(softmax_result, 50, seed=3)
    b = rollout(softmax_result, 50, seed=3)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.observations[0], [-math.pi, 0.0])
    assert a.observations.shape == (51, 2) and a.rewards.shape == (50,)
    g = rollout(softmax_result, 50, seed=0, greedy=True)
    h = rollout(softmax_result, 50, seed=9, greedy=True)
    np.testing.assert_array_equal(g.actions, h.actions)


@pytest.mark.parametrize("which", ["softmax", "gaussian"])
def test_gif_has_several_frames_of_the_rendered_size(which, softmax_result, gaussian_result,
                                                    tmp_path):
    result = softmax_result if which == "softmax" else gaussian_result
    path = animate_policy(result, tmp_path / "swing.gif", steps=30, every=3, size=200)
    with Image.open(path) as image:
        assert image.size == (200, 200)
        assert image.n_frames == 11  # the start and every third of 30 steps
        assert image.info["duration"] == 150  # real time: 20 fps / 3
    with pytest.raises(ValueError, match="gif"):
        animate_policy(result, tmp_path / "swing.png", steps=5)


# ---------------------------------------------------------------------------
# Saved experiments (avgreward.experiment)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from avgreward.experiment import run_experiment

    agents = [avgreward.SoftmaxActorCritic(alpha_w=2.0**c, alpha_theta=2.0**a, alpha_rbar=2**-6)
              for c in (0, 1) for a in (-3, -2, -1)]
    return run_experiment(tmp_path_factory.mktemp("sweep"), DISCRETE, agents, 3, 1000,
                          workers=1, progress=False)


def test_learning_curves_of_saved_experiments(sweep, tmp_path):
    fig = plotting.learning_curves(sweep, agents=[0, 5], title="two settings")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"{sweep.label(0)} (3 seeds)", f"{sweep.label(5)} (3 seeds)"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata()[-1], 1000)
    _check_image(fig, tmp_path / "curves.png")

    fig = plotting.learning_curves([sweep, sweep], agents=[1], exponential=True,
                                   labels=["first", "second"])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["first (3 seeds)", "second (3 seeds)"]
    _check_image(fig, tmp_path / "exp_curves.png")


def test_sensitivity_of_a_sweep(sweep, tmp_path):
    fig = plotting.sensitivity(sweep, x="alpha_theta", lines="alpha_w", fraction=0.5)
    ax = fig.axes[0]
    assert len(ax.containers) == 2  # one errorbar line per critic step size
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["alpha_w=2^0", "alpha_w=2^1"]
    line = ax.lines[0]
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), [2**-3, 2**-2, 2**-1])
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float),
                               [sweep.final_performance(i, 0.5).mean() for i in range(3)])
    _check_image(fig, tmp_path / "sweep.png")
    with pytest.raises(ValueError, match="tau_x"):
        plotting.sensitivity(sweep, x="tau_x")


def test_sensitivity_marks_failed_runs(tmp_path):
    class Diverging:  # an experiment whose largest step size diverged on some seeds
        agents = [avgreward.SoftmaxActorCritic(alpha_w=1.0, alpha_theta=2.0**k, alpha_rbar=0.01)
                  for k in (-2, -1, 0)]
        seeds = [0, 1, 2, 3]

        def final_performance(self, i, fraction=0.1):
            return [np.full(4, -0.5), np.full(2, -1.0), np.zeros(0)][i]

    fig = plotting.sensitivity(Diverging(), x="alpha_theta", lines=None)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["2 failed"]
    assert "all runs failed" in [t.get_text() for t in ax.get_legend().get_texts()]
    _check_image(fig, tmp_path / "failed.png")


def test_maps_of_a_run_rebuilt_from_disk(sweep, tmp_path):
    result = sweep.result(4, 2)
    grid = plotting._grid_values(result, 10)
    np.testing.assert_allclose(grid["probs"][17], result.policy(grid["points"][17]), atol=1e-12)
    _check_image(policy_map(result, resolution=60), tmp_path / "disk_policy.png")


# ---------------------------------------------------------------------------
# Files


def _small_figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 0], label="a line")
    ax.legend()
    return fig


def test_figure_formats_are_those_that_work_here(monkeypatch):
    formats = plotting.figure_formats()
    for ext in ("png", "svg", "pdf", "eps", "ps", "jpg", "jpeg", "tif"):
        assert ext in formats
    # PGF needs a TeX program: listed only when one is installed.
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "pgf" not in plotting.figure_formats()
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert "pgf" in plotting.figure_formats()


def test_a_figure_path_is_accepted_exactly_when_its_format_is_listed():
    from matplotlib.backend_bases import FigureCanvasBase

    formats = plotting.figure_formats()
    for ext in [*FigureCanvasBase.get_supported_filetypes(), "xyz", "", "png.bak"]:
        for name in (f"figure.{ext}", f"figure.{ext.upper()}"):
            if ext in formats:
                assert plotting.check_figure_path(name) == ext
            else:
                with pytest.raises(ValueError, match="must end in one of"):
                    plotting.check_figure_path(name)


_MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF-", "eps": b"%!PS", "ps": b"%!PS", "jpg": b"\xff\xd8",
          "gif": b"GIF8", "svg": b"<?xml"}


@pytest.mark.slow
def test_save_figure_writes_every_listed_format(tmp_path):
    import matplotlib.pyplot as plt

    for ext in plotting.figure_formats():
        fig = _small_figure()
        path = tmp_path / f"figure.{ext.upper() if ext == 'png' else ext}"
        assert save_figure(fig, path) == str(path)
        assert not plt.fignum_exists(fig.number)  # closed once saved
        data = path.read_bytes()
        assert len(data) > 100, ext
        assert data.startswith(_MAGIC.get(ext, b"")), ext


def test_save_figure_makes_missing_directories_and_names_the_formats(tmp_path):
    import matplotlib.pyplot as plt

    fig = _small_figure()
    path = tmp_path / "a" / "b" / "figure.png"
    save_figure(fig, path)
    assert path.read_bytes()[:4] == b"\x89PNG"

    fig = _small_figure()
    with pytest.raises(ValueError, match=r"\.png, .*\.svg") as info:
        save_figure(fig, tmp_path / "figure.xyz")
    for ext in plotting.figure_formats():
        assert f".{ext}" in str(info.value)
    assert plt.fignum_exists(fig.number)  # still open: the caller may try another name
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(NotADirectoryError) as info:
        save_figure(fig, tmp_path / "file" / "figure.png")
    assert info.value.filename == str(tmp_path / "file")
    assert not plt.fignum_exists(fig.number)


def test_learning_curves_refuse_experiments_with_no_finished_run(sweep):
    class AllFailed:  # every run diverged
        agents = sweep.agents[:2]
        path = "results/diverged"
        bin_steps = sweep.bin_steps

        def finished_seeds(self, i):
            return []

        def label(self, i):
            return f"agent {i}"

        def summary(self):
            return "6 of 6 runs done, 6 failed (6 diverged)"

    with pytest.raises(ValueError, match="no run finished in results/diverged"):
        plotting.learning_curves(AllFailed())
    # Among experiments with finished runs, it is drawn as nothing.
    fig = plotting.learning_curves([sweep, AllFailed()], agents=[0])
    assert len(fig.axes[0].get_legend().get_texts()) == 1
