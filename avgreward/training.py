"""``train``: one run of an average-reward actor-critic, fused and jitted.

The public function validates everything, allocates the learner's arrays
once, and calls the jitted chunk kernels of :mod:`avgreward.loop`; Python
only sees the loop between chunks (progress, callbacks), and a run cut into
chunks gives bit-for-bit the result of a single call.

A run's options and arrays (binned rewards, the memory check) are in
:mod:`avgreward.run_arrays`, what it returns in :mod:`avgreward.result`, and
which environment it is (ours, run here, or gymnasium's, stepped from Python
by :mod:`avgreward.stepwise`) in :mod:`avgreward.environments`; this module
imports all three, and none of them imports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from avgreward import loop
from avgreward.agents import (
    AgentSettings,
    DifferentialQLearning,
    DifferentialSarsa,
    DiscountedQLearning,
    DiscountedSarsa,
    EpisodicActorCritic,
    GaussianActorCritic,
    Reinforce,
    SoftmaxActorCritic,
)
from avgreward.environments import (
    EnvInfo,
    _is_own_env,
    _meaningful_wrappers,
    _own_env_id,
    default_features,
    env_info,
    resolve_env,
)
from avgreward.features import TileCoder
from avgreward.learners.actor_critic import GAUSSIAN, GaussianParams, SoftmaxParams
from avgreward.learners.episodic_actor_critic import EPISODIC_ACTOR_CRITIC, EpisodicACParams
from avgreward.learners.gaussian_episodic import (
    EPISODIC_AC_GAUSSIAN,
    REINFORCE_GAUSSIAN,
    GaussianEACParams,
    GaussianReinforceParams,
)
from avgreward.learners.reinforce import REINFORCE, ReinforceParams
from avgreward.learners.value import (
    DIFFERENTIAL_Q,
    DIFFERENTIAL_SARSA,
    N_STEP_SARSA,
    NO_CENTERING,
    SIMPLE_CENTERING,
    TD_ALPHA_CENTERING,
    TD_CENTERING,
    NStepSarsaParams,
    ValueParams,
)
from avgreward.loop import softmax_learner
from avgreward.parallel import drive_parallel
from avgreward.result import DivergenceError, Result
from avgreward.run_arrays import (
    _check_int,
    _check_run_options,
    _check_steps,
    _RunArrays,
)
from avgreward.stepwise import train_stepwise

if TYPE_CHECKING:
    import gymnasium

__all__ = ["train", "Result", "DivergenceError", "default_features", "default_agent",
           "resolve_env", "env_info", "EnvInfo", "ConstantRewardWarning"]


def train(
    env: str | gymnasium.Env,
    agent: AgentSettings,
    steps: int,
    seed: int | None = None,
    features: TileCoder | None = None,
    *,
    record_actions: bool = False,
    rbar_every: int | None = None,
    chunk_steps: int | None = None,
    callback: Callable[[int, int], object] | None = None,
    bounds: tuple[ArrayLike, ArrayLike] | None = None,
    bin_size: int | None = None,
    init: Result | None = None,
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
        Number of steps, 1 to 2**53.
    seed : int
        Seed of ``np.random.default_rng``, the run's only source of randomness:
        same seed, same numbers, bit for bit.  Required unless ``init`` is
        given (the continued run draws from its saved generator).
    features : TileCoder, optional
        Feature map over the observation; :func:`default_features` if
        omitted (``init``'s with ``init``).
    record_actions : bool, default False
        Keep the action of every step in ``Result.actions`` (8 bytes a step,
        with or without ``bin_size``).
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
    bin_size : int, optional
        Return the mean reward of each bin of this many consecutive steps
        (``1 <= bin_size <= steps``) instead of every step's reward: the
        run then keeps per-step rewards only for one chunk (at most
        ``chunk_steps``), so its memory does not depend on ``steps``.
        ``Result.rewards`` holds ``ceil(steps / bin_size)`` float64 means (the
        last bin may be shorter), each the float64 sum, one step at a time,
        of the float32 rewards a per-step run records, divided by the bin's
        length: the same bits whatever ``chunk_steps``.  ``Result.info``
        gets ``"bin_size"`` and ``"bin_steps"`` (int64 step count at the end
        of each bin).  Default: per-step float32 rewards.
    init : Result, optional
        Continue that run (of this environment, with an agent of the same
        kind) for ``steps`` more steps from where it stopped: its weights,
        traces, R-bar, environment state and generator state
        (``init.run_state``), so that ``N`` steps and then ``M`` more equal
        one run of ``N + M`` steps, bit for bit.  The agent's settings may
        differ (say, smaller step sizes) where they do not change the
        learner's arrays.  The result holds the new steps only (its
        ``info["continued_from"]`` is ``N``).  Runs of the fused loop by one
        actor, except REINFORCE's (mid-episode buffers), can be continued.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        On invalid arguments, naming the argument; or if the per-step arrays
        (rewards without ``bin_size``, actions with ``record_actions``) would
        need more memory than the machine has available: the message says how
        much, and ``bin_size`` avoids it.
    DivergenceError
        If the TD error or the policy becomes non-finite; the error holds the
        partial result (binned as asked: the last bin ends at the steps done).

    Examples
    --------
    >>> import avgreward
    >>> agent = avgreward.SoftmaxActorCritic.pendulum_reference()
    >>> result = avgreward.train("avgreward/PendulumSwingUp-v0", agent, steps=20_000, seed=0)
    >>> result.mean_reward(15_000) > -0.05
    True
    >>> binned = avgreward.train("avgreward/PendulumSwingUp-v0", agent, steps=20_000, seed=0,
    ...                          bin_size=1_000)
    >>> binned.rewards.shape, int(binned.info["bin_steps"][-1])
    ((20,), 20000)
    >>> abs(binned.mean_reward(15_000) - result.mean_reward(15_000)) < 1e-12
    True
    """
    seed = _seed_of(seed, init)
    if init is not None and not _is_own_env(env):
        raise ValueError(f"init: only runs of the fused loop can be continued; {env!r} is "
                         "stepped from Python")
    if isinstance(agent, (Reinforce, EpisodicActorCritic)):
        return _train_reinforce(env, agent, steps, seed, features, bounds, record_actions,
                                rbar_every, chunk_steps, callback, bin_size, init)
    if isinstance(agent, _VALUE_AGENTS):
        return _train_value(env, agent, steps, seed, features, bounds, record_actions,
                            rbar_every, chunk_steps, callback, bin_size, init)
    if not _is_own_env(env):
        # Not one of ours, or ours inside wrappers that change what it computes:
        # the generic path steps the environment (and its wrappers) from Python.
        _check_wrapped_own_env(env)
        if getattr(agent, "actors", 1) > 1:
            raise ValueError(f"agent: actors={agent.actors} (parallel actors) runs in the "
                             f"fused loop only; {env!r} is stepped from Python")
        result = train_stepwise(
            env, agent, steps, seed, features, bounds=bounds, record_actions=record_actions,
            rbar_every=rbar_every, chunk_steps=chunk_steps, callback=callback,
            bin_size=bin_size,
        )
        _warn_if_constant_reward(result)
        return result
    if bounds is not None:
        raise ValueError(
            "bounds only applies to environments that are not this package's; "
            "pass features=TileCoder(...) instead"
        )
    env_id, env_cls = resolve_env(env)
    fused = env_cls.fused
    steps = _check_steps(steps)
    seed = _check_int("seed", seed, 0)
    if isinstance(agent, SoftmaxActorCritic):
        if fused.n_actions == 0:
            raise ValueError(
                f"agent: SoftmaxActorCritic needs discrete actions, but {env_id} has a "
                "continuous action; use GaussianActorCritic"
            )
        n_columns = fused.n_actions
    elif isinstance(agent, GaussianActorCritic):
        if fused.n_actions != 0:
            raise ValueError(
                f"agent: GaussianActorCritic needs a continuous action, but {env_id} has "
                f"{fused.n_actions} discrete actions; use SoftmaxActorCritic"
            )
        if agent.squash:
            raise ValueError(
                f"agent: squash=True is for the Python-stepped path; {env_id} runs in the "
                "fused loop, whose Gaussian actor is unsquashed (the environment clips the "
                "sample): use squash=None (automatic) or False, or "
                "avgreward.stepwise.train_stepwise(...) to run it squashed")
        n_columns = 2
    else:
        raise ValueError(
            f"agent must be a SoftmaxActorCritic or GaussianActorCritic, got {agent!r}"
        )
    steps, seed, features = _checked_run(env, env_id, fused, steps, seed, features, agent, init)
    rbar_every, chunk_steps, bin_size = _check_run_options(steps, rbar_every, chunk_steps,
                                                           callback, bin_size)

    run = _RunArrays(env_id, agent, seed, features, n_columns, steps, record_actions, rbar_every,
                     chunk_steps, bin_size)
    if isinstance(agent, SoftmaxActorCritic) and agent.actors > 1:
        _no_init(init, "parallel actors (actors > 1)")
        return drive_parallel(env_id, fused, agent, features, steps, seed, record_actions,
                              rbar_every, chunk_steps, bin_size, callback)
    rng = np.random.default_rng(seed)
    if isinstance(agent, SoftmaxActorCritic):
        params = SoftmaxParams(
            run.w, run.theta, run.z_w, run.z_theta, run.probs, run.coef,
            float(agent.alpha_w), float(agent.alpha_theta), float(agent.alpha_rbar),
            float(agent.tau), float(agent.lambda_w), float(agent.lambda_theta),
            float(agent.entropy))
        learner = softmax_learner(params)
    else:
        params = GaussianParams(
            run.w, run.theta, run.z_w, run.z_theta, float(agent.alpha_w), float(agent.alpha_mu),
            float(agent.alpha_sigma), float(agent.alpha_rbar), float(agent.lambda_w),
            float(agent.lambda_theta), bool(agent.scale_mean_gradient), float(agent.sigma_min),
            float(agent.entropy))
        learner = GAUSSIAN
    return loop.drive(fused, learner, params, run, features, rng, steps, chunk_steps,
                      record_actions, rbar_every, bin_size, callback, init=_state_of(init))


