"""The natural gradient exactly (avgreward.exact) and the ReLU network policy
(avgreward.network_policy), each against exact truth: finite differences of the
network's log-probabilities and of J itself, the compatible-features identity
``F w = grad J``, and the estimator lab's baseline claims for the network.
"""

import dataclasses

import gymnasium
import numpy as np
import pytest

import avgreward.envs  # noqa: F401  (registers the environments)
from avgreward import estimators, exact
from avgreward.envs.aliased_gridworld import gridworld_model
from avgreward.envs.loop_mdp import loop_mdp_model
from avgreward.network_policy import ReLUPolicy, natural_gradient, policy_gradient
from helpers import finite_difference

GRID = "avgreward/AliasedGridworldEpisodic-v0"
CORRIDOR = "avgreward/ShortCorridor-v0"
LEVEL = 0.999  # joint level of the lab's intervals, as in test_estimators.py


def episodic_task(env_id, seed=1):
    model = gymnasium.make(env_id).unwrapped.model()
    X = exact.feature_matrix(model, env_id)
    theta = np.random.default_rng(seed).normal(scale=0.5, size=(X.shape[1], model.n_actions))
    return model, theta, X


def continuing_tasks():
    grid = gridworld_model()
    return {"gridworld": (grid, exact.feature_matrix(grid, "avgreward/AliasedGridworld-v0")),
            "loop": (loop_mdp_model(), np.eye(9))}


def all_tasks(seed=1):
    """(model, theta, features) of the continuing gridworld and loop MDP, episodic ones."""
    tasks = {}
    for name, (model, X) in continuing_tasks().items():
        theta = np.random.default_rng(seed).normal(scale=0.5, size=(X.shape[1], model.n_actions))
        tasks[name] = (model, theta, X)
    tasks["gridworld (episodic)"] = episodic_task(GRID, seed)
    tasks["short corridor"] = episodic_task(CORRIDOR, seed)
    return tasks


def objective(model, pi):
    if model.terminal:
        return exact.evaluate_episodic(model, pi).J
    return exact.evaluate(model, pi).reward_rate


# ---------------------------------------------------------------- the natural gradient


@pytest.mark.parametrize("name", list(all_tasks()))
@pytest.mark.parametrize("seed", [1, 2])
def test_compatible_weights_solve_fisher_equations(name, seed):
    model, theta, X = all_tasks(seed)[name]
    ng = exact.natural_gradient(model, theta, X)
    grad = (exact.episodic_policy_gradient if model.terminal else exact.policy_gradient)(
        model, theta, X).reshape(-1)
    assert np.linalg.norm(grad) > 1e-3
    np.testing.assert_allclose(ng.gradient, grad, rtol=0, atol=1e-12)
    # the least-squares advantage weights satisfy F w = grad J, and are F^+ grad J
    np.testing.assert_allclose(ng.fisher @ ng.compatible_weights, grad, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ng.fisher @ ng.natural, grad, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ng.compatible_weights, ng.natural, rtol=0, atol=1e-10)
    assert ng.episodic == bool(model.terminal)


def test_the_fisher_matrix_is_the_expected_outer_product_of_scores():
    model, theta, X = all_tasks()["gridworld"]
    ng = exact.natural_gradient(model, theta, X)
    pi = exact.softmax_policy(theta, X)
    mu = exact.evaluate(model, pi).stationary
    F = np.zeros((theta.size, theta.size))
    for s in range(model.n_states):
        for a in range(model.n_actions):
            # the score by finite differences of ln pi, so no formula is shared
            g = finite_difference(lambda t: np.log(exact.softmax_policy(t, X)[s, a]),
                                  theta).reshape(-1)
            F += mu[s] * pi[s, a] * np.outer(g, g)
    np.testing.assert_allclose(ng.fisher, F, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ng.weights, mu, rtol=0, atol=1e-15)


def test_the_fisher_matrix_is_singular_along_equal_preference_shifts():
    model, theta, X = all_tasks()["loop"]
    ng = exact.natural_gradient(model, theta, X)
    n_features, n_actions = theta.shape
    # adding u to every action's column changes no probability: F's null space
    for i in range(n_features):
        shift = np.zeros_like(theta)
        shift[i] = 1.0
        np.testing.assert_allclose(ng.fisher @ shift.reshape(-1), 0.0, atol=1e-14)
        assert abs(ng.natural @ shift.reshape(-1)) < 1e-12  # least norm: orthogonal to it
    assert ng.rank == n_features * (n_actions - 1)
    # aliased gridworld: 16 features, 4 observations ever seen, so 4 x (4 - 1)
    grid, theta, X = all_tasks()["gridworld"]
    assert exact.natural_gradient(grid, theta, X).rank == 12


