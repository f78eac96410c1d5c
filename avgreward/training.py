"""``train``: one run of any learner, fused and jitted.

The public function checks the run's options once (:class:`RunOptions`),
asks the agent's driver (:mod:`avgreward.learners.registry`) to check the
agent against the environment and to build the learner's arrays, and calls
the jitted chunk kernels of :mod:`avgreward.loop`; Python only sees the loop
between chunks (progress, callbacks), and a run cut into chunks gives
bit-for-bit the result of a single call.

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

from avgreward.agents import (
    AgentSettings,
    DifferentialQLearning,
    DifferentialSarsa,
    GaussianActorCritic,
    SoftmaxActorCritic,
)
from avgreward.environments import (
    EnvInfo,
    is_own_env,
    meaningful_wrappers,
    own_env_id,
    default_features,
    env_info,
    resolve_env,
)
from avgreward.checkpoint import init_features
from avgreward.features import TileCoder
from avgreward.learners.custom import Custom, custom_weights
from avgreward.learners.driver import Built, Task
from avgreward.learners.fused import FusedLearner
from avgreward.learners.registry import driver_for
from avgreward.learners.value import value_settings
from avgreward.loop import drive, run_fused
from avgreward.options import RunOptions
from avgreward.parallel import drive_parallel
from avgreward.result import DivergenceError, Result
from avgreward.run_arrays import check_memory, RunArrays
from avgreward.stepwise import run_stepwise

if TYPE_CHECKING:
    import gymnasium

    from avgreward.metrics import Metrics

__all__ = ["train", "run_learner", "Result", "DivergenceError", "default_features",
           "default_agent", "resolve_env", "env_info", "EnvInfo", "ConstantRewardWarning",
           "value_settings"]


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
    log: Callable[[Metrics], object] | None = None,
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
    agent : agent settings
        The learner's settings: :class:`SoftmaxActorCritic` (discrete
        actions) or :class:`GaussianActorCritic` (one continuous action), the
        only two that also run on environments stepped from Python;
        :class:`Reinforce` and :class:`EpisodicActorCritic` (episodic
        environments); :class:`DifferentialSarsa`, :class:`DifferentialQLearning`,
        :class:`~avgreward.agents.RVIQLearning`, :class:`DiscountedSarsa` and
        :class:`DiscountedQLearning` (discrete
        actions); or :class:`avgreward.learners.Custom` for a learner of your
        own (:class:`~avgreward.learners.FusedLearner`).  Each is run by its
        driver (:mod:`avgreward.learners.registry`).
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
    log : callable, optional
        Called as ``log(metrics)`` after each chunk with the run's live
        :class:`avgreward.metrics.Metrics` (steps done, R-bar, recent reward
        rate, episodes' returns and lengths, speed): a writer of
        :mod:`avgreward.logs` (``CSVLog``, ``TensorBoardLog``) or any
        callable.  Every ``chunk_steps`` steps (2**18 by default); the
        results do not depend on it.
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
        ``info["continued_from"]`` is ``N``).  Runs by one actor can be
        continued, in the fused loop or stepped from Python (classic control
        and this package's environments, in TimeLimit and stateless
        wrappers: see :mod:`avgreward.env_snapshot`; any other says why in
        ``info["cannot_continue"]``), and so can the finished runs of an
        experiment (``Experiment.result``).

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
    driver = driver_for(agent)
    options = RunOptions(steps, _seed_of(seed, init), record_actions, rbar_every, chunk_steps,
                         bin_size, callback, log)
    if not is_own_env(env):
        # Not one of ours, or ours inside wrappers that change what it computes:
        # the generic path steps the environment (and its wrappers) from Python.
        if not driver.stepwise:
            raise ValueError(f"agent: {type(agent).__name__} runs in the fused loop only; "
                             f"{env!r} is not an environment of it (a registered class "
                             "declaring fused)")
        _check_wrapped_own_env(env)
        if getattr(agent, "actors", 1) > 1:
            raise ValueError(f"agent: actors={agent.actors} (parallel actors) runs in the "
                             f"fused loop only; {env!r} is stepped from Python")
        result = run_stepwise(env, agent, options, features, bounds, init)
        _warn_if_constant_reward(result)
        return result
    if bounds is not None:
        raise ValueError(
            "bounds only applies to environments that are not this package's; "
            "pass features=TileCoder(...) instead"
        )
    env_id, fused = _fused_env(env)
    driver.check(agent, Task(env_id, fused, None, options.steps, 0, options.bin_size))
    features = _checked_features(env, env_id, fused, features, agent, init)
    task = Task(env_id, fused, features, options.steps,
                0 if init is None else init.run_state.episode[0], options.bin_size)
    if getattr(agent, "actors", 1) > 1 and driver.parallel:
        _no_init(init, "parallel actors (actors > 1)")
        return drive_parallel(env_id, fused, agent, features, options)
    if driver.cannot_continue:
        _no_init(init, driver.cannot_continue)
    # Before the learner's arrays exist: a run that cannot fit says so, and how to avoid it.
    check_memory(options.steps, options.bin_size, options.record_actions, options.rbar_every,
                 options.chunk_steps, driver.memory(agent, task))
    return run_fused(env_id, fused, agent, driver, driver.build(agent, task), features,
                     options, _state_of(init))


def run_learner(env, learner, params, steps, seed, features=None, *, record_actions=False,
                rbar_every=None, chunk_steps=None, callback=None, bin_size=None,
                log=None) -> Result:
    """Run a learner of the fused loop on its bundle, in place.

    :func:`train` with ``Custom(learner, params)`` is the way to run a
    learner of your own (its results can be saved, continued and run in
    experiments, and every run starts from a copy of ``params``).  This
    function is the same run on ``params`` itself: the arrays of the bundle
    are updated in place, and the result's ``agent`` is the learner.

    Parameters
    ----------
    env : str or gymnasium.Env
        An environment of the fused loop: a registered id (or instance) whose
        class declares ``fused`` (:mod:`avgreward.envs.declare`).
    learner : FusedLearner
    params : learner.params_type
        The learner's bundle, updated in place (its weights after the run).
    steps, seed, features, record_actions, rbar_every, chunk_steps, callback, bin_size, log
        As :func:`train`.

    Returns
    -------
    Result
        ``agent`` is the learner; ``weights`` the bundle's arrays by field name;
        an episodic environment's episode ends in ``info``.

    Raises
    ------
    ValueError
        On invalid arguments, naming the argument.
    DivergenceError
        If the learner reports a non-finite step (its ``act`` or ``learn``
        returned ``ok`` False), with the steps before it.
    """
    env_id, fused = _fused_env(env)
    if not isinstance(learner, FusedLearner):
        raise ValueError(f"learner must be an avgreward.learners.FusedLearner, got {learner!r}")
    options = RunOptions(steps, seed, record_actions, rbar_every, chunk_steps, bin_size,
                         callback, log)
    agent = Custom(learner, params)  # checks params
    features = _checked_features(env, env_id, fused, features, agent)
    run = RunArrays(env_id, learner, features, options,
                    action_dtype=np.int64 if fused.n_actions else np.float64,
                    weights=custom_weights(learner, params))
    return drive(fused, Built(learner, params), run, features, options)


def _fused_env(env):
    """``(env_id, fused)`` of an environment of the fused loop (resolve_env's errors otherwise)."""
    env_id, env_cls = resolve_env(env)
    return env_id, env_cls.fused


def _checked_features(env, env_id, fused, features, agent, init=None):
    """The run's feature map, checked (the default one if ``features`` is None)."""
    features = init_features(init, env_id, agent, features)
    if features is None:
        features = default_features(env_id if isinstance(env, str) else env)
    elif not isinstance(features, TileCoder):
        raise ValueError(f"features must be a TileCoder (see avgreward.features), got {features!r}")
    if features.n_dims != fused.obs_size:
        raise ValueError(f"features has {features.n_dims} dimension(s) but {env_id}'s "
                         f"observation has {fused.obs_size}")
    return features


class ConstantRewardWarning(UserWarning):
    """Every reward of a run was the same: the continuing view cannot rank policies on it."""


def constant_reward(rewards) -> float | None:
    """The reward if every (binned) reward is that same value, else None."""
    if rewards.size < 2:
        return None
    first = float(rewards[0])
    spread = float(np.max(rewards) - np.min(rewards))
    return first if spread <= 1e-12 * max(1.0, abs(first)) else None


def _warn_if_constant_reward(result) -> None:
    value = constant_reward(result.rewards)
    if value is not None:
        warnings.warn(constant_reward_message(result.env_id, value), ConstantRewardWarning,
                      stacklevel=3)


def constant_reward_message(env_id, value) -> str:
    """The warning (and experiment note) for a run of ``env_id`` whose every reward is ``value``."""
    return (
        f"every reward of {env_id} was {value:g}: in the continuing view every policy then "
        f"has reward rate {value:g}, so the learner cannot rank policies and learns nothing. "
        "Give the rewards a meaning first (user guide, 'Any gymnasium environment', "
        "docs/source/guide/gymnasium-and-your-own-envs.md: "
        "avgreward.wrappers.GoalBonus for MountainCar, FailurePenalty for CartPole)"
    )


def _check_wrapped_own_env(env) -> None:
    """Refuse our own environment in wrappers when the Python-stepped path cannot run it."""
    if isinstance(env, str) or own_env_id(type(getattr(env, "unwrapped", None))) is None:
        return
    from gymnasium import spaces

    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(
            f"env is {own_env_id(type(env.unwrapped))} wrapped in "
            f"{', '.join(meaningful_wrappers(env))}: the fused loop cannot apply wrappers, "
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
    if isinstance(env, str) and not is_own_env(env):
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
        if natural != "softmax" or (isinstance(env, str) and not is_own_env(env)):
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
        why = init.info.get("cannot_continue")
        raise ValueError(f"init: this run cannot be continued: {why}" if why else
                         "init: this result has no run state to continue from (run_state is "
                         "None): diverged runs and parallel actors have none")
    if seed is not None and seed != init.seed:
        raise ValueError(f"seed={seed!r}: a continued run draws from the saved generator of "
                         f"seed {init.seed}; leave seed out")
    return init.seed


def _no_init(init, what):
    if init is not None:
        raise ValueError(f"init: runs of {what} cannot be continued")


def _state_of(init):
    return None if init is None else init.run_state