def _fused_only(env, agent, bounds):
    """``(env_id, fused)`` for a learner that runs in the fused loop only, or a ValueError."""
    if not _is_own_env(env):
        raise ValueError(f"agent: {type(agent).__name__} runs in the fused loop only; {env!r} "
                         "is not an environment of it (a registered class declaring fused)")
    if bounds is not None:
        raise ValueError("bounds only applies to environments that are not this package's")
    env_id, env_cls = resolve_env(env)
    return env_id, env_cls.fused


def _checked_run(env, env_id, fused, steps, seed, features, agent=None, init=None):
    """``(steps, seed, features)`` checked (the default feature map if ``features`` is None)."""
    steps = _check_steps(steps)
    seed = _check_int("seed", seed, 0)
    features = _init_features(init, env_id, agent, features)
    if features is None:
        features = default_features(env_id if isinstance(env, str) else env)
    elif not isinstance(features, TileCoder):
        raise ValueError(f"features must be a TileCoder (see avgreward.features), got {features!r}")
    if features.n_dims != fused.obs_size:
        raise ValueError(f"features has {features.n_dims} dimension(s) but {env_id}'s "
                         f"observation has {fused.obs_size}")
    return steps, seed, features


def _train_reinforce(env, agent, steps, seed, features, bounds, record_actions, rbar_every,
                     chunk_steps, callback, bin_size, init=None) -> Result:
    """:func:`train` for :class:`Reinforce` and :class:`EpisodicActorCritic`: episodic, fused."""
    name = type(agent).__name__
    env_id, fused = _fused_only(env, agent, bounds)
    if not fused.episodic:
        raise ValueError(f"agent: {name} learns episode by episode, and {env_id} is "
                         "continuing (its episodes never end)")
    gaussian = agent.policy == "gaussian"
    if fused.n_actions == 0 and not gaussian:
        raise ValueError(f"agent: {name} has a softmax policy and needs discrete actions; "
                         f"{env_id} has a continuous action (use policy='gaussian')")
    if fused.n_actions != 0 and gaussian:
        raise ValueError(f"agent: {name} with policy='gaussian' needs one continuous action; "
                         f"{env_id} has {fused.n_actions} discrete actions")
    if isinstance(agent, Reinforce):
        _no_init(init, "REINFORCE (its buffers hold the episode in progress)")
    steps, seed, features = _checked_run(env, env_id, fused, steps, seed, features, agent, init)
    k = features.n_active
    n_actions = 2 if gaussian else fused.n_actions  # theta's columns
    prefs = agent.initial_preferences
    if prefs is not None and len(prefs) != n_actions and not gaussian:
        raise ValueError(f"agent: initial_preferences has {len(prefs)} value(s) but {env_id} "
                         f"has {n_actions} actions")
    rbar_every, chunk_steps, bin_size = _check_run_options(steps, rbar_every, chunk_steps,
                                                           callback, bin_size)
    theta = np.zeros((features.n_features, n_actions))
    if prefs is not None:
        theta[:] = np.asarray(prefs) / k  # h(s, a) = prefs[a] with k active features
    if isinstance(agent, EpisodicActorCritic) and agent.actors > 1:
        _no_init(init, "parallel actors (actors > 1)")
        return drive_parallel(env_id, fused, agent, features, steps, seed, record_actions,
                              rbar_every, chunk_steps, bin_size, callback)
    if gaussian:
        return _train_gaussian_episodic(env_id, fused, agent, features, theta, steps, seed,
                                        record_actions, rbar_every, chunk_steps, bin_size,
                                        callback, init)
    if isinstance(agent, EpisodicActorCritic):
        n = features.n_features
        traced = agent.lambda_w > 0 or agent.lambda_theta > 0
        w = np.zeros(n)
        params = EpisodicACParams(
            w, theta, np.zeros(n if traced else 0), np.zeros((n if traced else 0, n_actions)),
            np.zeros(n_actions), np.zeros(n_actions), np.ones(1), float(agent.alpha_w),
            float(agent.alpha_theta), float(agent.gamma), float(agent.tau),
            float(agent.lambda_w), float(agent.lambda_theta), float(agent.entropy))
        run = _RunArrays(env_id, agent, seed, features, 0, steps, record_actions, rbar_every,
                         chunk_steps, bin_size, weights={"w": w, "theta": theta},
                         action_dtype=np.int64)
        return loop.drive(fused, EPISODIC_ACTOR_CRITIC, params, run, features,
                          np.random.default_rng(seed), steps, chunk_steps, record_actions,
                          rbar_every, bin_size, callback, init=_state_of(init))
    cap = agent.max_episode_steps or 0
    capacity = min(cap or _EPISODE_BUFFER, steps)
    baseline = agent.alpha_w is not None
    w = np.zeros(features.n_features if baseline else 0)
    params = ReinforceParams(
        theta, w, np.zeros(n_actions), np.zeros(n_actions), np.zeros((capacity, k), np.int64),
        np.zeros(capacity, np.int64), np.zeros(capacity), np.zeros(capacity),
        np.zeros(1, np.int64), float(agent.alpha_theta), float(agent.alpha_w or 0.0), baseline,
        float(agent.gamma), float(agent.tau), float(agent.entropy))
    weights = {"theta": theta, "w": w} if baseline else {"theta": theta}
    run = _RunArrays(env_id, agent, seed, features, 0, steps, record_actions, rbar_every,
                     chunk_steps, bin_size, weights=weights, action_dtype=np.int64)
    return _drive_reinforce(fused, REINFORCE, params, run, features, seed, steps, chunk_steps,
                            record_actions, rbar_every, bin_size, callback, cap, capacity)


