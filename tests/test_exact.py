"""Exact analysis (avgreward.exact) against the seed facts of the tabular tasks."""

import dataclasses

import numpy as np
import pytest

from avgreward import exact
from avgreward.envs.aliased_gridworld import gridworld_model
from avgreward.envs.loop_mdp import loop_mdp_model
from avgreward.envs.model import TabularModel

LEFT, RIGHT = 0, 1
N, E, S, W = 0, 1, 2, 3


@pytest.fixture(scope="module")
def loop():
    return loop_mdp_model()


@pytest.fixture(scope="module")
def grid():
    return gridworld_model()


def loop_policy(p_right):
    """Loop MDP policy: right with probability p_right in S (elsewhere irrelevant)."""
    pi = np.zeros((9, 2))
    pi[:, LEFT] = 1.0 - p_right
    pi[:, RIGHT] = p_right
    return pi


def grid_policy(grid, p_east):
    """E in c0, S in c2, W in c4; E with probability p_east in the aliased cells."""
    return exact.policy_on_states(grid, {
        (1, 0, 0, 1): [0, 1, 0, 0],
        (1, 0, 1, 0): [0, p_east, 0, 1 - p_east],
        (1, 0, 0, 0): [0, 0, 1, 0],
        (1, 1, 0, 0): [0, 0, 0, 1],
    })


def wall_code(obs):
    """Index of the 4-bit wall pattern as binary_pattern(4) numbers it: 8N + 4E + 2S + W."""
    n = len(obs)
    return int(sum(int(b) << (n - 1 - i) for i, b in enumerate(obs)))


def grid_features(grid):
    x = np.zeros((grid.n_states, 16))
    for s, obs in enumerate(grid.observations):
        x[s, wall_code(obs)] = 1.0
    return x


def cesaro_bias_brute_force(P, r_pi, rate, n_sums):
    """(1/n) sum_{k=1..n} sum_{t<k} P^t (r_pi - rate), for every start state."""
    dist = np.eye(P.shape[0])
    partial = np.zeros(P.shape[0])
    total = np.zeros(P.shape[0])
    for _ in range(n_sums):
        partial += dist @ (r_pi - rate)
        total += partial
        dist = dist @ P
    return total / n_sums


# ---------------------------------------------------------------- loop MDP

def test_loop_mdp_rates_and_action_values(loop):
    ev_l = exact.evaluate(loop, loop_policy(0.0))
    ev_r = exact.evaluate(loop, loop_policy(1.0))
    assert ev_l.reward_rate == pytest.approx(0.2, abs=1e-12)
    assert ev_r.reward_rate == pytest.approx(0.4, abs=1e-12)
    assert ev_l.q[0, LEFT] == pytest.approx(0.4, abs=1e-12)
    assert ev_l.q[0, RIGHT] == pytest.approx(1.4, abs=1e-12)
    assert ev_r.q[0, RIGHT] == pytest.approx(-0.8, abs=1e-12)
    assert ev_r.q[0, LEFT] == pytest.approx(-1.8, abs=1e-12)
    # Under pi_L the right loop is transient from S: mu is uniform on the left loop.
    np.testing.assert_allclose(ev_l.stationary, [0.2] * 5 + [0] * 4, atol=1e-12)
    np.testing.assert_allclose(ev_r.stationary, [0.2] + [0] * 4 + [0.2] * 4, atol=1e-12)


@pytest.mark.parametrize("p_right", [0.0, 0.3, 0.5, 1.0])
def test_loop_mdp_differential_bellman(loop, p_right):
    pi = loop_policy(p_right)
    ev = exact.evaluate(loop, pi)
    assert ev.reward_rate == pytest.approx(0.2 + 0.2 * p_right, abs=1e-12)
    np.testing.assert_allclose(ev.v, ev.r_pi - ev.reward_rate + ev.P_pi @ ev.v, atol=1e-12)
    np.testing.assert_allclose(ev.gain, ev.reward_rate, atol=1e-12)
    np.testing.assert_allclose(ev.P_star @ ev.v, 0.0, atol=1e-12)  # Cesaro normalisation
    np.testing.assert_allclose(np.sum(pi * ev.q, axis=1), ev.v, atol=1e-12)
    np.testing.assert_allclose(ev.stationary @ ev.P_pi, ev.stationary, atol=1e-12)
    assert ev.stationary.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("g", [0.1, 0.5, 0.841, 0.9, 0.99])
