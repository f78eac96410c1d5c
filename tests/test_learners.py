"""Learners of the fused loop as plug-ins: declared, written into the loop, checked against exact truth."""

from collections import namedtuple

import numpy as np
import pytest
from numba import njit

import avgreward
from avgreward import exact
from avgreward.draws import next_double
from avgreward.inlining import inline_call
from avgreward.learners import FusedLearner
from avgreward.learners.actor_critic import SOFTMAX, SoftmaxParams, Work
from avgreward.training import run_learner
import custom_td
from avgreward import envs
from avgreward.envs import loop_mdp

LOOP = "avgreward/LoopMDP-v0"

# --- a learner of our own: differential TD(0) evaluation of the uniform random policy -------
# (Sutton & Barto, section 10.3, with the state values tabular): R-bar must reach the
# policy's exact reward rate and v its differential values, up to a constant.

TDParams = namedtuple("TDParams", ["v", "alpha", "alpha_rbar", "n_actions", "episodes"])
# The user's TD(0) of tests/custom_td.py, with an episode counter of its own.
TDWork = custom_td.UniformTDWork
td_begin, td_act, td_learn, td_finish = custom_td.begin, custom_td.act, custom_td.learn, custom_td.finish


@njit(cache=True)
def td_episode_end(episodes):
    episodes[0] += 1


TD0 = FusedLearner("differential TD(0), uniform policy", TDParams, TDWork, td_begin, td_act,
                   td_learn, td_episode_end, td_finish)


def td_params(n_features, alpha=0.1, alpha_rbar=0.01):
    return TDParams(np.zeros(n_features), alpha, alpha_rbar, 2, np.zeros(1, np.int64))


@pytest.mark.slow
def test_a_learner_of_our_own_evaluates_the_uniform_policy_exactly():
    model = loop_mdp.loop_mdp_model()
    uniform = np.full((model.n_states, 2), 0.5)
    truth = exact.evaluate(model, uniform)
    params = td_params(loop_mdp.N_STATES, alpha=0.05, alpha_rbar=0.002)
    result = run_learner(LOOP, TD0, params, 400_000, seed=1)
    assert result.agent is TD0 and result.weights["v"] is params.v
    # The exact rate is 0.3 (right pays 2, left 1, per 5 steps); a learner without the
    # -R-bar in its TD error, or learning the wrong state, ends far from it.
    assert abs(truth.reward_rate - 0.3) < 1e-12
    assert abs(result.final_rbar - truth.reward_rate) < 0.01
    assert abs(result.mean_reward(200_000) - truth.reward_rate) < 0.01
    np.testing.assert_allclose(params.v - params.v[0], truth.v - truth.v[0], atol=0.15)


@pytest.mark.slow
def test_a_learner_of_our_own_is_the_same_in_chunks_and_its_seed_decides():
    whole, chunked, other = (td_params(loop_mdp.N_STATES) for _ in range(3))
    a = run_learner(LOOP, TD0, whole, 20_000, seed=3, record_actions=True)
    b = run_learner(LOOP, TD0, chunked, 20_000, seed=3, record_actions=True, chunk_steps=777)
    c = run_learner(LOOP, TD0, other, 20_000, seed=4, record_actions=True)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(whole.v, chunked.v)
    assert a.actions.dtype == np.int64 and set(np.unique(a.actions)) == {0, 1}
    assert not np.array_equal(a.actions, c.actions)


def test_the_actor_critic_through_run_learner_is_train():
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01,
                                         lambda_w=0.5)
    trained = avgreward.train(LOOP, agent, 5000, seed=2)
    n = trained.features.n_features
    params = SoftmaxParams(np.zeros(n), np.zeros((n, 2)), np.zeros(n), np.zeros((0, 2)),
                           np.zeros(2), np.zeros(2), 0.1, 0.1, 0.01, 1.0, 0.5, 0.0, 0.0)
    run = run_learner(LOOP, SOFTMAX, params, 5000, seed=2)
    np.testing.assert_array_equal(run.rewards, trained.rewards)
    np.testing.assert_array_equal(params.w, trained.weights["w"])
    np.testing.assert_array_equal(params.theta, trained.weights["theta"])


