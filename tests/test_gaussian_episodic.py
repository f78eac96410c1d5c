"""The episodic learners with a Gaussian policy: each the box in plain Python, and they learn.

The task is declared here, as a user would declare one: "reach", a point on
[0, 1] that starts in [0, 0.5), moves by 0.2 clip(A, -1, 1) each step (held
in [0, 1]) and ends its episode on reaching 1; every step pays -1.  The best
policy pushes right at full force: 3 to 5 steps an episode.
"""

import gymnasium
import numba
import numpy as np
import pytest

import avgreward
from avgreward.agents import EpisodicActorCritic, Reinforce
from avgreward.reference import reference_episodic_actor_critic, reference_reinforce
from avgreward.envs import DeclaredEnv, FusedEnv

REACH = "TestReach-v0"


@numba.njit(cache=True)
def reach_reset(state, u):
    state[0] = 0.5 * u


@numba.njit(cache=True)
def reach_step(state, action, u, next_state):
    force = min(max(action, -1.0), 1.0)
    x = min(max(state[0] + 0.2 * force, 0.0), 1.0)
    next_state[0] = x
    return -1.0, x >= 1.0


@numba.njit(cache=True)
def reach_observe(state, obs):
    obs[0] = state[0]


class ReachEnv(DeclaredEnv):
    fused = FusedEnv(name="test reach", reset=reach_reset, step=reach_step,
                     observe=reach_observe, state_size=1, obs_size=1, n_actions=0,
                     obs_low=0.0, obs_high=1.0, action_low=-1.0, action_high=1.0,
                     random_reset=True, episodic=True,
                     features=lambda: avgreward.TileCoder(0.0, 1.0, tilings=4, tiles=5))


gymnasium.register(REACH, entry_point=ReachEnv, max_episode_steps=None)

REINFORCE_CASES = {
    "plain": Reinforce(alpha_theta=0.0005, policy="gaussian", sigma_min=0.2),
    "baseline, sigma's own step, floor": Reinforce(alpha_theta=0.02, alpha_w=0.1,
                                                   alpha_sigma=0.01, sigma_min=0.05,
                                                   policy="gaussian", gamma=0.95),
    "entropy, start": Reinforce(alpha_theta=0.001, policy="gaussian", entropy=0.1, sigma_min=0.1,
                                initial_preferences=(-0.5, -1.0), max_episode_steps=50),
}
EAC_CASES = {
    "one-step": EpisodicActorCritic(alpha_w=0.2, alpha_theta=0.05, policy="gaussian"),
    "traces, entropy": EpisodicActorCritic(alpha_w=0.2, alpha_theta=0.05, alpha_sigma=0.02,
                                           gamma=0.9, lambda_w=0.5, lambda_theta=0.7,
                                           entropy=0.05, sigma_min=0.01, policy="gaussian"),
}


@pytest.mark.parametrize("name", sorted(REINFORCE_CASES))
@pytest.mark.slow
def test_gaussian_reinforce_is_the_box_step_by_step(name):
    agent = REINFORCE_CASES[name]
    result = avgreward.train(REACH, agent, 8_000, seed=3, record_actions=True,
                             chunk_steps=999)
    ref = reference_reinforce(REACH, agent, 8_000, seed=3)
    np.testing.assert_allclose(result.actions, ref["actions"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    if agent.alpha_w is not None:
        np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    assert ref["ends"].size > 200 and np.abs(np.diff(ref["theta"], axis=0)).max() > 1e-3


@pytest.mark.parametrize("name", sorted(EAC_CASES))
@pytest.mark.slow
def test_gaussian_episodic_actor_critic_is_the_box_step_by_step(name):
    agent = EAC_CASES[name]
    result = avgreward.train(REACH, agent, 8_000, seed=4, record_actions=True,
                             chunk_steps=1234)
    ref = reference_episodic_actor_critic(REACH, agent, 8_000, seed=4)
    np.testing.assert_allclose(result.actions, ref["actions"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    assert ref["ends"].size > 200 and np.abs(ref["w"]).max() > 0.1


@pytest.mark.parametrize("agent, start, end", [
    # Monte Carlo returns of early long episodes make big steps: REINFORCE needs a
    # small one and a floor on sigma here (with 0.02 most seeds diverge)
    (Reinforce(alpha_theta=0.0005, alpha_w=0.1, policy="gaussian", sigma_min=0.2), 15, 7),
    (EpisodicActorCritic(alpha_w=0.2, alpha_theta=0.05, policy="gaussian"), 7, 4.5),
], ids=["reinforce with baseline", "actor-critic"])
@pytest.mark.slow
def test_the_gaussian_learners_learn_to_push_right(agent, start, end):
    # the first policy, N(0, 1), takes about 25 steps an episode; the best 3 to 5
    for seed in range(3):
        result = avgreward.train(REACH, agent, 60_000, seed=seed)
        lengths = result.info["episode_lengths"]
        assert lengths[:50].mean() > start and lengths[-200:].mean() < end, seed
        mu, sigma = result.policy([0.3])
        assert mu > 0.5 and sigma > 0, seed


@pytest.mark.parametrize("make, message", [
    (lambda: Reinforce(alpha_theta=0.1, policy="beta"), "policy must be"),
    (lambda: Reinforce(alpha_theta=0.1, alpha_sigma=0.1), "alpha_sigma is the Gaussian"),
    (lambda: Reinforce(alpha_theta=0.1, policy="gaussian", tau=0.5), "tau is the softmax"),
    (lambda: Reinforce(alpha_theta=0.1, policy="gaussian", initial_preferences=(1, 2, 3)),
     "mean, log"),
    (lambda: EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.1, policy="gaussian", actors=2),
     "parallel actors"),
    (lambda: Reinforce(alpha_theta=0.1, policy="gaussian", sigma_min=-1), "sigma_min"),
])
def test_bad_gaussian_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_policy_must_fit_the_action():
    with pytest.raises(ValueError, match="use policy='gaussian'"):
        avgreward.train(REACH, Reinforce(alpha_theta=0.1), 100, seed=0)
    with pytest.raises(ValueError, match="needs one continuous action"):
        avgreward.train("avgreward/ShortCorridor-v0",
                        Reinforce(alpha_theta=0.1, policy="gaussian"), 100, seed=0)


def test_records_of_softmax_settings_are_unchanged():
    d = Reinforce(alpha_theta=0.1).to_dict()
    assert {"policy", "alpha_sigma", "sigma_min", "entropy"}.isdisjoint(d)
    g = Reinforce(alpha_theta=0.1, policy="gaussian", alpha_sigma=0.01)
    assert avgreward.agent_from_dict(g.to_dict()) == g
