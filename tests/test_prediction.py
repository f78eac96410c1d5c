"""Average-reward prediction: differential TD (on- and off-policy) and average-cost TD.

Each learner is its box step by step; tabular runs reach the exact differential
values and the target's rate; linear runs reach the projected fixed point of
:func:`avgreward.exact.differential_td_fixed_point`; bad settings are named.
"""

import json

import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.agents import AverageCostTD, DifferentialTD
from avgreward.experiment import run_experiment
from avgreward.features import TileCoder
from avgreward.learners.registry import agent_from_dict
from avgreward.reference import reference_prediction

ACCESS = "avgreward/AccessControl-v0"
LOOP = "avgreward/LoopMDP-v0"
LOOP_MODEL = exact.model_of(LOOP)
ACCESS_MODEL = exact.model_of(ACCESS)

# The paper's prediction task: the target picks either loop at random, the
# behaviour goes left 9 times in 10 (elsewhere both actions do the same).
TARGET = np.full((9, 2), 0.5)
BEHAVIOUR = TARGET.copy()
BEHAVIOUR[0] = [0.9, 0.1]
# Access control: accept with a probability that falls with the priority's
# reward and the free servers (a policy with some structure), and a behaviour
# that accepts more often.
_free, _priority = ACCESS_MODEL.observations[:, 0], ACCESS_MODEL.observations[:, 1]
_accept = np.clip(0.2 + 0.2 * _priority + 0.03 * _free, 0.05, 0.95)
ACCESS_TARGET = np.stack([1 - _accept, _accept], axis=1)
ACCESS_BEHAVIOUR = np.full_like(ACCESS_TARGET, 0.5)



