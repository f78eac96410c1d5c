"""Environments declared by a user, in their own files: the fused loop runs them, exactly.

Each test environment is written to a file of its own in a temporary
directory and imported from there, as a user's module would be: nothing of
it lives in the package.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from helpers import actor_weights
from gymnasium.utils.env_checker import check_env
from numba import njit

import avgreward
import avgreward.training
from avgreward import GaussianActorCritic, SoftmaxActorCritic
from avgreward.environments import is_own_env
from avgreward.reference import reference_train
from avgreward.envs import DeclaredEnv, FusedEnv

ROOT = Path(__file__).resolve().parents[1]

# An episodic corridor (discrete actions, random slips and starts) and an
# episodic continuous task (a noisy walk ended outside [-1, 1]).
USER_ENVS = '''
import gymnasium
from numba import njit

import avgreward
from avgreward.envs import DeclaredEnv, FusedEnv


@njit(cache=True)
def corridor_reset(state, u):
    state[0] = 0.0 if u < 0.5 else 1.0


@njit(cache=True)
def corridor_step(state, action, u, next_state):
    s = int(state[0])
    move = 1 if action == 1.0 else -1
    if u < 0.1:  # slips the other way
        move = -move
    nxt = min(max(s + move, 0), 3)
    next_state[0] = float(nxt)
    if nxt == 3:
        return 1.0, True
    return -0.1, False


@njit(cache=True)
def corridor_observe(state, obs):
    obs[0] = state[0]


CORRIDOR = FusedEnv(
    name="user corridor", reset=corridor_reset, step=corridor_step, observe=corridor_observe,
    state_size=1, obs_size=1, n_actions=2, obs_low=0.0, obs_high=3.0, random_reset=True,
    random_step=True, episodic=True, features=lambda: avgreward.one_hot(4),
)


class CorridorEnv(DeclaredEnv):
    fused = CORRIDOR


@njit(cache=True)
def walk_reset(state, u):
    state[0] = u - 0.5


@njit(cache=True)
def walk_step(state, action, u, next_state):
    a = min(max(action, -0.5), 0.5)
    x = state[0] + 0.5 * a + 0.1 * (2.0 * u - 1.0)
    next_state[0] = x
    return x, abs(x) >= 1.0


@njit(cache=True)
def walk_observe(state, obs):
    obs[0] = min(max(state[0], -1.0), 1.0)


WALK = FusedEnv(
    name="user walk", reset=walk_reset, step=walk_step, observe=walk_observe, state_size=1,
    obs_size=1, n_actions=0, obs_low=-1.0, obs_high=1.0, random_reset=True, random_step=True,
    episodic=True, action_low=-0.5, action_high=0.5,
)


class WalkEnv(DeclaredEnv):
    fused = WALK


for env_id, cls in (("user/Corridor-v0", CorridorEnv), ("user/Walk-v0", WalkEnv)):
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point=cls, max_episode_steps=None)
for env_id, kwargs in (("user/CorridorLimited-v0", {"max_episode_steps": 5}),
                       ("user/CorridorArgs-v0", {"kwargs": {"render_mode": None}})):
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point=CorridorEnv, **kwargs)
'''

CORRIDOR = "user/Corridor-v0"
WALK = "user/Walk-v0"
STEPS = 3000


@pytest.fixture(scope="module")
def user_envs(tmp_path_factory):
    """The user's module, imported from a directory of its own."""
    directory = tmp_path_factory.mktemp("user_envs")
    (directory / "my_user_envs.py").write_text(USER_ENVS)
    sys.path.insert(0, str(directory))
    try:
        import my_user_envs

        yield my_user_envs
    finally:
        sys.path.remove(str(directory))


@pytest.fixture
def fused_only(monkeypatch):
    """Fail if train falls back to the Python-stepped path."""

    def refuse(*args, **kwargs):
        raise AssertionError("train stepped the environment from Python")

    monkeypatch.setattr(avgreward.training, "run_stepwise", refuse)


