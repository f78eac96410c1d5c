"""The natural actor-critic (Bhatnagar et al. 2009, Algorithm 3): the fused learner against
the paper's algorithm in plain Python, its advantage weights against the exact natural
gradient along its run, what it learns against the exact optimum, and its settings.
"""

import numpy as np
import pytest

import avgreward
from avgreward import NaturalActorCritic, TileCoder, exact
from avgreward.envs.aliased_gridworld import gridworld_model
from avgreward.envs.loop_mdp import loop_mdp_model
from avgreward.reference import reference_natural_actor_critic

LOOP, GRID, ACCESS = ("avgreward/LoopMDP-v0", "avgreward/AliasedGridworld-v0",
                      "avgreward/AccessControl-v0")
AGENT = NaturalActorCritic(alpha_w=0.1, alpha_theta=0.01, alpha_rbar=0.01)
STEPS = 3000


def exact_rate(model, env_id, theta, tau=1.0):
    X = exact.feature_matrix(model, env_id)
    return exact.evaluate(model, exact.softmax_policy(theta, X, tau)).reward_rate


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# k > 1 active features: the step sizes divided by k, sums of k terms, rows shared by states
LOOP_TILES = TileCoder(low=0.0, high=9.0, tiles=3, tilings=5)  # 5 of 20 features
ACCESS_TILES = TileCoder(low=(0.0, 0.0), high=(11.0, 4.0), tiles=(3, 2), tilings=6)


@pytest.mark.parametrize("env_id, agent, features", [
    (LOOP, AGENT, None),
    (LOOP, AGENT.replace(alpha_advantage=0.03, tau=0.5), LOOP_TILES),
    (GRID, AGENT.replace(alpha_theta=0.005), None),
    (ACCESS, AGENT.replace(alpha_theta=0.002), None),
    (ACCESS, AGENT, ACCESS_TILES),
])
def test_fused_learner_equals_the_papers_algorithm(env_id, agent, features):
    # An odd chunk size makes the loop cross chunk boundaries mid-run.
    result = avgreward.train(env_id, agent, STEPS, seed=3, features=features,
                             record_actions=True, rbar_every=1, chunk_steps=777)
    ref = reference_natural_actor_critic(env_id, agent, STEPS, seed=3, features=features)
    # the same draws give the same actions: every policy agreed to rounding
    assert np.array_equal(result.actions, ref["actions"])
    np.testing.assert_array_equal(result.rewards, ref["rewards"].astype(np.float32))
    np.testing.assert_allclose(result.rbar, ref["rbar"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.weights["advantage"], ref["advantage"], rtol=0,
                               atol=1e-12)
    # theta: the dense m additions against the lazy product, to 1e-12 of its size
    scale = np.abs(ref["theta"]).max()
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0,
                               atol=1e-12 * scale)
    assert scale > 0.5 and np.abs(ref["advantage"]).max() > 1e-2  # it learned something


def test_chunks_and_continued_runs_are_one_run_to_the_bit(tmp_path):
    whole = avgreward.train(LOOP, AGENT, 5000, seed=7, record_actions=True)
    chunked = avgreward.train(LOOP, AGENT, 5000, seed=7, record_actions=True, chunk_steps=333)
    first = avgreward.train(LOOP, AGENT, 2100, seed=7, record_actions=True)
    loaded = avgreward.load_result(first.save(tmp_path / "first"))
    second = avgreward.train(LOOP, AGENT, 2900, init=loaded, record_actions=True)
    for other in (chunked, second):
        for name in ("w", "theta", "advantage"):
            assert np.array_equal(whole.weights[name], other.weights[name]), name
    assert np.array_equal(whole.actions[2100:], second.actions)
    assert second.info["continued_from"] == 2100
    # the saved policy is the up-to-date theta's
    policy = loaded.policy(np.array([0.0]))
    probs = np.exp(first.weights["theta"][0] - first.weights["theta"][0].max())
    np.testing.assert_allclose(policy, probs / probs.sum(), rtol=0, atol=1e-15)


