"""The episodic tasks: short corridor and episodic aliased gridworld, simulators, models, exact analysis."""

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from helpers import finite_difference

import avgreward
from avgreward import envs  # registers the ids
from avgreward import exact
from avgreward.reference import reference_train
from avgreward.envs import aliased_gridworld as gw
from avgreward.envs import short_corridor as sc

CORRIDOR = "avgreward/ShortCorridor-v0"
GRID = "avgreward/AliasedGridworldEpisodic-v0"


def dense_features(env_id, model):
    """``x(s)`` of each state of the model: the default feature map of its observation."""
    features = avgreward.default_features(env_id)
    rows = np.zeros((model.n_states, features.n_features))
    for s in range(model.n_states):
        rows[s, features.indices(model.observations[s])] = 1.0
    return rows


@pytest.mark.parametrize("env_id", [CORRIDOR, GRID])
def test_episodic_envs_are_valid_gymnasium_envs_that_render(env_id):
    env = gymnasium.make(env_id, render_mode="rgb_array").unwrapped
    check_env(env)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.std() > 0
    assert env.fused.episodic and env.fused.model is not None


@pytest.mark.parametrize("env_id", [CORRIDOR, GRID])
def test_simulator_agrees_with_the_exact_model(env_id):
    env = gymnasium.make(env_id).unwrapped
    model = env.model()
    assert model.terminal and all(np.all(model.P[t, :, t] == 1.0) for t in model.terminal)
    env.reset(seed=0)
    for s in range(model.n_states):
        if s in model.terminal:
            continue
        for a in range(model.n_actions):
            env.state = np.array([float(s)])
            obs, reward, terminated, truncated, _ = env.step(a)
            nxt = int(env.state[0])
            assert model.P[s, a, nxt] == 1.0  # both tasks are deterministic after the start
            assert reward == model.R[s, a]
            assert terminated == (nxt in model.terminal) and not truncated
            np.testing.assert_array_equal(np.asarray(obs, dtype=float), model.observations[nxt])


def test_the_gridworlds_start_cells_are_drawn_as_its_model_says():
    env = gymnasium.make(GRID).unwrapped
    counts = np.zeros(gw.N_CELLS + 1)
    for seed in range(4000):
        env.reset(seed=seed)
        counts[int(env.state[0])] += 1
    np.testing.assert_allclose(counts / counts.sum(), env.model().start, atol=0.025)


CASES = {
    "corridor": (CORRIDOR, avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05,
                                                         alpha_rbar=0.01)),
    "grid-traces": (GRID, avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05,
                                                       alpha_rbar=0.01, lambda_w=0.5,
                                                       lambda_theta=0.5, entropy=0.01)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_episodic_envs_in_the_fused_loop_equal_the_reference(name):
    env_id, agent = CASES[name]
    result = avgreward.train(env_id, agent, 3000, seed=1, record_actions=True, chunk_steps=701)
    ref = reference_train(env_id, agent, 3000, seed=1)
    assert np.array_equal(result.rewards, ref["rewards"].astype(np.float32))
    np.testing.assert_array_equal(result.actions, ref["actions"])
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    assert ref["ends"].size > 50


# --- exact episodic analysis -------------------------------------------------------------------


def corridor_policy(p):
    return np.tile([1.0 - p, p], (sc.N_STATES, 1))


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 2 - math.sqrt(2), 0.9])
def test_short_corridor_start_value_is_the_books(p):
    ev = exact.evaluate_episodic(sc.corridor_model(), corridor_policy(p))
    assert ev.J == pytest.approx(sc.corridor_start_value(p), rel=1e-12)
    assert ev.v[sc.GOAL] == 0.0 and ev.visits[sc.GOAL] == 0.0
    # Every step pays -1: the value of the start is minus the expected episode length.
    assert ev.J == pytest.approx(-ev.visits.sum(), rel=1e-12)


@pytest.mark.slow
def test_short_corridor_is_best_at_two_minus_root_two():
    ps = np.linspace(0.01, 0.99, 9801)
    values = [exact.evaluate_episodic(sc.corridor_model(), corridor_policy(p)).J for p in ps]
    best = ps[int(np.argmax(values))]
    assert best == pytest.approx(2 - math.sqrt(2), abs=1e-4)
    assert max(values) == pytest.approx(-11.657, abs=1e-3)


@pytest.mark.parametrize("env_id, gamma", [(CORRIDOR, 1.0), (CORRIDOR, 0.9), (GRID, 1.0),
                                           (GRID, 0.8)])
def test_exact_episodic_gradient_matches_finite_differences(env_id, gamma):
    model = gymnasium.make(env_id).unwrapped.model()
    features = dense_features(env_id, model)
    rng = np.random.default_rng(3)
    theta = rng.normal(scale=0.7, size=(features.shape[1], model.n_actions))
    tau = 0.8

    def J(t):
        return exact.evaluate_episodic(model, exact.softmax_policy(t, features, tau), gamma).J

    grad = exact.episodic_policy_gradient(model, theta, features, tau, gamma)
    np.testing.assert_allclose(grad, finite_difference(J, theta), rtol=1e-6, atol=1e-7)
    assert np.abs(grad).max() > 1e-3


def test_the_corridor_policy_of_the_book_and_its_gradient():
    # Figure 13.1 starts from theta = (-1.47, 1.47) for (right, left): p(right) = 0.05.
    theta = np.array([[1.47, -1.47]])  # columns: left, right
    features = dense_features(CORRIDOR, sc.corridor_model())
    pi = exact.softmax_policy(theta, features)
    assert pi[0, 1] == pytest.approx(0.05, abs=1e-3)
    grad = exact.episodic_policy_gradient(sc.corridor_model(), theta, features)
    # Going right more often helps from p = 0.05: the gradient says so.
    assert grad[0, 1] > 0 > grad[0, 0] and grad[0, 0] == pytest.approx(-grad[0, 1])


def test_discounted_visits_and_values_satisfy_their_equations():
    model = gw.gridworld_episodic_model()
    pi = np.full((model.n_states, model.n_actions), 0.25)
    ev = exact.evaluate_episodic(model, pi, gamma=0.9)
    np.testing.assert_allclose(ev.v, ev.r_pi + 0.9 * ev.P_pi @ ev.v, atol=1e-12)
    assert ev.J == pytest.approx(model.start @ ev.v)
    assert ev.J == pytest.approx(float(ev.visits @ ev.r_pi), rel=1e-12)


def test_episodic_analysis_refuses_what_it_cannot_evaluate():
    with pytest.raises(ValueError, match="continuing model"):
        exact.evaluate_episodic(envs.loop_mdp_model(), np.full((9, 2), 0.5))
    always_left = corridor_policy(0.0)  # stays in state 0 forever
    with pytest.raises(ValueError, match="never end"):
        exact.evaluate_episodic(sc.corridor_model(), always_left)
    assert exact.evaluate_episodic(sc.corridor_model(), always_left, gamma=0.5).J == -2.0
    with pytest.raises(ValueError, match="gamma"):
        exact.evaluate_episodic(sc.corridor_model(), corridor_policy(0.5), gamma=1.5)
