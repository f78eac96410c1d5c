"""Parallel actors (A2C): one copy is the one-actor loop, N copies the plain-Python box."""

import hashlib

import numpy as np
import pytest

import avgreward
from avgreward import agent_from_dict
from avgreward.agents import EpisodicActorCritic, SoftmaxActorCritic
from avgreward.environments import default_features, resolve_env
from avgreward.experiment import run_experiment
from avgreward.options import RunOptions
from avgreward.parallel import drive_parallel
from avgreward.reference import reference_a2c

PENDULUM = "avgreward/PendulumSwingUp-v0"
GRID = "avgreward/AliasedGridworld-v0"
LOOP = "avgreward/LoopMDP-v0"
CORRIDOR = "avgreward/ShortCorridor-v0"
GRID_EPISODIC = "avgreward/AliasedGridworldEpisodic-v0"
EPISODIC = EpisodicActorCritic(alpha_w=0.2, alpha_theta=0.1, gamma=0.9)


def one_copy(env, agent, steps, seed, chunk_steps=1 << 18, bin_size=None):
    """The parallel path with N = 1 (train() takes the one-actor loop for actors=1)."""
    env_id, cls = resolve_env(env)
    options = RunOptions(steps, seed, record_actions=True, rbar_every=100,
                         chunk_steps=chunk_steps, bin_size=bin_size)
    return drive_parallel(env_id, cls.fused, agent, default_features(env_id), options,
                          actors=1)


@pytest.mark.parametrize("env, agent", [
    (PENDULUM, SoftmaxActorCritic.pendulum_reference()),                 # the 3-action path
    (PENDULUM, SoftmaxActorCritic.pendulum_reference(entropy=0.01)),     # general softmax
    (LOOP, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, tau=0.5)),
    (GRID_EPISODIC, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)),
    (CORRIDOR, EPISODIC),
    (GRID_EPISODIC, EPISODIC.replace(initial_preferences=(0.5, 0.0, 0.0, -0.5))),
    (GRID_EPISODIC, EPISODIC.replace(entropy=0.3)),
], ids=["pendulum-3", "pendulum-entropy", "loop", "grid-episodic-continuing", "corridor",
        "grid-episodic", "grid-episodic-entropy"])
@pytest.mark.slow
def test_one_copy_is_the_one_actor_loop_bit_for_bit(env, agent):
    steps = 20_000
    a = avgreward.train(env, agent, steps, seed=5, record_actions=True, rbar_every=100)
    b = one_copy(env, agent, steps, seed=5)
    assert np.array_equal(a.actions, b.actions)
    assert a.rewards.tobytes() == b.rewards.tobytes()
    for name in a.weights:
        assert a.weights[name].tobytes() == b.weights[name].tobytes(), name
    assert a.rbar.tobytes() == b.rbar.tobytes() and a.final_rbar == b.final_rbar
    if "episode_returns" in a.info:  # an episodic task, with either learner
        for key in ("episode_returns", "episode_lengths"):
            assert np.array_equal(a.info[key], b.info[key]), key
        assert a.info["episode_returns"].size > 100


