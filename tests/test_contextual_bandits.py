"""The linear contextual bandit and its four learners against plain Python and exact truth.

Each learner's fused run is replayed by a plain-Python reference that follows
its paper's pseudocode line by line (Li et al. 2010's Algorithm 1, Foster &
Rakhlin 2020's Algorithm 1, Sutton & Barto's gradient bandit), making the
same draws from the run's generator: bit for bit.  The least-squares
learners' recursive update is checked against the papers' explicit
``A^-1 b``; the regret tests use margins a broken learner cannot meet.
"""

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import avgreward
from avgreward import exact
from avgreward.envs import contextual_bandit as cb
from avgreward.learners.contextual import (
    EpsilonGreedyLeastSquares,
    LinUCB,
    SoftmaxBandit,
    SquareCB,
    squarecb_gamma,
)

ENV = "avgreward/LinearContextualBandit-v0"
INSTANCE = cb.default_instance()
X, MEANS = INSTANCE.features, INSTANCE.means
M, D = X.shape
K = INSTANCE.arms
GAPS = cb.regret_gaps(INSTANCE)


# --- the environment --------------------------------------------------------------------------


def test_registered_and_checked():
    env = gymnasium.make(ENV)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.fused is cb.LINEAR_CONTEXTUAL_BANDIT
    other = cb.LinearContextualBanditEnv(dimension=3, arms=2, contexts=4, noise="gaussian",
                                         noise_scale=0.2, seed=7)
    check_env(other, skip_render_check=True)
    assert other.fused is None  # other settings are stepped from Python, never the fused loop


@pytest.mark.parametrize("setting, value, name", [
    ("arms", 1, "arms"), ("dimension", 0, "dimension"), ("contexts", 0, "contexts"),
    ("noise", "laplace", "noise"), ("noise_scale", 0.0, "noise_scale"), ("seed", -1, "seed"),
    ("arms", 2.0, "arms"),
])
def test_bad_settings_named(setting, value, name):
    with pytest.raises(ValueError, match=name):
        cb.bandit_instance(**{setting: value})
    with pytest.raises(ValueError, match=name):
        cb.LinearContextualBanditEnv(**{setting: value})


def test_exact_optimal_rate_is_the_finite_sum_and_rvi_agrees():
    by_hand = sum(max(float(X[c] @ INSTANCE.theta[a]) for a in range(K)) for c in range(M)) / M
    assert cb.optimal_rate(INSTANCE) == pytest.approx(by_hand, abs=1e-15)
    rvi = exact.relative_value_iteration(cb.bandit_model(INSTANCE))
    assert rvi.reward_rate == pytest.approx(by_hand, abs=1e-12)
    assert np.all(GAPS >= 0) and np.all(GAPS.min(axis=1) == 0)
    assert np.all((MEANS >= 0) & (MEANS <= 1))  # Bernoulli probabilities


def test_normal_quantile_to_double_precision():
    from scipy.special import ndtri
    v = np.concatenate([np.linspace(1e-12, 1 - 1e-12, 2001), [5e-324, 1e-300, 1 - 2.0 ** -53]])
    got = np.array([cb.normal_quantile(x) for x in v])
    np.testing.assert_allclose(got[:-3], ndtri(v[:-3]), rtol=4e-15, atol=4e-15)
    # The extremes (v = 0 is read as the smallest double): finite, to Acklam's 1.2e-9.
    np.testing.assert_allclose(got[-3:], ndtri(v[-3:]), rtol=2e-9)


def test_simulator_matches_model():
    """Rewards' means and context frequencies from the one step function vs the table."""
    rng = np.random.default_rng(3)
    for noise in ("bernoulli", "gaussian"):
        inst = cb.bandit_instance(dimension=2, arms=2, contexts=3, noise=noise, seed=1)
        n = 200_000
        state = np.zeros(1)
        sums = np.zeros((3, 2))
        counts = np.zeros((3, 2))
        nxt = np.zeros(3)
        code = cb.BERNOULLI if noise == "bernoulli" else cb.GAUSSIAN
        for i in range(n):
            c, a = int(state[0]), i % 2
            r = cb.bandit_transition(inst.means, code, inst.noise_scale, state, float(a),
                                     rng.random(), state)
            sums[c, a] += r
            counts[c, a] += 1
            nxt[int(state[0])] += 1
        sd = (0.5 if noise == "bernoulli" else inst.noise_scale) / np.sqrt(counts)
        assert np.all(np.abs(sums / counts - inst.means) < 5 * sd)
        assert np.all(np.abs(nxt / n - 1 / 3) < 5 * np.sqrt(2 / 9 / n))


