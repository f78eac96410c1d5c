"""Episodic metrics: each episode's return, length and end step, recorded, saved, plotted,
summarised (``avgreward stats``) and exported (``avgreward export --what episodes``)."""

import re
import warnings

import gymnasium
import matplotlib.image
import numpy as np
import pandas
import pytest

import avgreward
from avgreward import plotting
from avgreward.cli import main
from avgreward.evaluation import optimal_reward_rate
from avgreward.experiment import load_experiment, run_experiment

CORRIDOR = "avgreward/ShortCorridor-v0"
CARTPOLE_BOUNDS = ([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5])
SOFTMAX = avgreward.SoftmaxActorCritic(alpha_w=2**-3, alpha_theta=2**-4, alpha_rbar=2**-6)
EPISODE_KEYS = ("episode_returns", "episode_lengths", "episode_end_steps")


def recount(rewards, ends):
    """Plain Python: each episode's return, length and end step from the per-step rewards
    and the (0-based) steps at which episodes ended."""
    returns, lengths, end_steps = [], [], []
    start = 0
    for end in sorted(int(e) for e in ends):
        total = 0.0
        for t in range(start, end + 1):
            total += float(rewards[t])
        returns.append(total)
        lengths.append(end + 1 - start)
        end_steps.append(end + 1)
        start = end + 1
    return np.array(returns), np.array(lengths), np.array(end_steps)


def check_against_recount(result):
    info = result.info
    ends = np.concatenate([info["terminations"], info["truncations"]])
    returns, lengths, end_steps = recount(result.rewards, ends)
    assert returns.size >= 5  # enough episodes to mean something
    np.testing.assert_allclose(info["episode_returns"], returns, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(info["episode_lengths"], lengths)
    np.testing.assert_array_equal(info["episode_end_steps"], end_steps)
    # Lengths add up to the steps before the unfinished last episode.
    assert info["episode_lengths"].sum() == info["episode_end_steps"][-1] <= result.steps
    for key in EPISODE_KEYS:
        assert info[key].dtype == (np.float64 if key == "episode_returns" else np.int64)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "avgreward/CartPoleFailurePenalty-v1"])