@pytest.mark.parametrize("env, agent, actors", [
    (PENDULUM, SoftmaxActorCritic.pendulum_reference(), 4),
    (GRID, SoftmaxActorCritic(alpha_w=0.2, alpha_theta=0.2, alpha_rbar=0.02, entropy=0.05), 3),
    (CORRIDOR, EPISODIC, 4),
    (GRID_EPISODIC, EPISODIC, 5),
    (GRID_EPISODIC, EPISODIC.replace(entropy=0.3, tau=0.7), 3),
], ids=["pendulum", "gridworld-entropy", "corridor", "grid-episodic", "grid-episodic-entropy"])
@pytest.mark.slow
def test_n_copies_are_the_box_in_plain_python(env, agent, actors):
    steps = 1_500
    agent = agent.replace(actors=actors)
    result = avgreward.train(env, agent, steps, seed=2, record_actions=True)
    reference = reference_a2c(env, agent, steps, seed=2, actors=actors)
    np.testing.assert_array_equal(result.actions, reference["actions"])
    np.testing.assert_allclose(result.rewards, reference["rewards"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.weights["w"], reference["w"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(result.weights["theta"], reference["theta"], rtol=1e-9,
                               atol=1e-9)
    assert result.info["actors"] == actors and result.info["env_steps"] == actors * steps
    if isinstance(agent, EpisodicActorCritic):
        np.testing.assert_allclose(result.info["episode_returns"],
                                   reference["episode_returns"], rtol=1e-12)
        assert len(result.info["episode_lengths"]) == len(reference["episode_returns"]) > 50
        if env == CORRIDOR:  # -1 a step: every copy's episodes, whole
            np.testing.assert_array_equal(result.info["episode_returns"],
                                          -result.info["episode_lengths"])
            assert (result.info["episode_lengths"].sum()
                    <= actors * steps < result.info["episode_lengths"].sum() + actors * 200)
    else:
        assert result.final_rbar == pytest.approx(reference["rbar"], rel=1e-9, abs=1e-12)
    assert len(set(result.actions.tolist())) > 1


@pytest.mark.parametrize("agent, env", [
    (SoftmaxActorCritic.pendulum_reference(actors=4), PENDULUM),
    (EPISODIC.replace(actors=4), GRID_EPISODIC),
])
@pytest.mark.slow
def test_chunks_and_bins_change_nothing(agent, env):
    whole = avgreward.train(env, agent, 10_000, seed=1, record_actions=True, rbar_every=10)
    chunked = avgreward.train(env, agent, 10_000, seed=1, record_actions=True, rbar_every=10,
                              chunk_steps=777)
    binned = avgreward.train(env, agent, 10_000, seed=1, chunk_steps=999, bin_size=1)
    for other in (chunked, binned):
        for name in whole.weights:
            assert whole.weights[name].tobytes() == other.weights[name].tobytes()
        np.testing.assert_array_equal(whole.rewards, other.rewards)
        for key in set(whole.info) & {"episode_returns", "episode_lengths"}:
            np.testing.assert_array_equal(whole.info[key], other.info[key])
    np.testing.assert_array_equal(whole.actions, chunked.actions)
    np.testing.assert_array_equal(whole.rbar, chunked.rbar)
    other_seed = avgreward.train(env, agent, 10_000, seed=2)
    assert not np.array_equal(other_seed.rewards, whole.rewards)


def test_the_runner_runs_parallel_actors_the_same_with_one_or_two_workers(tmp_path):
    agents = [SoftmaxActorCritic.pendulum_reference(actors=4),
              SoftmaxActorCritic.pendulum_reference(actors=1)]
    one = run_experiment(tmp_path / "one", PENDULUM, agents, 2, 3_000, workers=1)
    two = run_experiment(tmp_path / "two", PENDULUM, agents, 2, 3_000, workers=2)
    digests = [{p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted((d / "runs").glob("*.npz"))} for d in (tmp_path / "one",
                                                                      tmp_path / "two")]
    assert digests[0] == digests[1] and len(digests[0]) == 4
    direct = avgreward.train(PENDULUM, agents[0], 3_000, seed=1, bin_size=one.bin_size)
    np.testing.assert_array_equal(two.result(0, 1).rewards, direct.rewards)
    assert not np.array_equal(two.result(0, 1).rewards, two.result(1, 1).rewards)


def test_settings_round_trip_and_old_records_mean_one_actor():
    agent = SoftmaxActorCritic.pendulum_reference(actors=8)
    assert agent_from_dict(agent.to_dict()) == agent
    assert "actors" not in SoftmaxActorCritic.pendulum_reference().to_dict()
    assert agent_from_dict({"kind": "softmax", "alpha_w": 1, "alpha_theta": 1,
                            "alpha_rbar": 0.1}).actors == 1
    assert agent_from_dict(EPISODIC.replace(actors=3).to_dict()).actors == 3
    assert SoftmaxActorCritic.pendulum_reference(actors=np.int64(4)).actors == 4


@pytest.mark.parametrize("changes, message", [
    ({"actors": 0}, "actors must be an integer in 1..4096"),
    ({"actors": 2.5}, "actors must be an integer"),
    ({"actors": True}, "actors must be an integer"),
    ({"actors": 4, "lambda_w": 0.5}, "lambda_w and lambda_theta must be 0"),
])
def test_bad_actor_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        SoftmaxActorCritic.pendulum_reference(**changes)


def test_parallel_actors_need_the_fused_loop():
    pytest.importorskip("gymnasium")
    with pytest.raises(ValueError, match="actors=4 .*fused loop only"):
        avgreward.train("CartPole-v1", SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1,
                                                          alpha_rbar=0.01, actors=4), 100, 0)


def test_more_actors_learn_the_swing_up_in_fewer_updates():
    # Same step sizes: averaging N one-step updates lowers their variance, so
    # the swing-up is learned in fewer updates (measured over 5 seeds).
    def early(actors):
        agent = SoftmaxActorCritic.pendulum_reference(actors=actors)
        return np.mean([avgreward.train(PENDULUM, agent, 6_000, seed=s).rewards[3_000:].mean()
                        for s in range(5)])
    one, eight = early(1), early(8)
    assert eight > one + 0.05, (one, eight)


def test_the_cli_sweeps_and_plots_the_number_of_actors(tmp_path, capsys):
    from avgreward.cli import main

    out = tmp_path / "sweep"
    assert main(["sweep", "pendulum", "--steps", "2000", "--seeds", "2", "--grid",
                 "actors=1,4", "--out", str(out), "--workers", "1", "-q"]) == 0
    assert main(["plot", str(out), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 5_000
    assert main(["run", "pendulum", "--steps", "100", "--seeds", "1", "--set", "actors=0",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "actors must be an integer in 1..4096" in capsys.readouterr().err


@pytest.mark.slow
def test_a_continuing_learner_with_actors_on_an_episodic_task_records_its_episodes(tmp_path):
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, actors=4)
    result = avgreward.train(CORRIDOR, agent, 5_000, seed=0)
    np.testing.assert_array_equal(result.info["episode_returns"],
                                  -result.info["episode_lengths"])
    assert result.info["episode_lengths"].size > 100
    experiment = run_experiment(tmp_path / "e", CORRIDOR, agent, 1, 5_000, workers=1,
                                progress=False)
    np.testing.assert_array_equal(experiment.result(0, 0).info["episode_returns"],
                                  result.info["episode_returns"])
