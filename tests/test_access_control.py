"""Access-control queuing (Sutton & Barto, Example 10.2) and exact optimal control."""

import itertools

import gymnasium
import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.envs import access_control as ac
from avgreward.envs.loop_mdp import loop_mdp_model

ACCESS = "avgreward/AccessControl-v0"


@pytest.mark.slow
def test_the_step_draws_each_outcome_with_the_models_probability():
    # One uniform per step, inverse CDF over the joint outcomes: on an even grid of
    # u the share of each next state is its probability, to the grid's resolution.
    model = ac.access_control_model()
    grid = (np.arange(40_000) + 0.5) / 40_000
    for s in range(model.n_states):
        for action in (ac.REJECT, ac.ACCEPT):
            counts = np.zeros(model.n_states)
            for u in grid:
                nxt = np.zeros(2)
                reward = ac.access_control_step(model.observations[s].copy(), float(action),
                                                u, nxt)
                counts[ac.state_index(int(nxt[0]), int(nxt[1]))] += 1
            assert reward == model.R[s, action]
            np.testing.assert_allclose(counts / grid.size, model.P[s, action], atol=2.5e-5)


def test_the_model_is_the_description():
    model = ac.access_control_model()
    assert model.P.shape == (44, 2, 44)
    np.testing.assert_allclose(model.P.sum(axis=2), 1.0, atol=1e-12)
    np.testing.assert_array_equal(model.R[ac.state_index(0, 3)], [0.0, 0.0])  # no server
    np.testing.assert_array_equal(model.R[ac.state_index(4, 2)], [0.0, 4.0])
    # all ten busy after accepting at one free: none freed with (0.94)^10, priority uniform
    assert model.P[ac.state_index(1, 0), ac.ACCEPT, ac.state_index(0, 2)] == pytest.approx(
        0.94 ** 10 / 4)
    assert model.start[ac.state_index(10, 1)] == 0.25


def test_the_environment_starts_full_of_free_servers_and_renders():
    env = gymnasium.make(ACCESS, render_mode="rgb_array")
    obs, _ = env.reset(seed=3)
    assert obs[0] == 10 and 0 <= obs[1] < 4 and env.observation_space.contains(obs)
    frame = env.render()
    assert frame.shape == (200, 480, 3)
    busy = np.all(frame == (90, 90, 90), axis=2).sum()
    assert busy == 0  # all ten servers free
    for _ in range(3):
        obs, *_ = env.step(1)
    busy_now = np.all(env.render() == (90, 90, 90), axis=2).sum()
    assert busy_now > 0 and busy_now % (10 - obs[0]) == 0  # one box per busy server
    priorities = [env.reset(seed=s)[0][1] for s in range(400)]
    assert np.bincount(priorities, minlength=4).min() > 70


def _brute_force(model):
    best, n_states = -np.inf, model.n_states
    for actions in itertools.product(range(model.n_actions), repeat=n_states):
        policy = np.zeros((n_states, model.n_actions))
        policy[np.arange(n_states), actions] = 1.0
        best = max(best, exact.evaluate(model, policy).reward_rate)
    return best


def test_relative_value_iteration_equals_policy_iteration_and_brute_force_on_the_loop_mdp():
    model = loop_mdp_model()  # periodic: RVI needs its aperiodicity transform
    rvi, pi = exact.relative_value_iteration(model), exact.policy_iteration(model)
    assert rvi.reward_rate == pytest.approx(0.4, abs=1e-12)
    assert pi.reward_rate == pytest.approx(0.4, abs=1e-12)
    assert _brute_force(model) == pytest.approx(0.4, abs=1e-12)
    assert rvi.policy[0, 1] == 1.0 and pi.policy[0, 1] == 1.0  # the right loop


