"""Differential Q-planning and TD-planning (avgreward.plan): against a plain-Python
reference written from the paper's pseudocode, against exact solutions, and bad input."""

import doctest

import numpy as np
import pytest

import avgreward
from avgreward import exact, planning
from avgreward.envs.model import TabularModel
from avgreward.planning import DifferentialQPlanning, DifferentialTDPlanning, plan

ACCESS = "avgreward/AccessControl-v0"
RIVER = "avgreward/RiverSwim-v0"


def reference_plan(model, settings, updates, seed):
    """Wan, Naik & Sutton (2021)'s planning algorithms, line by line, in plain Python.

    Returns ``(values, rbar after each update, reward of each update)``.
    """
    rng = np.random.default_rng(seed)
    P, R = model.P.tolist(), model.R.tolist()
    n_states, n_actions = len(R), len(R[0])
    alpha, eta = settings.alpha, settings.eta
    control = isinstance(settings, DifferentialQPlanning)
    Q = [[0.0] * n_actions for _ in range(n_states)]
    V = [0.0] * n_states
    rbar = 0.0
    rbars, rewards = [], []
    for _ in range(updates):
        # Sample a state-action pair S, A (uniformly over all pairs).
        k = min(int(rng.random() * (n_states * n_actions)), n_states * n_actions - 1)
        S, A = divmod(k, n_actions)
        # Sample R, S' from the model (R is the model's expected reward).
        u = rng.random()
        S_next = max(j for j in range(n_states) if P[S][A][j] > 0.0)
        c = 0.0
        for j in range(n_states):
            c += P[S][A][j]
            if u < c:
                S_next = j
                break
        reward = R[S][A]
        if control:
            # delta = R - Rbar + max_a Q(S', a) - Q(S, A)
            delta = reward - rbar + max(Q[S_next]) - Q[S][A]
            Q[S][A] = Q[S][A] + alpha * delta
            rbar = rbar + eta * alpha * delta
        else:
            # rho = pi(A | S) / b(A | S), b uniform
            rho = settings.policy[S][A] / (1.0 / n_actions)
            delta = reward - rbar + V[S_next] - V[S]
            V[S] = V[S] + alpha * rho * delta
            rbar = rbar + eta * alpha * rho * delta
        rbars.append(rbar)
        rewards.append(reward)
    values = np.array(Q) if control else np.array(V)
    return values, np.array(rbars), np.array(rewards, dtype=np.float32)


def random_model(n_states=5, n_actions=3, seed=0):
    """A dense random model: every transition possible, 3 actions (rho = 3 pi)."""
    rng = np.random.default_rng(seed)
    P = rng.random((n_states, n_actions, n_states))
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(n_states, n_actions))
    start = np.full(n_states, 1.0 / n_states)
    return TabularModel(P=P, R=R, start=start,
                        observations=np.arange(n_states, dtype=np.float64)[:, None])


def random_policy(model, seed=1):
    pi = np.random.default_rng(seed).random((model.n_states, model.n_actions))
    return pi / pi.sum(axis=1, keepdims=True)


def _cases():
    access, river, dense = exact.model_of(ACCESS), exact.model_of(RIVER), random_model()
    return [
        (access, DifferentialQPlanning(alpha=0.1, eta=0.5)),
        (river, DifferentialQPlanning(alpha=0.01, eta=1.0)),
        (dense, DifferentialQPlanning(alpha=0.3, eta=0.2)),
        (access, DifferentialTDPlanning(alpha=0.1, eta=0.5, policy=random_policy(access))),
        (dense, DifferentialTDPlanning(alpha=0.2, eta=0.7, policy=random_policy(dense))),
    ]