def _drive_reinforce(fused, learner, params, run, features, seed, steps, chunk_steps,
                     record_actions, rbar_every, bin_size, callback, cap, capacity):
    """A REINFORCE run; an episode outgrowing the buffers is a ValueError saying so."""
    try:
        return loop.drive(fused, learner, params, run, features, np.random.default_rng(seed),
                          steps, chunk_steps, record_actions, rbar_every, bin_size, callback,
                          episode_cap=cap, keep_state=False)
    except DivergenceError as error:
        if params.ep_length[0] >= capacity:
            raise ValueError(
                f"agent: an episode of {run.env_id} lasted more than {capacity:,} steps (seed "
                f"{seed}, at step {error.step}), the episode buffer's length; give "
                "max_episode_steps to cut episodes, or start from a policy that ends them"
            ) from None
        raise


# REINFORCE's episode buffer without a cap on episodes (8 (k + 3) bytes a step).
_EPISODE_BUFFER = 1_000_000


class ConstantRewardWarning(UserWarning):
    """Every reward of a run was the same: the continuing view cannot rank policies on it."""


def _constant_reward(rewards) -> float | None:
    """The reward if every (binned) reward is that same value, else None."""
    if rewards.size < 2:
        return None
    first = float(rewards[0])
    spread = float(np.max(rewards) - np.min(rewards))
    return first if spread <= 1e-12 * max(1.0, abs(first)) else None