def test_relative_value_iteration_equals_policy_iteration_on_access_control():
    model = ac.access_control_model()
    rvi, pi = exact.relative_value_iteration(model), exact.policy_iteration(model)
    assert rvi.reward_rate == pytest.approx(pi.reward_rate, abs=1e-10)
    np.testing.assert_array_equal(rvi.policy, pi.policy)
    np.testing.assert_allclose(rvi.v, pi.v, atol=1e-8)
    # Bellman optimality: v(s) + r* = max_a R(s, a) + sum_s' P(s, a, s') v(s')
    np.testing.assert_allclose(rvi.v + rvi.reward_rate,
                               np.max(model.R + model.P @ rvi.v, axis=1), atol=1e-9)
    # better than accepting everyone, and no single-state change improves on it
    always = np.tile([0.0, 1.0], (model.n_states, 1))
    assert rvi.reward_rate > exact.evaluate(model, always).reward_rate + 0.5
    for s in range(model.n_states):
        changed = rvi.policy.copy()
        changed[s] = changed[s, ::-1]
        assert exact.evaluate(model, changed).reward_rate <= rvi.reward_rate + 1e-12
    # its shape: the higher the priority and the more servers free, the more it accepts
    accept = rvi.policy[:, ac.ACCEPT].reshape(11, 4)[1:]  # free 1..10, priority 0..3
    assert np.all(np.diff(accept, axis=0) >= 0) and np.all(np.diff(accept, axis=1) >= 0)
    assert accept[:, 3].all() and not accept[:, 0].any()


def _threshold_rates(model, thresholds):
    """Exact reward rates of the policies "accept priority p iff free >= k_p" (unichain ones)."""
    free, priority = np.divmod(np.arange(model.n_states), ac.N_PRIORITIES)
    accept = free[None, :] >= thresholds[:, priority]  # (n_policies, n_states)
    P = np.where(accept[:, :, None], model.P[None, :, ac.ACCEPT], model.P[None, :, ac.REJECT])
    r = np.where(accept, model.R[None, :, ac.ACCEPT], model.R[None, :, ac.REJECT])
    A = np.eye(model.n_states)[None] - np.swapaxes(P, 1, 2)
    A[:, -1, :] = 1.0  # mu (I - P) = 0 with sum(mu) = 1: every such chain is unichain
    b = np.zeros((len(thresholds), model.n_states, 1))
    b[:, -1] = 1.0
    mu = np.linalg.solve(A, b)[..., 0]
    return np.einsum("ks,ks->k", mu, r), accept


def test_relative_value_iteration_is_the_best_of_all_threshold_policies_on_access_control():
    """Brute force: every policy "accept priority p iff at least k_p servers are free",
    k_p in 1..11 (11: never), 11^4 = 14,641 policies, each evaluated exactly."""
    model = ac.access_control_model()
    thresholds = np.array(list(itertools.product(range(1, 12), repeat=ac.N_PRIORITIES)))
    rates = np.concatenate([_threshold_rates(model, chunk)[0]
                            for chunk in np.array_split(thresholds, 8)])
    best = int(np.argmax(rates))
    rvi = exact.relative_value_iteration(model)
    assert rvi.reward_rate == pytest.approx(rates[best], abs=1e-10)
    # the solver's policy is a threshold policy, and one of the best (the runner-up
    # differs by about 1e-9, at states rarely visited)
    accept = rvi.policy[:, ac.ACCEPT].reshape(ac.N_SERVERS + 1, ac.N_PRIORITIES)[1:] == 1.0
    own = np.array([[1 + np.argmax(col) if col.any() else 11 for col in accept.T]])
    _, own_accept = _threshold_rates(model, own)
    free = np.arange(model.n_states) // ac.N_PRIORITIES
    np.testing.assert_array_equal(rvi.policy[free > 0, ac.ACCEPT] == 1.0, own_accept[0, free > 0])
    assert _threshold_rates(model, own)[0][0] == pytest.approx(rates[best], abs=1e-12)
    # the fast evaluation above is the exact one
    for k in (0, best, len(thresholds) - 1):
        _, acc = _threshold_rates(model, thresholds[k:k + 1])
        policy = np.stack([~acc[0], acc[0]], axis=1).astype(float)
        assert exact.evaluate(model, policy).reward_rate == pytest.approx(rates[k], abs=1e-12)


def _model(P, R, start):
    from avgreward.envs.model import TabularModel
    n = len(start)
    return TabularModel(P=np.asarray(P, float), R=np.asarray(R, float),
                        start=np.asarray(start, float), observations=np.eye(n))