@pytest.mark.parametrize("case", range(5))
def test_each_update_equals_the_plain_python_reference_bit_for_bit(case):
    model, settings = _cases()[case]
    result = plan(model, settings, 3_000, seed=case)
    values, rbars, rewards = reference_plan(model, settings, 3_000, seed=case)
    assert np.array_equal(result.weights["w"], values)
    assert np.array_equal(result.rbar, rbars)
    assert result.final_rbar == rbars[-1]
    assert np.array_equal(result.rewards, rewards)
    assert np.array_equal(result.rbar_steps, np.arange(1, 3_001))


def test_the_chunks_of_draws_do_not_change_the_result(monkeypatch):
    model, settings = _cases()[3]
    whole = plan(model, settings, 1_000, seed=4, rbar_every=10)
    monkeypatch.setattr(planning, "_CHUNK", 7)
    chunked = plan(model, settings, 1_000, seed=4, rbar_every=10)
    assert np.array_equal(whole.weights["w"], chunked.weights["w"])
    assert np.array_equal(whole.rbar, chunked.rbar) and whole.rbar.size == 100
    assert np.array_equal(whole.rbar_steps, np.arange(10, 1_001, 10))
    assert not np.array_equal(plan(model, settings, 1_000, seed=5).weights["w"],
                              whole.weights["w"])


def test_the_docstring_example_runs_as_written():
    assert doctest.testmod(planning).failed == 0


def test_the_result_is_the_packages_result():
    model = exact.model_of(RIVER)
    settings = DifferentialQPlanning(alpha=0.01, eta=1.0)
    result = plan(model, settings, 500, seed=0, rbar_every=100)
    assert isinstance(result, avgreward.Result)
    assert result.agent is settings and result.seed == 0 and result.steps == 500
    assert result.env_id == "" and result.info["sampling"] == "uniform"
    assert result.features == avgreward.one_hot(6)
    assert result.weights["w"].shape == (6, 2) and result.rbar.shape == (5,)
    assert result.value(3) == result.weights["w"][3].max()
    with pytest.raises(ValueError, match="only results of the package's agents"):
        result.save("never-written")


# --- fixed points against the exact analysis --------------------------------------------


def _greedy(q):
    return np.eye(q.shape[1])[q.argmax(axis=1)]


def test_q_planning_on_riverswim_reaches_the_optimal_rate():
    model = exact.model_of(RIVER)
    optimal = exact.policy_iteration(model)
    result = plan(model, DifferentialQPlanning(alpha=0.005, eta=1.0), 1_000_000, seed=0)
    # The uniform random policy earns 2.9, always-left 5: far outside 1% of r* = 668.8.
    assert abs(result.rbar[-100_000:].mean() - optimal.reward_rate) < 0.01 * optimal.reward_rate
    assert np.array_equal(_greedy(result.weights["w"]), optimal.policy)  # always right


def test_q_planning_on_access_control_reaches_the_optimal_rate():
    model = exact.model_of(ACCESS)
    optimal = exact.policy_iteration(model)
    result = plan(model, DifferentialQPlanning(alpha=0.01, eta=1.0), 2_000_000, seed=0)
    # r* = 2.75; accepting everyone earns 2.25 (uniform random 1.7): 0.1 tells them apart.
    assert abs(result.rbar[-200_000:].mean() - optimal.reward_rate) < 0.1
    greedy = exact.evaluate(model, _greedy(result.weights["w"])).reward_rate
    assert greedy > optimal.reward_rate - 0.1


def test_td_planning_reaches_the_policys_rate_and_values_up_to_a_constant():
    model = exact.model_of(RIVER)
    pi = np.tile([0.1, 0.9], (6, 1))  # far from the uniform b: a missing rho shows
    truth = exact.evaluate(model, pi)
    uniform = exact.evaluate(model, np.full((6, 2), 0.5))
    result = plan(model, DifferentialTDPlanning(alpha=0.01, eta=1.0, policy=pi), 1_000_000,
                  seed=1)
    assert abs(result.rbar[-100_000:].mean() - truth.reward_rate) < 0.01 * truth.reward_rate
    v = result.weights["w"]
    error = np.abs((v - v.mean()) - (truth.v - truth.v.mean())).max()
    assert error < 0.06 * np.ptp(truth.v)
    # The uniform policy's values are nowhere near: the tolerance tells them apart.
    assert np.abs((uniform.v - uniform.v.mean()) - (truth.v - truth.v.mean())).max() \
        > 0.3 * np.ptp(truth.v)