def _warn_if_constant_reward(result) -> None:
    value = _constant_reward(result.rewards)
    if value is not None:
        warnings.warn(_constant_reward_message(result.env_id, value), ConstantRewardWarning,
                      stacklevel=3)


def _constant_reward_message(env_id, value) -> str:
    return (
        f"every reward of {env_id} was {value:g}: in the continuing view every policy then "
        f"has reward rate {value:g}, so the learner cannot rank policies and learns nothing. "
        "Give the rewards a meaning first (user guide, 'Any gymnasium environment', "
        "docs/source/guide/gymnasium-and-your-own-envs.md: "
        "avgreward.wrappers.GoalBonus for MountainCar, FailurePenalty for CartPole)"
    )


def _check_wrapped_own_env(env) -> None:
    """Refuse our own environment in wrappers when the Python-stepped path cannot run it."""
    if isinstance(env, str) or _own_env_id(type(getattr(env, "unwrapped", None))) is None:
        return
    from gymnasium import spaces

    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(
            f"env is {_own_env_id(type(env.unwrapped))} wrapped in "
            f"{', '.join(_meaningful_wrappers(env))}: the fused loop cannot apply wrappers, "
            f"and the Python-stepped path needs a Box observation, not "
            f"{env.observation_space}; pass the environment id (or env.unwrapped) to train "
            "without the wrappers"
        )


