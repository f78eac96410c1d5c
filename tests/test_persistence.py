"""Agents that persist: Result.save / load_result, train(init=), evaluate."""

import json

import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.agents import (
    DifferentialQLearning,
    DifferentialSarsa,
    DiscountedQLearning,
    EpisodicActorCritic,
    GaussianActorCritic,
    Reinforce,
    SoftmaxActorCritic,
)
from avgreward.checkpoint import RunState

PENDULUM = "avgreward/PendulumSwingUp-v0"
ACCESS = "avgreward/AccessControl-v0"
LOOP = "avgreward/LoopMDP-v0"
CORRIDOR = "avgreward/ShortCorridor-v0"

CASES = {
    "softmax, three actions": (PENDULUM, SoftmaxActorCritic.pendulum_reference()),
    "softmax, traces": (PENDULUM, SoftmaxActorCritic.pendulum_reference().replace(
        lambda_w=0.5, lambda_theta=0.5)),
    "gaussian": ("avgreward/PendulumSwingUpContinuous-v0", GaussianActorCritic.pendulum_default()),
    "sarsa": (ACCESS, DifferentialSarsa(alpha=0.01, beta=0.01, epsilon=0.1)),
    "4-step sarsa": (ACCESS, DifferentialSarsa(alpha=0.01, beta=0.01, epsilon=0.1, n=4)),
    "q-learning": (ACCESS, DifferentialQLearning(alpha=0.01, eta=1.0, epsilon=0.1)),
    "discounted q, centred": (ACCESS, DiscountedQLearning(alpha=0.01, gamma=0.9, epsilon=0.1,
                                                          centering="simple", beta=0.01)),
    "loop softmax": (LOOP, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)),
    "episodic actor-critic, traces": (CORRIDOR, EpisodicActorCritic(
        alpha_w=2**-6, alpha_theta=2**-9, lambda_w=0.8, lambda_theta=0.8)),
}


