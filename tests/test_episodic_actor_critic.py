"""The episodic actor-critic (Sutton & Barto 13.5) in the fused loop: the box, step by step."""

import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.agents import EpisodicActorCritic
from avgreward.reference import reference_episodic_actor_critic
from avgreward.envs import aliased_gridworld as gw

CORRIDOR = "avgreward/ShortCorridor-v0"
GRID = "avgreward/AliasedGridworldEpisodic-v0"
BOOK_START = (1.47, -1.47)

CASES = {
    "corridor one-step": (CORRIDOR, EpisodicActorCritic(alpha_w=2**-6, alpha_theta=2**-9,
                                                        initial_preferences=BOOK_START)),
    "corridor traces": (CORRIDOR, EpisodicActorCritic(alpha_w=2**-6, alpha_theta=2**-9,
                                                      lambda_w=0.8, lambda_theta=0.8)),
    "grid discounted traces": (GRID, EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.05,
                                                         gamma=0.9, tau=0.8, lambda_w=0.5,
                                                         lambda_theta=0.3)),
    "grid one-step": (GRID, EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.1, gamma=0.95)),
    "grid entropy traces": (GRID, EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.05, gamma=0.9,
                                                      lambda_theta=0.5, entropy=0.2)),
    "corridor entropy": (CORRIDOR, EpisodicActorCritic(alpha_w=2**-6, alpha_theta=2**-9,
                                                       entropy=0.5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_episodic_actor_critic_is_the_box_step_by_step(name):
    env_id, agent = CASES[name]
    result = avgreward.train(env_id, agent, 20_000, seed=4, record_actions=True,
                             chunk_steps=2999)
    ref = reference_episodic_actor_critic(env_id, agent, 20_000, seed=4)
    np.testing.assert_array_equal(result.actions, ref["actions"])
    assert np.array_equal(result.rewards, ref["rewards"].astype(np.float32))
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    assert ref["ends"].size > 100 and np.abs(ref["w"]).max() > 1e-2


@pytest.mark.parametrize("lambdas", [(0.0, 0.0), (0.5, 0.5)])
@pytest.mark.slow
def test_the_episodic_actor_critic_learns_the_episodic_gridworld(lambdas):
    """Judged by the exact discounted value of the learned policy: the uniform policy's
    J is -0.29 (gamma = 0.9); learned policies reach about 0.71."""
    model = gw.gridworld_episodic_model()
    features = avgreward.default_features(GRID)
    x = np.zeros((model.n_states, features.n_features))
    for s in range(model.n_states):
        x[s, features.indices(model.observations[s])] = 1.0
    uniform = exact.evaluate_episodic(model, np.full((model.n_states, 4), 0.25), 0.9).J
    assert uniform == pytest.approx(-0.291, abs=1e-3)
    agent = EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.1 if lambdas[0] == 0 else 0.05,
                                gamma=0.9, lambda_w=lambdas[0], lambda_theta=lambdas[1])
    for seed in range(3):
        result = avgreward.train(GRID, agent, 100_000, seed=seed)
        pi = exact.softmax_policy(result.weights["theta"], x)
        assert exact.evaluate_episodic(model, pi, 0.9).J > 0.65, seed


def test_it_refuses_a_continuing_task():
    with pytest.raises(ValueError, match="EpisodicActorCritic learns episode by episode"):
        avgreward.train("avgreward/LoopMDP-v0", EpisodicActorCritic(alpha_w=0.1,
                                                                     alpha_theta=0.1), 100, 0)