def test_loop_mdp_discounted_values(loop, g):
    v_l = exact.discounted_values(loop, loop_policy(0.0), g)[0]
    v_r = exact.discounted_values(loop, loop_policy(1.0), g)[0]
    assert v_l == pytest.approx(1 / (1 - g**5), rel=1e-12)
    assert v_r == pytest.approx(2 * g**4 / (1 - g**5), rel=1e-12)


def test_loop_mdp_discounted_crossing(loop):
    def gap(g):
        return (exact.discounted_values(loop, loop_policy(0.0), g)[0]
                - exact.discounted_values(loop, loop_policy(1.0), g)[0])
    g_star = 2 ** -0.25
    assert abs(gap(g_star)) < 1e-9
    assert exact.discounted_values(loop, loop_policy(0.0), g_star)[0] == pytest.approx(
        1 / (1 - g_star**5), rel=1e-12)  # about 1.725, not the seed table's 0.58
    assert gap(0.5) > 0.1   # left better
    assert gap(0.9) < -0.1  # right better


@pytest.mark.parametrize("p_right", [0.0, 1.0])
def test_loop_mdp_bias_is_cesaro_sum_exact_period(loop, p_right):
    # Deterministic loops: started on the loop in use, the partial sums are
    # 5-periodic, so averaging over whole periods gives the Cesaro limit
    # exactly; from the other loop's (transient) states the prefix costs O(1/N).
    ev = exact.evaluate(loop, loop_policy(p_right))
    brute = cesaro_bias_brute_force(ev.P_pi, ev.r_pi, ev.reward_rate, 5000)
    on_loop = ev.stationary > 0
    assert on_loop.sum() == 5
    np.testing.assert_allclose(ev.v[on_loop], brute[on_loop], atol=1e-9)
    np.testing.assert_allclose(ev.v, brute, atol=1e-2)


def test_loop_mdp_bias_is_cesaro_sum_mixed_periodic(loop):
    # Both loops in use: irreducible, period 5, P^t does not converge.
    ev = exact.evaluate(loop, loop_policy(0.3))
    assert np.all(ev.stationary > 0)
    brute = cesaro_bias_brute_force(ev.P_pi, ev.r_pi, ev.reward_rate, 5003)
    np.testing.assert_allclose(ev.v, brute, atol=1e-2)
    # and P* is the Cesaro mean of the powers
    avg, Pk = np.zeros_like(ev.P_pi), np.eye(9)
    for _ in range(5000):
        avg += Pk
        Pk = Pk @ ev.P_pi
    np.testing.assert_allclose(ev.P_star, avg / 5000, atol=2e-3)


# ---------------------------------------------------------- multichain chains

def test_multichain_gain_and_bias():
    # 0 is transient (-> 1 w.p. 0.3, -> 2 w.p. 0.7); 1 absorbing with reward 1;
    # {2, 3} a period-2 cycle with rewards 4, 0 (gain 2). One action.
    P = np.zeros((4, 1, 4))
    P[0, 0, [1, 2]] = [0.3, 0.7]
    P[1, 0, 1] = 1
    P[2, 0, 3] = 1
    P[3, 0, 2] = 1
    R = np.array([[0.5], [1.0], [4.0], [0.0]])
    start = np.array([1.0, 0, 0, 0])
    model = TabularModel(P, R, start, np.arange(4.0)[:, None])
    ev = exact.evaluate(model, np.ones((4, 1)))
    np.testing.assert_allclose(ev.gain, [0.3 * 1 + 0.7 * 2, 1, 2, 2], atol=1e-12)
    assert ev.reward_rate == pytest.approx(1.7, abs=1e-12)
    np.testing.assert_allclose(ev.stationary, [0, 0.3, 0.35, 0.35], atol=1e-12)
    np.testing.assert_allclose(ev.v, ev.r_pi - ev.gain + ev.P_pi @ ev.v, atol=1e-12)
    np.testing.assert_allclose(ev.P_star @ ev.v, 0.0, atol=1e-12)
    # bias = Cesaro sum of r_pi(S_t) - g(S_t); even horizon is exact here
    dist, partial, total = np.eye(4), np.zeros(4), np.zeros(4)
    for _ in range(4000):
        partial += dist @ (ev.r_pi - ev.gain)
        total += partial
        dist = dist @ ev.P_pi
    np.testing.assert_allclose(ev.v, total / 4000, atol=1e-3)
    np.testing.assert_allclose(ev.v[2:], [1.0, -1.0], atol=1e-12)