def test_a_natural_step_improves_the_objective():
    for model, theta, X in all_tasks().values():
        ng = exact.natural_gradient(model, theta, X)
        before = objective(model, exact.softmax_policy(theta, X))
        step = 1e-3 * ng.natural.reshape(theta.shape)
        after = objective(model, exact.softmax_policy(theta + step, X))
        # first order: dJ = grad . step = natural^T F natural * 1e-3 > 0
        assert after - before == pytest.approx(1e-3 * ng.gradient @ ng.natural, rel=1e-2)
        assert ng.gradient @ ng.natural > 0


def test_natural_gradient_refuses_bad_input():
    model, theta, X = all_tasks()["loop"]
    with pytest.raises(ValueError, match="theta must have shape"):
        exact.natural_gradient(model, theta[:3], X)
    with pytest.raises(ValueError, match="gamma is for episodic models"):
        exact.natural_gradient(model, theta, X, gamma=0.9)
    with pytest.raises(ValueError, match="features must have one row per state"):
        exact.natural_gradient(model, theta, X[:4, :])
    bad = np.full((9, 2), 0.6)
    with pytest.raises(ValueError, match="policy rows must sum to 1"):
        exact.natural_gradient_from_scores(model, bad, np.zeros((9, 2, 3)))
    with pytest.raises(ValueError, match="policy must be non-negative"):
        exact.score_gradient(model, np.tile([1.5, -0.5], (9, 1)), np.zeros((9, 2, 3)))
    with pytest.raises(ValueError, match="scores must have shape"):
        exact.score_gradient(model, np.full((9, 2), 0.5), np.zeros((9, 3, 3)))


def test_score_gradient_of_the_linear_softmax_is_the_policy_gradient():
    for model, theta, X in all_tasks().values():
        pi = exact.softmax_policy(theta, X, 0.7)
        grad = (exact.episodic_policy_gradient if model.terminal else exact.policy_gradient)(
            model, theta, X, 0.7).reshape(-1)
        np.testing.assert_allclose(
            exact.score_gradient(model, pi, exact.softmax_scores(theta, X, 0.7)), grad,
            rtol=0, atol=1e-13)


# ---------------------------------------------------------------- the ReLU network


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_backprop_equals_finite_differences_of_log_pi(tau):
    net = ReLUPolicy(5, 7, 3, seed=2, tau=tau)
    params = net.init()
    X = np.random.default_rng(0).normal(size=(6, 5))
    pi, scores = net.tables(params, X)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-15)
    parts = net.unpack(params)
    h = np.maximum(X @ parts["W1"].T + parts["b1"], 0.0)
    logits = (h @ parts["W2"].T + parts["b2"]) / tau
    np.testing.assert_allclose(pi, np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                               rtol=1e-13)
    for s in range(X.shape[0]):
        for a in range(3):
            fd = finite_difference(lambda p: np.log(net.probabilities(p, X[s])[0, a]), params)
            assert np.linalg.norm(scores[s, a] - fd) <= 1e-6 * np.linalg.norm(fd)
    # every layer moves: a broken backprop of one block would show here
    assert np.all(np.abs(scores).sum(axis=(0, 1)) > 0)


def test_the_network_is_deterministic_and_its_shape_is_checked():
    net = ReLUPolicy(4, 6, 2, seed=5)
    assert net.n_params == 6 * 5 + 2 * 7
    np.testing.assert_array_equal(net.init(), ReLUPolicy(4, 6, 2, seed=5).init())
    assert not np.array_equal(net.init(), ReLUPolicy(4, 6, 2, seed=6).init())
    with pytest.raises(ValueError, match=r"n_inputs = 4 columns"):
        net.tables(net.init(), np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"params must have shape \(44,\)"):
        net.tables(np.ones(43), np.ones((3, 4)))
    for kwargs, name in (({"n_hidden": 0}, "n_hidden"), ({"n_inputs": 2.5}, "n_inputs"),
                         ({"n_actions": True}, "n_actions"), ({"seed": -1}, "seed"),
                         ({"tau": 0.0}, "tau")):
        with pytest.raises(ValueError, match=name):
            ReLUPolicy(**{"n_inputs": 4, "n_hidden": 6, "n_actions": 2, **kwargs})
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.n_hidden = 3


@pytest.mark.parametrize("name", list(all_tasks()))
def test_the_networks_exact_gradient_is_the_derivative_of_j(name):
    model, _, X = all_tasks()[name]
    net = ReLUPolicy(X.shape[1], 6, model.n_actions, seed=4)
    params = net.init()
    grad = policy_gradient(model, net, params, X)
    fd = finite_difference(lambda p: objective(model, net.probabilities(p, X)), params)
    assert np.linalg.norm(grad) > 1e-3
    assert np.linalg.norm(grad - fd) <= 1e-6 * np.linalg.norm(grad)
    # and its compatible weights solve the Fisher equations too
    ng = natural_gradient(model, net, params, X)
    np.testing.assert_allclose(ng.gradient, grad, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ng.fisher @ ng.compatible_weights, grad, rtol=0, atol=1e-10)