def _same_result(a, b):
    assert a.env_id == b.env_id and a.agent == b.agent and a.seed == b.seed
    assert a.steps == b.steps and a.final_rbar == b.final_rbar and a.features == b.features
    for name in ("rewards", "rbar", "rbar_steps"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert (a.actions is None) == (b.actions is None)
    if a.actions is not None:
        assert np.array_equal(a.actions, b.actions)
    assert a.weights.keys() == b.weights.keys()
    for name in a.weights:
        assert np.array_equal(a.weights[name], b.weights[name]), name
    assert a.info.keys() == b.info.keys()
    for name in a.info:
        assert np.array_equal(a.info[name], b.info[name]), name


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_n_steps_then_n_more_is_one_run_of_2n_steps_bit_for_bit(name, tmp_path):
    env, agent = CASES[name]
    n = 6_001  # not a multiple of any chunk
    whole = avgreward.train(env, agent, 2 * n, seed=5, chunk_steps=1_000, record_actions=True)
    first = avgreward.train(env, agent, n, seed=5, record_actions=True)
    # through the disk, in between: what another process would continue from
    loaded = avgreward.load_result(first.save(tmp_path / "first"))
    second = avgreward.train(env, agent, n, init=loaded, chunk_steps=777, record_actions=True)
    assert second.info["continued_from"] == n and second.run_state.steps_done == 2 * n
    assert second.seed == 5
    assert np.array_equal(np.concatenate([first.rewards, second.rewards]), whole.rewards)
    assert np.array_equal(np.concatenate([first.actions, second.actions]), whole.actions)
    for key in whole.weights:
        assert np.array_equal(second.weights[key], whole.weights[key]), key
    assert second.final_rbar == whole.final_rbar
    for key in whole.run_state.params:
        assert np.array_equal(second.run_state.params[key], whole.run_state.params[key]), key
    assert second.run_state.rng == whole.run_state.rng
    if "terminations" in whole.info:  # episodic: the episode in progress goes on too
        ends = np.concatenate([first.info["terminations"], second.info["terminations"] + n])
        assert np.array_equal(ends, whole.info["terminations"])
        returns = np.concatenate([first.info["episode_returns"],
                                  second.info["episode_returns"]])
        assert np.array_equal(returns, whole.info["episode_returns"])


def test_binned_continuation_gives_the_whole_runs_bins():
    env, agent = CASES["softmax, three actions"]
    whole = avgreward.train(env, agent, 20_000, seed=1, bin_size=500)
    first = avgreward.train(env, agent, 10_000, seed=1, bin_size=500)
    second = avgreward.train(env, agent, 10_000, init=first, bin_size=500)
    assert np.array_equal(np.concatenate([first.rewards, second.rewards]), whole.rewards)


@pytest.mark.slow
def test_a_continued_run_may_take_smaller_step_sizes():
    env, agent = CASES["sarsa"]
    first = avgreward.train(env, agent, 5_000, seed=0)
    calm = avgreward.train(env, agent.replace(alpha=0.0, beta=0.0), 5_000, init=first)
    assert np.array_equal(calm.weights["w"], first.weights["w"])  # nothing learned
    assert calm.final_rbar == first.final_rbar


@pytest.mark.slow
def test_save_and_load_give_the_same_result_array_for_array(tmp_path):
    for name, (env, agent) in CASES.items():
        result = avgreward.train(env, agent, 3_000, seed=2, bin_size=100, record_actions=True)
        path = result.save(tmp_path / "deep" / name.replace(" ", "_"))
        assert path.suffix == ".json" and path.with_suffix(".npz").exists()
        again = avgreward.load_result(path.with_suffix(".npz"))
        _same_result(again, result)
        assert isinstance(again.run_state, RunState)
        record = json.loads(path.read_text())
        assert record["versions"]["avgreward"] == avgreward.__version__
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as files:  # no pickle
            assert all(files[key].dtype != object for key in files.files)


def test_a_damaged_or_mismatched_file_is_named_never_read(tmp_path):
    env, agent = CASES["loop softmax"]
    result = avgreward.train(env, agent, 1_000, seed=0)
    path = result.save(tmp_path / "r")
    npz = path.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"r\.json.*sha256"):
        avgreward.load_result(path)
    result.save(tmp_path / "r")
    path.write_text(path.read_text()[:40])
    with pytest.raises(ValueError, match=r"r\.json.*not a readable result"):
        avgreward.load_result(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        avgreward.load_result(tmp_path / "nothing")


@pytest.mark.parametrize("change, message", [
    (dict(env="avgreward/AliasedGridworld-v0"), "saved run is of avgreward/LoopMDP-v0"),
    (dict(agent=DifferentialSarsa(alpha=0.1, beta=0.01, epsilon=0.1)), "same kind"),
    (dict(seed=9), "seed=9.*leave seed out"),
    (dict(agent=SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01,
                                   lambda_w=0.5)), "'z_w' was saved as float64\\[0\\]"),
    (dict(features=avgreward.TileCoder(low=0, high=1, tiles=2)), "features: .*differs"),
])
def test_init_that_does_not_fit_is_refused_naming_what(change, message):
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    first = avgreward.train(LOOP, agent, 500, seed=0)
    kwargs = {"env": LOOP, "agent": agent, "steps": 500, "init": first, **change}
    with pytest.raises(ValueError, match=message):
        avgreward.train(**kwargs)


def test_runs_that_cannot_be_continued_say_so():
    with pytest.raises(ValueError, match="seed is required"):
        avgreward.train(LOOP, avgreward.default_agent(LOOP), 100)
    # (REINFORCE continues mid-episode: tests/test_continue.py)
    diverging = DifferentialSarsa(alpha=1e300, beta=1e300, epsilon=0.1)
    with pytest.raises(avgreward.DivergenceError) as caught:
        avgreward.train(ACCESS, diverging, 10_000, seed=0)
    with pytest.raises(ValueError, match="no run state"):
        avgreward.train(ACCESS, diverging, 100, init=caught.value.result)
    with pytest.raises(ValueError, match="init must be a Result"):
        avgreward.train(LOOP, avgreward.default_agent(LOOP), 100, init="result.json")


def _greedy_rate(model, result):
    def greedy(observation):
        values = result.weights["theta"][result._indices(observation)].sum(axis=0)
        return (values == values.max()) / (values == values.max()).sum()
    return exact.evaluate(model, exact.policy_on_states(model, greedy)).reward_rate


@pytest.mark.slow
def test_evaluate_matches_the_exact_rate_of_the_frozen_policy():
    from avgreward import envs

    result = avgreward.train(ACCESS, CASES["sarsa"][1], 100_000, seed=0)
    before = result.weights["w"].copy()
    for greedy in (False, True):
        e = avgreward.evaluate(result, 400_000, seed=3, greedy=greedy)
        assert e.low <= e.exact_rate <= e.high or abs(e.reward_rate - e.exact_rate) < 0.01
        assert abs(e.reward_rate - e.exact_rate) < 0.02
    assert np.array_equal(result.weights["w"], before)  # frozen: nothing learned
    sampled = avgreward.evaluate(result, 400_000, seed=3)
    greedy = avgreward.evaluate(result, 400_000, seed=3, greedy=True)
    assert greedy.exact_rate > sampled.exact_rate + 0.05  # epsilon's exploration costs

    loop = avgreward.train(LOOP, CASES["loop softmax"][1], 20_000, seed=0)
    e = avgreward.evaluate(loop, 100_000, seed=1, greedy=True)
    assert e.exact_rate == pytest.approx(_greedy_rate(envs.loop_mdp_model(), loop))
    assert e.exact_rate == pytest.approx(0.4) and e.reward_rate == pytest.approx(0.4, abs=0.01)


