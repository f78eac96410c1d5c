"""Tests of the environments: kernels, gymnasium wrappers, exact models, registration."""

import importlib
import math
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from numba import njit

from avgreward import envs
from avgreward.envs import access_control as ac
from avgreward.envs import aliased_gridworld as gw
from avgreward.envs import loop_mdp as lm
from avgreward.envs import pendulum as pend
from avgreward.envs import riverswim as rs
from avgreward.envs import two_choice as tc
from avgreward.envs import two_state_transient as tst

PENDULUM = "avgreward/PendulumSwingUp-v0"
PENDULUM_CONT = "avgreward/PendulumSwingUpContinuous-v0"
LOOP = "avgreward/LoopMDP-v0"
GRID = "avgreward/AliasedGridworld-v0"
ACCESS = "avgreward/AccessControl-v0"
ALL_IDS = (PENDULUM, PENDULUM_CONT, LOOP, GRID, ACCESS)
DISCRETE_IDS = (PENDULUM, LOOP, GRID)
RIVER = "avgreward/RiverSwim-v0"
TWO_CHOICE = "avgreward/TwoChoice-v0"
TRANSIENT = "avgreward/TwoStateTransient-v0"
# Declared with DeclaredEnv (Box observations, no rendering): tested below.
WAN_IDS = (RIVER, TWO_CHOICE, TRANSIENT)

FUSED_OF = {
    PENDULUM: pend.PENDULUM_SWINGUP,
    PENDULUM_CONT: pend.PENDULUM_SWINGUP_CONTINUOUS,
    LOOP: lm.LOOP_MDP,
    GRID: gw.ALIASED_GRIDWORLD,
    ACCESS: ac.ACCESS_CONTROL,
}

# The spec fixes the continuous torque range to [-3, 3]; gymnasium recommends
# (as a warning, also for its own Pendulum-v1) an action box within [-1, 1].
BOX_RANGE_WARNING = "recommend using a symmetric and normalized space"


def make_raw(env_id, **kwargs):
    return gymnasium.make(env_id, **kwargs).unwrapped


# ---------------------------------------------------------------- registration


EPISODIC_IDS = ("avgreward/ShortCorridor-v0", "avgreward/AliasedGridworldEpisodic-v0")


def test_registered_ids_make_without_step_limit():
    bandit = {"avgreward/LinearContextualBandit-v0"}  # tested in test_contextual_bandits.py
    assert set(envs.ENV_IDS) == set(ALL_IDS) | set(EPISODIC_IDS) | set(WAN_IDS) | bandit
    for env_id in envs.ENV_IDS:
        assert gymnasium.spec(env_id).max_episode_steps is None
        env = gymnasium.make(env_id)
        assert not isinstance(env, gymnasium.wrappers.TimeLimit)
        env.reset(seed=0)
        env.close()


def test_reimport_does_not_warn_about_duplicate_registration():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(envs)
    assert all(env_id in gymnasium.registry for env_id in ALL_IDS)