def default_agent(env: str | gymnasium.Env, kind: str | None = None) -> AgentSettings:
    """The settings each environment is learned with unless the user gives some.

    For this package's environments these are the settings the tests show to
    learn (see ``tests/test_learning.py``):
    pendulum swing-up, softmax: :meth:`SoftmaxActorCritic.pendulum_reference`;
    continuous swing-up: :meth:`GaussianActorCritic.pendulum_default`; loop MDP:
    ``SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)``; aliased
    gridworld: ``SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)``.

    Parameters
    ----------
    env : str or gymnasium.Env
        One of this package's environments (see :func:`resolve_env`).
    kind : {"softmax", "gaussian", "sarsa", "q-learning"}, optional
        The actor; by default the environment's natural one (softmax for
        discrete actions, Gaussian for the continuous pendulum).  "sarsa" and
        "q-learning" give :class:`DifferentialSarsa` and
        :class:`DifferentialQLearning`, for discrete actions in the fused
        loop: epsilon 0.1 and Sarsa's beta 0.01 everywhere; on access
        control the book's alpha 0.01 and Q-learning's eta 1, elsewhere
        alpha 0.1 and eta 0.1.

    Returns
    -------
    SoftmaxActorCritic, GaussianActorCritic, DifferentialSarsa or DifferentialQLearning

    Raises
    ------
    ValueError
        If ``kind`` is unknown or does not fit the environment's action space.
    """
    if isinstance(env, str) and not _is_own_env(env):
        info = env_info(env)
        env_id = info.env_id
        natural = "softmax" if info.n_actions > 0 else "gaussian"
    else:
        env_id, cls = resolve_env(env)
        natural = "softmax" if cls.fused.n_actions > 0 else "gaussian"
    if kind is None:
        kind = natural
    if kind not in ("softmax", "gaussian", "sarsa", "q-learning"):
        raise ValueError(f"kind must be 'softmax', 'gaussian', 'sarsa' or 'q-learning', "
                         f"got {kind!r}")
    if kind in ("sarsa", "q-learning"):
        if natural != "softmax" or (isinstance(env, str) and not _is_own_env(env)):
            raise ValueError(f"{kind} needs discrete actions and an environment of the fused "
                             f"loop; {env_id} is not one")
        book = env_id == "avgreward/AccessControl-v0"  # Sutton & Barto's Figure 10.5
        if kind == "sarsa":
            return DifferentialSarsa(alpha=0.01 if book else 0.1, beta=0.01, epsilon=0.1)
        return DifferentialQLearning(alpha=0.01 if book else 0.1, eta=1.0 if book else 0.1,
                                     epsilon=0.1)
    if kind != natural:
        raise ValueError(
            f"{env_id} needs a {natural} actor ("
            + ("discrete actions" if natural == "softmax" else "a continuous action")
            + f"), not {kind}"
        )
    tuned = _TUNED.get(env_id)
    if tuned is not None:
        return tuned()
    # Any other environment: a starting point, not tuned settings.
    if natural == "softmax":
        return SoftmaxActorCritic(alpha_w=2**-1, alpha_theta=2**-2, alpha_rbar=2**-8)
    # scripts/pendulum_v1.py's settings (squashed on a bounded action by default).
    return GaussianActorCritic(alpha_w=2**-1, alpha_mu=2**-10, alpha_sigma=2**-10,
                               alpha_rbar=2**-8, scale_mean_gradient=True)