def test_the_network_must_match_the_model():
    model, _, X = episodic_task(CORRIDOR)
    net = ReLUPolicy(X.shape[1], 4, 3)
    with pytest.raises(ValueError, match="n_actions = 3 does not match"):
        policy_gradient(model, net, net.init(), X)
    net = ReLUPolicy(X.shape[1] + 1, 4, 2)
    with pytest.raises(ValueError, match="n_inputs"):
        policy_gradient(model, net, net.init(), X)
    with pytest.raises(ValueError, match="network must be"):
        estimators.estimator_lab(model, np.zeros(3), X, episodes=1000, network="relu")
    with pytest.raises(ValueError, match="n_inputs"):
        estimators.estimator_lab(model, net.init(), X, episodes=1000, network=net)


# ---------------------------------------------------------------- the lab, for the network

UNBIASED = ("total return", "reward-to-go", "constant baseline", "total return, mean b",
            "total return, optimal b", "time baseline", "state value (exact)",
            "state value (learned)", "TD advantage (exact)", "GAE(0.5) (exact)")


def network_lab(env_id, episodes):
    model, _, X = episodic_task(env_id)
    net = ReLUPolicy(X.shape[1], 8, model.n_actions, seed=3)
    lab = estimators.estimator_lab(model, net.init(), X, episodes=episodes, seed=7,
                                   lambdas=(0.5,), network=net)
    return lab, model, net, X


@pytest.fixture(scope="module")
def labs():
    return {"grid": network_lab(GRID, 100_000), "corridor": network_lab(CORRIDOR, 200_000)}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["grid", "corridor"])
def test_baselines_stay_unbiased_for_the_network(labs, which):
    lab, model, net, X = labs[which]
    np.testing.assert_allclose(lab.exact_gradient, policy_gradient(model, net, net.init(), X),
                               rtol=0, atol=1e-14)
    for name in UNBIASED:
        assert lab.covers(name, level=LEVEL), name
    for name in lab.names:  # biased ones at their exact expectations
        assert lab.covers(name, lab.expectations[lab.names.index(name)], level=LEVEL), name
    # discounting stays biased, and seen to be
    i = lab.names.index("discounted reward-to-go")
    assert np.linalg.norm(lab.exact_bias()[i]) > 0.1
    assert not lab.covers("discounted reward-to-go", level=LEVEL)
    assert lab.settings["policy"] == f"ReLU network {X.shape[1]}-8-{model.n_actions}"


@pytest.mark.parametrize("which", ["grid", "corridor"])
@pytest.mark.slow
def test_b_star_is_the_least_variance_constant_baseline_for_the_network(labs, which):
    lab, model, net, X = labs[which]
    J = exact.evaluate_episodic(model, net.probabilities(net.init(), X)).J
    at_optimum = lab.constant_baseline_variance(lab.optimal_baseline)
    moved = lab.score_moments[0] > 0
    # not vacuous: the output biases, the weights of the live hidden units and the first
    # layer's weights of the inputs that occur (gridworld: 4 of 16) carry a score
    assert moved[-model.n_actions:].all() and moved.sum() >= 10
    for b in (J, 0.0, J - 1.0, J + 1.0, lab.optimal_baseline * 1.1, lab.optimal_baseline - 0.1):
        assert np.all(at_optimum[moved] <= lab.constant_baseline_variance(b)[moved] + 1e-12)
    assert at_optimum.sum() < lab.constant_baseline_variance(J).sum()
    # and a baseline lowers the variance of the plain estimator
    i, j = (lab.names.index(n) for n in ("constant baseline", "reward-to-go"))
    assert lab.variance_per_episode[i] < 0.9 * lab.variance_per_episode[j]


def test_the_network_lab_entropy_term_matches_finite_differences():
    model, _, X = episodic_task(GRID)
    net = ReLUPolicy(X.shape[1], 5, model.n_actions, seed=1)
    params = net.init()
    pi, scores = net.tables(params, X)

    def entropy(p, s):
        q = net.probabilities(p, X)[s]
        return -np.sum(q * np.log(q))

    grad = estimators._score_entropy_gradient(pi, scores)
    for s in range(model.n_states):
        fd = finite_difference(lambda p: entropy(p, s), params)
        np.testing.assert_allclose(grad[s], fd, rtol=0, atol=1e-8)
