"""Bounded continuous actions: the tanh-squashed Gaussian and the runaway-mean warning."""

import math
import warnings

import gymnasium
import numpy as np
import pytest
from helpers import finite_difference

import avgreward
from avgreward import GaussianActorCritic, agent_from_dict
from avgreward.actors import (
    gaussian_log_prob,
    gaussian_parameters,
    gaussian_score,
    squash_action,
    squash_log_jacobian,
    squashed_gaussian_log_prob,
)
from avgreward.reference import _linear
from avgreward.stepwise import default_tile_coder, train_stepwise

PENDULUM_V1 = "Pendulum-v1"  # gymnasium's: action Box([-2], [2]), 200-step episodes
CONTINUOUS = "avgreward/PendulumSwingUpContinuous-v0"
N_FEATURES = 12
IDX = np.array([0, 3, 5, 8, 11], dtype=np.int64)
H = 1e-6


def _finite_difference(f, theta):
    return finite_difference(f, theta, H)


# --- the squashed policy's density and score -------------------------------------------


@pytest.mark.parametrize("sigma_min", [0.0, 0.2])
@pytest.mark.parametrize("u", [-3.0, -0.4, 0.0, 1.1, 6.0])
@pytest.mark.parametrize("scale", [False, True])
def test_squashed_score_is_the_gaussian_score_of_u(sigma_min, u, scale):
    low, high = -2.0, 0.5
    rng = np.random.default_rng(13)
    theta = rng.normal(scale=0.2, size=(N_FEATURES, 2))
    mu, exp_h, sigma = gaussian_parameters(theta, IDX, sigma_min)
    g_mu, g_sigma = gaussian_score(u, mu, exp_h, sigma, False)
    analytic = np.zeros_like(theta)
    analytic[IDX] = [g_mu, g_sigma]
    # The action a = squash(u) held fixed (so u too): d/dtheta of the action-space density.
    numeric = _finite_difference(
        lambda th: squashed_gaussian_log_prob(th, IDX, sigma_min, u, low, high), theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    # The density of a differs from that of u by the Jacobian only, whatever theta.
    for th in (theta, 2.0 * theta - 0.3):
        gap = (squashed_gaussian_log_prob(th, IDX, sigma_min, u, low, high)
               - gaussian_log_prob(th, IDX, sigma_min, u))
        assert gap == pytest.approx(-squash_log_jacobian(u, low, high), rel=1e-12, abs=1e-12)
    # The scaled mean direction is the score times sigma^2, as unsquashed.
    scaled, _ = gaussian_score(u, mu, exp_h, sigma, scale)
    assert scaled == pytest.approx(g_mu * sigma**2 if scale else g_mu, rel=1e-12)


def test_squash_jacobian_is_exact_and_stays_finite():
    low, high = -2.0, 2.0
    for u in (-5.0, -1.0, 0.0, 0.3, 4.0):
        direct = math.log((high - low) / 2.0 * (1.0 - math.tanh(u) ** 2))
        assert squash_log_jacobian(u, low, high) == pytest.approx(direct, rel=1e-12)
        # Central difference of the action itself.
        slope = (squash_action(u + H, low, high) - squash_action(u - H, low, high)) / (2 * H)
        assert math.log(slope) == pytest.approx(direct, rel=1e-6, abs=1e-8)
    # 1 - tanh(u)^2 underflows to 0 beyond |u| ~ 19; its log does not.
    assert math.isfinite(squash_log_jacobian(400.0, low, high))
    assert squash_log_jacobian(400.0, low, high) == pytest.approx(
        math.log(2.0) + 2.0 * (math.log(2.0) - 400.0), rel=1e-12)


def test_squashed_density_integrates_to_one_over_the_box():
    low, high = -2.0, 2.0
    theta = np.zeros((N_FEATURES, 2))
    theta[IDX, 0] = 0.1  # mu = 0.5
    theta[IDX, 1] = -0.05  # sigma = e^-0.25
    # Midpoint rule in a, with u = artanh of the scaled action.
    n = 200_000
    a = low + (np.arange(n) + 0.5) * (high - low) / n
    u = np.arctanh(2.0 * (a - low) / (high - low) - 1.0)
    density = np.exp([squashed_gaussian_log_prob(theta, IDX, 0.0, v, low, high) for v in u])
    assert density.sum() * (high - low) / n == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_squashed_actions_are_always_inside_the_bounds():
    for low, high in ((-2.0, 2.0), (0.1, 0.3), (-1e-3, 7.0)):
        for u in (-np.inf, -1e300, -25.0, -1.0, 0.0, 1e-300, 2.5, 25.0, 1e300, np.inf):
            a = squash_action(u, low, high)
            assert low <= a <= high, (low, high, u, a)
        assert squash_action(0.0, low, high) == pytest.approx((low + high) / 2)
    # In a run: a large mean step size throws u far out; the env's actions stay in [-2, 2].
    agent = GaussianActorCritic(alpha_w=1.0, alpha_mu=64.0, alpha_sigma=0.1, alpha_rbar=0.01)
    with pytest.warns(RuntimeWarning, match="mean of u .* smaller alpha_mu") as caught:
        result = avgreward.train(PENDULUM_V1, agent, 2000, seed=1, record_actions=True)
    # The warning points at this call, not into the package.
    assert caught[0].filename == __file__
    assert result.actions.min() >= -2.0 and result.actions.max() <= 2.0
    assert result.actions.min() < -1.99 and result.actions.max() > 1.99


# --- the stepwise kernel against a plain-Python version ---------------------------------


def _reference(agent, steps, seed):
    """The continuing actor-critic box on Pendulum-v1 in plain Python, squashed Gaussian.

    ``u ~ N(mu, sigma^2)``, the env gets ``a = low + (high - low) (tanh(u) + 1) / 2``,
    the score is the Gaussian's of ``u``.  Returns the env actions, R-bar after
    every step, ``w`` and ``theta``.
    """
    env = gymnasium.make(PENDULUM_V1)
    low, high = float(env.action_space.low[0]), float(env.action_space.high[0])
    features = default_tile_coder(env.observation_space.low, env.observation_space.high)
    k, d = features.n_active, features.n_features
    z = np.random.default_rng(seed).standard_normal(steps + 1)
    obs, _ = env.reset(seed=seed)
    active = features.indices(np.asarray(obs, dtype=np.float64))
    rbar, w, z_w = 0.0, np.zeros(d), np.zeros(d)
    theta, z_theta = np.zeros((d, 2)), np.zeros((d, 2))
    actions, rbars = [], []
    for t in range(steps):
        x = np.zeros(d)
        x[active] = 1.0
        mu, h_sigma = _linear(theta, active)
        sigma = agent.sigma_min + math.exp(h_sigma)
        u = mu + sigma * z[t]
        a = low + (high - low) * (math.tanh(u) + 1.0) / 2.0
        g_mu = (u - mu) if agent.scale_mean_gradient else (u - mu) / sigma**2
        g_sigma = ((u - mu) ** 2 / sigma**2 - 1.0) * (math.exp(h_sigma) / sigma)

        obs, reward, terminated, truncated, _ = env.step(np.array([a], dtype=np.float32))
        if terminated or truncated:
            obs, _ = env.reset()
        active_next = features.indices(np.asarray(obs, dtype=np.float64))

        delta = reward - rbar + _linear(w, active_next) - _linear(w, active)
        rbar = rbar + agent.alpha_rbar * delta
        z_w = agent.lambda_w * z_w + x
        z_theta = agent.lambda_theta * z_theta + np.stack([g_mu * x, g_sigma * x], axis=1)
        w = w + (agent.alpha_w / k) * delta * z_w
        theta = theta + np.array([agent.alpha_mu, agent.alpha_sigma]) / k * delta * z_theta
        if agent.entropy > 0.0:
            theta[:, 1] += agent.alpha_sigma / k * agent.entropy * math.exp(h_sigma) / sigma * x
        active = active_next
        actions.append(a)
        rbars.append(rbar)
    env.close()
    return np.array(actions), np.array(rbars), w, theta


@pytest.mark.parametrize("agent", [
    GaussianActorCritic(alpha_w=1.0, alpha_mu=2.0**-2, alpha_sigma=2.0**-4, alpha_rbar=2.0**-6,
                        scale_mean_gradient=True),
    GaussianActorCritic(alpha_w=0.5, alpha_mu=2.0**-3, alpha_sigma=2.0**-5, alpha_rbar=2.0**-5,
                        lambda_w=0.5, lambda_theta=0.7, sigma_min=0.1, entropy=0.01,
                        squash=True),
])
def test_stepwise_kernel_matches_plain_python_step_by_step(agent):
    steps = 400  # two time limits: resets inside the stream
    actions, rbars, w, theta = _reference(agent, steps, seed=4)
    result = avgreward.train(PENDULUM_V1, agent, steps, seed=4, record_actions=True,
                             rbar_every=1)
    np.testing.assert_allclose(result.actions, actions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.rbar, rbars, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.weights["w"], w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.weights["theta_mu"], theta[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.weights["theta_sigma"], theta[:, 1], rtol=1e-9,
                               atol=1e-12)
    assert np.abs(result.weights["theta_mu"]).max() > 0.0


# --- automatic squashing -----------------------------------------------------------------


@pytest.mark.slow
def test_automatic_squash_is_on_for_gymnasium_boxes_and_off_for_our_envs():
    auto = GaussianActorCritic.pendulum_default()
    assert auto.squash is None
    a = avgreward.train(PENDULUM_V1, auto, 500, seed=2, record_actions=True)
    b = avgreward.train(PENDULUM_V1, auto.replace(squash=True), 500, seed=2,
                        record_actions=True)
    c = avgreward.train(PENDULUM_V1, auto.replace(squash=False), 500, seed=2,
                        record_actions=True)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.weights["theta_mu"], b.weights["theta_mu"])
    assert not np.array_equal(a.actions, c.actions)
    # Unsquashed, the record is the sample before the env's clip.
    assert np.abs(c.actions).max() > 2.0
    # Our own continuous pendulum through the stepwise path: unsquashed, the fused loop's.
    features = avgreward.default_features(CONTINUOUS)
    own = train_stepwise(gymnasium.make(CONTINUOUS), auto, 300, seed=0, features=features,
                         record_actions=True)
    fused = avgreward.train(CONTINUOUS, auto, 300, seed=0, record_actions=True)
    np.testing.assert_array_equal(own.actions, fused.actions)
    squashed = train_stepwise(gymnasium.make(CONTINUOUS), auto.replace(squash=True), 300,
                              seed=0, features=features, record_actions=True)
    assert np.abs(squashed.actions).max() <= 3.0
    assert not np.array_equal(squashed.actions, fused.actions)


class _Unbounded(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))
    action_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), -float(action[0]) ** 2, False, False, {}


