"""``train``: one run of an average-reward actor-critic, fused and jitted.

The public function validates everything, allocates the learner's arrays
once, and calls the jitted chunk kernels of :mod:`avgreward.loop`; Python
only sees the loop between chunks (progress, callbacks), and a run cut into
chunks gives bit-for-bit the result of a single call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import gymnasium
import numpy as np

import envs
from avgreward.actors import gaussian_parameters, softmax_probabilities
from avgreward.agents import GaussianActorCritic, SoftmaxActorCritic
from avgreward.critic import linear_value
from avgreward.features import TileCoder, binary_pattern, one_hot, pendulum_tile_coder
from avgreward.loop import gaussian_chunk, softmax_chunk, start_features

__all__ = ["train", "Result", "DivergenceError", "default_features", "default_agent", "resolve_env"]

_DEFAULT_CHUNK = 1 << 18
_MAX_RBAR_POINTS = 10_000


def resolve_env(env):
    """The registered id and the environment class of ``env``.

    Parameters
    ----------
    env : str or gymnasium.Env
        A registered id of this package's environments (``"avgreward/LoopMDP-v0"``,
        with or without the ``"envs:"`` module prefix), or an instance of one
        of them (wrapped or not).

    Returns
    -------
    (str, type)
    """
    if isinstance(env, str):
        env_id = env.split(":", 1)[1] if env.startswith("envs:") else env
        if env_id not in envs.ENV_IDS:
            raise ValueError(
                f"env {env!r} is not one of this package's environments; "
                f"expected one of {list(envs.ENV_IDS)}"
            )
        cls = gymnasium.spec(env_id).entry_point
        module, name = cls.split(":")
        return env_id, getattr(__import__(module, fromlist=[name]), name)
    unwrapped = getattr(env, "unwrapped", None)
    cls = type(unwrapped)
    for env_id in envs.ENV_IDS:
        if gymnasium.spec(env_id).entry_point.endswith(":" + cls.__name__) and hasattr(cls, "kind"):
            return env_id, cls
    raise ValueError(
        f"env must be an id in {list(envs.ENV_IDS)} or an instance of one of those "
        f"environments, got {env!r}"
    )


def default_features(env) -> TileCoder:
    """The feature map each environment is learned with unless the user gives one.

    Pendulum swing-up (both): the spec's reference tile coder, 32 tilings of
    8 x 8 over (angle, velocity), angle wrapped.  Loop MDP: one-hot of the
    state.  Aliased gridworld: one-hot of the 4-bit wall pattern (the agent
    cannot tell the aliased cells apart).
    """
    env_id, cls = resolve_env(env)
    if cls.kind in (envs.dynamics.PENDULUM_DISCRETE, envs.dynamics.PENDULUM_CONTINUOUS):
        return pendulum_tile_coder()
    if cls.kind == envs.dynamics.LOOP_MDP:
        return one_hot(envs.loop_mdp.N_STATES)
    return binary_pattern(envs.aliased_gridworld.OBS_SIZE)


@dataclass
class Result:
    """What one run of :func:`train` computed.

    Attributes
    ----------
    env_id : str
        The environment's registered id.
    agent : SoftmaxActorCritic or GaussianActorCritic
        The settings the run used.
    seed : int
        The seed of the run's random generator.
    steps : int
        Steps completed (less than asked only in a diverged run's partial result).
    rewards : ndarray of float32, shape (steps,)
        The reward of every step.
    rbar : ndarray of float64
        R-bar after steps ``rbar_steps``.
    rbar_steps : ndarray of int64
        Step counts (1-based) at which ``rbar`` was recorded: every ``rbar_every`` steps.
    final_rbar : float
        R-bar after the last completed step.
    weights : dict of str to ndarray
        ``"w"`` (critic) and ``"theta"`` (softmax: ``[n_features, n_actions]``)
        or ``"theta_mu"`` and ``"theta_sigma"`` (Gaussian).
    features : TileCoder
        The feature map.
    actions : ndarray or None
        The action of every step if the run recorded them.
    wall_time : float
        Seconds spent in the run.
    """

    env_id: str
    agent: object
    seed: int
    steps: int
    rewards: np.ndarray
    rbar: np.ndarray
    rbar_steps: np.ndarray
    final_rbar: float
    weights: dict
    features: TileCoder
    actions: np.ndarray | None = None
    wall_time: float = 0.0
    info: dict = field(default_factory=dict)

    def _indices(self, observation) -> np.ndarray:
        return self.features.indices(np.atleast_1d(np.asarray(observation, dtype=np.float64)))

    def policy(self, observation):
        """The learned policy at ``observation``.

        Returns
        -------
        ndarray or tuple
            Softmax: the action probabilities.  Gaussian: ``(mean, sigma)``.
        """
        idx = self._indices(observation)
        if isinstance(self.agent, SoftmaxActorCritic):
            probs = np.empty(self.weights["theta"].shape[1])
            softmax_probabilities(self.weights["theta"], idx, self.agent.tau, probs)
            return probs
        theta = np.stack([self.weights["theta_mu"], self.weights["theta_sigma"]], axis=1)
        mu, _, sigma = gaussian_parameters(theta, idx, self.agent.sigma_min)
        return mu, sigma

    def value(self, observation) -> float:
        """The critic's differential value ``w . x(observation)``."""
        return float(linear_value(self.weights["w"], self._indices(observation)))

    def mean_reward(self, start: int = 0, stop: int | None = None) -> float:
        """Mean reward over steps ``start:stop`` (float64 accumulation)."""
        return float(np.mean(self.rewards[start:stop], dtype=np.float64))


class DivergenceError(RuntimeError):
    """A run's TD error or policy became non-finite.

    Attributes
    ----------
    step : int
        The 0-based step at which it happened; its updates were not applied.
    result : Result
        Everything computed before that step.
    """

    def __init__(self, message: str, step: int, result: Result):
        super().__init__(message)
        self.step = step
        self.result = result


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _is_own_env(env) -> bool:
    try:
        resolve_env(env)
    except ValueError:
        return False
    return True


def _check_run_options(steps, rbar_every, chunk_steps, callback):
    """Validated ``(rbar_every, chunk_steps)`` with their defaults; checks ``callback``."""
    if rbar_every is None:
        rbar_every = max(1, math.ceil(steps / _MAX_RBAR_POINTS))
    rbar_every = _check_int("rbar_every", rbar_every, 1)
    chunk_steps = _check_int("chunk_steps", chunk_steps if chunk_steps is not None
                             else _DEFAULT_CHUNK, 1)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {callback!r}")
    return rbar_every, chunk_steps


class _RunArrays:
    """The arrays one run updates in place (the kernels' side of the learner), and its outputs."""

    def __init__(self, env_id, agent, seed, features, n_columns, steps, record_actions,
                 rbar_every):
        n_features = features.n_features
        self.env_id, self.agent, self.seed, self.features = env_id, agent, seed, features
        self.started = time.perf_counter()
        self.w = np.zeros(n_features)
        self.theta = np.zeros((n_features, n_columns))
        # Traces are only touched when their lambda is > 0: don't allocate them otherwise.
        self.z_w = np.zeros(n_features if agent.lambda_w > 0 else 0)
        self.z_theta = np.zeros((n_features if agent.lambda_theta > 0 else 0, n_columns))
        self.probs = np.zeros(n_columns)
        self.coef = np.zeros(n_columns)
        self.steps_theta = np.zeros(n_columns)
        self.rbar_box = np.zeros(1)
        self.rewards = np.zeros(steps, dtype=np.float32)
        self.record_actions = record_actions
        self.actions = np.zeros(steps if record_actions else 0,
                                dtype=np.int64 if isinstance(agent, SoftmaxActorCritic)
                                else np.float64)
        self.rbar_every = rbar_every
        self.rbar_trace = np.zeros(steps // rbar_every)

    def result(self, done, info=None) -> Result:
        """The Result of the first ``done`` steps."""
        if isinstance(self.agent, SoftmaxActorCritic):
            weights = {"w": self.w, "theta": self.theta}
        else:
            weights = {"w": self.w, "theta_mu": self.theta[:, 0].copy(),
                       "theta_sigma": self.theta[:, 1].copy()}
        n_rbar = done // self.rbar_every
        return Result(
            env_id=self.env_id, agent=self.agent, seed=self.seed, steps=done,
            rewards=self.rewards[:done], rbar=self.rbar_trace[:n_rbar],
            rbar_steps=np.arange(1, n_rbar + 1, dtype=np.int64) * self.rbar_every,
            final_rbar=float(self.rbar_box[0]), weights=weights, features=self.features,
            actions=self.actions[:done] if self.record_actions else None,
            wall_time=time.perf_counter() - self.started, info=info or {},
        )

    def diverged(self, step, info=None) -> DivergenceError:
        """The error for a run that went non-finite at ``step``, holding the steps before it."""
        return DivergenceError(
            f"training diverged at step {step}: the TD error or the policy became "
            f"non-finite (env={self.env_id}, seed={self.seed}, {self.agent!r}). Smaller step "
            f"sizes usually help. The result of steps 0..{step - 1} is in this error's "
            ".result.",
            step,
            self.result(step, info),
        )


def train(
    env,
    agent,
    steps: int,
    seed: int,
    features: TileCoder | None = None,
    *,
    record_actions: bool = False,
    rbar_every: int | None = None,
    chunk_steps: int | None = None,
    callback=None,
    bounds=None,
) -> Result:
    """Run an average-reward actor-critic for ``steps`` steps of a continuing task.

    Parameters
    ----------
    env : str or gymnasium.Env
        One of this package's environments, by id or instance (see
        :func:`resolve_env`): run in the fused jitted loop from the
        environment's start state, drawn with the run's own generator.  Any
        other gymnasium environment (id or instance) with a 1-D ``Box``
        observation and a ``Discrete`` or 1-D ``Box`` action is stepped from
        Python with the same jitted updates, an episode end being a reset
        inside one continuing stream (see :mod:`avgreward.stepwise`).
    agent : SoftmaxActorCritic or GaussianActorCritic
        The learner's settings.  Softmax needs discrete actions, Gaussian the
        continuous pendulum.
    steps : int
        Number of steps, >= 1.
    seed : int
        Seed of ``np.random.default_rng``, the run's only source of randomness:
        same seed, same numbers, bit for bit.
    features : TileCoder, optional
        Feature map over the observation; :func:`default_features` if omitted.
    record_actions : bool, default False
        Keep the action of every step in ``Result.actions``.
    rbar_every : int, optional
        Record R-bar every this many steps (default: at most 10,000 points).
    chunk_steps : int, optional
        Steps per jitted call; results do not depend on it.
    callback : callable, optional
        Called as ``callback(steps_done, steps)`` after each chunk (progress bars).
    bounds : (low, high), optional
        Only for environments that are not this package's: bounds of the
        observation for the default tile coder (needed when the observation
        space's bounds are infinite and ``features`` is not given).

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        On invalid arguments, naming the argument.
    DivergenceError
        If the TD error or the policy becomes non-finite; the error holds the
        partial result.

    Examples
    --------
    >>> import avgreward
    >>> agent = avgreward.SoftmaxActorCritic.pendulum_reference()
    >>> result = avgreward.train("avgreward/PendulumSwingUp-v0", agent, steps=20_000, seed=0)
    >>> result.mean_reward(15_000) > -0.05
    True
    """
    if not _is_own_env(env):
        # Not one of ours: the generic path steps the environment from Python.
        from avgreward.stepwise import train_stepwise

        return train_stepwise(
            env, agent, steps, seed, features, bounds=bounds, record_actions=record_actions,
            rbar_every=rbar_every, chunk_steps=chunk_steps, callback=callback,
        )
    if bounds is not None:
        raise ValueError(
            "bounds only applies to environments that are not this package's; "
            "pass features=TileCoder(...) instead"
        )
    env_id, env_cls = resolve_env(env)
    steps = _check_int("steps", steps, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(agent, SoftmaxActorCritic):
        if env_cls.n_actions == 0:
            raise ValueError(
                f"agent: SoftmaxActorCritic needs discrete actions, but {env_id} has a "
                "continuous action; use GaussianActorCritic"
            )
        n_columns = env_cls.n_actions
    elif isinstance(agent, GaussianActorCritic):
        if env_cls.n_actions != 0:
            raise ValueError(
                f"agent: GaussianActorCritic needs a continuous action, but {env_id} has "
                f"{env_cls.n_actions} discrete actions; use SoftmaxActorCritic"
            )
        n_columns = 2
    else:
        raise ValueError(
            f"agent must be a SoftmaxActorCritic or GaussianActorCritic, got {agent!r}"
        )
    if features is None:
        features = default_features(env_id)
    elif not isinstance(features, TileCoder):
        raise ValueError(f"features must be a TileCoder (see avgreward.features), got {features!r}")
    if features.n_dims != env_cls.obs_size:
        raise ValueError(
            f"features has {features.n_dims} dimension(s) but {env_id}'s observation "
            f"has {env_cls.obs_size}"
        )
    rbar_every, chunk_steps = _check_run_options(steps, rbar_every, chunk_steps, callback)

    run = _RunArrays(env_id, agent, seed, features, n_columns, steps, record_actions, rbar_every)
    rng = np.random.default_rng(seed)
    tc = features.kernel_args()

    state = np.zeros(env_cls.state_size)
    obs = np.zeros(env_cls.obs_size)
    envs.dynamics.env_reset(env_cls.kind, state, rng.random() if env_cls.random_reset else 0.0)
    idx = np.empty(features.n_active, dtype=np.int64)
    idx_next = np.empty_like(idx)
    start_features(env_cls.kind, state, obs, tc, idx)

    def run_chunk(t0, n):
        if isinstance(agent, SoftmaxActorCritic):
            return softmax_chunk(
                env_cls.kind, env_cls.random_step, state, obs, tc,
                idx, idx_next, run.w, run.theta, run.z_w, run.z_theta, run.probs, run.coef,
                run.steps_theta, run.rbar_box,
                agent.alpha_w, agent.alpha_theta, agent.alpha_rbar, agent.tau,
                agent.lambda_w, agent.lambda_theta, agent.entropy,
                rng, t0, n, run.rewards, run.actions, record_actions, run.rbar_trace, rbar_every,
            )
        return gaussian_chunk(
            env_cls.kind, env_cls.random_step, state, obs, tc,
            idx, idx_next, run.w, run.theta, run.z_w, run.z_theta, run.coef, run.steps_theta,
            run.rbar_box, agent.alpha_w, agent.alpha_mu, agent.alpha_sigma, agent.alpha_rbar,
            agent.lambda_w, agent.lambda_theta, agent.scale_mean_gradient,
            agent.sigma_min, agent.entropy,
            rng, t0, n, run.rewards, run.actions, record_actions, run.rbar_trace, rbar_every,
        )

    t0 = 0
    while t0 < steps:
        n = min(chunk_steps, steps - t0)
        completed = run_chunk(t0, n)
        if completed < n:
            raise run.diverged(t0 + completed)
        t0 += n
        if callback is not None:
            callback(t0, steps)
    return run.result(steps)


def default_agent(env, kind: str | None = None):
    """The settings each environment is learned with unless the user gives some.

    These are the settings the tests show to learn (see ``tests/test_learning.py``):
    pendulum swing-up, softmax: :meth:`SoftmaxActorCritic.pendulum_reference`;
    continuous swing-up: :meth:`GaussianActorCritic.pendulum_default`; loop MDP:
    ``SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)``; aliased
    gridworld: ``SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)``.

    Parameters
    ----------
    env : str or gymnasium.Env
        One of this package's environments (see :func:`resolve_env`).
    kind : {"softmax", "gaussian"}, optional
        The actor; by default the environment's natural one (softmax for
        discrete actions, Gaussian for the continuous pendulum).

    Returns
    -------
    SoftmaxActorCritic or GaussianActorCritic

    Raises
    ------
    ValueError
        If ``kind`` is unknown or does not fit the environment's action space.
    """
    env_id, cls = resolve_env(env)
    natural = "softmax" if cls.n_actions > 0 else "gaussian"
    if kind is None:
        kind = natural
    if kind not in ("softmax", "gaussian"):
        raise ValueError(f"kind must be 'softmax' or 'gaussian', got {kind!r}")
    if kind != natural:
        raise ValueError(
            f"{env_id} needs a {natural} actor ("
            + ("discrete actions" if natural == "softmax" else "a continuous action")
            + f"), not {kind}"
        )
    if cls.kind == envs.dynamics.PENDULUM_DISCRETE:
        return SoftmaxActorCritic.pendulum_reference()
    if cls.kind == envs.dynamics.PENDULUM_CONTINUOUS:
        return GaussianActorCritic.pendulum_default()
    if cls.kind == envs.dynamics.LOOP_MDP:
        return SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    return SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)