# --- plain-Python references, line by line ---------------------------------------------------


def _argmax_uniform(scores, u):
    best = max(scores)
    ties = [a for a in range(len(scores)) if scores[a] == best]
    return ties[min(int(u * len(ties)), len(ties) - 1)]


def _sample(probs, u):
    cumulative = 0.0
    for a in range(len(probs) - 1):
        cumulative += probs[a]
        if u < cumulative:
            return a
    return len(probs) - 1


class _Ridge:
    """Per-arm A^-1, b, theta as plain lists; updated as recursive least squares."""

    def __init__(self, ridge=1.0):
        self.ainv = [[[1.0 / ridge if i == j else 0.0 for j in range(D)] for i in range(D)]
                     for _ in range(K)]
        self.b = [[0.0] * D for _ in range(K)]
        self.theta = [[0.0] * D for _ in range(K)]

    def predict(self, a, x):
        s = 0.0
        for j in range(D):
            s += self.theta[a][j] * x[j]
        return s

    def update(self, a, x, r):
        A, th = self.ainv[a], self.theta[a]
        z, denom, fit = [0.0] * D, 1.0, 0.0
        for i in range(D):
            s = 0.0
            for j in range(D):
                s += A[i][j] * x[j]
            z[i] = s
            denom += x[i] * s
            fit += x[i] * th[i]
        inv = 1.0 / denom
        for i in range(D):
            zi = z[i] * inv
            for j in range(D):
                A[i][j] -= zi * z[j]
        gain = (r - fit) * inv
        for i in range(D):
            self.b[a][i] += r * x[i]
            th[i] += gain * z[i]


def _env_step(c, a, u):
    # The registered instance: context floor(M u), Bernoulli reward from the remainder.
    scaled = M * u
    j = min(int(scaled), M - 1)
    v = min(max(scaled - j, 0.0), 1.0 - 2.0 ** -53)
    return (1.0 if v < MEANS[c, a] else 0.0), j


def reference_run(agent, steps, seed, gamma=None):
    """The run's expected regrets, theta and R-bar, by the papers' pseudocode in plain Python."""
    rng = np.random.default_rng(seed)
    c = min(int(M * rng.random()), M - 1)
    ridge = _Ridge(getattr(agent, "ridge", 1.0))
    theta = [[0.0] * D for _ in range(K)]  # the softmax bandit's preferences' weights
    rbar = 0.0
    regret = []
    for t in range(1, steps + 1):
        x = [float(v) for v in X[c]]
        probs = None
        if isinstance(agent, EpsilonGreedyLeastSquares):
            u1, u2 = rng.random(), rng.random()
            if u1 < agent.epsilon:
                a = min(int(u2 * K), K - 1)
            else:
                a = _argmax_uniform([ridge.predict(b, x) for b in range(K)], u2)
        elif isinstance(agent, LinUCB):
            # Li et al. (2010), Algorithm 1: p_a = theta_a . x + alpha sqrt(x^T A_a^-1 x).
            u = rng.random()
            p = []
            for b in range(K):
                A = ridge.ainv[b]
                mean, width = 0.0, 0.0
                for i in range(D):
                    mean += ridge.theta[b][i] * x[i]
                    s = 0.5 * A[i][i] * x[i]
                    for j in range(i + 1, D):
                        s += A[i][j] * x[j]
                    width += x[i] * s
                p.append(mean + agent.bonus * math.sqrt(max(2.0 * width, 0.0)))
            a = _argmax_uniform(p, u)
        elif isinstance(agent, SquareCB):
            # Foster & Rakhlin (2020), Algorithm 1 (mu = K), in rewards: b = argmax yhat.
            u = rng.random()
            yhat = [ridge.predict(b, x) for b in range(K)]
            best = max(range(K), key=lambda b: (yhat[b], -b))
            probs = [0.0] * K
            rest = 0.0
            for b in range(K):
                if b != best:
                    probs[b] = 1.0 / (K + gamma * (yhat[best] - yhat[b]))
                    rest += probs[b]
            probs[best] = 1.0 - rest
            a = _sample(probs, u)
        else:
            # Gradient bandit: pi = softmax(theta . x).
            u = rng.random()
            h = []
            for b in range(K):
                s = 0.0
                for j in range(D):
                    s += theta[b][j] * x[j]
                h.append(s)
            top = max(h)
            e = [math.exp(v - top) for v in h]
            total = 0.0
            for v in e:
                total += v
            probs = [v / total for v in e]
            a = _sample(probs, u)
        r, c_next = _env_step(c, a, rng.random())
        if isinstance(agent, SoftmaxBandit):
            delta = r - rbar
            for b in range(K):
                g = agent.alpha * delta * ((1.0 if b == a else 0.0) - probs[b])
                for j in range(D):
                    theta[b][j] += g * x[j]
            rbar += agent.alpha_rbar * delta
        else:
            ridge.update(a, x, r)
            rbar += (r - rbar) / t
        regret.append(GAPS[c, a])
        c = c_next
    weights = theta if isinstance(agent, SoftmaxBandit) else ridge.theta
    return np.array(regret), np.array(weights), rbar, ridge