def test_policy_iteration_finds_a_better_recurrent_class_than_its_first_policy():
    """Staying in state 0 (reward 0) and moving to the absorbing state 1 (reward 1 a step):
    "action 0 everywhere" is multichain, and only the gain step of policy iteration sees
    that moving is better."""
    stay, move = [1.0, 0.0], [0.0, 1.0]
    model = _model(P=[[stay, move], [move, move]], R=[[0.0, 0.0], [1.0, 1.0]], start=[1.0, 0.0])
    for solve in (exact.policy_iteration, exact.relative_value_iteration):
        optimum = solve(model)
        assert optimum.reward_rate == pytest.approx(1.0, abs=1e-12)
        assert optimum.policy[0, 1] == 1.0
        np.testing.assert_allclose(optimum.gain, [1.0, 1.0], atol=1e-12)


def test_a_multichain_model_is_solved_by_policy_iteration_and_refused_by_rvi():
    """Two absorbing states with no way between them: the optimal rate depends on the start."""
    stay0, stay1 = [1.0, 0.0], [0.0, 1.0]
    model = _model(P=[[stay0, stay0], [stay1, stay1]], R=[[0.0, -1.0], [1.0, 2.0]],
                   start=[0.5, 0.5])
    optimum = exact.policy_iteration(model)
    np.testing.assert_allclose(optimum.gain, [0.0, 2.0], atol=1e-12)
    assert optimum.reward_rate == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(optimum.policy, [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="multichain .*from 0 to 2.*use policy_iteration"):
        exact.relative_value_iteration(model)


def test_a_loose_tolerance_does_not_make_worse_actions_optimal():
    model = ac.access_control_model()
    exact_policy = exact.relative_value_iteration(model).policy
    loose = exact.relative_value_iteration(model, tol=1e-6)
    np.testing.assert_array_equal(loose.policy, exact_policy)
    # with tol=1 it stops at once; the tie-break no longer widens with tol, so the greedy
    # policy of a one-sweep h is not "reject everyone" passed off as optimal
    rough = exact.relative_value_iteration(model, tol=1.0)
    assert rough.policy[:, ac.ACCEPT].any()


@pytest.mark.parametrize("kwargs, message", [
    ({"tau": 1.0}, "tau must be in"), ({"tau": 0.0}, "tau must be in"),
    ({"tau": "half"}, "tau must be a number"), ({"tau": True}, "tau must be in"),
    ({"tol": 0.0}, "tol must be a finite number > 0"),
    ({"tol": float("nan")}, "tol must be a finite number > 0"),
    ({"tol": -1e-9}, "tol must be a finite number > 0"), ({"tol": None}, "tol must be"),
    ({"max_iterations": 0}, "max_iterations must be an integer >= 1"),
    ({"max_iterations": 2.5}, "max_iterations must be an integer >= 1"),
    ({"max_iterations": True}, "max_iterations must be an integer >= 1"),
])
def test_bad_settings_for_relative_value_iteration_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        exact.relative_value_iteration(loop_mdp_model(), **kwargs)


def test_bad_settings_for_policy_iteration_and_no_convergence_are_named():
    with pytest.raises(ValueError, match="did not converge"):
        exact.relative_value_iteration(ac.access_control_model(), max_iterations=3)
    with pytest.raises(ValueError, match="max_iterations must be an integer >= 1"):
        exact.policy_iteration(loop_mdp_model(), max_iterations=0)
    with pytest.raises(ValueError, match="policy iteration did not converge in 1 "):
        exact.policy_iteration(ac.access_control_model(), max_iterations=1)


@pytest.mark.slow
def test_the_actor_critic_runs_access_control_in_the_fused_loop():
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = avgreward.train(ACCESS, agent, 300_000, seed=0)
    optimum = exact.relative_value_iteration(ac.access_control_model()).reward_rate
    random_rate = exact.evaluate(ac.access_control_model(), np.full((44, 2), 0.5)).reward_rate
    # it learns well beyond the random policy, towards the optimum
    assert random_rate + 0.2 < result.mean_reward(-50_000) <= optimum + 0.1
