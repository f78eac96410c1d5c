"""``train`` on gymnasium environments that are not ours (the stepwise path)."""

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import avgreward
from avgreward import DivergenceError, GaussianActorCritic, SoftmaxActorCritic, TileCoder
from avgreward.stepwise import GoalBonus, default_tile_coder, train_stepwise

PENDULUM = "avgreward/PendulumSwingUp-v0"
CONTINUOUS = "avgreward/PendulumSwingUpContinuous-v0"


def mountain_car(goal_reward=True):
    """MountainCar-v0 without its 200-step time limit, so only reaching the goal resets.

    Its own reward is -1 on every step, so every policy's reward rate is -1:
    the continuing task is only a task once reaching the goal pays (see
    :class:`avgreward.stepwise.GoalBonus`).
    """
    env = gymnasium.make("MountainCar-v0", max_episode_steps=-1)
    return GoalBonus(env) if goal_reward else env


@pytest.mark.slow
def test_mountain_car_learns_to_reach_the_goal_far_more_often_than_a_random_policy():
    # A uniform random policy reaches the goal 0-5 times in 100,000 steps
    # without a time limit (mean 1.75 over 20 seeds); a near-optimal one
    # every ~120 steps, i.e. ~280 times in the last third.
    steps = 100_000
    agent = SoftmaxActorCritic(alpha_w=2**-1, alpha_theta=2**-2, alpha_rbar=2**-8,
                               entropy=2**-8)
    goals = []
    for seed in range(5):
        result = avgreward.train(mountain_car(), agent, steps, seed=seed)
        ends = result.info["terminations"]
        goals.append(int((ends >= 2 * steps // 3).sum()))
        # Every goal reached paid +1 on top of MountainCar's -1.
        assert np.sum(result.rewards == 0.0) == ends.size
        assert result.info["truncations"].size == 0
    assert sum(g >= 50 for g in goals) >= 4, goals


def test_continuous_action_env_runs_and_episode_ends_are_recorded():
    # gymnasium's Pendulum-v1: float32 Box observation and action, a 200-step time limit.
    agent = GaussianActorCritic.pendulum_default()
    result = avgreward.train("Pendulum-v1", agent, 1000, seed=0, record_actions=True)
    assert result.env_id == "Pendulum-v1"
    assert result.steps == 1000 and result.rewards.shape == (1000,)
    assert np.all(np.isfinite(result.rewards)) and np.isfinite(result.final_rbar)
    assert np.all(np.isfinite(result.weights["theta_mu"]))
    # A time limit ends an episode too: the env is reset inside the stream.
    np.testing.assert_array_equal(result.info["truncations"], [199, 399, 599, 799, 999])
    assert result.info["terminations"].size == 0
    # Squashed by default (a bounded Box): actions are what the env got, inside [-2, 2].
    assert np.abs(result.actions).max() <= 2.0
    mu, sigma = result.policy([1.0, 0.0, 0.0])
    assert np.isfinite(mu) and sigma > 0


def test_same_seed_same_result_and_id_or_instance_alike():
    agent = SoftmaxActorCritic(alpha_w=0.5, alpha_theta=0.5, alpha_rbar=0.01)
    a = avgreward.train("MountainCar-v0", agent, 3000, seed=1, record_actions=True)
    b = avgreward.train(gymnasium.make("MountainCar-v0"), agent, 3000, seed=1,
                        record_actions=True)
    c = avgreward.train("MountainCar-v0", agent, 3000, seed=2, record_actions=True)
    np.testing.assert_array_equal(a.weights["theta"], b.weights["theta"])
    np.testing.assert_array_equal(a.weights["w"], b.weights["w"])
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rbar, b.rbar)
    assert not np.array_equal(a.actions, c.actions)
    # MountainCar-v0 keeps its time limit unless told otherwise.
    np.testing.assert_array_equal(a.info["truncations"], np.arange(199, 3000, 200))
    space = gymnasium.make("MountainCar-v0").observation_space  # float32 bounds
    assert a.features == default_tile_coder(space.low, space.high)
    assert a.features.n_active == 8 and a.features.tiles == (8, 8)


class _Counter(gymnasium.Env):
    """Observation c = 0, 1, 2, 3; reward c after the step; terminates on reaching 3."""

    observation_space = spaces.Box(0.0, 4.0, (1,), np.float64)
    action_space = spaces.Discrete(2, start=5)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.c = 0
        return np.array([0.0]), {}

    def step(self, action):
        assert action in (5, 6)
        self.c += 1
        return np.array([float(self.c)]), float(self.c), self.c == 3, False, {}


def test_an_episode_end_is_a_transition_to_the_reset_observation():
    # The critic must learn from S=2 -> S'=0 (the reset), never from the terminal obs 3.
    alpha_w, alpha_rbar, steps = 0.3, 0.05, 100
    agent = SoftmaxActorCritic(alpha_w=alpha_w, alpha_theta=0.1, alpha_rbar=alpha_rbar)
    features = TileCoder(low=0.0, high=4.0, tiles=4)
    result = avgreward.train(_Counter(), agent, steps, seed=0, features=features,
                             rbar_every=1)
    w, rbar = np.zeros(4), 0.0
    s = 0
    for _ in range(steps):
        s_next = (s + 1) % 3
        reward = float(s + 1)
        delta = reward - rbar + w[s_next] - w[s]
        rbar += alpha_rbar * delta
        w[s] += alpha_w * delta
        s = s_next
    np.testing.assert_allclose(result.weights["w"], w, rtol=1e-12, atol=1e-15)
    assert result.weights["w"][3] == 0.0
    assert result.final_rbar == pytest.approx(rbar, rel=1e-12)
    np.testing.assert_array_equal(result.info["terminations"], np.arange(2, steps, 3))
    np.testing.assert_array_equal(result.rewards, np.tile([1.0, 2.0, 3.0], 34)[:steps])


@pytest.mark.parametrize(
    "env_id, agent",
    [
        (PENDULUM, SoftmaxActorCritic.pendulum_reference()),
        (PENDULUM, SoftmaxActorCritic.pendulum_reference(
            lambda_w=0.5, lambda_theta=0.7, entropy=0.01, tau=0.5)),
        (CONTINUOUS, GaussianActorCritic.pendulum_default()),
        (CONTINUOUS, GaussianActorCritic.pendulum_default(
            lambda_w=0.5, lambda_theta=0.5, entropy=0.01, sigma_min=0.1,
            scale_mean_gradient=False)),
    ],
)
@pytest.mark.slow
def test_stepwise_kernels_reproduce_the_fused_loop_exactly(env_id, agent):
    # Our pendulums draw nothing themselves, so driving their gymnasium class
    # from Python makes the same draws as the fused loop: equal to the bit.
    fused = avgreward.train(env_id, agent, 3000, seed=3, record_actions=True, rbar_every=7)
    stepwise = train_stepwise(gymnasium.make(env_id), agent, 3000, seed=3,
                              features=avgreward.default_features(env_id),
                              record_actions=True, rbar_every=7)
    for name, weights in fused.weights.items():
        np.testing.assert_array_equal(stepwise.weights[name], weights)
    np.testing.assert_array_equal(stepwise.rewards, fused.rewards)
    np.testing.assert_array_equal(stepwise.actions, fused.actions)
    np.testing.assert_array_equal(stepwise.rbar, fused.rbar)
    np.testing.assert_array_equal(stepwise.rbar_steps, fused.rbar_steps)
    assert stepwise.final_rbar == fused.final_rbar
    # The live metric of the TD error: the same deltas, summed in the same order.
    logs = [], []
    avgreward.train(env_id, agent, 3000, seed=3, chunk_steps=1000, log=logs[0].append)
    avgreward.train(gymnasium.make(env_id), agent, 3000, seed=3, chunk_steps=1000,
                    features=avgreward.default_features(env_id), log=logs[1].append)
    assert len(logs[0]) == len(logs[1]) == 3
    assert ([m.mean_abs_td_error for m in logs[1]]
            == pytest.approx([m.mean_abs_td_error for m in logs[0]], rel=1e-12))


class _Custom(gymnasium.Env):
    def __init__(self, observation_space, action_space):
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_bad_inputs_name_the_argument():
    softmax = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    gaussian = GaussianActorCritic.pendulum_default()
    box = spaces.Box(-1.0, 1.0, (2,))
    dict_obs = _Custom(spaces.Dict({"x": box}), spaces.Discrete(2))
    with pytest.raises(ValueError, match="env .*Box observation"):
        avgreward.train(dict_obs, softmax, 10, seed=0)
    with pytest.raises(ValueError, match="env .*Box observation"):
        avgreward.train(_Custom(spaces.Box(-1.0, 1.0, (2, 2)), spaces.Discrete(2)),
                        softmax, 10, seed=0)
    # CartPole's velocities are unbounded: the tile coder needs bounds or features.
    with pytest.raises(ValueError, match="features=.*bounds="):
        avgreward.train("CartPole-v1", softmax, 10, seed=0)
    with pytest.raises(ValueError, match="features"):
        avgreward.train("MountainCar-v0", softmax, 10, seed=0,
                        features=TileCoder(low=0.0, high=1.0, tiles=4))
    with pytest.raises(ValueError, match="features"):
        avgreward.train("MountainCar-v0", softmax, 10, seed=0, features="tiles")
    with pytest.raises(ValueError, match="bounds"):
        avgreward.train("CartPole-v1", softmax, 10, seed=0, bounds=([-1, -1], [1, 1]))
    with pytest.raises(ValueError, match="bounds"):
        avgreward.train("CartPole-v1", softmax, 10, seed=0, bounds=(-1.0, float("inf")))
    with pytest.raises(ValueError, match="bounds"):
        avgreward.train("MountainCar-v0", softmax, 10, seed=0, bounds=(-1.0, 1.0),
                        features=default_tile_coder([-1.2, -0.07], [0.6, 0.07]))
    with pytest.raises(ValueError, match="bounds"):
        avgreward.train(PENDULUM, softmax, 10, seed=0, bounds=(-1.0, 1.0))
    with pytest.raises(ValueError, match="agent"):
        avgreward.train("MountainCar-v0", gaussian, 10, seed=0)
    with pytest.raises(ValueError, match="agent"):
        avgreward.train("Pendulum-v1", softmax, 10, seed=0)
    with pytest.raises(ValueError, match="agent"):
        avgreward.train(_Custom(box, spaces.Box(-1.0, 1.0, (2,))), gaussian, 10, seed=0)
    with pytest.raises(ValueError, match="env"):
        avgreward.train("NoSuchEnv-v0", softmax, 10, seed=0)
    with pytest.raises(ValueError, match="env"):
        avgreward.train(42, softmax, 10, seed=0)
    with pytest.raises(ValueError, match="steps"):
        avgreward.train("MountainCar-v0", softmax, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        avgreward.train("MountainCar-v0", softmax, 10, seed=-1)


def test_bounds_give_the_default_tile_coder():
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    low, high = [-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5]
    result = avgreward.train("CartPole-v1", agent, 500, seed=0, bounds=(low, high))
    assert result.features == default_tile_coder(low, high)
    assert result.features.n_active == 16  # a power of two >= 4 * 4 dimensions
    assert result.info["terminations"].size > 0  # random CartPole falls within 500 steps
    assert np.all(np.isfinite(result.weights["w"]))


def test_progress_callback_and_divergence_guard():
    calls = []
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    avgreward.train("MountainCar-v0", agent, 2500, seed=0, chunk_steps=1000,
                    callback=lambda done, total: calls.append((done, total)))
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]

    # A critic step of 2^12 per feature overshoots by a factor of ~4000 a step.
    wild = SoftmaxActorCritic(alpha_w=2.0**12, alpha_theta=0.1, alpha_rbar=0.01)
    with pytest.raises(DivergenceError) as info:
        avgreward.train("MountainCar-v0", wild, 10_000, seed=0)
    err = info.value
    assert 0 < err.step < 10_000 and "MountainCar-v0" in str(err)
    assert err.result.steps == err.step and np.all(np.isfinite(err.result.rewards))
    assert np.isfinite(err.result.final_rbar)