AGENTS = [EpsilonGreedyLeastSquares(epsilon=0.2), LinUCB(), SquareCB(gamma=30.0),
          SoftmaxBandit(alpha=0.5, alpha_rbar=0.05)]


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: type(a).__name__)
def test_fused_run_equals_plain_python_bit_for_bit(agent):
    steps = 400
    result = avgreward.train(ENV, agent, steps, seed=5)
    regret, theta, rbar, _ = reference_run(agent, steps, 5, gamma=getattr(agent, "gamma", None))
    np.testing.assert_array_equal(result.weights["regret"], regret)
    np.testing.assert_array_equal(result.weights["theta"], theta)
    assert result.final_rbar == rbar


def test_recursive_least_squares_is_the_papers_inverse():
    """theta_a after a run equals Li et al.'s A_a^-1 b_a with A_a, b_a summed explicitly."""
    agent = LinUCB()
    steps = 3_000
    result = avgreward.train(ENV, agent, steps, seed=2, record_actions=True)
    _, theta, _, ridge = reference_run(agent, steps, 2)
    # The contexts of the run, replayed: A_a = I + sum x x^T, b_a = sum r x.
    rng = np.random.default_rng(2)
    c = min(int(M * rng.random()), M - 1)
    A = np.array([np.eye(D) for _ in range(K)])
    b = np.zeros((K, D))
    for t in range(steps):
        a = int(result.actions[t])
        rng.random()  # LinUCB's tie-breaking draw
        r, c_next = _env_step(c, a, rng.random())
        A[a] += np.outer(X[c], X[c])
        b[a] += r * X[c]
        c = c_next
    explicit = np.array([np.linalg.solve(A[a], b[a]) for a in range(K)])
    np.testing.assert_allclose(result.weights["theta"], explicit, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.array(ridge.ainv), np.linalg.inv(A), rtol=0, atol=1e-10)


def test_squarecb_gamma_is_theorem_1s():
    T = 10_000
    reg = K * D * math.log(1 + T / D)
    assert squarecb_gamma(K, D, T) == pytest.approx(math.sqrt(K * T / (reg + math.log(40))))


@pytest.mark.parametrize("make, name", [
    (lambda: LinUCB(delta=1.0), "delta"), (lambda: SquareCB(gamma=0.0), "gamma"),
    (lambda: EpsilonGreedyLeastSquares(epsilon=1.5), "epsilon"),
    (lambda: SoftmaxBandit(alpha=-1.0), "alpha"), (lambda: LinUCB(ridge=0), "ridge"),
])
def test_bad_learner_settings_named(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_refuses_other_environments():
    with pytest.raises(ValueError, match="LinearContextualBandit"):
        avgreward.train("avgreward/LoopMDP-v0", LinUCB(), 10, seed=0)


# --- regret against the exact optimum --------------------------------------------------------


def test_regret_margins_a_broken_learner_cannot_meet():
    """After 20,000 steps (5 seeds): LinUCB far below epsilon-greedy with epsilon fixed
    (linear regret epsilon * mean gap per step), SquareCB and the softmax bandit far below
    uniform's linear regret (mean gap per step)."""
    T, seeds = 20_000, range(5)
    uniform = GAPS.mean() * T

    def mean_regret(agent):
        return np.mean([avgreward.train(ENV, agent, T, seed=s).weights["regret"].sum()
                        for s in seeds])

    eps = EpsilonGreedyLeastSquares(epsilon=0.1)
    greedy_floor = 0.1 * GAPS.mean() * T  # its exploration alone
    assert mean_regret(eps) > 0.9 * greedy_floor
    assert mean_regret(LinUCB()) < 0.6 * mean_regret(eps)
    assert mean_regret(SquareCB()) < 0.5 * uniform
    assert mean_regret(SoftmaxBandit()) < 0.3 * uniform