@pytest.mark.slow
def test_make_in_fresh_interpreter(tmp_path):
    code = (
        "import gymnasium\n"
        "env = gymnasium.make('avgreward.envs:avgreward/LoopMDP-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "assert env.step(0)[:2] == (1, 1.0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_class_attributes_match_the_fused_declarations():
    for i, (env_id, fused) in enumerate(FUSED_OF.items()):
        env = make_raw(env_id)
        assert envs.fused_env_of(type(env)) is fused
        for name in ("state_size", "obs_size", "random_reset", "random_step", "n_actions"):
            assert getattr(env, name) == getattr(fused, name)
        assert env.state_size == (2, 2, 1, 1, 2)[i]
        assert env.obs_size == (2, 2, 1, 4, 2)[i]
        assert env.random_reset == env.random_step == (env_id in (GRID, ACCESS))
        assert env.n_actions == (3, 0, 2, 4, 2)[i]
        assert not fused.episodic
        assert (fused.model is not None) == (env_id in (LOOP, GRID, ACCESS))


# ------------------------------------------------------------------ check_env


@pytest.mark.parametrize("env_id", ALL_IDS)
@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_check_env(env_id, render_mode):
    env = make_raw(env_id, render_mode=render_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    messages = [str(w.message) for w in caught]
    if env_id == PENDULUM_CONT:
        # The only accepted exception: the spec's [-3, 3] torque box.
        assert messages and all(BOX_RANGE_WARNING in m for m in messages), messages
    else:
        assert messages == []


# ----------------------------------------------------------------- pendulum

DT, M, L, G = 0.05, 1.0 / 3.0, 1.5, 9.8


def naive_pendulum_step(beta, betadot, torque):
    """The spec's five steps, written out in plain Python."""
    a = min(max(torque, -3.0), 3.0)
    betadot = betadot + 0.75 * (a + M * L * G * math.sin(beta)) / (M * L * L) * DT
    beta = beta + betadot * DT
    beta = ((beta + math.pi) % (2 * math.pi)) - math.pi
    if betadot < -2 * math.pi or betadot > 2 * math.pi:
        beta, betadot = -math.pi, 0.0
    return beta, betadot, -abs(beta)


def kernel_torque_step(beta, betadot, torque):
    state = np.array([beta, betadot])
    nxt = np.empty(2)
    reward = pend.pendulum_step_torque(state, torque, nxt)
    return nxt[0], nxt[1], reward


def test_pendulum_constants_and_reset():
    state = np.full(2, 7.0)
    pend.pendulum_reset(state, 0.3)
    assert state[0] == -math.pi and state[1] == 0.0
    # With m l^2 = 0.75 the hand computations below use betadot' = betadot + dt (a + 4.9 sin beta).
    assert math.isclose(M * L * L, 0.75) and math.isclose(M * L * G, 4.9)
    assert (pend.DT, pend.GRAVITY, pend.MASS, pend.LENGTH) == (DT, G, M, L)


@pytest.mark.parametrize(
    "beta, betadot, torque, expected",
    [
        # From hanging down, torque -1: betadot = -0.05, beta = -pi - 0.0025 wraps to pi - 0.0025.
        (-math.pi, 0.0, -1.0, (math.pi - 0.0025, -0.05, -(math.pi - 0.0025))),
        # From hanging down, torque +1: no wrap.
        (-math.pi, 0.0, 1.0, (-math.pi + 0.0025, 0.05, -(math.pi - 0.0025))),
        # Crossing +pi: beta = 3.1 + 0.05 betadot' > pi wraps to that minus 2 pi.
        (
            3.1,
            2.0,
            0.0,
            (
                3.1 + 0.05 * (2.0 + 0.05 * 4.9 * math.sin(3.1)) - 2 * math.pi,
                2.0 + 0.05 * 4.9 * math.sin(3.1),
                3.1 + 0.05 * (2.0 + 0.05 * 4.9 * math.sin(3.1)) - 2 * math.pi,
            ),
        ),
        # Velocity 6.25 + 0.05 (1 + 4.9 sin 0.1) = 6.324 > 2 pi: restart, reward -pi.
        (0.1, 6.25, 1.0, (-math.pi, 0.0, -math.pi)),
        (-0.1, -6.25, -1.0, (-math.pi, 0.0, -math.pi)),
        # Torque 10 is clipped to 3: acceleration 3 + 4.9 sin(0.5).
        (
            0.5,
            0.0,
            10.0,
            (
                0.5 + 0.05 * 0.05 * (3.0 + 4.9 * math.sin(0.5)),
                0.05 * (3.0 + 4.9 * math.sin(0.5)),
                -(0.5 + 0.05 * 0.05 * (3.0 + 4.9 * math.sin(0.5))),
            ),
        ),
    ],
)
def test_pendulum_step_matches_hand_computation(beta, betadot, torque, expected):
    for got in (
        kernel_torque_step(beta, betadot, torque),
        naive_pendulum_step(beta, betadot, torque),
    ):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert -math.pi <= kernel_torque_step(beta, betadot, torque)[0] < math.pi


def test_pendulum_kernel_matches_naive_on_a_long_trajectory():
    rng = np.random.default_rng(3)
    state = np.array([-math.pi, 0.0])
    beta, betadot = -math.pi, 0.0
    resets = wraps = 0
    for noise in rng.uniform(-1.0, 1.0, size=3000):
        # Pumping with the velocity (torques beyond 3 get clipped) spins the
        # pendulum: it wraps and overspeeds many times.
        torque = 4.0 * math.copysign(1.0, betadot) + noise
        reward = pend.pendulum_step_torque(state, torque, state)  # in place
        new_beta, betadot, expected_reward = naive_pendulum_step(beta, betadot, torque)
        wraps += abs(new_beta - beta) > math.pi
        resets += new_beta == -math.pi and betadot == 0.0
        beta = new_beta
        assert abs(state[0] - beta) <= 1e-12 and abs(state[1] - betadot) <= 1e-12
        assert abs(reward - expected_reward) <= 1e-12
    assert wraps > 10 and resets > 3


def test_pendulum_discrete_and_continuous_kernels_map_actions_to_torques():
    start = np.array([0.4, -1.3])
    for index, torque in enumerate((-1.0, 0.0, 1.0)):
        expected = kernel_torque_step(*start, torque)
        nxt = np.empty(2)
        r = pend.pendulum_discrete_step(start, float(index), 0.5, nxt)
        assert (nxt[0], nxt[1], r) == expected
        r = pend.PENDULUM_SWINGUP.step(start, float(index), 0.5, nxt)
        assert (nxt[0], nxt[1], r) == expected
    for torque, clipped in ((10.0, 3.0), (-10.0, -3.0), (2.5, 2.5)):
        expected = kernel_torque_step(*start, clipped)
        nxt = np.empty(2)
        r = pend.pendulum_continuous_step(start, torque, 0.5, nxt)
        assert (nxt[0], nxt[1], r) == expected
        r = pend.PENDULUM_SWINGUP_CONTINUOUS.step(start, torque, 0.5, nxt)
        assert (nxt[0], nxt[1], r) == expected


def test_pendulum_gymnasium_classes_follow_the_spec():
    env = make_raw(PENDULUM)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float64 and tuple(obs) == (-math.pi, 0.0) and info == {}
    obs, reward, terminated, truncated, info = env.step(0)  # torque -1: wraps to +pi side
    np.testing.assert_allclose(obs, [math.pi - 0.0025, -0.05], rtol=0, atol=1e-12)
    assert type(reward) is float and terminated is False and truncated is False
    assert reward == -abs(obs[0])
    for index, torque in enumerate((-1.0, 0.0, 1.0)):
        env.state[:] = (0.1, 6.2)
        obs, reward, *_ = env.step(np.int64(index))
        assert (obs[0], obs[1], reward) == kernel_torque_step(0.1, 6.2, torque)
    env.state[:] = (0.1, 6.25)
    obs, reward, *_ = env.step(2)  # leaves [-2 pi, 2 pi]: restart
    assert tuple(obs) == (-math.pi, 0.0) and reward == -math.pi

    cont = make_raw(PENDULUM_CONT)
    cont.reset(seed=0)
    assert cont.action_space.dtype == np.float64
    results = {}
    for action in (10.0, np.array([10.0]), [10.0], 3.0, np.float32(3.0), np.array(3)):
        cont.state[:] = (0.5, 0.0)
        obs, reward, *_ = cont.step(action)
        results[repr(action)] = (obs[0], obs[1], reward)
    assert len(set(results.values())) == 1, results
    assert next(iter(results.values())) == kernel_torque_step(0.5, 0.0, 3.0)


# ------------------------------------------------------------------- models


def stationary_reward_rate(model, policy):
    """Average reward of a policy (n_states x n_actions) with one recurrent class."""
    P_pi = np.einsum("sa,sat->st", policy, model.P)
    r_pi = np.einsum("sa,sa->s", policy, model.R)
    n = model.n_states
    A = np.vstack([P_pi.T - np.eye(n), np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    d = np.linalg.lstsq(A, b, rcond=None)[0]
    return float(d @ r_pi)


@pytest.mark.parametrize("model_fn", [lm.loop_mdp_model, gw.gridworld_model])
def test_models_are_well_formed(model_fn):
    model = model_fn()
    assert model.P.shape == (model.n_states, model.n_actions, model.n_states)
    assert model.R.shape == (model.n_states, model.n_actions)
    assert np.all(model.P >= 0) and np.allclose(model.P.sum(axis=2), 1.0)
    assert np.all(model.start >= 0) and math.isclose(model.start.sum(), 1.0)
    assert model.observations.dtype == np.float64


def test_loop_mdp_model_facts():
    model = lm.loop_mdp_model()
    assert model.observations.shape == (9, 1)
    assert np.array_equal(model.observations[:, 0], np.arange(9))
    assert model.start[0] == 1.0
    for action, rewards in ((0, [1, 0, 0, 0, 0]), (1, [0, 0, 0, 0, 2])):
        s, seen = 0, []
        for _ in range(10):  # two laps
            seen.append(model.R[s, action])
            s = int(np.argmax(model.P[s, action]))
        assert seen == rewards * 2 and s == 0
    left = np.zeros((9, 2))
    left[:, 0] = 1.0
    right = np.zeros((9, 2))
    right[:, 1] = 1.0
    assert math.isclose(stationary_reward_rate(model, left), 0.2)
    assert math.isclose(stationary_reward_rate(model, right), 0.4)
    env = make_raw(LOOP)
    assert env.model().P.tolist() == model.P.tolist()


def test_gridworld_model_facts():
    model = gw.gridworld_model()
    restart = [0.25, 0.25, 0.0, 0.25, 0.25]
    assert model.start.tolist() == restart
    assert model.P[2, gw.SOUTH].tolist() == restart and model.R[2, gw.SOUTH] == 1.0
    for skull in (0, 4):
        assert model.P[skull, gw.SOUTH].tolist() == restart and model.R[skull, gw.SOUTH] == -1.0
    assert np.count_nonzero(model.R) == 3
    assert model.observations.tolist() == [
        [1, 0, 0, 1],
        [1, 0, 1, 0],
        [1, 0, 0, 0],
        [1, 0, 1, 0],
        [1, 1, 0, 0],
    ]
    # The best observation-based policy: E in c0, S in c2, W in c4, E/W at random in c1/c3.
    best = np.zeros((5, 4))
    best[0, gw.EAST] = best[2, gw.SOUTH] = best[4, gw.WEST] = 1.0
    best[[1, 3], gw.EAST] = best[[1, 3], gw.WEST] = 0.5
    assert math.isclose(stationary_reward_rate(model, best), 2.0 / 9.0)
    assert make_raw(GRID).model().P.tolist() == model.P.tolist()


def rollout_counts(env, n_steps, seed):
    """Uniform random rollout of the gymnasium env, counted against the true state."""
    model = env.model()
    rng = np.random.default_rng(seed)
    counts = np.zeros_like(model.P)
    reward_sum = np.zeros_like(model.R)
    reward_sq = np.zeros_like(model.R)
    obs, _ = env.reset(seed=seed)
    s = int(env.state[0])
    observed = [obs]
    states = [s]
    for a in rng.integers(model.n_actions, size=n_steps):
        obs, r, terminated, truncated, _ = env.step(int(a))
        assert terminated is False and truncated is False and type(r) is float
        s_next = int(env.state[0])
        counts[s, a, s_next] += 1
        reward_sum[s, a] += r
        reward_sq[s, a] += r * r
        if len(observed) < 2000:
            observed.append(obs)
            states.append(s_next)
        s = s_next
    for obs, s in zip(observed, states):
        assert np.array_equal(np.asarray(obs, dtype=np.float64).reshape(-1), model.observations[s])
    return model, counts, reward_sum, reward_sq


@pytest.mark.parametrize("env_id", [LOOP, GRID, RIVER, TWO_CHOICE])
@pytest.mark.slow
def test_simulator_matches_model(env_id):
    env = make_raw(env_id)
    model, counts, reward_sum, reward_sq = rollout_counts(env, 200_000, seed=11)
    n = counts.sum(axis=2)
    assert np.all(n > 0), "uniform random policy should visit every (s, a)"
    p_hat = counts / n[:, :, None]
    se = np.sqrt(model.P * (1 - model.P) / n[:, :, None])
    # 5 standard errors per cell; a cell with probability 0 or 1 must match exactly.
    assert np.all(np.abs(p_hat - model.P) <= 5 * se + 1e-12), np.abs(p_hat - model.P).max()
    mean = reward_sum / n
    sd = np.sqrt(np.maximum(reward_sq / n - mean**2, 0.0))
    assert np.all(np.abs(mean - model.R) <= 5 * sd / np.sqrt(n) + 1e-12)


def test_gridworld_start_distribution_matches_model():
    env = make_raw(GRID)
    env.reset(seed=5)
    n = 8000
    starts = np.zeros(5)
    for _ in range(n):
        env.reset()  # no seed: continues the same np_random stream
        starts[int(env.state[0])] += 1
    p = gw.gridworld_model().start
    assert starts[2] == 0
    assert np.all(np.abs(starts / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)


# ---------------------------------------------------- seeding and draw order


def env_rollout(env_id, seed, n_steps=300):
    env = make_raw(env_id)
    actions = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    out = [np.asarray(obs, dtype=np.float64).tolist()]
    for _ in range(n_steps):
        if env.n_actions:
            action = int(actions.integers(env.n_actions))
        else:
            action = actions.uniform(-4.0, 4.0)
        obs, r, *_ = env.step(action)
        out.append((np.asarray(obs, dtype=np.float64).tolist(), r))
    return out


@pytest.mark.parametrize("env_id", ALL_IDS + WAN_IDS)
def test_same_seed_same_rollout(env_id):
    assert env_rollout(env_id, seed=42) == env_rollout(env_id, seed=42)


def test_gridworld_different_seeds_differ():
    assert env_rollout(GRID, seed=1) != env_rollout(GRID, seed=2)


@njit
def fused_rollout(reset, step, observe, state_size, obs_size, random_reset, random_step,
                  actions, rng):
    """A miniature fused loop: reset, then step and observe with the declared functions."""
    state = np.empty(state_size)
    obs = np.empty((actions.shape[0] + 1, obs_size))
    rewards = np.empty(actions.shape[0])
    reset(state, rng.random() if random_reset else 0.0)
    observe(state, obs[0])
    for t in range(actions.shape[0]):
        u = rng.random() if random_step else 0.0
        rewards[t] = step(state, actions[t], u, state)
        observe(state, obs[t + 1])
    return obs, rewards


@pytest.mark.parametrize("env_id", ALL_IDS + WAN_IDS)
def test_kernels_in_nopython_loop_reproduce_gymnasium_stream(env_id):
    """Same seed: the jitted loop (contract's order of draws) equals the gymnasium env."""
    env = make_raw(env_id)
    rng = np.random.default_rng(123)
    if env.n_actions:
        actions = rng.integers(env.n_actions, size=500).astype(np.float64)
    else:
        actions = rng.uniform(-4.0, 4.0, size=500)
    fused = env.fused
    obs, rewards = fused_rollout(
        fused.reset, fused.step, fused.observe, fused.state_size, fused.obs_size,
        fused.random_reset, fused.random_step, actions, np.random.default_rng(7),
    )
    first, _ = env.reset(seed=7)
    assert np.array_equal(np.asarray(first, dtype=np.float64).reshape(-1), obs[0])
    for t, a in enumerate(actions):
        o, r, *_ = env.step(int(a) if env.n_actions else a)
        assert np.array_equal(np.asarray(o, dtype=np.float64).reshape(-1), obs[t + 1])
        assert r == rewards[t]


def test_next_state_may_alias_state():
    for fused, state in (
        (pend.PENDULUM_SWINGUP, [0.3, 1.0]),
        (pend.PENDULUM_SWINGUP_CONTINUOUS, [0.3, 1.0]),
        (lm.LOOP_MDP, [8.0]),
        (gw.ALIASED_GRIDWORLD, [2.0]),
    ):
        action = 2.0 if fused is not lm.LOOP_MDP else 1.0
        a, b = np.array(state), np.array(state)
        separate = np.empty_like(a)
        r1 = fused.step(a, action, 0.6, separate)
        r2 = fused.step(b, action, 0.6, b)
        assert r1 == r2 and np.array_equal(separate, b) and np.array_equal(a, state)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("env_id", DISCRETE_IDS)
@pytest.mark.parametrize(
    "action",
    ["1", 1.0, 3.7, np.float64(1.0), -1, 99, True, None, np.nan, np.array([0, 1]),
     np.array(1.0), np.array([[1]]), [1]],
)
def test_discrete_bad_actions_raise(env_id, action):
    env = make_raw(env_id)
    env.reset(seed=0)
    state = env.state.copy()
    rng_state = env.np_random.bit_generator.state
    with pytest.raises(ValueError, match=r"action must be an integer in \{0, 1"):
        env.step(action)
    assert np.array_equal(env.state, state)
    assert env.np_random.bit_generator.state == rng_state  # no draw on a rejected action


@pytest.mark.parametrize("env_id", DISCRETE_IDS)
@pytest.mark.parametrize(
    "action", [1, np.int64(1), np.int32(1), np.uint8(1), np.array(1), np.array([1])]
)
def test_discrete_accepts_integer_types(env_id, action):
    env = make_raw(env_id)
    env.reset(seed=0)
    expected = make_raw(env_id)
    expected.reset(seed=0)
    assert str(env.step(action)) == str(expected.step(1))


@pytest.mark.parametrize(
    "action",
    [np.nan, np.inf, -np.inf, np.array([np.nan]), np.array([np.inf]), np.array([1.0, 2.0]),
     np.array([[1.0]]), "1.0", None, True, 1j, [1.0, 2.0], ["a"]],
)
def test_continuous_bad_actions_raise(action):
    env = make_raw(PENDULUM_CONT)
    env.reset(seed=0)
    state = env.state.copy()
    with pytest.raises(ValueError, match="action must be a finite real number"):
        env.step(action)
    assert np.array_equal(env.state, state)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_step_or_render_before_reset_raises_reset_needed(env_id):
    env = gymnasium.make(env_id, render_mode="rgb_array")
    raw = env.unwrapped
    action = env.action_space.sample()
    for target in (raw, env):
        with pytest.raises(ResetNeeded):
            target.step(action)
    with pytest.raises(ResetNeeded):
        raw.render()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_bad_render_mode_raises(env_id):
    cls = type(make_raw(env_id))
    with pytest.raises(ValueError, match="render_mode"):
        cls(render_mode="human")


# ------------------------------------------------------------------- render


def frame(env_id, set_state):
    env = make_raw(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.state[:] = set_state
    img = env.render()
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8
    assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 100
    return img


@pytest.mark.parametrize(
    "env_id, state_a, state_b",
    [
        (PENDULUM, (-math.pi, 0.0), (0.0, 0.0)),
        (PENDULUM_CONT, (0.5, 0.0), (-0.5, 0.0)),
        (LOOP, (0.0,), (7.0,)),
        (GRID, (1.0,), (3.0,)),
    ],
)
def test_render_changes_with_state(env_id, state_a, state_b):
    a, b = frame(env_id, state_a), frame(env_id, state_b)
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert np.array_equal(a, frame(env_id, state_a))


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_render_without_mode_returns_none(env_id):
    env = make_raw(env_id)
    env.reset(seed=0)
    assert env.render() is None


# ------------------------------------- the small MDPs of Wan, Naik & Sutton (2021)


@pytest.mark.parametrize("env_id", WAN_IDS)
def test_wan_mdps_pass_check_env_and_refuse_rendering(env_id):
    env = make_raw(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []
    assert env.fused is {RIVER: rs.RIVERSWIM, TWO_CHOICE: tc.TWO_CHOICE,
                         TRANSIENT: tst.TWO_STATE_TRANSIENT}[env_id]
    with pytest.raises(ValueError, match="render_mode"):
        type(env)(render_mode="rgb_array")
    with pytest.raises(ResetNeeded):
        make_raw(env_id).step(0)


@pytest.mark.parametrize("model_fn", [rs.riverswim_model, tc.two_choice_model,
                                      tst.two_state_transient_model])
def test_wan_models_are_well_formed(model_fn):
    test_models_are_well_formed(model_fn)


def test_riverswim_is_strehl_and_littmans():
    model = rs.riverswim_model()
    # Right from a middle state: 0.3 upstream, 0.6 stays, 0.1 swept down.
    assert model.P[2, rs.RIGHT].tolist() == [0.0, 0.1, 0.6, 0.3, 0.0, 0.0]
    assert model.P[0, rs.RIGHT].tolist()[:2] == [0.7, 0.3]
    assert model.P[5, rs.RIGHT].tolist()[4:] == [0.7, 0.3]
    assert all(model.P[s, rs.LEFT, max(s - 1, 0)] == 1.0 for s in range(6))
    expected = np.zeros((6, 2))
    expected[0, rs.LEFT], expected[5, rs.RIGHT] = 5.0, 0.3 * 10_000.0
    assert model.R.tolist() == expected.tolist()
    assert model.start.tolist() == [0.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    # Paid only on staying in state 5: the reward depends on the outcome.
    state, nxt = np.array([5.0]), np.empty(1)
    assert rs.riverswim_step(state, 1.0, 0.29, nxt) == 10_000.0 and nxt[0] == 5.0
    assert rs.riverswim_step(state, 1.0, 0.31, nxt) == 0.0 and nxt[0] == 4.0


@pytest.mark.parametrize("env_id, rate, best", [
    # Always right: the stationary law of the right-swimming chain times 5 x 0 + 3000 in 5.
    (RIVER, None, [1, 1, 1, 1, 1, 1]),
    (TWO_CHOICE, 0.4, [1, 0, 0, 0, 0, 0, 0, 0, 0]),
    (TRANSIENT, 2.0, [0, 0]),
])
def test_wan_mdps_exact_optimum_by_policy_iteration(env_id, rate, best):
    from avgreward import exact

    model = make_raw(env_id).model()
    optimal = exact.policy_iteration(model)
    assert optimal.policy.argmax(axis=1).tolist() == best
    policy = np.eye(2)[best]
    independent = stationary_reward_rate(model, policy)
    assert math.isclose(optimal.reward_rate, independent, rel_tol=1e-9)
    if rate is not None:
        assert math.isclose(optimal.reward_rate, rate, rel_tol=1e-12)
    # No deterministic policy does better (2^n of them, each evaluated exactly).
    for actions in np.ndindex(*(2,) * model.n_states):
        assert exact.evaluate(model, np.eye(2)[list(actions)]).reward_rate \
            <= optimal.reward_rate + 1e-9


def test_riverswim_optimal_rate_by_hand():
    from avgreward import exact

    # Always right is a birth-death chain: d(s+1) / d(s) = 0.3 / 0.1 inside,
    # 0.3 / 0.1 from 0 to 1 and 0.3 / 0.7 from 4 to 5 (balance across each edge).
    d = np.array([1.0, 3.0, 9.0, 27.0, 81.0, 81.0 * 0.3 / 0.7])
    d /= d.sum()
    assert math.isclose(exact.policy_iteration(rs.riverswim_model()).reward_rate,
                        d[5] * 3000.0, rel_tol=1e-12)


@pytest.mark.parametrize("env_id, p", [(RIVER, [0.0, 0.5, 0.5, 0.0, 0.0, 0.0]),
                                       (TWO_CHOICE, [1.0 / 9.0] * 9)])
def test_wan_start_distributions_match_the_model(env_id, p):
    env = make_raw(env_id)
    env.reset(seed=5)
    n = 9000
    starts = np.zeros(len(p))
    for _ in range(n):
        env.reset()
        starts[int(env.state[0])] += 1
    p = np.array(p)
    assert np.array_equal(starts == 0, p == 0)
    assert np.all(np.abs(starts / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
    assert np.array_equal(env.model().start, p)


def test_two_choice_is_the_loop_mdp_but_for_the_start():
    a, b = tc.two_choice_model(), lm.loop_mdp_model()
    assert np.array_equal(a.P, b.P) and np.array_equal(a.R, b.R)
    assert tc.TWO_CHOICE.step is lm.loop_mdp_step


def test_two_state_transient_from_state_zero():
    env = make_raw(TRANSIENT)
    env.reset(seed=3)
    stays = rewards = 0.0
    n = 20_000
    for _ in range(n):
        env.state[:] = 0.0
        obs, r, *_ = env.step(0)
        stays += obs[0] == 0.0
        rewards += r
        assert r == (1.0 if obs[0] == 0.0 else 0.0)
    assert abs(stays / n - 0.9) < 5 * math.sqrt(0.09 / n)
    env.state[:] = 0.0
    assert env.step(1)[1:2] == (-10.0,) and env.state[0] == 1.0
    assert [env.step(a)[1] for a in (0, 1, 0)] == [2.0, 2.0, 2.0] and env.state[0] == 1.0