def test_run_learner_refuses_bad_arguments():
    with pytest.raises(ValueError, match="learner must be"):
        run_learner(LOOP, object(), td_params(9), 10, 0)
    with pytest.raises(ValueError, match="params must be a TDParams"):
        run_learner(LOOP, TD0, (np.zeros(9),), 10, 0)
    with pytest.raises(ValueError, match="steps"):
        run_learner(LOOP, TD0, td_params(9), 0, 0)


def test_a_diverging_learner_stops_with_its_partial_run():
    params = td_params(loop_mdp.N_STATES, alpha=50.0)
    with pytest.raises(avgreward.DivergenceError) as caught:
        run_learner(LOOP, TD0, params, 100_000, seed=0)
    assert 0 < caught.value.step < 100_000
    assert caught.value.result.steps == caught.value.step


# --- declaring a learner ------------------------------------------------------------------------


@pytest.mark.parametrize("change, words", [
    ({"name": ""}, "name"),
    ({"params_type": dict}, "params_type must be a namedtuple"),
    ({"work_type": namedtuple("W", ["v"])}, "share the field"),
    ({"act": td_act.py_func}, "act must be a numba-jitted"),
    ({"learn": njit(lambda v, wrong_name: (True, 0.0))}, "'wrong_name'"),
])
def test_bad_learner_declarations_are_refused_naming_what_is_wrong(change, words):
    fields = dict(name="x", params_type=TDParams, work_type=TDWork, begin=td_begin, act=td_act,
                  learn=td_learn, episode_end=td_episode_end, finish=td_finish)
    with pytest.raises(ValueError, match=words):
        FusedLearner(**{**fields, **change})


def test_a_bundle_field_may_not_hide_a_loop_value():
    shadowing = namedtuple("Shadowing", ["v", "rbar"])
    with pytest.raises(ValueError, match="named like one of the loop's values"):
        FusedLearner("x", shadowing, TDWork, td_begin, td_act, td_learn, td_episode_end,
                     td_finish)


def test_act_cannot_see_what_the_step_has_not_produced_yet():
    @njit
    def peeking_act(reward, words):
        return True, 0, 0.0

    with pytest.raises(ValueError, match="'reward'"):
        FusedLearner("peek", TDParams, TDWork, td_begin, peeking_act, td_learn, td_episode_end,
                     td_finish)


def test_a_misspelled_argument_is_named_with_what_it_could_be():
    @njit
    def misspelled_learn(v, stepp, alpha_rbar, cur, nxt, reward, rbar):
        return True, rbar

    with pytest.raises(ValueError) as err:
        FusedLearner("typo", TDParams, TDWork, td_begin, td_act, misspelled_learn,
                     td_episode_end, td_finish)
    message = str(err.value)
    assert message.startswith(f"learn: its parameter 'stepp' is neither a field of TDParams "
                              f"or {TDWork.__name__} nor one of the loop's values")
    for value in ("cur", "nxt", "words", "action", "memo", "reward", "rbar", "terminated", "k"):
        assert repr(value) in message


def test_the_extension_api_is_public():
    # What a user's environment or learner needs, without a private import.
    import avgreward.draws
    from avgreward import _pcg64
    from avgreward.envs import declare

    assert avgreward.FusedLearner is FusedLearner
    assert avgreward.FusedEnv is declare.FusedEnv and avgreward.DeclaredEnv is declare.DeclaredEnv
    for name in avgreward.draws.__all__:
        assert getattr(avgreward.draws, name) is getattr(_pcg64, name)
    assert {"FusedLearner", "FusedEnv", "DeclaredEnv"} <= set(avgreward.__all__)


# --- writing a function into the loop --------------------------------------------------------

SCALE = 3.0


def early_returns(x, y):
    if x < 0:
        return -1.0, y
    z = x * SCALE
    if z > 10:
        if y > 0:
            return z, y
        z = 10.0
    else:
        z += 1.0
    total = 0.0
    for i in range(3):
        total += z + i
    return total, y + 1


def rebinds_a_parameter(x, y):
    x = x + 1
    return x * y, y


def nested_returns_and_a_local_named_like_a_global(x, y):
    g_SCALE = 100.0  # noqa: N806 - the name the global SCALE must not be confused with
    if x > 0:
        if y > 0:
            return x * SCALE + g_SCALE, y
        x = -x
    elif x < -10:
        return 0.0, 0.0
    return x + g_SCALE, y * SCALE


