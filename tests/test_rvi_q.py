"""RVI Q-learning: its fused step is the plain-Python box, and f(q) goes to the optimal rate."""

import numpy as np
import pytest

import avgreward
from avgreward import RVIQLearning, exact
from avgreward.envs import access_control as ac
from avgreward.envs.loop_mdp import loop_mdp_model
from avgreward.learners.registry import agent_from_dict
from avgreward.reference import reference_value_control

ACCESS = "avgreward/AccessControl-v0"
LOOP = "avgreward/LoopMDP-v0"
GRID = "avgreward/AliasedGridworld-v0"
PENDULUM = "avgreward/PendulumSwingUp-v0"
OPTIMUM = 2.7476419505724823  # access control's optimal rate (avgreward.exact)

CASES = {
    "fixed access control": (ACCESS, RVIQLearning(alpha=0.1)),
    # the paper's first reference pair: 10 free servers, priority 8, accept
    "fixed observation access control": (ACCESS, RVIQLearning(
        alpha=0.1, reference_state=(10.0, 3.0), reference_action=1)),
    "max access control": (ACCESS, RVIQLearning(alpha=0.1, reference="max")),
    "mean access control": (ACCESS, RVIQLearning(alpha=0.1, reference="mean")),
    "max gridworld ties": (GRID, RVIQLearning(alpha=0.1, epsilon=0.3, reference="max")),
    "mean loop": (LOOP, RVIQLearning(alpha=0.2, epsilon=0.5, reference="mean")),
    "fixed pendulum tiles": (PENDULUM, RVIQLearning(alpha=0.5, epsilon=0.05,
                                                    reference_state=(0.0, 0.0))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fused_step_is_the_box_bit_for_bit(name):
    """Chunks of 333 steps; every output equal, not close (rbar is f(q) after every step)."""
    env_id, agent = CASES[name]
    box = reference_value_control(env_id, agent, 2_000, seed=7)
    box["rewards"] = box["rewards"].astype(np.float32)  # as Result keeps them
    fused = avgreward.train(env_id, agent, 2_000, seed=7, chunk_steps=333, rbar_every=1,
                            record_actions=True)
    outputs = {"w": fused.weights["w"], "rbar": fused.rbar, "actions": fused.actions,
               "rewards": fused.rewards}
    for output, value in outputs.items():
        np.testing.assert_array_equal(value, box[output], err_msg=output)
    assert len(np.unique(box["actions"])) > 1 and np.abs(box["w"]).max() > 1e-3


def _f(reference, q, ref_sa):
    return {"fixed": q[ref_sa], "max": q.max(), "mean": q.mean()}[reference]


@pytest.mark.parametrize("reference", ["fixed", "max", "mean"])
def test_the_values_reach_the_fixed_point_with_f_equal_to_the_optimal_rate(reference):
    """The loop MDP (deterministic): q = q* + r* - f(q*) (Bellman's optimality equation
    with f(q) = r*), to 1e-6, from a behaviour that explores half the time."""
    model = loop_mdp_model()
    optimal = exact.relative_value_iteration(model)
    features = exact.feature_matrix(model, LOOP)
    ref_sa = (int(np.flatnonzero(features[:, 0])[0]), 0)  # feature 0, action 0
    target = optimal.q + optimal.reward_rate - _f(reference, optimal.q, ref_sa)
    for seed in range(2):
        result = avgreward.train(LOOP, RVIQLearning(alpha=0.01, epsilon=0.5,
                                                    reference=reference), 1_000_000, seed=seed)
        q = features @ result.weights["w"]
        np.testing.assert_allclose(q, target, rtol=0, atol=1e-6)
        assert _f(reference, q, ref_sa) == pytest.approx(optimal.reward_rate, abs=1e-6)
        assert result.rbar[-1] == pytest.approx(optimal.reward_rate, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("reference", ["fixed", "max", "mean"])
def test_f_goes_to_the_optimal_rate_on_access_control(reference):
    """3,000,000 steps, alpha 0.01: on each of 4 seeds f(q) over the run's second half is
    within 0.04 of r* = 2.7476 and the greedy policy's exact rate within 2% of it (R-bar
    in place of f, or f's sign turned, drifts or diverges)."""
    model = ac.access_control_model()
    assert exact.relative_value_iteration(model).reward_rate == pytest.approx(OPTIMUM)
    features = exact.feature_matrix(model, ACCESS)
    for seed in range(4):
        result = avgreward.train(ACCESS, RVIQLearning(alpha=0.01, reference=reference),
                                 3_000_000, seed=seed, rbar_every=1_000)
        f = result.rbar[len(result.rbar) // 2:].mean()
        assert f == pytest.approx(OPTIMUM, abs=0.04), seed
        q = features @ result.weights["w"]
        assert _f(reference, q, (0, 0)) == pytest.approx(result.rbar[-1], abs=0.5), seed
        greedy = np.zeros_like(q)
        greedy[np.arange(len(q)), np.argmax(q, axis=1)] = 1.0
        assert exact.evaluate(model, greedy).reward_rate > 0.98 * OPTIMUM, seed


@pytest.mark.parametrize("reference", ["max", "mean"])
def test_a_continued_run_is_the_whole_run(reference):
    """The max and the sum are kept step by step; they are saved with the run's state."""
    agent = RVIQLearning(alpha=0.1, reference=reference)
    whole = avgreward.train(ACCESS, agent, 3_000, seed=2, rbar_every=1)
    first = avgreward.train(ACCESS, agent, 1_000, seed=2, rbar_every=1)
    rest = avgreward.train(ACCESS, agent, 2_000, init=first, rbar_every=1)
    np.testing.assert_array_equal(rest.weights["w"], whole.weights["w"])
    np.testing.assert_array_equal(rest.rbar, whole.rbar[1_000:])


def test_the_settings_round_trip_and_the_runner_runs_them(tmp_path):
    from avgreward.experiment import run_experiment

    agents = [RVIQLearning(alpha=0.1), RVIQLearning(alpha=0.1, reference="mean"),
              RVIQLearning(alpha=0.1, reference_state=(10, 3), reference_action=1)]
    for agent in agents:
        assert agent_from_dict(agent.to_dict()) == agent
    assert agents[2].reference_state == (10.0, 3.0)
    experiment = run_experiment(tmp_path / "e", ACCESS, agents, 1, 2_000, workers=1,
                                progress=False)
    direct = avgreward.train(ACCESS, agents[2], 2_000, seed=0, bin_size=experiment.bin_size)
    np.testing.assert_array_equal(experiment.result(2, 0).weights["w"], direct.weights["w"])


@pytest.mark.parametrize("make, message", [
    (lambda: RVIQLearning(alpha=0.1, reference="median"), "reference must be 'fixed', 'max'"),
    (lambda: RVIQLearning(alpha=0.1, reference=None), "reference must be"),
    (lambda: RVIQLearning(alpha=-0.1), "alpha must be"),
    (lambda: RVIQLearning(alpha=0.1, epsilon=2.0), "epsilon must lie"),
    (lambda: RVIQLearning(alpha=0.1, reference_state=-1), "reference_state must be"),
    (lambda: RVIQLearning(alpha=0.1, reference_state=1.5), "reference_state must be"),
    (lambda: RVIQLearning(alpha=0.1, reference_state=(0.0, float("nan"))),
     "reference_state must be"),
    (lambda: RVIQLearning(alpha=0.1, reference_action=True), "reference_action must be"),
    (lambda: RVIQLearning(alpha=0.1, reference="max", reference_state=3),
     "reference_state and reference_action name the fixed"),
    (lambda: avgreward.DifferentialQLearning(alpha=0.1, eta=0.0), "eta must be > 0"),
    (lambda: avgreward.DifferentialQLearning(alpha=0.1, eta=-1.0), "eta must be"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("env_id, agent, message", [
    (PENDULUM, RVIQLearning(alpha=0.1, reference="max"), "reference='max' is the max over"),
    (PENDULUM, RVIQLearning(alpha=0.1, reference="mean"), "reference='mean' is the mean"),
    (PENDULUM, RVIQLearning(alpha=0.1), "reference_state=0 is a feature index of a tabular"),
    (ACCESS, RVIQLearning(alpha=0.1, reference_state=44), "reference_state=44 is a feature"),
    (ACCESS, RVIQLearning(alpha=0.1, reference_action=2), "reference_action must be an action"),
    (ACCESS, RVIQLearning(alpha=0.1, reference_state=(1.0,)), "reference_state: an observ"),
    ("avgreward/PendulumSwingUpContinuous-v0", RVIQLearning(alpha=0.1),
     "needs discrete actions"),
])
def test_settings_that_do_not_fit_the_task_are_named(env_id, agent, message):
    with pytest.raises(ValueError, match=message):
        avgreward.train(env_id, agent, 10, seed=0)


def test_f_the_mean_is_differential_q_learning_with_eta_one_over_the_table():
    """Tabular and from zero, RVI Q-learning with f = mean(q) is Differential Q-learning with
    eta = 1 / (|S| |A|) (R-bar then moves as the mean does; the public code runs its
    "mean" access-control study so): the same actions, the same values up to rounding."""
    rvi = avgreward.train(ACCESS, RVIQLearning(alpha=0.1, reference="mean"), 5_000, seed=3,
                          record_actions=True, rbar_every=1)
    differential = avgreward.train(ACCESS, avgreward.DifferentialQLearning(
        alpha=0.1, eta=1.0 / 88), 5_000, seed=3, record_actions=True, rbar_every=1)
    np.testing.assert_array_equal(rvi.actions, differential.actions)
    np.testing.assert_allclose(rvi.weights["w"], differential.weights["w"], rtol=0, atol=1e-9)
    # R-bar after each step is f after it: the mean that differential Q-learning's R-bar is
    np.testing.assert_allclose(rvi.rbar, differential.rbar, rtol=0, atol=1e-9)


def test_a_saved_run_loads_evaluates_and_continues(tmp_path):
    """Saved without pickle (the observation reference as a JSON list), read back equal;
    its frozen greedy policy near the optimum; continued from disk as from memory."""
    agent = RVIQLearning(alpha=0.01, reference_state=(4.0, 3.0), reference_action=1)
    result = avgreward.train(ACCESS, agent, 1_000_000, seed=1)
    loaded = avgreward.load_result(result.save(tmp_path / "run"))
    assert loaded.agent == agent and loaded.agent.reference_state == (4.0, 3.0)
    np.testing.assert_array_equal(loaded.weights["w"], result.weights["w"])
    np.testing.assert_array_equal(loaded.rbar, result.rbar)
    frozen = avgreward.evaluate(loaded, 200_000, greedy=True)
    assert frozen.reward_rate > 0.97 * OPTIMUM
    more = [avgreward.train(ACCESS, agent, 1_000, init=r).weights["w"] for r in (result, loaded)]
    np.testing.assert_array_equal(*more)