def test_squash_needs_a_bounded_box():
    agent = GaussianActorCritic.pendulum_default()
    # Automatic: an unbounded action is not squashed (and cannot run away from a range).
    result = avgreward.train(_Unbounded(), agent, 50, seed=0, record_actions=True)
    assert result.steps == 50
    with pytest.raises(ValueError, match="squash=True needs a bounded action"):
        avgreward.train(_Unbounded(), agent.replace(squash=True), 50, seed=0)


# --- the runaway warning -----------------------------------------------------------------


def _run_collecting_warnings(agent, steps=2000):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = avgreward.train(PENDULUM_V1, agent, steps, seed=0)
    return result, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_runaway_mean_warns_once_when_unsquashed_and_not_when_squashed():
    # A huge mean step size: unsquashed, samples beyond the bounds act like the
    # bounds and the mean walks out of the box.
    agent = GaussianActorCritic(alpha_w=1.0, alpha_mu=64.0, alpha_sigma=0.0, alpha_rbar=0.01)
    result, caught = _run_collecting_warnings(agent.replace(squash=False))
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "Pendulum-v1" in text and "at step " in text
    assert "squash=True" in text and "alpha_mu" in text and "[-2, 2]" in text
    step = int(text.split("at step ")[1].split()[0])
    assert 0 < step < 2000
    assert np.abs(result.weights["theta_mu"]).max() * 16 > 4000  # 16 active features
    _, caught = _run_collecting_warnings(agent)  # automatic: squashed
    assert caught == []


