"""Off-policy REINFORCE with per-decision ratios: the update step by step, and what it learns.

From the uniform behaviour on the short corridor it must reach the target's
optimum (p = 2 - sqrt 2 for right, v = -11.657), which the same update without
the ratios cannot: that converges where ``E_b[sum_t g_t G_t] = 0``, p = 0.484
(v = -12.14).
"""

import math

import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.agents import Reinforce
from avgreward.learners.registry import agent_from_dict
from avgreward.reference import reference_reinforce

CORRIDOR = "avgreward/ShortCorridor-v0"
UNIFORM = (0.5, 0.5)
P_BEST = 2 - math.sqrt(2)


def p_right(theta):
    h = theta[0] - theta[0].max()
    return float(np.exp(h[1]) / np.exp(h).sum())


def value(p):
    model = exact.model_of(CORRIDOR)
    return exact.evaluate_episodic(model, np.tile([1 - p, p], (model.n_states, 1))).J


def test_the_fused_update_is_the_plain_python_one():
    agent = Reinforce(alpha_theta=2**-8, behaviour=(0.3, 0.7), initial_preferences=(0.2, -0.2))
    result = avgreward.train(CORRIDOR, agent, 20_000, seed=7, record_actions=True,
                             chunk_steps=3001)
    ref = reference_reinforce(CORRIDOR, agent, 20_000, seed=7)
    np.testing.assert_array_equal(result.actions, ref["actions"])
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    assert np.abs(ref["theta"] - np.array([[0.2, -0.2]])).max() > 1e-2  # it moved
    # the actions are the behaviour's: right about 7 times in 10 whatever the target
    assert np.mean(result.actions == 1) == pytest.approx(0.7, abs=0.02)


@pytest.mark.slow
def test_it_learns_the_target_optimum_from_the_uniform_behaviour():
    for seed in (1, 2):
        result = avgreward.train(CORRIDOR, Reinforce(alpha_theta=2**-17, behaviour=UNIFORM),
                                 10_000_000, seed=seed)
        p = p_right(result.weights["theta"])
        assert abs(p - P_BEST) < 0.035, (seed, p)
        assert value(p) > -11.72, (seed, p, value(p))
    assert value(0.484) < -12.1  # where the update without ratios goes


def test_the_setting_survives_its_record():
    agent = Reinforce(alpha_theta=0.01, behaviour=[0.25, 0.75])
    assert agent.behaviour == (0.25, 0.75)
    assert agent_from_dict(agent.to_dict()) == agent
    assert "behaviour" not in Reinforce(alpha_theta=0.01).to_dict()


@pytest.mark.parametrize("settings, words", [
    (dict(behaviour=(1.0, 0.0)), r"behaviour gives action\(s\) \[1\] probability 0"),
    (dict(behaviour=(0.7, 0.7)), "behaviour must sum to 1"),
    (dict(behaviour=(1.5, -0.5)), "behaviour must be non-negative"),
    (dict(behaviour="ab"), "behaviour must be probabilities"),
    (dict(behaviour=(0.5, 0.5), alpha_w=0.1), "behaviour: .* got alpha_w=0.1"),
    (dict(behaviour=(0.5, 0.5), entropy=0.1), "behaviour: .* got entropy=0.1"),
    (dict(behaviour=(0.5, 0.5), policy="gaussian"), "behaviour: .* got policy='gaussian'"),
])
def test_bad_behaviours_are_refused_naming_the_setting(settings, words):
    with pytest.raises(ValueError, match=words):
        Reinforce(alpha_theta=0.1, **settings)


def test_a_behaviour_for_other_actions_is_refused():
    with pytest.raises(ValueError, match="behaviour has 3 probabilities but .* has 2 actions"):
        avgreward.train(CORRIDOR, Reinforce(alpha_theta=0.1, behaviour=(0.2, 0.3, 0.5)), 10,
                        seed=0)


def test_it_continues_mid_episode_bit_for_bit(tmp_path):
    # The ratios of the episode in progress are saved and put back with the other buffers.
    agent = Reinforce(alpha_theta=2**-10, behaviour=(0.4, 0.6))
    n1 = 4_003
    whole = avgreward.train(CORRIDOR, agent, 2 * n1, seed=3, record_actions=True)
    first = avgreward.train(CORRIDOR, agent, n1, seed=3, record_actions=True)
    in_progress = first.run_state.episode[0]
    assert in_progress > 0  # cut inside an episode
    assert first.run_state.params["ep_ratios"].shape == (in_progress,)
    loaded = avgreward.load_result(first.save(tmp_path / "off-policy"))
    second = avgreward.train(CORRIDOR, agent, n1, init=loaded, record_actions=True,
                             chunk_steps=555)
    assert np.array_equal(np.concatenate([first.actions, second.actions]), whole.actions)
    assert np.array_equal(second.weights["theta"], whole.weights["theta"])