def test_cesaro_limit_identities_on_stuck_gridworld_policy(grid):
    # E in c0, W in the aliased cells, N in c2, W in c4: closed classes
    # {c0, c1} (period 2) and {c2}; c3, c4 transient.
    table = np.eye(4)[[E, W, N, W]]
    pi = exact.policy_on_states(grid, table)
    ev = exact.evaluate(grid, pi)
    Ps, Pp = ev.P_star, ev.P_pi
    for lhs in (Pp @ Ps, Ps @ Pp, Ps @ Ps):
        np.testing.assert_allclose(lhs, Ps, atol=1e-12)
    np.testing.assert_allclose(Ps[0], [0.5, 0.5, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(Ps[4], [0, 0, 1, 0, 0], atol=1e-12)
    # start uniform on {c0, c1, c3, c4}: half the mass ends on {c0, c1}, half on c2
    np.testing.assert_allclose(ev.stationary, [0.25, 0.25, 0.5, 0, 0], atol=1e-12)
    assert ev.reward_rate == pytest.approx(0.0, abs=1e-12)


def test_cesaro_limit_rejects_non_stochastic():
    with pytest.raises(ValueError, match="P"):
        exact.cesaro_limit(np.array([[0.5, 0.4], [0, 1]]))
    with pytest.raises(ValueError, match="P"):
        exact.cesaro_limit(np.ones((2, 3)) / 3)


# -------------------------------------------------------- aliased gridworld

def test_gridworld_observation_classes(grid):
    distinct, index = exact.observation_classes(grid)
    np.testing.assert_array_equal(index, [0, 1, 2, 1, 3])
    np.testing.assert_array_equal(distinct, [[1, 0, 0, 1], [1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]])


def test_gridworld_best_policy_rate(grid):
    ev = exact.evaluate(grid, grid_policy(grid, 0.5))
    assert ev.reward_rate == pytest.approx(2 / 9, abs=1e-12)
    np.testing.assert_allclose(ev.v, ev.r_pi - ev.reward_rate + ev.P_pi @ ev.v, atol=1e-12)


def test_gridworld_rate_maximised_at_half(grid):
    ps = np.linspace(0.0, 1.0, 101)
    rates = np.array([exact.evaluate(grid, grid_policy(grid, p)).reward_rate for p in ps])
    assert ps[np.argmax(rates)] == pytest.approx(0.5)
    assert rates.max() == pytest.approx(2 / 9, abs=1e-12)
    np.testing.assert_allclose(rates, rates[::-1], atol=1e-12)  # E/W mirror symmetry
    assert rates[0] == pytest.approx(0.0, abs=1e-12) and rates[-1] == pytest.approx(0.0, abs=1e-12)


def test_gridworld_deterministic_policies_are_bad(grid):
    results = list(exact.deterministic_observation_policies(grid))
    assert len(results) == 4**4
    rates = np.array([rate for _, rate in results])
    assert rates.max() <= 1e-12
    assert rates.max() >= -1e-12  # some (e.g. stuck ones) reach exactly 0
    assert rates.max() < 2 / 9 - 0.2


def test_policy_on_states_forms_agree(grid):
    d = {(1, 0, 0, 1): [0, 1, 0, 0], (1, 0, 1, 0): [0, 0.3, 0, 0.7],
         (1, 0, 0, 0): [0, 0, 1, 0], (1, 1, 0, 0): [0.25, 0.25, 0.25, 0.25]}
    from_dict = exact.policy_on_states(grid, d)
    from_fn = exact.policy_on_states(grid, lambda obs: d[tuple(int(b) for b in obs)])
    from_table = exact.policy_on_states(grid, np.array(list(d.values())))
    np.testing.assert_array_equal(from_dict, from_fn)
    np.testing.assert_array_equal(from_dict, from_table)
    np.testing.assert_array_equal(from_dict[1], from_dict[3])  # aliased cells share a row


def test_policy_on_states_scalar_keys(loop):
    pi = exact.policy_on_states(loop, {s: [1.0, 0.0] for s in range(9)})
    np.testing.assert_array_equal(pi, loop_policy(0.0))


# ------------------------------------------------------ softmax and gradient

def test_softmax_policy_formula_and_stability():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(6, 5)).astype(float)
    theta = rng.standard_normal((5, 3))
    tau = 0.7
    h = x @ theta / tau
    expected = np.exp(h) / np.exp(h).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(exact.softmax_policy(theta, x, tau), expected, rtol=1e-13)
    big = exact.softmax_policy(1e4 * theta, x, tau)
    assert np.all(np.isfinite(big))
    np.testing.assert_allclose(big.sum(axis=1), 1.0, atol=1e-12)


def _check_gradient(model, features, tau, seed):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((features.shape[1], model.n_actions))
    grad = exact.policy_gradient(model, theta, features, tau)
    assert grad.shape == theta.shape

    def rate(th):
        return exact.evaluate(model, exact.softmax_policy(th, features, tau)).reward_rate

    eps = 1e-5
    fd = np.zeros_like(theta)
    for idx in np.ndindex(*theta.shape):
        tp, tm = theta.copy(), theta.copy()
        tp[idx] += eps
        tm[idx] -= eps
        fd[idx] = (rate(tp) - rate(tm)) / (2 * eps)
    assert np.linalg.norm(grad) > 1e-3  # the comparison says something
    assert np.linalg.norm(grad - fd) <= 1e-6 * np.linalg.norm(grad)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_policy_gradient_loop_mdp(loop, tau, seed):
    _check_gradient(loop, np.eye(9), tau, seed)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_policy_gradient_gridworld(grid, tau, seed):
    _check_gradient(grid, grid_features(grid), tau, seed)


def test_gridworld_feature_code_matches_binary_pattern(grid):
    from avgreward import features
    coder = features.binary_pattern(4)
    for obs in grid.observations:
        idx = np.asarray(coder.indices(np.asarray(obs, dtype=np.float64)))
        assert idx.tolist() == [wall_code(obs)]


def test_policy_gradient_zero_along_aliased_east_west(grid):
    # Mirror-symmetric theta (E-ish in c0, S-ish in c2, W-ish in c4, E = W in
    # the aliased cells): p = P(E | aliased) = 1/2 is optimal for the rest of
    # the policy, so d r / d(theta_E - theta_W) on the aliased feature is 0,
    # while the gradient as a whole is not.
    x = grid_features(grid)
    theta = np.zeros((16, 4))
    theta[9, E] = 2.0   # c0
    theta[1, S] = 2.0   # c2
    theta[3, W] = 2.0   # c4
    theta[5, [E, W]] = 1.0
    grad = exact.policy_gradient(grid, theta, x)
    assert np.linalg.norm(grad) > 1e-2
    assert abs(grad[5, E] - grad[5, W]) < 1e-12


# ------------------------------------------------------------ bad inputs

def test_evaluation_is_frozen(loop):
    ev = exact.evaluate(loop, loop_policy(0.5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.reward_rate = 1.0
    with pytest.raises(ValueError):
        ev.v[0] = 1.0


def test_bad_policies_raise(loop):
    with pytest.raises(ValueError, match="policy"):
        exact.evaluate(loop, np.ones((9, 3)) / 3)
    bad = loop_policy(0.5)
    bad[2] = [1.5, -0.5]
    with pytest.raises(ValueError, match="policy"):
        exact.evaluate(loop, bad)
    bad = loop_policy(0.5)
    bad[4] = [0.5, 0.4]
    with pytest.raises(ValueError, match="policy"):
        exact.evaluate(loop, bad)
    bad[4] = [np.nan, 0.5]
    with pytest.raises(ValueError, match="policy"):
        exact.discounted_values(loop, bad, 0.5)


@pytest.mark.parametrize("gamma", [1.0, -0.1, 1.5, np.nan])
def test_bad_gamma_raises(loop, gamma):
    with pytest.raises(ValueError, match="gamma"):
        exact.discounted_values(loop, loop_policy(0.5), gamma)


def test_bad_obs_policy_raises(grid):
    with pytest.raises(ValueError, match="obs_policy"):
        exact.policy_on_states(grid, {(1, 0, 0, 1): [0, 1, 0, 0]})
    with pytest.raises(ValueError, match="obs_policy"):
        exact.policy_on_states(grid, np.ones((5, 4)) / 4)
    with pytest.raises(ValueError, match="obs_policy"):
        exact.policy_on_states(grid, lambda obs: [0.5, 0.5, 0.5, 0.5])


def test_bad_softmax_arguments_raise(grid):
    x = grid_features(grid)
    with pytest.raises(ValueError, match="tau"):
        exact.softmax_policy(np.zeros((16, 4)), x, tau=0.0)
    with pytest.raises(ValueError, match="theta"):
        exact.softmax_policy(np.zeros((15, 4)), x)
    with pytest.raises(ValueError, match="features"):
        exact.policy_gradient(grid, np.zeros((16, 4)), x[:4])
    with pytest.raises(ValueError, match="theta"):
        exact.policy_gradient(grid, np.zeros((16, 3)), x)
    with pytest.raises(ValueError, match="theta"):
        exact.policy_gradient(grid, np.full((16, 4), np.inf), x)


# ------------------------------------------------- precision of the tables

def softmax_float32(theta, features):
    """The softmax policy computed and normalised entirely in float32."""
    h = features.astype(np.float32) @ theta.astype(np.float32)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def off_by(table):
    """Largest distance of a row sum (over the last axis, in float64) from 1."""
    return np.abs(np.sum(table, axis=-1, dtype=np.float64) - 1.0).max()


@pytest.mark.parametrize("which", ["loop", "grid"])
def test_float32_policy_is_accepted_and_evaluated_in_float64(loop, grid, which):
    model, x = (loop, np.eye(9)) if which == "loop" else (grid, grid_features(grid))
    theta = 2.0 * np.random.default_rng(3).standard_normal((x.shape[1], model.n_actions))
    pi32 = softmax_float32(theta, x)
    assert pi32.dtype == np.float32
    # The point of the test: float32 rows miss 1 by far more than 1e-9.
    assert off_by(pi32) > 1e-8
    pi64 = exact.softmax_policy(theta, x)
    ev32, ev64 = exact.evaluate(model, pi32), exact.evaluate(model, pi64)
    assert ev32.reward_rate == pytest.approx(ev64.reward_rate, abs=1e-6)
    np.testing.assert_allclose(ev32.v, ev64.v, atol=1e-5)
    # computed in float64, on rows renormalised there
    assert ev32.P_pi.dtype == np.float64
    np.testing.assert_allclose(ev32.P_pi.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(exact.discounted_values(model, pi32, 0.9),
                               exact.discounted_values(model, pi64, 0.9), atol=1e-5)


def test_float32_tables_elsewhere_are_accepted(grid):
    # an observation table, a chain and a whole model stored in float32
    table = softmax_float32(np.random.default_rng(4).standard_normal((4, 4)), np.eye(4))
    assert off_by(table) > 1e-8
    pi = exact.policy_on_states(grid, table)
    assert pi.dtype == np.float64
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    exact.evaluate(grid, pi)
    # Mixing in a uniform jump makes entries that float32 rounds.
    mixed = 0.9 * grid.P + 0.1 / grid.n_states
    mixed32 = np.float32(0.9) * grid.P.astype(np.float32) + np.float32(0.1 / grid.n_states)
    assert off_by(mixed32) > 1e-8
    chain = np.einsum("sa,sat->st", pi, mixed)
    chain32 = np.einsum("sa,sat->st", pi.astype(np.float32), mixed32)
    assert off_by(chain32) > 1e-8
    np.testing.assert_allclose(exact.cesaro_limit(chain32), exact.cesaro_limit(chain), atol=1e-6)
    model = TabularModel(mixed, grid.R, grid.start, grid.observations)
    model32 = TabularModel(mixed32, grid.R.astype(np.float32), grid.start.astype(np.float32),
                           grid.observations)
    assert exact.evaluate(model32, table[[0, 1, 2, 1, 3]]).reward_rate == pytest.approx(
        exact.evaluate(model, pi).reward_rate, abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_policy_rows_off_by_1e_3_are_still_rejected(loop, dtype):
    bad = loop_policy(0.5)
    bad[4] = [0.5, 0.501]
    with pytest.raises(ValueError, match=r"policy rows must sum to 1 \(state\(s\) \[4\]"):
        exact.evaluate(loop, bad.astype(dtype))
    with pytest.raises(ValueError, match="obs_policy"):
        exact.policy_on_states(loop, bad.astype(dtype))


def test_float64_tolerance_is_unchanged(loop):
    # 1e-8 is well within float32's reach but not float64's 1e-9.
    bad = loop_policy(0.5)
    bad[4] = [0.5, 0.5 + 1e-8]
    with pytest.raises(ValueError, match="policy"):
        exact.evaluate(loop, bad)
    exact.evaluate(loop, bad.astype(np.float32))  # rounds to a valid float32 row
    ok = loop_policy(0.5)
    ok[4] = [0.5, 0.5 + 1e-10]
    assert exact.evaluate(loop, ok).reward_rate == pytest.approx(0.3, abs=1e-12)


def test_float16_policy_is_judged_as_float32(loop):
    # float16's own precision (eps ~1e-3) would make the check meaningless.
    pi = loop_policy(0.3).astype(np.float16)  # 0.7 + 0.3 in float16 misses 1 by ~1e-4
    assert off_by(pi) > 1e-4
    with pytest.raises(ValueError, match="policy"):
        exact.evaluate(loop, pi)
    exact.evaluate(loop, loop_policy(0.5).astype(np.float16))  # exact rows are fine


@pytest.mark.parametrize("env_id, writer", [
    ("avgreward/LoopMDP-v0", "loop_mdp_model"),
    ("avgreward/AliasedGridworld-v0", "gridworld_model"),
    ("avgreward/AliasedGridworldEpisodic-v0", "gridworld_episodic_model"),
    ("avgreward/ShortCorridor-v0", "corridor_model"),
    ("avgreward/AccessControl-v0", "access_control_model"),
    ("avgreward.envs:avgreward/LoopMDP-v0", "loop_mdp_model"),
])
def test_model_of_an_id_is_the_environments_own_model(env_id, writer):
    from avgreward.envs import access_control, aliased_gridworld, loop_mdp, short_corridor

    modules = (access_control, aliased_gridworld, loop_mdp, short_corridor)
    expected = next(getattr(m, writer) for m in modules if hasattr(m, writer))
    model, want = exact.model_of(env_id), expected()
    assert isinstance(model, TabularModel)
    for field in dataclasses.fields(want):
        got, wanted = getattr(model, field.name), getattr(want, field.name)
        if isinstance(wanted, np.ndarray):
            np.testing.assert_array_equal(got, wanted)
        else:
            assert got == wanted, field.name


def test_model_of_the_loop_gives_its_known_rate():
    model = exact.model_of("avgreward/LoopMDP-v0")
    assert exact.evaluate(model, loop_policy(1.0)).reward_rate == pytest.approx(0.4)


@pytest.mark.parametrize("env_id, words", [
    ("avgreward/PendulumSwingUp-v0", ["has no exact model", "avgreward/LoopMDP-v0"]),
    ("avgreward/PendulumSwingUpContinuous-v0", ["has no exact model"]),
    ("CartPole-v1", ["no exact model"]),
    ("avgreward/NoSuchTask-v0", ["no exact model"]),
])
def test_model_of_an_environment_without_one_names_the_id(env_id, words):
    with pytest.raises(ValueError, match="model_of") as error:
        exact.model_of(env_id)
    assert repr(env_id) in str(error.value)
    for word in words:
        assert word in str(error.value)