CASES = {
    "corridor-softmax": (CORRIDOR, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1,
                                                      alpha_rbar=0.01)),
    "corridor-softmax-traces": (CORRIDOR, SoftmaxActorCritic(
        alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, lambda_w=0.5, lambda_theta=0.5,
        tau=0.7, entropy=0.05)),
    "walk-gaussian": (WALK, GaussianActorCritic(alpha_w=0.1, alpha_mu=0.05, alpha_sigma=0.01,
                                                alpha_rbar=0.01)),
    "walk-gaussian-traces": (WALK, GaussianActorCritic(
        alpha_w=0.1, alpha_mu=0.05, alpha_sigma=0.01, alpha_rbar=0.01, lambda_w=0.5,
        lambda_theta=0.3, entropy=0.01)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_user_episodic_env_in_the_fused_loop_equals_the_reference(name, user_envs, fused_only):
    env_id, agent = CASES[name]
    assert is_own_env(env_id)
    result = avgreward.train(env_id, agent, STEPS, seed=5, record_actions=True, rbar_every=1,
                             chunk_steps=777)
    ref = reference_train(env_id, agent, STEPS, seed=5)
    assert np.array_equal(result.rewards, ref["rewards"].astype(np.float32))
    np.testing.assert_array_equal(result.actions, ref["actions"])
    np.testing.assert_allclose(result.rbar, ref["rbar"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(actor_weights(result), ref["theta"], rtol=0, atol=1e-9)
    # Many episodes, ended where the reference ended them.
    assert ref["ends"].size > 20
    np.testing.assert_array_equal(result.info["terminations"], ref["ends"])
    assert result.info["truncations"].size == 0
    assert np.abs(result.weights["w"]).max() > 1e-3


@pytest.mark.slow
def test_episode_ends_do_not_depend_on_chunks_and_bin_like_the_stepwise_path(user_envs,
                                                                             fused_only):
    env_id, agent = CASES["corridor-softmax"]
    whole = avgreward.train(env_id, agent, STEPS, seed=2)
    binned = avgreward.train(env_id, agent, STEPS, seed=2, bin_size=100, chunk_steps=333)
    ends = whole.info["terminations"]
    assert ends.size > 20
    np.testing.assert_array_equal(binned.info["terminations"],
                                  np.bincount(ends // 100, minlength=STEPS // 100))
    assert binned.info["truncations"].shape == (STEPS // 100,)


@pytest.mark.slow
def test_user_env_learns_the_corridor(user_envs, fused_only):
    """Going right is optimal; a broken loop (no resets, wrong signs) would not get near it."""
    env_id, agent = CASES["corridor-softmax"]
    result = avgreward.train(env_id, agent, 60_000, seed=0)
    # Always right: 2.5 steps an episode on average from starts 0/1 with 10 % slips;
    # the learned rate is close to the best one, far above the random policy's.
    assert result.mean_reward(20_000) > 0.2
    random_policy = avgreward.train(env_id, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.0,
                                                               alpha_rbar=0.01), 20_000, seed=0)
    assert random_policy.mean_reward(10_000) < 0.05


def test_declared_gymnasium_class_is_a_valid_env_with_the_declared_dynamics(user_envs):
    for env_id in (CORRIDOR, WALK):
        env = gymnasium.make(env_id).unwrapped
        check_env(env, skip_render_check=True)
        fused = env.fused
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(3)  # the env's np_random draws, in order
        state = np.zeros(1)
        fused.reset(state, rng.random())
        for t in range(200):
            action = t % 2 if fused.n_actions else 0.3 * np.sin(t)
            obs, reward, terminated, truncated, _ = env.step(action)
            expected, ended = fused.step(state, float(action), rng.random(), state)
            assert (reward, terminated, truncated) == (expected, ended, False)
            if terminated:
                obs, _ = env.reset()
                fused.reset(state, rng.random())
            assert obs[0] == min(max(state[0], -1.0), 3.0)


def test_registered_with_a_time_limit_or_arguments_it_is_stepped_from_python(user_envs):
    agent = CASES["corridor-softmax"][1]
    assert not is_own_env("user/CorridorLimited-v0")
    assert not is_own_env("user/CorridorArgs-v0")
    limited = avgreward.train("user/CorridorLimited-v0", agent, 2000, seed=0)
    assert limited.info["truncations"].size > 0  # the time limit was honoured


@njit
def _reset(state, u):
    state[0] = 0.0


@njit
def _step(state, action, u, next_state):
    next_state[0] = 0.0
    return 0.0


@njit
def _observe(state, obs):
    obs[0] = 0.0


GOOD = dict(name="ok", reset=_reset, step=_step, observe=_observe, state_size=1, obs_size=1,
            n_actions=2, obs_low=0.0, obs_high=1.0)


@pytest.mark.parametrize("change, words", [
    ({"name": ""}, "name"),
    ({"step": _step.py_func}, "step must be a numba-jitted"),
    ({"reset": None}, "reset must be a numba-jitted"),
    ({"state_size": 0}, "state_size"),
    ({"obs_size": 1.5}, "obs_size"),
    ({"n_actions": -1}, "n_actions"),
    ({"n_actions": True}, "n_actions"),
    ({"obs_low": (0.0, 1.0)}, "obs_low"),
    ({"obs_high": 0.0}, "obs_low < obs_high"),
    ({"obs_high": float("inf")}, "finite"),
    ({"episodic": 1}, "episodic"),
    ({"random_step": "yes"}, "random_step"),
    ({"action_low": 2.0}, "action_low"),
    ({"model": 3}, "model"),
])
def test_bad_declarations_are_refused_naming_the_field(change, words):
    with pytest.raises(ValueError, match=words):
        FusedEnv(**{**GOOD, **change})


@njit
def _three_argument_step(state, action, u):
    return 0.0


@njit
def _episodic_step(state, action, u, next_state):
    return 0.0, False


@pytest.mark.parametrize("change, words", [
    ({"step": _three_argument_step}, "step must take 4 arguments"),
    ({"reset": _step}, "reset must take 2 arguments"),
])
def test_functions_with_the_wrong_arguments_are_refused(change, words):
    with pytest.raises(ValueError, match=words):
        FusedEnv(**{**GOOD, **change})


@pytest.mark.parametrize("change, words", [
    ({"step": _episodic_step}, r"step must return the reward, a number \(an episodic step"),
    ({"episodic": True}, r"step must return \(reward, terminated\)"),
])
def test_a_step_returning_the_wrong_thing_is_named_before_the_loop_compiles(change, words):
    from avgreward.specialize import kernels_for
    from avgreward.learners.actor_critic import SOFTMAX

    with pytest.raises(ValueError, match=words):
        kernels_for(FusedEnv(**{**GOOD, **change}), SOFTMAX)


def test_numpy_numbers_are_accepted_as_bounds_and_sizes():
    fused = FusedEnv(**{**GOOD, "n_actions": np.int64(0), "action_low": np.float32(-2),
                        "action_high": np.int64(2), "obs_high": np.float64(3.0)})
    assert (fused.n_actions, fused.action_low, fused.action_high) == (0, -2.0, 2.0)
    assert type(fused.action_low) is float and fused.obs_high == (3.0,)


def test_old_copies_are_pruned_by_age_never_from_under_a_running_process(tmp_path,
                                                                         monkeypatch):
    from avgreward import specialize
    from avgreward.learners.actor_critic import SOFTMAX

    monkeypatch.setenv("AVGREWARD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(specialize, "_loaded", {})
    fused = FusedEnv(**GOOD)
    directory = tmp_path / "fused"
    directory.mkdir()
    slug = specialize._slug(fused, SOFTMAX)
    old, recent = directory / f"{slug}_old.py", directory / f"{slug}_recent.py"
    for path in (old, recent):
        path.write_text("# another version\n")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    module = specialize.kernels_for(fused, SOFTMAX)
    assert Path(module.__file__).exists() and recent.exists() and not old.exists()


def test_a_class_without_a_declaration_is_refused():
    class Bare(DeclaredEnv):
        pass

    with pytest.raises(TypeError, match="fused = FusedEnv"):
        Bare()


# --- never stale: an edited environment is the one that runs ------------------------------

HELPER = '''
from numba import njit

import params


@njit(cache=True)
def bonus(s):
    return params.BONUS * (s == 2)
'''

CHAIN = '''
import gymnasium
from numba import njit

import helper_mod
from avgreward.envs import DeclaredEnv, FusedEnv


@njit(cache=True)
def reset(state, u):
    state[0] = 0.0


@njit(cache=True)
def step(state, action, u, next_state):
    s = int(state[0])
    next_state[0] = (s + 1) % 3 if action == 1.0 else 0.0
    return helper_mod.bonus(s)


@njit(cache=True)
def observe(state, obs):
    obs[0] = state[0]


class ChainEnv(DeclaredEnv):
    fused = FusedEnv(name="chain", reset=reset, step=step, observe=observe, state_size=1,
                     obs_size=1, n_actions=2, obs_low=0.0, obs_high=2.0)


if "user/Chain-v0" not in gymnasium.registry:
    gymnasium.register("user/Chain-v0", entry_point=ChainEnv, max_episode_steps=None)
'''

RUN = '''
import json
import gymnasium
import avgreward
import chain_env

agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
result = avgreward.train("user/Chain-v0", agent, 500, 0, record_actions=True)
env = gymnasium.make("user/Chain-v0")
env.reset(seed=0)
stream = [env.step(1)[1] for _ in range(9)]
print(json.dumps({"rewards": result.rewards.tolist(), "actions": result.actions.tolist(),
                  "stream": stream}))
'''


def _chain_rewards(actions, reward_of):
    """The rewards of the chain's dynamics (right: s+1 mod 3, left: 0) under ``reward_of``."""
    s, rewards = 0, []
    for a in actions:
        rewards.append(reward_of(s))
        s = (s + 1) % 3 if a == 1 else 0
    return rewards


@pytest.mark.slow
def test_edits_to_an_environment_in_any_of_its_files_are_never_stale(tmp_path):
    """The user's step calls a cached helper in another file that reads a constant in a third.

    numba alone would keep the first helper compiled into the cached step (and
    into the loop) after each edit: every edit below must show in the next run,
    in the fused loop and in the gymnasium class.
    """
    (tmp_path / "params.py").write_text("BONUS = 1.0\n")
    (tmp_path / "helper_mod.py").write_text(HELPER)
    (tmp_path / "chain_env.py").write_text(CHAIN)
    (tmp_path / "run.py").write_text(RUN)
    env = {**os.environ, "AVGREWARD_CACHE_DIR": str(tmp_path / "kernels"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def run(reward_of):
        done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["rewards"] == _chain_rewards(out["actions"], reward_of)
        assert out["stream"] == _chain_rewards([1] * 9, reward_of)
        return out

    run(lambda s: 1.0 * (s == 2))
    run(lambda s: 1.0 * (s == 2))  # from the caches
    (tmp_path / "params.py").write_text("BONUS = 3.0\n")  # a constant, two files away
    run(lambda s: 3.0 * (s == 2))
    (tmp_path / "helper_mod.py").write_text(HELPER.replace("(s == 2)", "(s == 1)"))
    run(lambda s: 3.0 * (s == 1))
    (tmp_path / "chain_env.py").write_text(CHAIN.replace("return helper_mod.bonus(s)",
                                                         "return helper_mod.bonus(s) - 0.5"))
    run(lambda s: 3.0 * (s == 1) - 0.5)
    # Back to the first version: the right kernel again, not a leftover.
    (tmp_path / "params.py").write_text("BONUS = 1.0\n")
    (tmp_path / "helper_mod.py").write_text(HELPER)
    (tmp_path / "chain_env.py").write_text(CHAIN)
    run(lambda s: 1.0 * (s == 2))
    # A copy per version (the last run reused the first's), named by its fingerprint.
    assert len(list((tmp_path / "kernels" / "fused").glob("chain_*.py"))) == 4


def test_a_copy_of_the_kernels_is_named_by_the_environments_sources(tmp_path, monkeypatch):
    from avgreward import specialize
    from avgreward.learners.actor_critic import GAUSSIAN, SOFTMAX
    from avgreward.envs.loop_mdp import LOOP_MDP

    monkeypatch.setenv("AVGREWARD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(specialize, "_loaded", {})
    assert specialize.kernel_dir() == tmp_path / "fused"
    first = specialize.fingerprint(LOOP_MDP, SOFTMAX)
    assert specialize.fingerprint(LOOP_MDP, SOFTMAX) == first
    assert specialize.fingerprint(LOOP_MDP, GAUSSIAN) != first
    other = FusedEnv(**{**GOOD, "name": "other"})
    assert specialize.fingerprint(other, SOFTMAX) != first
    module = specialize.kernels_for(LOOP_MDP, SOFTMAX)
    assert specialize.kernels_for(LOOP_MDP, SOFTMAX) is module
    assert first in Path(module.__file__).read_text().splitlines()[0]
    assert Path(module.__file__).parent == tmp_path / "fused"


# --- the fingerprint sees every value numba compiles in -------------------------------------


def _fingerprint_of(source, name="step"):
    """The hash of a function made from ``source`` with no file (as in a notebook)."""
    import hashlib

    from avgreward.envs._numba_cache import hash_function

    scope = {"np": np, "math": __import__("math")}
    exec(compile(source, "<cell>", "exec"), scope)
    digest = hashlib.sha256()
    hash_function(digest, scope[name], set())
    return digest.hexdigest()


@pytest.mark.parametrize("first, second", [
    ("TOP = np.int64(4)\ndef step(s):\n    return s < TOP\n",
     "TOP = np.int64(2)\ndef step(s):\n    return s < TOP\n"),
    ("C = (np.array([1.0000000001, 2.0]),)\ndef step(s):\n    return C[0][0] * s\n",
     "C = (np.array([1.0, 2.0]),)\ndef step(s):\n    return C[0][0] * s\n"),
    ("def step(s):\n    return math.sin(s)\n", "def step(s):\n    return math.cos(s)\n"),
    ("X = np.float32(0.5)\ndef step(s):\n    return X * s\n",
     "X = np.float32(0.25)\ndef step(s):\n    return X * s\n"),
])
def test_a_changed_value_or_name_changes_the_fingerprint(first, second):
    assert _fingerprint_of(first) != _fingerprint_of(second)


def test_the_fingerprint_does_not_depend_on_where_code_lives_in_memory():
    source = "def step(s):\n    return sum([i * s for i in range(3)])\n"
    assert _fingerprint_of(source) == _fingerprint_of(source)
