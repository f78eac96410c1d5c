"""Continue what you saved, everywhere: Python-stepped runs, experiments' runs, REINFORCE.

``train(env, agent, n1, seed)`` then ``train(env, agent, n2, init=r1)`` must be
``train(env, agent, n1 + n2, seed)`` bit for bit (rewards, actions, weights,
R-bar, episode ends, and the final state: generator, environment, wrappers),
through ``Result.save``/``load_result`` and through an experiment's folder;
what cannot continue says why in one line.
"""

import dataclasses
import json

import gymnasium
import numpy as np
import pytest

import avgreward
from avgreward.agents import GaussianActorCritic, Reinforce, SoftmaxActorCritic
from avgreward.experiment import run_experiment
from avgreward.wrappers import FailurePenalty

CARTPOLE = "avgreward/CartPoleFailurePenalty-v1"
CARTPOLE_BOUNDS = ([-2.4, -3.0, -0.21, -3.0], [2.4, 3.0, 0.21, 3.0])
LOOP = "avgreward/LoopMDP-v0"
CORRIDOR = "avgreward/ShortCorridor-v0"
SOFTMAX = SoftmaxActorCritic(alpha_w=2**-1, alpha_theta=2**-2, alpha_rbar=2**-8)


def _assert_continues(whole, first, second, n1):
    """``second`` (continued from ``first``, ``n1`` steps) is the rest of ``whole``, bit for bit."""
    assert second.info["continued_from"] == n1
    assert second.run_state.steps_done == whole.run_state.steps_done == whole.steps
    assert np.array_equal(np.concatenate([first.rewards, second.rewards]), whole.rewards)
    if whole.actions is not None:
        assert np.array_equal(np.concatenate([first.actions, second.actions]), whole.actions)
    assert whole.weights.keys() == second.weights.keys()
    for name in whole.weights:
        assert np.array_equal(second.weights[name], whole.weights[name]), name
    assert second.final_rbar == whole.final_rbar
    every = {r.rbar_steps[0] for r in (whole, first, second) if r.rbar_steps.size}
    if len(every) == 1:  # R-bar recorded at the same steps (the default depends on steps)
        assert np.array_equal(np.concatenate([first.rbar, second.rbar]), whole.rbar)
    for kind in ("terminations", "truncations"):
        if kind in whole.info and "bin_size" not in whole.info:
            ends = np.concatenate([first.info[kind], second.info[kind] + n1])
            assert np.array_equal(ends, whole.info[kind]), kind
    for kind in ("episode_returns", "episode_lengths"):  # the episode cut at n1 included
        if kind in whole.info:
            joined = np.concatenate([first.info[kind], second.info[kind]])
            assert np.array_equal(joined, whole.info[kind]), kind
    a, b = second.run_state, whole.run_state
    assert a.rng == b.rng and a.gym == b.gym and a.rbar == b.rbar and a.episode == b.episode
    for name in ("env_state", "obs", "features"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        if name != "ep_returns":  # REINFORCE's scratch, written before it is read
            assert np.array_equal(a.params[name], b.params[name]), name


def test_a_python_stepped_run_continues_bit_for_bit_across_episode_ends_and_time_limits(tmp_path):
    # A 20-step time limit on CartPole: falls (terminations) and cuts (truncations) both
    # happen, and the cut at n1 falls inside an episode whose TimeLimit count must go on.
    env = FailurePenalty(gymnasium.make("CartPole-v1", max_episode_steps=20))
    n1, n2 = 333, 290
    kwargs = dict(bounds=CARTPOLE_BOUNDS, record_actions=True)
    whole = avgreward.train(env, SOFTMAX, n1 + n2, seed=4, chunk_steps=100, **kwargs)
    first = avgreward.train(env, SOFTMAX, n1, seed=4, **kwargs)
    elapsed = first.run_state.gym["wrappers"][1]
    assert elapsed[0] == "TimeLimit" and 0 < elapsed[1]["_elapsed_steps"] < 20
    loaded = avgreward.load_result(first.save(tmp_path / "first"))
    second = avgreward.train(env, SOFTMAX, n2, init=loaded, chunk_steps=77, **kwargs)
    _assert_continues(whole, first, second, n1)
    assert whole.info["terminations"].size > 10 and whole.info["truncations"].size > 10
    assert (second.info["truncations"].size > 0 and second.info["terminations"].size > 0)
    # the environment the continued run ends in is the whole run's
    assert np.array_equal(env.unwrapped.state, whole.run_state.env_state)


def test_a_registered_id_continues_and_a_continued_run_can_be_continued_again():
    kwargs = dict(bounds=CARTPOLE_BOUNDS, bin_size=50)
    whole = avgreward.train(CARTPOLE, SOFTMAX, 600, seed=0, **kwargs)
    first = avgreward.train(CARTPOLE, SOFTMAX, 200, seed=0, **kwargs)
    second = avgreward.train(CARTPOLE, SOFTMAX, 150, init=first, **kwargs)
    third = avgreward.train(CARTPOLE, SOFTMAX, 250, init=second, **kwargs)
    assert third.info["continued_from"] == 350
    assert np.array_equal(np.concatenate([first.rewards, second.rewards, third.rewards]),
                          whole.rewards)
    assert third.run_state.rng == whole.run_state.rng
    assert np.array_equal(third.weights["theta"], whole.weights["theta"])


def test_a_gaussian_run_on_pendulum_v1_continues_bit_for_bit(tmp_path):
    # Pendulum-v1: a 200-step time limit (crossed), a squashed Gaussian with traces.
    agent = GaussianActorCritic(alpha_w=2**-1, alpha_mu=2**-6, alpha_sigma=2**-6,
                                alpha_rbar=2**-8, lambda_w=0.5, lambda_theta=0.5,
                                scale_mean_gradient=True)
    whole = avgreward.train("Pendulum-v1", agent, 450, seed=2, record_actions=True)
    first = avgreward.train("Pendulum-v1", agent, 170, seed=2, record_actions=True)
    loaded = avgreward.load_result(first.save(tmp_path / "pendulum"))
    assert loaded.run_state.gym == first.run_state.gym
    second = avgreward.train("Pendulum-v1", agent, 280, init=loaded, record_actions=True)
    _assert_continues(whole, first, second, 170)
    assert second.info["truncations"].tolist() == [199 - 170, 399 - 170]


def test_mountain_car_keeps_its_tuple_state():
    agent = SoftmaxActorCritic(alpha_w=2**-3, alpha_theta=2**-3, alpha_rbar=2**-8)
    env = avgreward.wrappers.GoalBonus(gymnasium.make("MountainCar-v0", max_episode_steps=-1))
    whole = avgreward.train(env, agent, 300, seed=1)
    first = avgreward.train(env, agent, 120, seed=1)
    assert first.run_state.gym["tuple"]  # MountainCarEnv.state is a tuple after a step
    second = avgreward.train(env, agent, 180, init=first)
    _assert_continues(whole, first, second, 120)
    assert isinstance(env.unwrapped.state, tuple)


class _Opaque(gymnasium.Env):
    """An environment whose state avgreward does not know."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (1,))
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return self.np_random.random(1).astype(np.float32), float(action), False, False, {}


@pytest.mark.parametrize("env, named", [
    (lambda: _Opaque(), r"_Opaque: the state of a _Opaque cannot be saved"),
    (lambda: gymnasium.wrappers.RecordEpisodeStatistics(gymnasium.make("CartPole-v1")),
     r"CartPole-v1 is wrapped in RecordEpisodeStatistics, whose state"),
])
def test_an_environment_whose_state_cannot_be_saved_says_why_in_one_line(env, named):
    env = env()
    bounds = None if isinstance(env, _Opaque) else CARTPOLE_BOUNDS
    first = avgreward.train(env, SOFTMAX, 30, seed=0, bounds=bounds)
    assert first.run_state is None
    with pytest.raises(ValueError, match="init: this run cannot be continued: " + named) as err:
        avgreward.train(env, SOFTMAX, 30, init=first, bounds=bounds)
    assert "\n" not in str(err.value)


def test_a_continuation_on_another_environment_or_features_is_refused_naming_it():
    wrapped = FailurePenalty(gymnasium.make("CartPole-v1", max_episode_steps=12))
    first = avgreward.train(wrapped, SOFTMAX, 50, seed=0, bounds=CARTPOLE_BOUNDS)
    bare = gymnasium.make("CartPole-v1", max_episode_steps=12)
    with pytest.raises(ValueError, match=r"stepped FailurePenalty < TimeLimit .* this "
                                         r"environment is TimeLimit"):
        avgreward.train(bare, SOFTMAX, 50, init=first)
    with pytest.raises(ValueError, match="features: .*differs"):
        avgreward.train(wrapped, SOFTMAX, 50, init=first, bounds=([-1] * 4, [1] * 4))
    # a fused run's state is not a Python-stepped one's, and the other way round
    own = gymnasium.wrappers.TimeLimit(gymnasium.make("avgreward/PendulumSwingUp-v0"), 50)
    agent = SoftmaxActorCritic.pendulum_reference()
    fused = avgreward.train("avgreward/PendulumSwingUp-v0", agent, 100, seed=0)
    with pytest.raises(ValueError, match="ran in the fused loop; .* stepped from Python"):
        avgreward.train(own, agent, 100, init=fused)
    stepped = avgreward.train(own, agent, 100, seed=0)
    with pytest.raises(ValueError, match="stepped .* from Python .*not in the fused loop"):
        avgreward.train("avgreward/PendulumSwingUp-v0", agent, 100, init=stepped)


GAUSSIAN = GaussianActorCritic(alpha_w=2**-1, alpha_mu=2**-6, alpha_sigma=2**-6,
                               alpha_rbar=2**-8, scale_mean_gradient=True)


def _bare_pendulum(g):
    from gymnasium.envs.classic_control import PendulumEnv

    return gymnasium.wrappers.TimeLimit(PendulumEnv(g=g), 200)


@pytest.mark.parametrize("made, other, agent, named", [
    (lambda: gymnasium.make("Pendulum-v1", g=9.81), lambda: gymnasium.make("Pendulum-v1"),
     GAUSSIAN, "g=9.81, this one with g=10.0"),
    (lambda: gymnasium.make("CartPole-v1", sutton_barto_reward=True),
     lambda: gymnasium.make("CartPole-v1"), SOFTMAX,
     "sutton_barto_reward=True, this one with sutton_barto_reward=False"),
    (lambda: gymnasium.make("CartPole-v1", max_episode_steps=30),
     lambda: gymnasium.make("CartPole-v1", max_episode_steps=40), SOFTMAX,
     "max_episode_steps=30, this one with max_episode_steps=40"),
    # made without gymnasium.make: the attribute that bears the argument's name
    (lambda: _bare_pendulum(9.81), lambda: _bare_pendulum(10.0), GAUSSIAN,
     "g=9.81, this one with g=10.0"),
])
def test_a_continuation_on_an_environment_made_otherwise_is_refused_naming_the_argument(
        tmp_path, made, other, agent, named):
    kwargs = dict(bounds=CARTPOLE_BOUNDS) if agent is SOFTMAX else {}
    whole = avgreward.train(made(), agent, 120, seed=1, **kwargs)
    first = avgreward.train(made(), agent, 70, seed=1, **kwargs)
    loaded = avgreward.load_result(first.save(tmp_path / "first"))  # through JSON
    with pytest.raises(ValueError, match=f"init: the saved run's .* was made with {named}"):
        avgreward.train(other(), agent, 50, init=loaded)
    # made with the same arguments (given again, or defaults spelled out): it goes on
    second = avgreward.train(made(), agent, 50, init=loaded)
    _assert_continues(whole, first, second, 70)


def test_default_arguments_given_or_not_are_the_same_environment():
    first = avgreward.train(gymnasium.make("Pendulum-v1"), GAUSSIAN, 30, seed=0)
    assert first.run_state.gym["arguments"] == {"g": 10.0, "max_episode_steps": 200}
    second = avgreward.train(gymnasium.make("Pendulum-v1", g=10.0), GAUSSIAN, 30, init=first)
    assert second.info["continued_from"] == 30


def test_our_environment_in_a_time_limit_continues_bit_for_bit():
    own = gymnasium.wrappers.TimeLimit(gymnasium.make("avgreward/PendulumSwingUp-v0"), 77)
    agent = SoftmaxActorCritic.pendulum_reference()
    whole = avgreward.train(own, agent, 300, seed=6, record_actions=True)
    first = avgreward.train(own, agent, 100, seed=6, record_actions=True)
    second = avgreward.train(own, agent, 200, init=first, record_actions=True)
    _assert_continues(whole, first, second, 100)
    assert whole.info["truncations"].tolist() == [76, 153, 230]


def test_reinforce_continues_mid_episode_bit_for_bit(tmp_path):
    # Its episode buffers are saved up to the episode in progress, then put back.
    for agent in (Reinforce(alpha_theta=2**-12), Reinforce(alpha_theta=2**-10, alpha_w=2**-6),
                  Reinforce(alpha_theta=2**-12, max_episode_steps=9)):
        n1 = 4_003
        whole = avgreward.train(CORRIDOR, agent, 2 * n1, seed=3, record_actions=True)
        first = avgreward.train(CORRIDOR, agent, n1, seed=3, record_actions=True)
        in_progress = first.run_state.episode[0]
        assert in_progress > 0  # cut inside an episode
        assert first.run_state.params["ep_actions"].shape == (in_progress,)  # only its steps
        loaded = avgreward.load_result(first.save(tmp_path / "reinforce"))
        second = avgreward.train(CORRIDOR, agent, n1, init=loaded, record_actions=True,
                                 chunk_steps=555)
        _assert_continues(whole, first, second, n1)
        returns = np.concatenate([first.info["episode_returns"],
                                  second.info["episode_returns"]])
        assert np.array_equal(returns, whole.info["episode_returns"])


def _state_bytes(exp):
    with np.load(next((exp.path / "runs").glob("*.npz"))) as files:
        return {k: files[k].nbytes for k in files.files if k.startswith("state/")}


def test_an_experiments_finished_run_continues_bit_for_bit(tmp_path):
    agent = avgreward.default_agent(LOOP)
    short = run_experiment(tmp_path / "short", LOOP, agent, [3], 5_000, workers=1,
                           bin_size=100, progress=False)
    long = run_experiment(tmp_path / "long", LOOP, agent, [3], 50_000, workers=1,
                          bin_size=100, progress=False)
    # the run file keeps the final state: its size does not grow with the steps
    assert _state_bytes(short) and _state_bytes(short) == _state_bytes(long)
    result = avgreward.load_experiment(short.path).result(0, 3)
    more = avgreward.train(short.env_id, result.agent, 7_000, init=result, bin_size=100)
    whole = avgreward.train(LOOP, agent, 12_000, seed=3, bin_size=100)
    _assert_continues(whole, result, more, 5_000)
    # Python-stepped runs too
    exp = run_experiment(tmp_path / "cartpole", CARTPOLE, SOFTMAX, [1], 300, workers=1,
                         bin_size=10, bounds=CARTPOLE_BOUNDS, progress=False)
    result = exp.result(0, 1)
    more = avgreward.train(CARTPOLE, result.agent, 200, init=result, bin_size=10,
                           bounds=CARTPOLE_BOUNDS)
    whole = avgreward.train(CARTPOLE, SOFTMAX, 500, seed=1, bin_size=10, bounds=CARTPOLE_BOUNDS)
    _assert_continues(whole, result, more, 300)


def test_a_run_saved_without_its_state_says_how_to_get_it(tmp_path):
    agent = avgreward.default_agent(LOOP)
    exp = run_experiment(tmp_path / "old", LOOP, agent, [0], 1_000, workers=1, bin_size=100,
                         progress=False)
    record_path = next((exp.path / "runs").glob("*.json"))
    record = json.loads(record_path.read_text())
    del record["run_state"]  # as an avgreward before continuable experiments wrote it
    record_path.write_text(json.dumps(record))
    old = avgreward.load_experiment(exp.path).result(0, 0)
    assert old.run_state is None
    with pytest.raises(ValueError, match=r"a000-s0000\.npz was saved without its run state .*"
                                         r"rerun the experiment with this version") as err:
        avgreward.train(LOOP, agent, 100, init=old)
    assert "\n" not in str(err.value)
    # its rewards and weights are read as before
    assert old.rewards.shape == (10,) and old.weights.keys() == {"w", "theta"}
    # a damaged state: the run is still read, and init= says what is wrong
    record["run_state"] = {"rng": {"bit_generator": "MT19937"}}
    record_path.write_text(json.dumps(record))
    damaged = avgreward.load_experiment(exp.path).result(0, 0)
    assert damaged.run_state is None and damaged.weights.keys() == {"w", "theta"}
    with pytest.raises(ValueError, match=r"a000-s0000\.npz: its run state is damaged"):
        avgreward.train(LOOP, agent, 100, init=damaged)


def test_a_failed_runs_result_says_it_cannot_continue(tmp_path):
    diverging = avgreward.DifferentialSarsa(alpha=1e300, beta=1e300, epsilon=0.1)
    exp = run_experiment(tmp_path / "failed", "avgreward/AccessControl-v0", diverging, [0],
                         5_000, workers=1, bin_size=100, progress=False)
    result = exp.result(0, 0)
    with pytest.raises(ValueError, match="init: this run cannot be continued: the run failed"):
        avgreward.train("avgreward/AccessControl-v0", diverging, 100, init=result)


def test_a_saved_file_cannot_name_attributes_to_set(tmp_path):
    # Continuing puts data back; which attributes it sets is this environment's business.
    first = avgreward.train(CARTPOLE, SOFTMAX, 300, seed=0, bounds=CARTPOLE_BOUNDS)
    gym = dict(first.run_state.gym)
    gym["attributes"] = {**gym["attributes"], "step": 1}
    first.run_state = first.run_state._replace(gym=gym) if hasattr(
        first.run_state, "_replace") else dataclasses.replace(first.run_state, gym=gym)
    with pytest.raises(ValueError, match="has the attributes"):
        avgreward.train(CARTPOLE, SOFTMAX, 300, init=first, bounds=CARTPOLE_BOUNDS)