@pytest.mark.slow
def test_evaluate_is_reproducible_and_greedy_gaussian_acts_with_the_mean():
    env, agent = CASES["gaussian"]
    result = avgreward.train(env, agent, 20_000, seed=0)
    a = avgreward.evaluate(result, 20_000, seed=4)
    b = avgreward.evaluate(result, 20_000, seed=4)
    assert a.reward_rate == b.reward_rate and np.array_equal(a.batch_means, b.batch_means)
    assert a.exact_rate is None and a.low <= a.reward_rate <= a.high
    g1 = avgreward.evaluate(result, 5_000, seed=4, greedy=True)
    g2 = avgreward.evaluate(result, 5_000, seed=5, greedy=True)
    assert g1.reward_rate == g2.reward_rate  # deterministic policy and dynamics


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps"), (dict(seed=-1), "seed"), (dict(batches=0), "batches"),
    (dict(greedy="yes"), "greedy"), (dict(steps=10, batches=11), "batches=11"),
])
def test_evaluate_refuses_bad_settings(kwargs, message):
    result = avgreward.train(LOOP, CASES["loop softmax"][1], 100, seed=0)
    with pytest.raises(ValueError, match=message):
        avgreward.evaluate(result, **kwargs)


def test_a_manifest_that_is_not_a_result_is_named(tmp_path):
    result = avgreward.train(LOOP, CASES["loop softmax"][1], 500, seed=0)
    path = result.save(tmp_path / "r")
    for text in ("[]", "null", '"x"'):
        path.write_text(text)
        with pytest.raises(ValueError, match=r"r\.json.*not a readable result"):
            avgreward.load_result(path)
    path = result.save(tmp_path / "r")
    record = json.loads(path.read_text())
    record["run_state"]["rng"] = {"bit_generator": "PCG64", "state": "garbage"}
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"r\.json.*not a readable result"):
        avgreward.load_result(path)


def test_weights_are_saved_once(tmp_path):
    result = avgreward.train(ACCESS, CASES["sarsa"][1], 500, seed=0)
    path = result.save(tmp_path / "r")
    with np.load(path.with_suffix(".npz")) as files:
        assert "weights/w" in files.files and "state/params/w" not in files.files
    again = avgreward.load_result(path)
    assert np.array_equal(again.run_state.params["w"], result.run_state.params["w"])
    assert again.run_state.params["w"] is not again.weights["w"]


def test_evaluate_runs_our_environment_through_its_wrappers():
    import gymnasium

    env = gymnasium.wrappers.TransformReward(gymnasium.make(PENDULUM), lambda r: -r)
    result = avgreward.train(env, SoftmaxActorCritic.pendulum_reference(), 500, seed=0)
    assert result.info["python_stepped"] and result.run_state is None
    with pytest.raises(ValueError, match="env="):  # gymnasium.make(id) would drop them
        avgreward.evaluate(result, 1_000)
    again = gymnasium.wrappers.TransformReward(gymnasium.make(PENDULUM), lambda r: -r)
    e = avgreward.evaluate(result, 1_000, seed=2, env=again)
    plain = avgreward.evaluate(result, 1_000, seed=2,
                               env=gymnasium.make(PENDULUM))  # the same policy, unwrapped
    assert e.reward_rate == pytest.approx(-plain.reward_rate) and e.reward_rate > 0
    assert e.exact_rate is None and e.batch_means.size == 20


def test_evaluate_a_gymnasium_result_greedily():
    result = avgreward.train("avgreward/MountainCarGoalBonus-v0",
                             avgreward.default_agent("avgreward/MountainCarGoalBonus-v0"),
                             2_000, seed=0)
    a = avgreward.evaluate(result, 2_000, seed=1, greedy=True)
    b = avgreward.evaluate(result, 2_000, seed=1, greedy=True)
    assert a.reward_rate == b.reward_rate and -1.0 <= a.reward_rate <= 0.0