# The settings tests/test_learning.py shows this package's environments to learn with.
_TUNED = {
    "avgreward/PendulumSwingUp-v0": SoftmaxActorCritic.pendulum_reference,
    "avgreward/PendulumSwingUpContinuous-v0": GaussianActorCritic.pendulum_default,
    "avgreward/LoopMDP-v0": lambda: SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1,
                                                       alpha_rbar=0.01),
    "avgreward/AliasedGridworld-v0": lambda: SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05,
                                                                alpha_rbar=0.01),
    "avgreward/AccessControl-v0": lambda: SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1,
                                                             alpha_rbar=0.01),
}


def _train_gaussian_episodic(env_id, fused, agent, features, theta, steps, seed, record_actions,
                             rbar_every, chunk_steps, bin_size, callback, init=None) -> Result:
    """:func:`train` for the episodic learners with ``policy="gaussian"``."""
    n, k = features.n_features, features.n_active
    alpha_sigma = float(agent.alpha_theta if agent.alpha_sigma is None else agent.alpha_sigma)
    run_args = (rbar_every, chunk_steps, bin_size)
    if isinstance(agent, EpisodicActorCritic):
        traced = agent.lambda_w > 0 or agent.lambda_theta > 0
        w = np.zeros(n)
        params = GaussianEACParams(
            w, theta, np.zeros(n if traced else 0), np.zeros((n if traced else 0, 2)),
            np.zeros(2), np.ones(1), float(agent.alpha_w), float(agent.alpha_theta),
            alpha_sigma, float(agent.gamma), float(agent.lambda_w), float(agent.lambda_theta),
            float(agent.sigma_min), float(agent.entropy))
        run = _RunArrays(env_id, agent, seed, features, 0, steps, record_actions, *run_args,
                         weights={"w": w, "theta": theta}, action_dtype=np.float64)
        return loop.drive(fused, EPISODIC_AC_GAUSSIAN, params, run, features,
                          np.random.default_rng(seed), steps, chunk_steps, record_actions,
                          rbar_every, bin_size, callback, init=_state_of(init))
    cap = agent.max_episode_steps or 0
    capacity = min(cap or _EPISODE_BUFFER, steps)
    baseline = agent.alpha_w is not None
    w = np.zeros(n if baseline else 0)
    params = GaussianReinforceParams(
        theta, w, np.zeros(2), np.zeros((capacity, k), np.int64), np.zeros(capacity),
        np.zeros(capacity), np.zeros(capacity), np.zeros(1, np.int64),
        float(agent.alpha_theta), alpha_sigma, float(agent.alpha_w or 0.0), baseline,
        float(agent.gamma), float(agent.sigma_min), float(agent.entropy))
    weights = {"theta": theta, "w": w} if baseline else {"theta": theta}
    run = _RunArrays(env_id, agent, seed, features, 0, steps, record_actions, *run_args,
                     weights=weights, action_dtype=np.float64)
    return _drive_reinforce(fused, REINFORCE_GAUSSIAN, params, run, features, seed, steps,
                            chunk_steps, record_actions, rbar_every, bin_size, callback, cap,
                            capacity)


_VALUE_AGENTS = (DifferentialSarsa, DifferentialQLearning, DiscountedSarsa, DiscountedQLearning)
_CENTERING = {None: NO_CENTERING, "simple": SIMPLE_CENTERING, "td": TD_ALPHA_CENTERING}