def test_advantage_weights_follow_the_exact_natural_gradient_along_the_run():
    """Two timescales: with a slow actor the advantage weights settle on the least-squares
    fit of the advantage by the compatible features, F^+ grad J at the current theta."""
    model, X = loop_mdp_model(), np.eye(9)
    agent = NaturalActorCritic(alpha_w=0.1, alpha_theta=2e-4, alpha_rbar=0.01,
                               alpha_advantage=0.01)
    result, errors, cosines = None, [], []
    for _ in range(12):
        result = avgreward.train(LOOP, agent, 1000, seed=11, init=result)
        ng = exact.natural_gradient(model, result.weights["theta"], X)
        u = result.weights["advantage"].reshape(-1)
        cosines.append(cosine(u, ng.natural))
        errors.append(np.linalg.norm(u - ng.natural) / np.linalg.norm(ng.natural))
        assert np.linalg.norm(ng.gradient) > 1e-2  # the policy is still learning
        # the plain gradient is d(S) pi (1 - pi) <= 1/20 of the natural one here: far off
        assert np.linalg.norm(u - ng.gradient) > 0.5 * np.linalg.norm(u)
    assert min(cosines[1:]) > 0.98, cosines
    # its length too (noise and the lag behind a moving theta: a few tenths at most)
    assert max(errors[2:]) < 0.3 and np.mean(errors[2:]) < 0.2, errors
    # the policy moved on meanwhile: the weights followed a changing target
    assert exact.softmax_policy(result.weights["theta"], X)[0, 1] > 0.8
    # u lies in F's range: no component along the equal-shift null space
    shifts = np.kron(np.eye(9), np.ones((1, 2)))  # theta += e_i 1^T for each feature i
    assert np.abs(shifts @ u).max() < 1e-12


def test_it_learns_the_loop_mdps_optimal_loop():
    model = loop_mdp_model()
    optimum = exact.relative_value_iteration(model).reward_rate
    assert optimum == pytest.approx(0.4)
    agent = NaturalActorCritic(alpha_w=0.1, alpha_theta=1e-3, alpha_rbar=0.01)
    rates = [exact_rate(model, LOOP, avgreward.train(LOOP, agent, 20_000, seed=s)
                        .weights["theta"]) for s in range(5)]
    # the uniform policy earns 0.3 and the left loop 0.2
    assert min(rates) > optimum - 0.01, rates


def test_it_learns_the_aliased_gridworlds_stochastic_policy():
    model = gridworld_model()
    agent = NaturalActorCritic(alpha_w=0.1, alpha_theta=1e-3, alpha_rbar=0.01)
    rates = [exact_rate(model, GRID, avgreward.train(GRID, agent, 60_000, seed=s)
                        .weights["theta"]) for s in range(2)]
    # best observation-based policy 2/9 (E or W at random in the look-alike cells);
    # every deterministic one earns 0 at best
    assert min(rates) > 2 / 9 - 0.01, rates


@pytest.mark.parametrize("changes, setting", [
    (dict(alpha_w=-0.1), "alpha_w"),
    (dict(alpha_theta=float("nan")), "alpha_theta"),
    (dict(alpha_rbar=1.5), "alpha_rbar"),
    (dict(alpha_rbar="0.1"), "alpha_rbar"),
    (dict(alpha_advantage=-1.0), "alpha_advantage"),
    (dict(tau=0.0), "tau"),
    (dict(alpha_w=True), "alpha_w"),
])
def test_bad_settings_name_the_setting(changes, setting):
    with pytest.raises(ValueError, match=setting):
        AGENT.replace(**changes)


def test_settings_round_trip_and_refuse_a_continuous_action():
    agent = AGENT.replace(alpha_advantage=0.02)
    assert avgreward.agent_from_dict(agent.to_dict()) == agent
    assert "alpha_advantage" not in AGENT.to_dict()  # None, which TOML cannot write
    assert avgreward.agent_from_dict(AGENT.to_dict()) == AGENT
    assert agent.advantage_step == 0.02 and AGENT.advantage_step == AGENT.alpha_w
    with pytest.raises(ValueError, match="NaturalActorCritic needs discrete actions"):
        avgreward.train("avgreward/PendulumSwingUpContinuous-v0", AGENT, 10, seed=0)
