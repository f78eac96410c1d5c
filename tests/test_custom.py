"""A user's learner through the one door: train, save/load, init=, run_experiment (Custom)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import custom_td
import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.envs import loop_mdp
from avgreward.experiment import run_experiment
from avgreward.learners import Custom, FusedLearner
from avgreward.learners.actor_critic import SOFTMAX, SoftmaxParams

LOOP = "avgreward/LoopMDP-v0"
N = loop_mdp.N_STATES


def agent(**changes):
    return Custom(custom_td.UNIFORM_TD, custom_td.params(N, **changes))


@pytest.mark.slow
def test_a_custom_learner_trains_and_reaches_the_exact_rate():
    truth = exact.evaluate(loop_mdp.loop_mdp_model(), np.full((N, 2), 0.5))
    settings = agent()
    result = avgreward.train(LOOP, settings, 400_000, seed=1)
    assert result.agent is settings and settings.ref == "custom_td:UNIFORM_TD"
    assert abs(result.final_rbar - truth.reward_rate) < 0.01
    # Every run starts from the initial bundle: the settings are not trained in place.
    assert not settings.params.v.any() and result.weights["v"].any()
    again = avgreward.train(LOOP, settings, 400_000, seed=1)
    np.testing.assert_array_equal(again.weights["v"], result.weights["v"])


def test_a_custom_learner_logs_its_td_error_only_if_it_declares_one():
    plain, logged = [], []
    before = avgreward.train(LOOP, agent(), 4_000, seed=1, chunk_steps=1_000, log=plain.append)
    opted = Custom(custom_td.UNIFORM_TD_LOGGED, custom_td.params(N))
    after = avgreward.train(LOOP, opted, 4_000, seed=1, chunk_steps=1_000, log=logged.append)
    assert all(np.isnan(m.mean_abs_td_error) for m in plain)
    assert all(np.isfinite(m.mean_abs_td_error) and m.mean_abs_td_error > 0 for m in logged)
    np.testing.assert_array_equal(after.weights["v"], before.weights["v"])  # nothing else moved
    assert after.final_rbar == before.final_rbar
    with pytest.raises(ValueError, match="td_error must be True or False"):
        FusedLearner(
            "x", custom_td.UniformTDParams, custom_td.UniformTDWork, custom_td.begin,
            custom_td.act, custom_td.learn, custom_td.episode_end, custom_td.finish,
            td_error="yes")
    with pytest.raises(ValueError, match=r"learn: with td_error=True it must return "
                                         r"\(ok, rbar, delta\), but returns a tuple of 2"):
        dataclasses.replace(custom_td.UNIFORM_TD, td_error=True)


def test_custom_is_the_built_in_learner_bit_for_bit():
    softmax = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01,
                                           lambda_w=0.5)
    built_in = avgreward.train(LOOP, softmax, 5000, seed=2)
    n = built_in.features.n_features
    params = SoftmaxParams(np.zeros(n), np.zeros((n, 2)), np.zeros(n), np.zeros((0, 2)),
                           np.zeros(2), np.zeros(2), 0.1, 0.1, 0.01, 1.0, 0.5, 0.0, 0.0)
    custom = avgreward.train(LOOP, Custom(SOFTMAX, params), 5000, seed=2)
    np.testing.assert_array_equal(custom.rewards, built_in.rewards)
    np.testing.assert_array_equal(custom.weights["theta"], built_in.weights["theta"])


@pytest.mark.slow
def test_a_custom_result_saves_loads_and_continues_bit_for_bit(tmp_path):
    whole = avgreward.train(LOOP, agent(), 30_000, seed=3)
    first = avgreward.train(LOOP, agent(), 12_345, seed=3)
    loaded = avgreward.load_result(first.save(tmp_path / "first"))
    assert loaded.agent == first.agent and not loaded.agent.resolved  # nothing imported
    for name, value in first.weights.items():
        np.testing.assert_array_equal(loaded.weights[name], value)
    rest = avgreward.train(LOOP, agent(), 30_000 - 12_345, init=loaded)
    np.testing.assert_array_equal(np.concatenate([first.rewards, rest.rewards]), whole.rewards)
    np.testing.assert_array_equal(rest.weights["v"], whole.weights["v"])
    # The loaded agent runs too: the call names it, so its module may be imported.
    also = avgreward.train(LOOP, loaded.agent, 30_000 - 12_345, init=loaded)
    np.testing.assert_array_equal(also.rewards, rest.rewards)


def test_a_custom_learner_runs_in_an_experiment_with_one_or_two_workers(tmp_path):
    agents = [agent(), agent(alpha=0.1)]
    one = run_experiment(tmp_path / "one", LOOP, agents, seeds=[0, 1], steps=20_000, workers=1)
    two = run_experiment(tmp_path / "two", LOOP, agents, seeds=[0, 1], steps=20_000, workers=2)
    for i in range(2):
        for seed in (0, 1):
            a, b = one.result(i, seed), two.result(i, seed)
            np.testing.assert_array_equal(a.rewards, b.rewards)
            np.testing.assert_array_equal(a.weights["v"], b.weights["v"])
    direct = avgreward.train(LOOP, agents[1], 20_000, seed=1, bin_size=one.bin_size)
    np.testing.assert_array_equal(one.result(1, 1).weights["v"], direct.weights["v"])
    config = json.loads((tmp_path / "one" / "experiment.json").read_text())
    assert config["agents"][0]["learner"] == "custom_td:UNIFORM_TD"
    # Resuming with the same agents runs nothing again.
    again = run_experiment(tmp_path / "one", LOOP, agents, seeds=[0, 1], steps=20_000)
    assert [r.wall_time for r in again.runs] == [r.wall_time for r in one.runs]


def test_reading_a_custom_experiment_imports_nothing(tmp_path):
    """The folder names a module: reading it (load, result, to_frame) must not import it."""
    module = tmp_path / "pwn_learner.py"
    module.write_text("raise SystemExit('pwn_learner was imported')\n")
    run_experiment(tmp_path / "exp", LOOP, agent(), seeds=[0], steps=2_000, workers=1)
    for path in [tmp_path / "exp" / "experiment.json", *(tmp_path / "exp").glob("runs/*.json")]:
        text = path.read_text()
        assert "custom_td:UNIFORM_TD" in text
        path.write_text(text.replace("custom_td:UNIFORM_TD", "pwn_learner:TD"))
    code = ("import sys, avgreward.experiment as e; x = e.load_experiment(sys.argv[1]); "
            "x.summary(); print(x.agents[0].ref, 'pwn_learner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "exp")], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["pwn_learner:TD", "False"]


def test_bad_custom_learners_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="learner must be an avgreward.learners.FusedLearner"):
        Custom(object(), ())
    with pytest.raises(ValueError, match="params must be a UniformTDParams"):
        Custom(custom_td.UNIFORM_TD, (np.zeros(3),))
    with pytest.raises(ValueError, match="ref must be 'module:attr'"):
        Custom(custom_td.UNIFORM_TD, custom_td.params(N), ref="not a ref")
    recorded = agent().to_dict()
    not_a_learner = Custom("custom_td:NOT_A_LEARNER", recorded["params"])
    with pytest.raises(ValueError, match="is a str, not an avgreward.learners.FusedLearner"):
        avgreward.train(LOOP, not_a_learner, 10, seed=0)
    with pytest.raises(ValueError, match="cannot be imported"):
        avgreward.train(LOOP, Custom("no_such_module_here:X", recorded["params"]), 10, seed=0)
    wrong = Custom("custom_td:UNIFORM_TD", {**recorded["params"], "extra": 1.0})
    with pytest.raises(ValueError, match="the recorded bundle has the fields"):
        avgreward.train(LOOP, wrong, 10, seed=0)
    with pytest.raises(ValueError, match="runs in the fused loop only"):
        avgreward.train("CartPole-v1", agent(), 10, seed=0)


@pytest.mark.slow
def test_a_learner_without_an_importable_name_trains_but_is_not_recorded(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(Path(custom_td.__file__).read_text() + """
import avgreward
from avgreward.learners import Custom, FusedLearner
settings = Custom(UNIFORM_TD, params(9))
result = avgreward.train("avgreward/LoopMDP-v0", settings, 1000, seed=0)
try:
    result.save("x")
except ValueError as error:
    print("refused:", error)
""")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("refused: agent: the learner 'uniform differential TD(0)' has no "
                          "importable name")


def test_custom_records_round_trip_exactly():
    params = custom_td.params(N)._replace(v=np.array([0.1, -2.5e-300, 3.0, np.nan, 1e300]))
    settings = Custom(custom_td.UNIFORM_TD, params)
    again = avgreward.agent_from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings and hash(again) == hash(settings)
    np.testing.assert_array_equal(again.resolve().params.v, params.v)
