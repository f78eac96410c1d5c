"""REINFORCE (Sutton & Barto 13.3) in the fused loop: the box, step by step, and what it learns."""

import math

import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.agents import Reinforce
from avgreward.reference import reference_reinforce
from avgreward.envs import aliased_gridworld as gw
from avgreward.envs import short_corridor as sc

CORRIDOR = "avgreward/ShortCorridor-v0"
GRID = "avgreward/AliasedGridworldEpisodic-v0"
BOOK_START = (1.47, -1.47)  # (left, right): right with probability 0.05

CASES = {
    "corridor, the book's start": (CORRIDOR, Reinforce(alpha_theta=2**-13,
                                                       initial_preferences=BOOK_START)),
    "corridor, from uniform": (CORRIDOR, Reinforce(alpha_theta=2**-12, tau=0.8)),
    "gridworld, discounted": (GRID, Reinforce(alpha_theta=0.05, gamma=0.9, tau=0.7)),
    "corridor with baseline": (CORRIDOR, Reinforce(alpha_theta=2**-9, alpha_w=2**-6,
                                                   initial_preferences=BOOK_START)),
    "gridworld with baseline": (GRID, Reinforce(alpha_theta=0.05, alpha_w=0.1, gamma=0.95)),
    "gridworld, entropy bonus": (GRID, Reinforce(alpha_theta=0.05, alpha_w=0.1, gamma=0.9,
                                                 tau=0.8, entropy=0.3)),
    "corridor, entropy bonus": (CORRIDOR, Reinforce(alpha_theta=2**-10, entropy=2.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_reinforce_in_the_fused_loop_is_the_box_step_by_step(name):
    env_id, agent = CASES[name]
    result = avgreward.train(env_id, agent, 20_000, seed=7, record_actions=True,
                             chunk_steps=3001)
    ref = reference_reinforce(env_id, agent, 20_000, seed=7)
    np.testing.assert_array_equal(result.actions, ref["actions"])
    assert np.array_equal(result.rewards, ref["rewards"].astype(np.float32))
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    if agent.alpha_w is not None:
        np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
        assert np.abs(ref["w"]).max() > 1e-3
    assert ref["ends"].size > 100
    # It learned something (the equality would prove little otherwise).
    start = np.zeros_like(ref["theta"])
    if agent.initial_preferences is not None:
        start[:] = np.asarray(agent.initial_preferences)
    assert np.abs(ref["theta"] - start).max() > 1e-3


@pytest.mark.slow
def test_chunks_do_not_change_a_bit():
    env_id, agent = CASES["gridworld, discounted"]
    whole = avgreward.train(env_id, agent, 10_000, seed=1, record_actions=True)
    chunked = avgreward.train(env_id, agent, 10_000, seed=1, record_actions=True,
                              chunk_steps=17)
    np.testing.assert_array_equal(whole.actions, chunked.actions)
    np.testing.assert_array_equal(whole.weights["theta"], chunked.weights["theta"])


def test_reinforce_climbs_the_short_corridor_to_its_best_stochastic_policy():
    """From p(right) = 0.05 (v = -82.1) to near the optimum p = 0.586 (v = -11.66).

    A sign error would drive p to 0 and episodes to forever; the exact value
    of each learned policy is what is judged, not sampled returns.
    """
    model = sc.corridor_model()
    features = np.ones((model.n_states, 1))
    values = []
    for seed in range(3):
        result = avgreward.train(CORRIDOR, Reinforce(alpha_theta=2**-12,
                                                     initial_preferences=BOOK_START),
                                 150_000, seed=seed)
        pi = exact.softmax_policy(result.weights["theta"], features)
        values.append(exact.evaluate_episodic(model, pi).J)
    start = sc.corridor_start_value(0.05)
    best = sc.corridor_start_value(2 - math.sqrt(2))
    assert start == pytest.approx(-82.1, abs=0.1) and best == pytest.approx(-11.657, abs=1e-3)
    assert min(values) > best - 1.0, values


def test_reinforce_refuses_what_it_cannot_learn_from():
    with pytest.raises(ValueError, match="continuing"):
        avgreward.train("avgreward/LoopMDP-v0", Reinforce(alpha_theta=0.1), 100, 0)
    with pytest.raises(ValueError, match="initial_preferences has 3"):
        avgreward.train(CORRIDOR, Reinforce(alpha_theta=0.1, initial_preferences=(0, 0, 0)),
                        100, 0)
    with pytest.raises(ValueError, match="fused loop only"):
        avgreward.train("CartPole-v1", Reinforce(alpha_theta=0.1), 100, 0)


def test_an_episode_longer_than_the_buffer_is_named(monkeypatch):
    from avgreward.learners import episodic

    monkeypatch.setattr(episodic, "EPISODE_BUFFER", 50)
    # Nearly always left: the first episode outgrows the buffer.
    with pytest.raises(ValueError, match="lasted more than 50 steps"):
        avgreward.train(CORRIDOR, Reinforce(alpha_theta=0.1, initial_preferences=(5, -5)),
                        1000, 0)


def test_episodes_cut_at_the_cap_are_learned_from_as_they_stand():
    agent = Reinforce(alpha_theta=2**-10, initial_preferences=(1, -1), max_episode_steps=40)
    result = avgreward.train(CORRIDOR, agent, 5000, seed=2, record_actions=True,
                             chunk_steps=333)
    ref = reference_reinforce(CORRIDOR, agent, 5000, seed=2)
    assert ref["cuts"].size > 10 and ref["ends"].size > 10
    np.testing.assert_array_equal(result.info["truncations"], ref["cuts"])
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    np.testing.assert_array_equal(result.actions, ref["actions"])
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    # No episode is longer than the cap.
    bounds = np.sort(np.concatenate([[-1], result.info["terminations"],
                                     result.info["truncations"]]))
    assert np.diff(bounds).max() <= 40


@pytest.mark.parametrize("settings, words", [
    ({"alpha_theta": -1}, "alpha_theta"),
    ({"alpha_theta": 0.1, "gamma": 1.5}, "gamma"),
    ({"alpha_theta": 0.1, "tau": 0}, "tau"),
    ({"alpha_theta": 0.1, "initial_preferences": ("a",)}, "initial_preferences"),
    ({"alpha_theta": 0.1, "max_episode_steps": 0}, "max_episode_steps"),
])
def test_bad_settings_are_refused_naming_them(settings, words):
    with pytest.raises(ValueError, match=words):
        Reinforce(**settings)


def test_a_baseline_learns_the_corridor_faster_figure_13_2():
    """Sutton & Barto's Figure 13.2: with a learned baseline (actor 2^-9, critic 2^-6)
    REINFORCE nears the optimum within 100 episodes; without (2^-13) it is still far."""
    model = sc.corridor_model()
    features = np.ones((model.n_states, 1))

    def value_after(agent, episodes, seed):
        steps = 100_000
        result = avgreward.train(CORRIDOR, agent, steps, seed=seed)
        ends = result.info["terminations"]
        assert ends.size >= episodes
        # The policy after `episodes` episodes: run again exactly that long.
        result = avgreward.train(CORRIDOR, agent, int(ends[episodes - 1]) + 1, seed=seed)
        pi = exact.softmax_policy(result.weights["theta"], features)
        return exact.evaluate_episodic(model, pi).J

    with_baseline = Reinforce(alpha_theta=2**-9, alpha_w=2**-6, initial_preferences=BOOK_START)
    without = Reinforce(alpha_theta=2**-13, initial_preferences=BOOK_START)
    fast = [value_after(with_baseline, 100, seed) for seed in range(5)]
    slow = [value_after(without, 100, seed) for seed in range(5)]
    assert min(fast) > -14.0, fast
    assert np.mean(slow) < np.mean(fast) - 5.0, (slow, fast)


def test_each_episodes_return_and_length_whatever_the_chunks_and_bins():
    agent = Reinforce(alpha_theta=2**-10, initial_preferences=(0.5, -0.5), max_episode_steps=60)
    per_step = avgreward.train(CORRIDOR, agent, 30_000, seed=3)
    ends = np.sort(np.concatenate([per_step.info["terminations"],
                                   per_step.info["truncations"]]))
    lengths = np.diff(np.concatenate([[-1], ends]))
    starts = np.concatenate([[0], ends[:-1] + 1])
    returns = np.add.reduceat(per_step.rewards.astype(np.float64)[:ends[-1] + 1], starts)
    np.testing.assert_array_equal(per_step.info["episode_lengths"], lengths)
    np.testing.assert_array_equal(per_step.info["episode_returns"], returns)
    assert per_step.info["episode_lengths"].max() <= 60
    binned = avgreward.train(CORRIDOR, agent, 30_000, seed=3, bin_size=1000, chunk_steps=777)
    for name in ("episode_returns", "episode_lengths"):
        np.testing.assert_array_equal(binned.info[name], per_step.info[name])


def test_the_episodic_learners_run_through_the_experiment_runner(tmp_path):
    from avgreward.agents import EpisodicActorCritic
    from avgreward.experiment import run_experiment

    agents = [Reinforce(alpha_theta=2**-9, alpha_w=2**-6, initial_preferences=BOOK_START,
                        max_episode_steps=1000),
              EpisodicActorCritic(alpha_w=2**-6, alpha_theta=2**-9, lambda_w=0.5)]
    one = run_experiment(tmp_path / "one", CORRIDOR, agents, seeds=2, steps=20_000, workers=1)
    two = run_experiment(tmp_path / "two", CORRIDOR, agents, seeds=2, steps=20_000, workers=2)
    for i, agent in enumerate(agents):
        for seed in (0, 1):
            direct = avgreward.train(CORRIDOR, agent, 20_000, seed, bin_size=one.bin_size)
            for experiment in (one, two):
                saved = experiment.result(i, seed)
                assert saved.agent == agent
                for name, value in direct.weights.items():
                    np.testing.assert_array_equal(saved.weights[name], value)
                for name in ("episode_returns", "episode_lengths", "terminations"):
                    np.testing.assert_array_equal(saved.info[name], direct.info[name])
    # Resumed: nothing to run again, the same numbers.
    again = run_experiment(tmp_path / "one", CORRIDOR, agents, seeds=2, steps=20_000,
                           workers=1)
    np.testing.assert_array_equal(again.result(0, 1).info["episode_returns"],
                                  one.result(0, 1).info["episode_returns"])


def test_the_entropy_bonus_keeps_the_policy_stochastic():
    # gamma 0.9 on the gridworld: without the bonus the policy grows near-deterministic
    # where it can; with it every state keeps more entropy.
    def entropy(agent):
        result = avgreward.train(GRID, agent, 100_000, seed=0)
        model = gw.gridworld_episodic_model()
        pi = np.array([result.policy(o) for o in model.observations])
        return -np.sum(pi * np.log(pi), axis=1).mean()
    plain = Reinforce(alpha_theta=0.05, gamma=0.9)
    assert entropy(plain.replace(entropy=0.5)) > entropy(plain) + 0.2


def test_a_result_without_a_critic_says_so():
    result = avgreward.train(CORRIDOR, Reinforce(alpha_theta=2**-12), 2_000, seed=0)
    assert result.policy([0.0]).shape == (2,)
    with pytest.raises(ValueError, match="no value function"):
        result.value([0.0])
    with_baseline = avgreward.train(CORRIDOR, Reinforce(alpha_theta=2**-12, alpha_w=2**-6),
                                    2_000, seed=0)
    assert with_baseline.value([0.0]) < -1.0  # every step costs 1