@pytest.mark.parametrize("func", [early_returns, rebinds_a_parameter,
                                  nested_returns_and_a_local_named_like_a_global])
def test_an_inlined_function_computes_what_the_function_does(func):
    lines, injected = inline_call(func, ["a", "b"], "r, s", "_f_")
    code = "\n".join(lines)
    for a in (-20.0, -2.0, 0.5, 3.0, 4.0, 20.0):
        for b in (-1.0, 2.0):
            scope = {**injected, "a": a, "b": b}
            exec(code, scope)
            assert (scope["r"], scope["s"]) == func(a, b)
            assert scope["a"] == a  # the caller's variables are not rebound


def _returns_in_a_loop(x):
    for i in range(3):
        if i == x:
            return i
    return -1


def _return_in_with(x):
    with open(x) as f:
        return f.read()


def _comprehension(x):
    return sum([i for i in range(x)])


def _undefined(x):
    return x + not_defined_anywhere  # noqa: F821


@pytest.mark.parametrize("func, words", [
    (_returns_in_a_loop, "return inside for"),
    (_return_in_with, "return inside with"),
    (_comprehension, "ListComp"),
    (_undefined, "not_defined_anywhere"),
])
def test_what_cannot_be_inlined_is_refused_naming_the_function(func, words):
    with pytest.raises(ValueError, match=words) as caught:
        inline_call(func, ["a"], "r", "_f_")
    assert func.__name__ in str(caught.value)


def test_the_actor_critic_bundle_types_are_its_declared_ones():
    assert SOFTMAX.params_type is SoftmaxParams and SOFTMAX.work_type is Work


# --- episode ends reach the learner ------------------------------------------------------------


@njit(cache=True)
def _walk_reset(state, u):
    state[0] = 0.0


@njit(cache=True)
def _walk_step(state, action, u, next_state):
    s = state[0] + (1.0 if action == 1.0 else -1.0)
    next_state[0] = max(s, 0.0)
    return (1.0, True) if s >= 3.0 else (0.0, False)


@njit(cache=True)
def _walk_observe(state, obs):
    obs[0] = state[0]


class _WalkEnv(envs.DeclaredEnv):
    fused = envs.FusedEnv(name="learners walk", reset=_walk_reset, step=_walk_step,
                          observe=_walk_observe, state_size=1, obs_size=1, n_actions=2,
                          obs_low=0.0, obs_high=3.0, episodic=True,
                          features=lambda: avgreward.one_hot(4))


@pytest.mark.slow
def test_the_learner_is_told_each_episode_end():
    params = td_params(4)
    result = run_learner(_WalkEnv(), TD0, params, 20_000, seed=0, chunk_steps=999)
    ends = result.info["terminations"]
    assert ends.size > 100
    assert params.episodes[0] == ends.size
    assert result.rewards[ends].min() == 1.0 and result.rewards.sum() == ends.size


def test_a_function_edited_since_its_import_is_not_inlined(tmp_path, monkeypatch):
    """The source on disk must be the code that runs, or the inlined code would differ."""
    module = tmp_path / "edited_learner.py"
    module.write_text("def learn(x):\n    return x * 0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import edited_learner

    inline_call(edited_learner.learn, ["a"], "r", "_f_")  # as imported: fine
    module.write_text("def learn(x):\n    return x * 0.5\n")
    with pytest.raises(ValueError, match="changed since it was imported"):
        inline_call(edited_learner.learn, ["a"], "r", "_f_")


def test_every_built_in_learner_passes_the_construction_check():
    # Built-in learners skip FusedLearner's inlining check at import (start-up
    # time); this test runs it on each of them instead.
    import gc
    import importlib
    import pkgutil

    import avgreward.learners as package
    from avgreward.learners import FusedLearner

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"avgreward.learners.{info.name}")
    learners = [o for o in gc.get_objects() if isinstance(o, FusedLearner)]
    names = {learner.name for learner in learners}
    assert {"softmax actor-critic", "differential q-learning", "reinforce",
            "natural actor-critic", "squarecb"} <= names
    for learner in learners:
        if learner.built_in():
            learner.check()