def test_a_step_size_too_large_raises_divergence_with_the_partial_result():
    model = exact.model_of(RIVER)
    with pytest.raises(avgreward.DivergenceError, match="planning diverged") as caught:
        plan(model, DifferentialQPlanning(alpha=50.0, eta=50.0), 100_000, seed=0)
    error = caught.value
    assert 0 < error.step < 100_000 and error.result.steps == error.step
    assert error.result.rbar.size == error.step and np.isfinite(error.result.rbar).all()


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, value", [
    ("alpha", 0.0), ("alpha", -0.1), ("alpha", float("nan")), ("alpha", "0.1"),
    ("eta", 0.0), ("eta", -1.0), ("eta", float("inf")), ("eta", True),
])
def test_bad_step_sizes_name_the_setting(name, value):
    good = {"alpha": 0.1, "eta": 0.5}
    with pytest.raises(ValueError, match=f"^{name} must be a finite number > 0"):
        DifferentialQPlanning(**{**good, name: value})
    with pytest.raises(ValueError, match=f"^{name} must be a finite number > 0"):
        DifferentialTDPlanning(**{**good, name: value}, policy=[[0.5, 0.5]])


@pytest.mark.parametrize("policy", [[[0.5, 0.6]], [[-0.5, 1.5]], [0.5, 0.5], "uniform",
                                    [[float("nan"), 1.0]]])
def test_bad_policies_name_the_setting(policy):
    with pytest.raises(ValueError, match="^policy must be an"):
        DifferentialTDPlanning(alpha=0.1, eta=0.5, policy=policy)


@pytest.mark.parametrize("updates", [0, -5, 1.5, True, "10", None])
def test_bad_updates_name_the_setting(updates):
    with pytest.raises(ValueError, match="^updates must be an integer"):
        plan(exact.model_of(RIVER), DifferentialQPlanning(alpha=0.1, eta=0.5), updates, seed=0)


def test_other_bad_arguments_name_themselves():
    model, q = exact.model_of(RIVER), DifferentialQPlanning(alpha=0.1, eta=0.5)
    for not_a_model in (RIVER, {"P": model.P}, None):
        with pytest.raises(ValueError, match="^model must be an avgreward.envs.model.TabularModel"):
            plan(not_a_model, q, 10, seed=0)
    with pytest.raises(ValueError, match="^settings must be DifferentialQPlanning"):
        plan(model, avgreward.DifferentialQLearning(alpha=0.1, eta=0.5), 10, seed=0)
    with pytest.raises(ValueError, match=r"^settings.policy must be \(n_states, n_actions\)"):
        plan(model, DifferentialTDPlanning(alpha=0.1, eta=0.5, policy=[[0.5, 0.5]]), 10, seed=0)
    for seed in (-1, 1.0, "0", True):
        with pytest.raises(ValueError, match="^seed must be an integer >= 0"):
            plan(model, q, 10, seed=seed)
    for every in (0, 11, 2.0):
        with pytest.raises(ValueError, match="^rbar_every must be an integer"):
            plan(model, q, 10, seed=0, rbar_every=every)
    episodic = exact.model_of("avgreward/ShortCorridor-v0")
    with pytest.raises(ValueError, match="^model: planning is for continuing tasks"):
        plan(episodic, q, 10, seed=0)
    with pytest.raises(ValueError, match="unknown setting"):
        q.replace(gamma=0.9)
    assert q.replace(eta=0.25) == DifferentialQPlanning(alpha=0.1, eta=0.25)