def value_settings(agent):
    """``(sarsa, gamma, centering, beta)`` of a value-based agent's settings, for the kernel."""
    if isinstance(agent, DifferentialSarsa):
        return True, 1.0, TD_CENTERING, float(agent.beta)
    if isinstance(agent, DifferentialQLearning):
        return False, 1.0, TD_ALPHA_CENTERING, float(agent.eta)
    return (isinstance(agent, DiscountedSarsa), float(agent.gamma), _CENTERING[agent.centering],
            float(agent.beta))


def _train_value(env, agent, steps, seed, features, bounds, record_actions, rbar_every,
                 chunk_steps, callback, bin_size, init=None) -> Result:
    """:func:`train` for the value-based learners (:mod:`avgreward.learners.value`)."""
    env_id, fused = _fused_only(env, agent, bounds)
    if fused.n_actions == 0:
        raise ValueError(f"agent: {type(agent).__name__} needs discrete actions; {env_id} has "
                         "a continuous action")
    steps, seed, features = _checked_run(env, env_id, fused, steps, seed, features, agent, init)
    rbar_every, chunk_steps, bin_size = _check_run_options(steps, rbar_every, chunk_steps,
                                                           callback, bin_size)
    w = np.zeros((features.n_features, fused.n_actions))
    sarsa, gamma, centering, beta = value_settings(agent)
    run = _RunArrays(env_id, agent, seed, features, 0, steps, record_actions, rbar_every,
                     chunk_steps, bin_size, weights={"w": w}, action_dtype=np.int64)
    if getattr(agent, "n", 1) > 1:
        n = agent.n
        params = NStepSarsaParams(
            w, np.zeros(fused.n_actions), np.full(1, -1, np.int64),
            np.zeros((n, features.n_active), np.int64), np.zeros(n, np.int64), np.zeros(n),
            np.zeros(1, np.int64), float(agent.alpha), beta, float(agent.epsilon))
        return loop.drive(fused, N_STEP_SARSA, params, run, features,
                          np.random.default_rng(seed), steps, chunk_steps, record_actions,
                          rbar_every, bin_size, callback, init=_state_of(init))
    params = ValueParams(w, np.zeros(fused.n_actions), np.full(1, -1, np.int64),
                         float(agent.alpha), beta, float(agent.epsilon), gamma, centering)
    return loop.drive(fused, DIFFERENTIAL_SARSA if sarsa else DIFFERENTIAL_Q, params, run,
                      features, np.random.default_rng(seed), steps, chunk_steps,
                      record_actions, rbar_every, bin_size, callback, init=_state_of(init))


def _seed_of(seed, init):
    """The run's seed: ``seed``, or with ``init`` the continued run's (which must agree)."""
    if init is None:
        if seed is None:
            raise ValueError("seed is required (an int >= 0) unless init= continues a run")
        return seed
    if not isinstance(init, Result):
        raise ValueError(f"init must be a Result (of train, or avgreward.load_result), got "
                         f"{type(init).__name__}")
    if init.run_state is None:
        raise ValueError("init: this result has no run state to continue from (run_state is "
                         "None): results rebuilt from an experiment directory, diverged runs, "
                         "parallel actors, Python-stepped environments and REINFORCE have none")
    if seed is not None and seed != init.seed:
        raise ValueError(f"seed={seed!r}: a continued run draws from the saved generator of "
                         f"seed {init.seed}; leave seed out")
    return init.seed


def _init_features(init, env_id, agent, features):
    """``features``, or ``init``'s when it is None; ValueError if ``init`` does not fit the run."""
    if init is None:
        return features
    if init.env_id != env_id:
        raise ValueError(f"init: the saved run is of {init.env_id}, not {env_id}")
    if type(agent) is not type(init.agent):
        raise ValueError(f"init: the saved run's agent is a {type(init.agent).__name__}, this "
                         f"one a {type(agent).__name__}; continue with the same kind")
    if features is not None and features != init.features:
        raise ValueError(f"features: {features!r} differs from the saved run's "
                         f"{init.features!r}; leave features out to continue with the run's")
    return init.features


def _no_init(init, what):
    if init is not None:
        raise ValueError(f"init: runs of {what} cannot be continued")


def _state_of(init):
    return None if init is None else init.run_state