# --- settings ----------------------------------------------------------------------------


def test_squash_setting_round_trips_and_old_dicts_still_load():
    default = GaussianActorCritic.pendulum_default()
    # None is left out: the dict is exactly what it was before the setting existed.
    old_keys = {"kind", "alpha_w", "alpha_mu", "alpha_sigma", "alpha_rbar", "lambda_w",
                "lambda_theta", "scale_mean_gradient", "sigma_min", "entropy"}
    assert set(default.to_dict()) == old_keys
    assert agent_from_dict(default.to_dict()) == default
    for squash in (True, False):
        agent = default.replace(squash=squash)
        d = agent.to_dict()
        assert d["squash"] is squash
        assert agent_from_dict(d) == agent and agent_from_dict(d).squash is squash
    old = {"kind": "gaussian", "alpha_w": 1.0, "alpha_mu": 0.0625, "alpha_sigma": 0.015625,
           "alpha_rbar": 0.015625, "lambda_w": 0.0, "lambda_theta": 0.0,
           "scale_mean_gradient": True, "sigma_min": 0.0, "entropy": 0.0}
    assert agent_from_dict(old) == default and agent_from_dict(old).squash is None
    assert agent_from_dict({**old, "squash": None}) == default
    for bad in (1, 0, "yes", 1.0):
        with pytest.raises(ValueError, match="squash must be True, False or None"):
            default.replace(squash=bad)


@pytest.mark.slow
def test_the_fused_loop_ignores_the_automatic_setting():
    # Old runs of our own continuous pendulum give identical numbers.
    agent = GaussianActorCritic.pendulum_default()
    a = avgreward.train(CONTINUOUS, agent, 2000, seed=5, record_actions=True)
    b = avgreward.train(CONTINUOUS, agent.replace(squash=False), 2000, seed=5,
                        record_actions=True)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.weights["theta_mu"], b.weights["theta_mu"])
    assert np.abs(a.actions).max() > 3.0  # the samples, before the env's clip to [-3, 3]


def test_the_fused_loop_refuses_a_squashed_actor_and_the_cli_sets_it():
    import avgreward.cli

    agent = avgreward.GaussianActorCritic.pendulum_default(squash=True)
    with pytest.raises(ValueError, match="squash=True is for the Python-stepped path"):
        avgreward.train("avgreward/PendulumSwingUpContinuous-v0", agent, 10, 0)
    env_id, base, changes = avgreward.cli._base_agent(avgreward.cli._parser().parse_args(
        ["run", "Pendulum-v1", "--steps", "10", "--seeds", "1", "--out", "x",
         "--set", "squash=false"]))
    assert env_id == "Pendulum-v1" and base.squash is False and changes == {"squash": False}
    assert avgreward.default_agent("Pendulum-v1").squash is None