def test_cartpole_episodes_equal_a_recount_and_gymnasium_run_with_the_same_actions(env_id):
    """Python-stepped CartPole: the episodes are the rewards' and gymnasium's own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", avgreward.training.ConstantRewardWarning)
        result = avgreward.train(env_id, SOFTMAX, 3_000, seed=3,
                                 bounds=CARTPOLE_BOUNDS, record_actions=True, chunk_steps=700)
    check_against_recount(result)
    # Gymnasium's environment stepped by hand with the run's actions, reset at every end.
    env = gymnasium.make(env_id)
    env.reset(seed=3)
    returns, lengths, end_steps, total, length = [], [], [], 0.0, 0
    for t, action in enumerate(result.actions):
        _, reward, terminated, truncated, _ = env.step(int(action))
        total, length = total + reward, length + 1
        if terminated or truncated:
            returns.append(total)
            lengths.append(length)
            end_steps.append(t + 1)
            total, length = 0.0, 0
            env.reset()
    np.testing.assert_array_equal(result.info["episode_returns"], returns)
    np.testing.assert_array_equal(result.info["episode_lengths"], lengths)
    np.testing.assert_array_equal(result.info["episode_end_steps"], end_steps)


def test_cartpole_binned_and_chunked_differently_records_the_same_episodes():
    """Binned, the ends are counted per bin, but every episode is still kept whole."""
    with pytest.warns(avgreward.training.ConstantRewardWarning):
        whole = avgreward.train("CartPole-v1", SOFTMAX, 2_000, seed=1, bounds=CARTPOLE_BOUNDS)
        binned = avgreward.train("CartPole-v1", SOFTMAX, 2_000, seed=1,
                                 bounds=CARTPOLE_BOUNDS, bin_size=300, chunk_steps=450)
    for key in EPISODE_KEYS:
        np.testing.assert_array_equal(binned.info[key], whole.info[key])
    counts = np.bincount(whole.info["terminations"] // 300, minlength=7)
    np.testing.assert_array_equal(binned.info["terminations"], counts)


@pytest.mark.parametrize("agent", [
    SOFTMAX,  # a continuing learner: an end is a reset inside one stream
    avgreward.Reinforce(alpha_theta=2**-12, max_episode_steps=7),  # ends and cuts
    avgreward.EpisodicActorCritic(alpha_theta=2**-9, alpha_w=2**-6),
])
def test_fused_loop_episodes_equal_a_recount_chunked_or_binned(agent):
    result = avgreward.train(CORRIDOR, agent, 3_000, seed=0)
    check_against_recount(result)
    if getattr(agent, "max_episode_steps", None):
        assert result.info["truncations"].size > 0  # the cap's cuts are episodes too
    binned = avgreward.train(CORRIDOR, agent, 3_000, seed=0, bin_size=128, chunk_steps=333)
    for key in EPISODE_KEYS:
        np.testing.assert_array_equal(binned.info[key], result.info[key])


def test_a_continued_run_carries_its_unfinished_episode_over():
    whole = avgreward.train(CORRIDOR, SOFTMAX, 2_000, seed=5)
    first = avgreward.train(CORRIDOR, SOFTMAX, 1_100, seed=5)
    rest = avgreward.train(CORRIDOR, SOFTMAX, 900, seed=5, init=first)
    n = first.info["episode_returns"].size
    for key in ("episode_returns", "episode_lengths"):
        np.testing.assert_array_equal(
            np.concatenate([first.info[key], rest.info[key]]), whole.info[key])
    # End steps count this call's steps, as its terminations do.
    np.testing.assert_array_equal(rest.info["episode_end_steps"] + 1_100,
                                  whole.info["episode_end_steps"][n:])


def test_a_saved_result_keeps_its_episodes(tmp_path):
    result = avgreward.train(CORRIDOR, SOFTMAX, 1_000, seed=2)
    again = avgreward.load_result(result.save(tmp_path / "run"))
    for key in EPISODE_KEYS:
        np.testing.assert_array_equal(again.info[key], result.info[key])


@pytest.fixture(scope="module")
def corridor(tmp_path_factory):
    """An episodic experiment made as a user makes it: two settings, three seeds."""
    out = tmp_path_factory.mktemp("episodic") / "corridor"
    code = main(["sweep", "ShortCorridor-v0", "--steps", "3000", "--seeds", "3",
                 "--grid", "alpha_theta=0.0625,0.25", "--set", "alpha_w=0.125",
                 "--set", "alpha_rbar=0.015625", "--bin-size", "100", "--workers", "1",
                 "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A continuing experiment (no episodes)."""
    out = tmp_path_factory.mktemp("continuing") / "loop"
    assert main(["run", "loop", "--steps", "2000", "--seeds", "2", "--workers", "1",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_the_runner_saves_each_runs_episodes_as_train_returns_them(corridor):
    experiment = load_experiment(corridor)
    assert experiment.has_episodes
    for i, agent in enumerate(experiment.agents):
        for seed, episodes in zip(experiment.finished_seeds(i), experiment.episodes(i)):
            alone = avgreward.train(CORRIDOR, agent, 3_000, seed=seed, bin_size=100)
            np.testing.assert_array_equal(episodes["return"], alone.info["episode_returns"])
            np.testing.assert_array_equal(episodes["length"], alone.info["episode_lengths"])
            np.testing.assert_array_equal(episodes["end_step"],
                                          alone.info["episode_end_steps"])


def test_final_episodes_are_the_last_fraction_of_each_runs_episodes(corridor):
    experiment = load_experiment(corridor)
    returns, lengths = experiment.final_episodes(1, 0.25)
    for k, episodes in enumerate(experiment.episodes(1)):
        n = episodes["return"].size
        last = n - max(1, round(0.25 * n))
        assert returns[k] == pytest.approx(np.mean(episodes["return"][last:]), abs=1e-12)
        assert lengths[k] == pytest.approx(np.mean(episodes["length"][last:]), abs=1e-12)
    with pytest.raises(ValueError, match="fraction"):
        experiment.final_episodes(1, 0.0)


def test_stats_reports_final_episode_return_and_length_beside_the_reward_rate(corridor,
                                                                              capsys):
    assert main(["stats", str(corridor), "--final-fraction", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "final performance" in out  # the reward rate's table, first
    head = out.index("final episodes")
    assert "last 0.2 of its episodes" in out[head:]
    experiment = load_experiment(corridor)
    for i in range(len(experiment.agents)):
        returns, lengths = experiment.final_episodes(i, 0.2)
        row = next(line for line in out[head:].splitlines()
                   if line.startswith(experiment.label(i)))
        numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", row.split("  ", 1)[1])]
        # runs, then (estimate, low, high) for mean and IQM of the return, then of the length
        assert numbers[0] == 3
        assert numbers[1] == pytest.approx(returns.mean(), rel=1e-3)
        assert numbers[2] <= numbers[1] <= numbers[3]
        assert numbers[7] == pytest.approx(lengths.mean(), rel=1e-3)
        assert numbers[8] <= numbers[7] <= numbers[9]


def test_stats_of_a_continuing_task_has_no_episode_table(loop, capsys):
    assert main(["stats", str(loop)]) == 0
    assert "episode" not in capsys.readouterr().out


def test_plot_draws_episode_return_and_length_beside_the_reward_rate(corridor, loop, tmp_path,
                                                                     capsys):
    assert main(["plot", str(corridor), "--kind", "curves", "--out",
                 str(tmp_path / "episodic.png")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "episodic.png")
    wide = matplotlib.image.imread(tmp_path / "episodic.png")
    assert wide.shape[1] == 16 * 120  # three panels: reward rate, return, length
    # A continuing task's figure is the reward-rate figure alone, pixel for pixel.
    assert main(["plot", str(loop), "--out", str(tmp_path / "loop.png")]) == 0
    experiment = load_experiment(loop)
    direct = plotting.learning_curves(
        experiment, optimum=optimal_reward_rate(experiment.env_id))  # the CLI's auto line
    plotting.save_figure(direct, tmp_path / "direct.png")
    np.testing.assert_array_equal(matplotlib.image.imread(tmp_path / "loop.png"),
                                  matplotlib.image.imread(tmp_path / "direct.png"))


def test_episode_curves_are_the_mean_over_seeds_of_each_bins_episodes(corridor):
    experiment = load_experiment(corridor)
    fig = plotting.episode_curves(experiment, agents=[0], points=30, band="t")
    returns_ax, lengths_ax = fig.axes
    assert returns_ax.get_title() == "episode return: mean of the episodes ending in 100-step bins"
    legend = [t.get_text() for t in returns_ax.get_legend().get_texts()]
    # What the band means: every reward is -1, so a return is at most -1
    assert legend == ["95% CI of the mean (3 seeds),\nclipped to episode return <= -1"]
    runs = experiment.episodes(0)
    for ax, key in ((returns_ax, "return"), (lengths_ax, "length")):
        mean_line = next(line for line in ax.lines if line.get_linewidth() == 1.8)
        x, y = mean_line.get_data()
        # By hand: per seed, the mean of the episodes whose end step falls in each
        # 100-step bin, the latest such where none does; then the mean over seeds.
        for step, value in zip(x, y):
            per_seed = []
            for e in runs:
                done = e["end_step"] <= step
                last_bin = (e["end_step"][done][-1] - 1) // 100
                in_bin = (e["end_step"] - 1) // 100 == last_bin
                per_seed.append(e[key][in_bin].mean())
            assert value == pytest.approx(np.mean(per_seed), abs=1e-9)
        assert x[-1] == 3_000


def _band(ax):
    """(low, high) of the band ``fill_between`` drew on ``ax``."""
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices[:, 1]
    return float(vertices.min()), float(vertices.max())


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """REINFORCE cut at 12 steps, two seeds far apart: a t band over the cap unclipped."""
    out = tmp_path_factory.mktemp("capped") / "corridor"
    run_experiment(out, CORRIDOR, avgreward.Reinforce(alpha_theta=2**-13, max_episode_steps=12),
                   [0, 5], 3_000, workers=1, progress=False)
    return load_experiment(out)


def test_episode_bands_stay_within_what_an_episode_can_be(capped):
    unclipped = plotting.episode_curves(capped, points=20, band="t", bounds=None)
    returns_ax, lengths_ax = unclipped.axes
    # Two seeds: the t band (t = 12.7) reaches past the cap and past -1 (a t band is
    # the unclipped part the clipping must remove; without it the test cannot fail).
    assert _band(lengths_ax)[1] > 12 and _band(lengths_ax)[0] < 1
    assert _band(returns_ax)[1] > -1 and _band(returns_ax)[0] < -12
    fig = plotting.episode_curves(capped, points=20, band="t")
    returns_ax, lengths_ax = fig.axes
    low, high = _band(lengths_ax)
    assert 1 <= low and high <= 12 and high == 12
    low, high = _band(returns_ax)  # every reward -1: a return in [-12, -1]
    assert -12 <= low and high <= -1
    legends = [ax.get_legend().get_texts()[0].get_text() for ax in fig.axes]
    assert legends == ["95% CI of the mean (2 seeds),\nclipped to the episode return's range "
                       "[-12, -1]", "95% CI of the mean (2 seeds),\nclipped to the episode "
                       "length's range [1, 12]"]


def test_episode_bounds_follow_the_cap_and_the_rewards_range():
    from avgreward.evaluation import episode_bounds, episode_cap

    assert episode_cap("CartPole-v1") == 500 and episode_cap(CORRIDOR) is None
    assert episode_cap(CORRIDOR, avgreward.Reinforce(alpha_theta=0.1, max_episode_steps=9)) == 9
    inf = float("inf")
    assert episode_bounds(CORRIDOR) == ((1.0, inf), (-inf, -1.0))
    assert episode_bounds(CORRIDOR, 9) == ((1.0, 9.0), (-9.0, -1.0))
    assert episode_bounds("CartPole-v1", 500) == ((1.0, 500.0), None)  # no reward range known
    assert episode_bounds("x", 10, rewards=(-1.0, 2.0)) == ((1.0, 10.0), (-10.0, 20.0))
    assert episode_bounds("x", None, rewards=(-1.0, 2.0)) == ((1.0, inf), None)
    assert episode_bounds("x", None, rewards=(0.5, 2.0)) == ((1.0, inf), (0.5, inf))


def test_episode_curves_refuse_a_continuing_task(loop):
    with pytest.raises(ValueError, match="no episodes to draw"):
        plotting.episode_curves(load_experiment(loop))


def test_export_episodes_is_a_tidy_table_of_every_episode(corridor, loop, tmp_path, capsys):
    out = tmp_path / "episodes.csv"
    assert main(["export", str(corridor), "--what", "episodes", "--out", str(out)]) == 0
    columns = ["agent_index", "label", "alpha_theta", "seed", "episode", "end_step", "return",
               "length"]
    assert capsys.readouterr().out.strip().endswith(f"({', '.join(columns)})")
    frame = pandas.read_csv(out)
    assert list(frame.columns) == columns
    experiment = load_experiment(corridor)
    total = 0
    for i in range(len(experiment.agents)):
        for seed, e in zip(experiment.finished_seeds(i), experiment.episodes(i)):
            rows = frame[(frame.agent_index == i) & (frame.seed == seed)]
            np.testing.assert_array_equal(rows.episode, np.arange(e["return"].size))
            np.testing.assert_array_equal(rows.end_step, e["end_step"])
            np.testing.assert_allclose(rows["return"], e["return"], rtol=0, atol=1e-9)
            np.testing.assert_array_equal(rows.length, e["length"])
            total += e["return"].size
    assert len(frame) == total  # nothing more, nothing lost
    empty = load_experiment(loop).to_frame("episodes")
    assert len(empty) == 0 and list(empty.columns)[-4:] == columns[-4:]


def test_export_refuses_an_unknown_table_in_one_line(corridor, tmp_path, capsys):
    code = None
    try:
        code = main(["export", str(corridor), "--what", "episode", "--out",
                     str(tmp_path / "x.csv")])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert "episodes" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_curves_with_episodes_puts_the_three_panels_on_one_step_axis(corridor):
    experiment = load_experiment(corridor)
    fig = plotting.curves_with_episodes(experiment, title="corridor", band="bootstrap")
    rate, returns, lengths = fig.axes
    assert rate.get_ylabel().startswith("reward per step")
    assert returns.get_title().startswith("corridor: episode return")
    assert lengths.get_title().startswith("corridor: episode length")
    assert returns.get_legend().get_title().get_text() == "mean, 95% CI (bootstrap)"
    rate.set_xlim(500, 2_000)
    assert lengths.get_xlim() == (500, 2_000)  # --xlim sets all three


def test_parallel_actors_episodes_have_no_end_step_and_plot_the_reward_rate_alone(tmp_path):
    """With two copies an update's steps are two episodes': returns and lengths only."""
    agent = avgreward.EpisodicActorCritic(alpha_theta=2**-9, alpha_w=2**-6, actors=2)
    run_experiment(tmp_path / "par", CORRIDOR, agent, 2, 1_000, workers=1, progress=False)
    experiment = load_experiment(tmp_path / "par")
    runs = experiment.episodes(0)
    assert experiment.has_episodes and all(run["end_step"] is None for run in runs)
    assert main(["plot", str(tmp_path / "par"), "--out", str(tmp_path / "par.png")]) == 0
    assert matplotlib.image.imread(tmp_path / "par.png").shape[1] == 7 * 120  # one panel
    frame = experiment.to_frame("episodes")
    assert len(frame) == sum(run["return"].size for run in runs) > 0
    assert frame.end_step.isna().all() and str(frame.end_step.dtype) == "Int64"
