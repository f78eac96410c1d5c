"""The CLI's plot for comparisons: labels, bands, axes, the optimum line, legends that name differences."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from avgreward import plotting  # noqa: E402
from avgreward.cli import main  # noqa: E402
from avgreward.experiment import load_experiment  # noqa: E402


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    short, long = root / "short", root / "long"
    assert main(["sweep", "loop", "--steps", "2000", "--seeds", "3", "-q",
                 "--grid", "alpha_theta=0.125,0.5", "--out", str(short)]) == 0
    assert main(["run", "loop", "--steps", "8000", "--seeds", "3", "-q",
                 "--set", "alpha_theta=0.25", "--out", str(long)]) == 0
    return root, short, long


def _figure_of(monkeypatch, argv):
    """Run ``avgreward plot argv`` and keep the figure it saved."""
    kept = {}
    save = plotting.save_figure

    def keep(fig, path, **kw):
        kept["fig"] = fig
        fig.canvas.draw()
        return save(fig, path, **kw)

    monkeypatch.setattr(plotting, "save_figure", keep)
    assert main(["plot", *argv]) == 0
    return kept["fig"]


def test_curves_of_different_lengths_on_a_fraction_axis_with_named_differences(dirs,
                                                                               monkeypatch):
    root, short, long = dirs
    fig = _figure_of(monkeypatch, [str(short), str(long), "--out", str(root / "c.png"),
                                   "--x", "fraction", "--band", "bootstrap"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "fraction of the run's steps"
    lines = [line for line in ax.get_lines() if line.get_label().startswith("steps=")]
    assert sorted(line.get_label() for line in lines) == [
        "steps=2000, alpha_theta=2^-1 (3 seeds)", "steps=2000, alpha_theta=2^-3 (3 seeds)",
        "steps=8000, alpha_theta=2^-2 (3 seeds)"]
    for line in lines:  # both lengths end at 1
        assert line.get_xdata()[-1] == pytest.approx(1.0)
    optimum = [line for line in ax.get_lines() if line.get_label().startswith("optimum")]
    assert len(optimum) == 1 and optimum[0].get_ydata()[0] == pytest.approx(0.4)
    assert "bootstrap" in ax.get_legend().get_title().get_text()


def test_labels_limits_log_axis_and_no_band(dirs, monkeypatch):
    root, short, long = dirs
    fig = _figure_of(monkeypatch, [str(short), str(long), "--out", str(root / "d.pdf"),
                                   "--label", "a", "--label", "b", "--label", "c",
                                   "--xscale", "log", "--xlim", "10,", "--ylim", "0,0.5",
                                   "--band", "none", "--optimum", "none"])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] == 10 and ax.get_ylim() == (0, 0.5)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["a (3 seeds)", "b (3 seeds)", "c (3 seeds)"]
    assert not ax.collections  # no band
    assert (root / "d.pdf").read_bytes()[:4] == b"%PDF"


def test_sensitivity_takes_the_final_fraction_band_and_optimum(dirs, monkeypatch):
    root, short, _ = dirs
    fig = _figure_of(monkeypatch, [str(short), "--out", str(root / "s.png"),
                                   "--final-fraction", "0.5", "--optimum", "0.45"])
    ax = fig.axes[0]
    assert ax.get_ylabel() == "mean reward, last 50% of steps"
    assert any(line.get_label() == "optimum (0.45)" for line in ax.get_lines())
    experiment = load_experiment(short)
    means = sorted(float(np.mean(experiment.final_performance(i, 0.5))) for i in range(2))
    points = ax.get_lines()[0].get_ydata()
    assert sorted(points) == pytest.approx(means)


@pytest.mark.parametrize("extra, message", [
    (["--label", "a"], "--label: labels must have one entry per curve (3), got 1"),
    (["--xlim", "5,1"], "LOW must be less than HIGH"),
    (["--ylim", "x"], "--ylim must be LOW,HIGH"),
    (["--optimum", "best"], "--optimum must be auto, none or a number"),
    (["--final-fraction", "0"], "--final-fraction must lie in (0, 1]"),
    (["--x", "alpha_w"], "--x alpha_w: curves take steps or fraction"),
    (["--out", "figure.doc"], ".pdf, .png"),
])
def test_bad_plot_options_are_one_line_and_exit_2(dirs, capsys, extra, message):
    root, short, long = dirs
    argv = ["plot", str(short), str(long), "--out", str(root / "e.png"), *extra]
    if "--out" in extra:
        argv = ["plot", str(short), str(long), *extra]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_out_into_a_missing_directory_creates_it(dirs):
    root, short, _ = dirs
    out = root / "new" / "deeper" / "fig.svg"
    assert main(["plot", str(short), "--kind", "curves", "--out", str(out)]) == 0
    assert out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--kind", "policy", "--band", "none"], "--band applies to curves and sensitivity"),
    (["--xscale", "log", "--xlim", "0,10"], "a log axis starts above 0"),
    (["--xlim=-inf,5"], "finite numbers"),
])
def test_options_that_do_not_apply_are_refused(dirs, capsys, extra, message):
    root, short, _ = dirs
    try:
        code = main(["plot", str(short), "--out", str(root / "f.png"), *extra])
    except SystemExit as stop:
        code = stop.code
    assert code == 2 and message in capsys.readouterr().err


def test_a_sweep_with_x_fraction_draws_curves(dirs, monkeypatch):
    root, short, _ = dirs
    fig = _figure_of(monkeypatch, [str(short), "--out", str(root / "g.png"), "--x", "fraction"])
    assert fig.axes[0].get_xlabel() == "fraction of the run's steps"


def test_the_t_band_stays_within_the_rewards_range_and_says_so(dirs, monkeypatch):
    root, short, long = dirs
    # Three seeds of 2,000 steps on the loop MDP (rewards 0, 1 or 2): a t band
    # of three skewed runs reaches below 0 early on; clipped, it stays inside.
    experiment = load_experiment(long)
    raw = plotting.confidence_band(experiment.rewards(0))
    clipped = plotting.confidence_band(experiment.rewards(0), bounds=(0.0, 2.0))
    assert raw[1].min() < 0.0 and clipped[1].min() == 0.0
    np.testing.assert_array_equal(clipped[0], raw[0])
    np.testing.assert_array_equal(clipped[1], np.clip(raw[1], 0.0, 2.0))
    fig = _figure_of(monkeypatch, [str(long), "--out", str(root / "b.png")])
    ax = fig.axes[0]
    lows = ax.collections[-1].get_paths()[0].vertices[:, 1]
    assert lows.min() >= 0.0 and lows.max() <= 2.0
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "95% CI of the mean (3 seeds),\nclipped to the reward's range [0, 2]" in legend
    unclipped = _figure_of(monkeypatch, [str(long), "--out", str(root / "b2.png"), "--no-clip"])
    vertices = unclipped.axes[0].collections[-1].get_paths()[0].vertices[:, 1]
    np.testing.assert_array_equal(lows, np.clip(vertices, 0.0, 2.0))
    assert not any("clipped" in text.get_text()
                   for text in unclipped.axes[0].get_legend().get_texts())


def test_a_random_policy_baseline_line_at_its_exact_rate(dirs, monkeypatch):
    root, short, _ = dirs
    fig = _figure_of(monkeypatch, [str(short), "--out", str(root / "r.png"),
                                   "--kind", "curves", "--baseline", "random"])
    lines = [line for line in fig.axes[0].get_lines()
             if line.get_label().startswith("uniform random policy")]
    # The loop MDP's uniform policy: exactly 0.3 (avgreward.exact.evaluate).
    assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(0.3, abs=1e-12)
    fig = _figure_of(monkeypatch, [str(short), "--out", str(root / "r2.png"),
                                   "--kind", "curves", "--baseline", "0.25"])
    assert any(line.get_label() == "baseline (0.25)"
               for line in fig.axes[0].get_lines())


@pytest.mark.parametrize("extra, message", [
    (["--kind", "curves", "--baseline", "best"], "--baseline must be random, none or a number, got 'best'"),
    (["--kind", "curves", "--baseline", "nan"], "--baseline must be finite"),
    (["--kind", "sensitivity", "--baseline", "0.1"], "--baseline applies to --kind curves"),
])
def test_bad_baselines_are_one_line_and_exit_2(dirs, capsys, extra, message):
    root, short, _ = dirs
    code = main(["plot", str(short), "--out", str(root / "g.png"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_a_random_baseline_where_no_model_gives_it_is_one_line(tmp_path, capsys):
    out = tmp_path / "swing"
    assert main(["run", "pendulum", "--steps", "300", "--seeds", "2", "-q",
                 "--out", str(out)]) == 0
    code = main(["plot", str(out), "--out", str(tmp_path / "p.png"), "--baseline", "random"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "known only for one continuing tabular task, not avgreward/PendulumSwingUp-v0" in err


def test_reward_bounds_and_the_random_rate_come_from_the_exact_models():
    from avgreward import exact
    from avgreward.evaluation import random_policy_rate, reward_bounds

    assert reward_bounds("avgreward/LoopMDP-v0") == (0.0, 2.0)
    assert reward_bounds("avgreward/AccessControl-v0") == (0.0, 8.0)
    assert reward_bounds("avgreward/PendulumSwingUp-v0") == (-np.pi, 0.0)
    assert reward_bounds("CartPole-v1") is None  # not declared: nothing known
    assert reward_bounds("not_imported_module:x/Y-v0") is None  # and nothing imported
    model = exact.model_of("avgreward/AccessControl-v0")
    uniform = np.full((model.n_states, model.n_actions), 1.0 / model.n_actions)
    assert random_policy_rate("avgreward/AccessControl-v0") == exact.evaluate(
        model, uniform).reward_rate
    assert random_policy_rate("avgreward/ShortCorridor-v0") is None  # episodic
    assert random_policy_rate("avgreward/PendulumSwingUp-v0") is None
    with pytest.raises(ValueError, match="bounds must be"):
        plotting.confidence_band(np.ones((3, 4)), bounds=(1.0, 0.0))