def _second_half(rbar):
    """The R-bar trace's second half (a long run records it every few steps)."""
    return rbar[rbar.size // 2:]


CASES = {
    "differential td off-policy loop": (LOOP, DifferentialTD(alpha=0.1, eta=0.5, target=TARGET,
                                                            behaviour=BEHAVIOUR), None),
    "differential td traces loop": (LOOP, DifferentialTD(alpha=0.1, eta=0.5, lambda_=0.7,
                                                        target=TARGET, behaviour=BEHAVIOUR),
                                    None),
    "differential td off-policy access": (ACCESS, DifferentialTD(
        alpha=0.1, eta=0.2, target=ACCESS_TARGET, behaviour=ACCESS_BEHAVIOUR), None),
    "differential td tiles loop": (LOOP, DifferentialTD(alpha=0.1, eta=0.5, target=TARGET,
                                                       behaviour=BEHAVIOUR),
                                   TileCoder(-2, 10, tiles=4, tilings=2)),
    "average-cost td access": (ACCESS, AverageCostTD(alpha=0.1, beta=0.01,
                                                    target=ACCESS_TARGET), None),
    "average-cost td traces loop": (LOOP, AverageCostTD(alpha=0.1, beta=0.01, lambda_=0.5,
                                                       target=TARGET), None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_learner_is_its_box_step_by_step(name):
    env, agent, features = CASES[name]
    run = avgreward.train(env, agent, 3_000, seed=4, features=features, record_actions=True,
                          rbar_every=1, chunk_steps=1_000)
    box = reference_prediction(env, agent, 3_000, seed=4, features=features)
    np.testing.assert_array_equal(run.actions, box["actions"])
    np.testing.assert_array_equal(run.rewards, box["rewards"])
    np.testing.assert_array_equal(run.rbar, box["rbar"])
    np.testing.assert_array_equal(run.weights["w"], box["w"])


@pytest.mark.parametrize("env, model, target, behaviour", [
    (LOOP, LOOP_MODEL, TARGET, BEHAVIOUR),
    (LOOP, LOOP_MODEL, TARGET, None),
    (ACCESS, ACCESS_MODEL, ACCESS_TARGET, ACCESS_BEHAVIOUR),
])
def test_the_tabular_fixed_point_is_the_exact_differential_values(env, model, target,
                                                                  behaviour):
    truth = exact.evaluate(model, target)
    point = exact.differential_td_fixed_point(model, env, target, behaviour, eta=0.5)
    assert point.reward_rate == pytest.approx(truth.reward_rate, abs=1e-10)
    shift = point.values - truth.v
    np.testing.assert_allclose(shift, shift[0], atol=1e-9)  # v_pi up to a constant
    # the constant is the learner's: Rbar = eta sum(w) from zeros (one active feature)
    assert point.reward_rate == pytest.approx(0.5 * point.weights.sum(), abs=1e-10)
    centered = exact.differential_td_fixed_point(model, env, target, behaviour)
    assert centered.stationary @ centered.values == pytest.approx(0.0, abs=1e-12)
    assert exact.centered_rms_error(centered.values, truth.v) < 1e-9


def test_off_policy_differential_td_learns_the_targets_rate_and_values():
    truth = exact.evaluate(LOOP_MODEL, TARGET)
    behaviour_rate = exact.evaluate(LOOP_MODEL, BEHAVIOUR).reward_rate
    assert (truth.reward_rate, round(behaviour_rate, 12)) == (pytest.approx(0.3), 0.22)
    agent = DifferentialTD(alpha=0.01, eta=0.5, target=TARGET, behaviour=BEHAVIOUR)
    run = avgreward.train(LOOP, agent, 1_000_000, seed=0)
    # Without rho the run would learn the behaviour's 0.22.
    assert abs(_second_half(run.rbar).mean() - truth.reward_rate) < 0.01
    assert exact.centered_rms_error(run.weights["w"], truth.v) < 0.05
    # R-bar moves by eta times what w's sum moves (the eta alpha of the update)
    assert run.rbar[-1] == pytest.approx(0.5 * run.weights["w"].sum(), abs=1e-9)
    point = exact.differential_td_fixed_point(LOOP_MODEL, LOOP, TARGET, BEHAVIOUR, eta=0.5)
    np.testing.assert_allclose(run.weights["w"], point.weights, atol=0.05)


@pytest.mark.parametrize("env, model, agent", [
    (LOOP, LOOP_MODEL, DifferentialTD(alpha=0.01, eta=0.5, lambda_=0.5, target=TARGET,
                                      behaviour=BEHAVIOUR)),
    (ACCESS, ACCESS_MODEL, DifferentialTD(alpha=0.01, eta=0.1, lambda_=0.5,
                                          target=ACCESS_TARGET)),
])
def test_differential_td_with_traces_learns_the_targets_rate_and_values(env, model, agent):
    truth = exact.evaluate(model, np.array(agent.target))
    run = avgreward.train(env, agent, 1_000_000, seed=0)
    assert abs(_second_half(run.rbar).mean() - truth.reward_rate) < 0.01 * max(
        1.0, truth.reward_rate)
    visited = truth.stationary > 1e-3  # rare states are barely learned
    error = exact.centered_rms_error(run.weights["w"][visited], truth.v[visited])
    assert error < 0.1 * np.std(truth.v[visited])


def test_average_cost_td_learns_the_rate_and_values_on_policy():
    truth = exact.evaluate(ACCESS_MODEL, ACCESS_TARGET)
    agent = AverageCostTD(alpha=0.01, beta=0.001, target=ACCESS_TARGET)
    run = avgreward.train(ACCESS, agent, 2_000_000, seed=0)
    assert abs(_second_half(run.rbar).mean() - truth.reward_rate) < 0.02 * truth.reward_rate
    visited = truth.stationary > 1e-3  # rare states are barely learned
    error = exact.centered_rms_error(run.weights["w"][visited], truth.v[visited])
    assert error < 0.1 * np.std(truth.v[visited])


def test_linear_differential_td_reaches_the_projected_fixed_point():
    features = TileCoder(-2, 10, tiles=4, tilings=2)  # 2 of 10 features, states aggregated
    X = exact.feature_matrix(LOOP_MODEL, features)
    point = exact.differential_td_fixed_point(LOOP_MODEL, X, TARGET, BEHAVIOUR, eta=0.5)
    truth = exact.evaluate(LOOP_MODEL, TARGET)
    # The projection costs: neither the target's rate nor its values
    assert abs(point.reward_rate - truth.reward_rate) > 0.1
    assert exact.centered_rms_error(point.values, truth.v) > 0.3
    agent = DifferentialTD(alpha=0.005, eta=0.5, target=TARGET, behaviour=BEHAVIOUR)
    run = avgreward.train(LOOP, agent, 1_000_000, seed=0, features=features)
    np.testing.assert_allclose(run.weights["w"], point.weights, atol=0.02)
    assert abs(_second_half(run.rbar).mean() - point.reward_rate) < 0.005


def test_a_results_frozen_policy_is_a_target(tmp_path):
    control = avgreward.train(LOOP, avgreward.DifferentialQLearning(alpha=0.1, eta=0.5), 2_000,
                              seed=0)
    table = exact.policy_on_states(LOOP_MODEL, control.policy)
    agent = AverageCostTD(alpha=0.1, beta=0.01, target=control)
    np.testing.assert_array_equal(np.array(agent.target), table)


def test_the_settings_round_trip_through_json_and_the_runner(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.dirichlet([1.0, 1.0], size=9)  # floats of every length
    agent = DifferentialTD(alpha=0.1, eta=0.5, lambda_=0.3, target=target,
                           behaviour=BEHAVIOUR)
    back = agent_from_dict(json.loads(json.dumps(agent.to_dict())))
    assert back == agent and np.array_equal(np.array(back.target), target)
    other = AverageCostTD(alpha=0.1, beta=0.01, target=target)
    assert agent_from_dict(json.loads(json.dumps(other.to_dict()))) == other
    experiment = run_experiment(tmp_path / "e", LOOP, [agent, other], 2, 3_000, workers=1,
                                progress=False)
    direct = avgreward.train(LOOP, other, 3_000, seed=1, bin_size=experiment.bin_size)
    np.testing.assert_array_equal(experiment.result(1, 1).weights["w"], direct.weights["w"])
    np.testing.assert_array_equal(experiment.result(1, 1).rbar, direct.rbar)
    saved = avgreward.train(LOOP, agent, 2_000, seed=2)
    saved.save(tmp_path / "r")
    again = avgreward.load_result(tmp_path / "r")
    assert again.agent == agent
    whole = avgreward.train(LOOP, agent, 4_000, seed=2)
    more = avgreward.train(LOOP, agent, 2_000, init=again)
    np.testing.assert_array_equal(more.weights["w"], whole.weights["w"])


_UNCOVERED = BEHAVIOUR.copy()
_UNCOVERED[0] = [1.0, 0.0]


@pytest.mark.parametrize("make, message", [
    (lambda: DifferentialTD(alpha=0.1, eta=0.0, target=TARGET), "eta must be > 0"),
    (lambda: DifferentialTD(alpha=0.1, eta=-1.0, target=TARGET), "eta must be"),
    (lambda: DifferentialTD(alpha=0.1, eta=1.0, target=TARGET, behaviour=_UNCOVERED),
     "behaviour must cover the target: at state 0 the target takes action 1"),
    (lambda: DifferentialTD(alpha=0.1, eta=1.0), "target must be a policy"),
    (lambda: DifferentialTD(alpha=0.1, eta=1.0, target=TARGET * 2), "target: row 0"),
    (lambda: DifferentialTD(alpha=0.1, eta=1.0, target=TARGET, behaviour=TARGET[:3]),
     "behaviour must have the target's shape"),
    (lambda: DifferentialTD(alpha=0.1, eta=1.0, target=TARGET, lambda_=1.5),
     "lambda_ must lie in"),
    (lambda: AverageCostTD(alpha=0.1, beta=0.0, target=TARGET), "beta must be > 0"),
    (lambda: AverageCostTD(alpha=-0.1, beta=0.1, target=TARGET), "alpha must be"),
    (lambda: AverageCostTD(alpha=0.1, beta=0.1, target="left"), "target"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("env, agent, features, message", [
    (ACCESS, DifferentialTD(alpha=0.1, eta=1.0, target=TARGET), None,
     r"target must have shape \(n_states, n_actions\) = \(44, 2\)"),
    ("avgreward/PendulumSwingUp-v0", DifferentialTD(alpha=0.1, eta=1.0, target=TARGET), None,
     "has no exact model"),
    (LOOP, DifferentialTD(alpha=0.1, eta=1.0, target=TARGET, behaviour=BEHAVIOUR),
     TileCoder(0, 9, tiles=3, tilings=1), "states 0 and 1 have the same features"),
    (LOOP, DifferentialTD(alpha=0.1, eta=1.0,
                          target=np.random.default_rng(1).dirichlet([1.0, 1.0], size=9)),
     TileCoder(-1, 9, tiles=5, tilings=2), "no single position of the active features"),
])
def test_settings_that_do_not_fit_the_task_are_refused(env, agent, features, message):
    with pytest.raises(ValueError, match=message):
        avgreward.train(env, agent, 10, seed=0, features=features)


def test_the_fixed_point_refuses_what_it_cannot_solve():
    with pytest.raises(ValueError, match="behaviour must cover the target"):
        exact.differential_td_fixed_point(LOOP_MODEL, LOOP, TARGET, _UNCOVERED)
    with pytest.raises(ValueError, match="eta must be"):
        exact.differential_td_fixed_point(LOOP_MODEL, LOOP, TARGET, eta=0.0)
    with pytest.raises(ValueError, match="features must be"):
        exact.differential_td_fixed_point(LOOP_MODEL, np.eye(3), TARGET)
    with pytest.raises(ValueError, match="values must end in"):
        exact.centered_rms_error(np.zeros(3), np.zeros(9))


def test_centered_rms_error_ignores_constants_and_weights_states():
    v = np.arange(4.0)
    assert exact.centered_rms_error(v + 7.0, v) == 0.0
    curve = exact.centered_rms_error(np.stack([v, v + [1.0, 0, 0, 0]]), v)
    assert curve.shape == (2,) and curve[0] == 0.0
    # uniform d: the centered error is (0.75, -0.25, -0.25, -0.25)
    assert curve[1] == pytest.approx(np.sqrt((0.75**2 + 3 * 0.25**2) / 4))
    assert exact.centered_rms_error(v + [1.0, 0, 0, 0], v, [0, 0.5, 0.5, 0]) == 0.0


def test_a_continued_run_evaluates_its_own_settings_target():
    # The policy tables come from the settings: continuing with another target must
    # evaluate that target, not the saved run's.
    n, k = LOOP_MODEL.n_states, LOOP_MODEL.n_actions
    uniform = np.full((n, k), 1.0 / k).tolist()
    left = np.zeros((n, k))
    left[:, 0] = 1.0
    first = avgreward.train(LOOP, avgreward.DifferentialTD(0.1, 0.1, target=uniform), 2_000,
                            seed=0)
    same = avgreward.train(LOOP, avgreward.DifferentialTD(0.1, 0.1, target=uniform), 30_000,
                           init=first)
    other = avgreward.train(LOOP, avgreward.DifferentialTD(0.1, 0.1, target=left.tolist()),
                            30_000, init=first)
    rate = exact.evaluate(LOOP_MODEL, left).reward_rate
    assert abs(other.final_rbar - rate) < 0.02 < abs(same.final_rbar - rate)
