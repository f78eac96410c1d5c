"""``evaluate``: the reward rate of a trained result's policy, frozen (no learning).

The policy runs in the fused loop (:mod:`avgreward.learners.frozen`) from the
environment's start state for ``steps`` steps with its own generator; the
weights do not change.  For tabular tasks the exact reward rate of the same
policy comes from the environment's model (:mod:`avgreward.exact`), so the
simulated figure can be checked against the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from avgreward.learners.driver import EPSILON_GREEDY, GAUSSIAN, policy_at
from avgreward.learners.registry import driver_for
from avgreward.options import check_int as _check_int
from avgreward.options import check_steps as _check_steps

if TYPE_CHECKING:
    from avgreward.result import Result

__all__ = ["PolicyEvaluation", "evaluate", "optimal_reward_rate", "reward_bounds",
           "random_policy_rate", "episode_cap", "episode_bounds"]

@dataclass(frozen=True)
class PolicyEvaluation:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    env_id : str
    steps, seed : int
    greedy : bool
        Whether the policy acted greedily (most preferred action, ties broken
        at random; the Gaussian's mean) or as learned (sampled).
    reward_rate : float
        Mean reward per step over the ``steps`` steps (float64 sum).
    low, high : float
        95% confidence interval of the reward rate by batch means: the
        Student-t interval over ``batches`` consecutive batches of steps,
        whose means are close to independent when a batch is much longer
        than the chain's mixing time (NaN with fewer than 2 batches).
    batch_means : ndarray of float64
        The mean reward of each batch of ``steps // batches`` steps (the
        leftover ``steps % batches`` steps count in ``reward_rate`` only).
    exact_rate : float or None
        The exact reward rate of the same policy from the environment's
        model, for continuing tabular tasks; None otherwise.
    """

    env_id: str
    steps: int
    seed: int
    greedy: bool
    reward_rate: float
    low: float
    high: float
    batch_means: np.ndarray
    exact_rate: float | None


def evaluate(result: Result, steps: int = 100_000, seed: int = 0, greedy: bool = False,
             *, batches: int = 20, env=None, trust: bool = False) -> PolicyEvaluation:
    """The reward rate of ``result``'s learned policy, frozen: no learning, no R-bar.

    Parameters
    ----------
    result : Result
        A run of :func:`avgreward.train` on one of the package's environments
        (or :func:`avgreward.load_result`'s).
    steps : int, default 100_000
        Steps to run from the environment's start state.
    seed : int, default 0
        Seed of the evaluation's own generator (the start state, the actions,
        the environment's draws).
    greedy : bool, default False
        Act greedily instead of sampling the learned policy: the most
        preferred action (softmax), the greedy action (value-based learners:
        epsilon 0), the mean (Gaussian).
    batches : int, default 20
        Batches of consecutive steps for the confidence interval.
    env : gymnasium.Env, optional
        For a result stepped from Python (a gymnasium environment, or ours
        inside wrappers): the environment to run it in, e.g. the wrapped
        instance it was trained on; by default ``gymnasium.make(env_id)``
        if that gives the wrappers the result recorded.  Such a policy is
        stepped from Python (:func:`avgreward.animation.rollout`, about
        10 us a step plus the environment's own step), an episode end being
        a reset as in training.
    trust : bool, default False
        Allow importing the module that the result's ``env_id`` names
        (``"my_tasks:my/Task-v0"`` imports ``my_tasks``).  A result read from
        disk names its environment itself, so its module is imported only
        if it is imported already, ``env`` is given, or ``trust=True``.

    Returns
    -------
    PolicyEvaluation

    Raises
    ------
    ValueError
        Naming the argument; or if ``result`` was stepped from Python through
        wrappers that ``gymnasium.make(env_id)`` does not give and ``env`` is
        not given.

    Examples
    --------
    >>> import avgreward
    >>> agent = avgreward.default_agent("avgreward/LoopMDP-v0")
    >>> result = avgreward.train("avgreward/LoopMDP-v0", agent, 20_000, seed=0)
    >>> e = avgreward.evaluate(result, steps=50_000, seed=1, greedy=True)
    >>> round(e.exact_rate, 3), abs(e.reward_rate - e.exact_rate) < 0.01
    (0.4, True)
    """
    from avgreward.environments import is_own_env, check_trusted, resolve_env
    from avgreward.learners.frozen import EPSILON_GREEDY as EPSILON_GREEDY_MODE
    from avgreward.learners.frozen import (
        FROZEN_DISCRETE,
        FROZEN_GAUSSIAN,
        SAMPLE_SOFTMAX,
        FrozenDiscreteParams,
        FrozenGaussianParams,
    )
    from avgreward.result import Result
    from avgreward.training import run_learner

    if not isinstance(result, Result):
        raise ValueError(f"result must be a Result (of train or load_result), got "
                         f"{type(result).__name__}")
    steps, seed, greedy, batches = check_settings(steps, seed, greedy, batches)
    if env is None:
        check_trusted(result.env_id, trust)
    if env is not None or not is_own_env(result.env_id) or result.info.get("python_stepped"):
        # Our own environment inside wrappers is stepped from Python too: in the fused
        # loop its wrappers (reward transforms, observations) would be silently gone.
        return _evaluate_stepwise(result, steps, seed, bool(greedy), batches, env, trust)
    policy = driver_for(result.agent, "result.agent").policy(result.agent, result.weights)
    theta = np.ascontiguousarray(policy.theta, dtype=np.float64)
    if policy.kind == GAUSSIAN:
        learner = FROZEN_GAUSSIAN
        params = FrozenGaussianParams(theta, float(policy.sigma_min), bool(greedy))
    else:
        learner = FROZEN_DISCRETE
        if policy.kind == EPSILON_GREEDY:
            mode, epsilon = EPSILON_GREEDY_MODE, 0.0 if greedy else float(policy.epsilon)
        else:
            mode, epsilon = (EPSILON_GREEDY_MODE, 0.0) if greedy else (SAMPLE_SOFTMAX, 0.0)
        params = FrozenDiscreteParams(theta, np.zeros(theta.shape[1]), mode,
                                      float(policy.tau), epsilon)
    bin_size = steps // batches
    run = run_learner(result.env_id, learner, params, steps, seed, result.features,
                      bin_size=bin_size)
    full = run.rewards[:batches]  # a shorter last bin of the leftover steps is not a batch
    if full.size >= 2:
        from avgreward.stats import mean_confidence_interval

        _, low, high = mean_confidence_interval(full)
    else:
        low = high = math.nan
    _, env_class = resolve_env(result.env_id)
    return PolicyEvaluation(
        env_id=result.env_id, steps=steps, seed=seed, greedy=bool(greedy),
        reward_rate=run.mean_reward(), low=float(low), high=float(high), batch_means=full,
        exact_rate=_exact_rate(env_class, result, bool(greedy)))


def check_settings(steps, seed, greedy, batches) -> tuple[int, int, bool, int]:
    """:func:`evaluate`'s ``steps``, ``seed``, ``greedy`` and ``batches``, checked
    (a ``ValueError`` naming the one that is wrong); internal API."""
    steps = _check_steps(steps)
    seed = _check_int("seed", seed, 0)
    batches = _check_int("batches", batches, 1)
    if batches > steps:
        raise ValueError(f"batches={batches} is more than steps={steps}")
    if not isinstance(greedy, (bool, np.bool_)):
        raise ValueError(f"greedy must be True or False, got {greedy!r}")
    return steps, seed, bool(greedy), batches


def _evaluate_stepwise(result, steps, seed, greedy, batches, env, trust) -> PolicyEvaluation:
    """:func:`evaluate` by a rollout stepped from Python, with the result's wrappers."""
    from avgreward.animation import rollout
    from avgreward.stats import mean_confidence_interval

    rewards = rollout(result, steps, seed=seed, greedy=greedy, env=env, trust=trust).rewards
    rewards = np.asarray(rewards, dtype=np.float64)
    size = steps // batches
    means = rewards[:size * batches].reshape(batches, size).mean(axis=1)
    if batches >= 2:
        _, low, high = mean_confidence_interval(means)
    else:
        low = high = math.nan
    return PolicyEvaluation(
        env_id=result.env_id, steps=steps, seed=seed, greedy=greedy,
        reward_rate=float(np.mean(rewards)), low=float(low), high=float(high),
        batch_means=means, exact_rate=None)


def _exact_rate(env_class, result, greedy) -> float | None:
    """The exact reward rate of the policy :func:`evaluate` ran, or None without a model."""
    try:
        model = env_class().model()
    except (AttributeError, NotImplementedError, TypeError):
        return None
    if getattr(model, "terminal", ()):
        return None  # episodic: its reward rate depends on how episodes restart
    from avgreward import exact

    learned = driver_for(result.agent).policy(result.agent, result.weights)
    if learned.kind == GAUSSIAN:
        return None  # a continuous action has no tabular model

    def policy(observation):
        idx = result.features.indices(np.atleast_1d(np.asarray(observation, np.float64)))
        if not greedy:
            return policy_at(learned, idx)
        values = learned.theta[idx].sum(axis=0)
        best = (values == values.max()).astype(float)
        return best / best.sum()

    try:
        return float(exact.evaluate(model, exact.policy_on_states(model, policy)).reward_rate)
    except TypeError:
        return None


# The swing-up's reward is 0 upright and negative elsewhere: the best rate is 0.
_KNOWN_OPTIMA = {"avgreward/PendulumSwingUp-v0": 0.0,
                 "avgreward/PendulumSwingUpContinuous-v0": 0.0}


def optimal_reward_rate(env_id: str) -> float | None:
    """The best reward rate of an environment where it is known, else None.

    0 for the pendulum swing-up (its reward is at most 0); for a continuing
    tabular task whose observation tells its states apart, the optimal reward
    rate of its exact model from the start distribution
    (:func:`avgreward.exact.policy_iteration`).  None for an aliased task (the
    aliased gridworld): the optimum over states is then a bound that no
    policy of the observations reaches, not the best possible.
    """
    if env_id in _KNOWN_OPTIMA:
        return _KNOWN_OPTIMA[env_id]
    model = _peeked_model(env_id)
    if model is None or getattr(model, "terminal", ()):
        return None
    from avgreward import exact

    if exact.observation_classes(model)[0].shape[0] < model.n_states:
        return None
    return float(exact.policy_iteration(model).reward_rate)


# The swing-up's reward is -|beta'| with the angle wrapped to [-pi, pi).
_KNOWN_BOUNDS = {"avgreward/PendulumSwingUp-v0": (-math.pi, 0.0),
                 "avgreward/PendulumSwingUpContinuous-v0": (-math.pi, 0.0)}


def reward_bounds(env_id: str) -> tuple[float, float] | None:
    """Bounds of an environment's expected reward per step where known, else None.

    ``(-pi, 0)`` for the pendulum swing-up; for a tabular task, the least and
    the largest expected reward ``R[s, a]`` of its exact model.  Any reward
    rate, and the expected mean reward of any stretch of steps, lies within
    them (a weighted average of expected rewards), so a confidence band of
    such a mean may be clipped to them (:func:`avgreward.plotting.confidence_band`).
    Reads the model without importing anything an id names (the id may come
    from a results folder).
    """
    if env_id in _KNOWN_BOUNDS:
        return _KNOWN_BOUNDS[env_id]
    model = _peeked_model(env_id)
    return None if model is None else (float(np.min(model.R)), float(np.max(model.R)))


def episode_cap(env_id: str, agent=None) -> int | None:
    """The most steps an episode of ``env_id`` can last, where known, else None.

    The agent's ``max_episode_steps`` (an episodic learner of the fused loop
    cuts its episodes there); else the time limit gymnasium registered the id
    with (``max_episode_steps`` of its spec: a Python-stepped run's episode
    ends there at the latest).  Nothing an id names is imported.
    """
    cap = getattr(agent, "max_episode_steps", None)
    if cap:
        return int(cap)
    import gymnasium

    spec = gymnasium.registry.get(env_id)
    limit = None if spec is None else spec.max_episode_steps
    return int(limit) if limit is not None and limit > 0 else None


def episode_bounds(env_id: str, cap: int | None = None, rewards="auto"
                   ) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """Known bounds of the mean episode length and of the mean episode return.

    An episode lasts at least one step and at most ``cap`` steps
    (:func:`episode_cap`; no upper bound if None): lengths lie in ``[1,
    cap]``.  Its expected return is a sum of ``L`` expected rewards, each
    within the reward's range ``[r_lo, r_hi]`` (:func:`reward_bounds` over the
    states an episode is paid in, terminal states left out; or ``rewards``
    given): it lies between ``min(r_lo, cap r_lo)`` and ``max(r_hi,
    cap r_hi)``, or, without a cap, on the side where a longer episode cannot
    take it (at most ``r_hi`` if ``r_hi <= 0``, at least ``r_lo`` if ``r_lo >=
    0``).  Infinite where unbounded.

    Parameters
    ----------
    env_id : str
    cap : int, optional
        The longest episode.
    rewards : "auto", (float, float) or None
        The reward's range: ``"auto"``, :func:`reward_bounds` of ``env_id``;
        None, unknown.

    Returns
    -------
    length, returns : (float, float), (float, float) or None
        ``returns`` is None where nothing bounds it.
    """
    length = (1.0, math.inf if cap is None else float(cap))
    known = (_step_reward_bounds(env_id) if isinstance(rewards, str) and rewards == "auto"
             else rewards)
    if known is None:
        return length, None
    r_lo, r_hi = (float(r) for r in known)
    if cap is None:
        lo = r_lo if r_lo >= 0 else -math.inf
        hi = r_hi if r_hi <= 0 else math.inf
    else:
        lo, hi = min(r_lo, cap * r_lo), max(r_hi, cap * r_hi)
    return length, (None if math.isinf(lo) and math.isinf(hi) else (lo, hi))


def _step_reward_bounds(env_id):
    """:func:`reward_bounds` over an episode's steps: a terminal state's (0) is never paid."""
    model = _peeked_model(env_id)
    terminal = getattr(model, "terminal", ())
    if model is None or not terminal:
        return reward_bounds(env_id)
    steps = np.delete(np.asarray(model.R), list(terminal), axis=0)
    return (float(np.min(steps)), float(np.max(steps))) if steps.size else None


def random_policy_rate(env_id: str) -> float | None:
    """The exact reward rate of the uniform random policy, for continuing tabular tasks.

    The baseline a learning curve should clear: ``avgreward.exact.evaluate``
    of the policy choosing every action with probability ``1 / n_actions`` in
    every state, from the model's start distribution.  None where no exact
    model gives it (continuous states, episodic tasks, a ``module:id`` whose
    module is not imported: nothing is imported for it).
    """
    model = _peeked_model(env_id)
    if model is None or getattr(model, "terminal", ()):
        return None
    from avgreward import exact

    uniform = np.full((model.n_states, model.n_actions), 1.0 / model.n_actions)
    return float(exact.evaluate(model, uniform).reward_rate)


def _peeked_model(env_id):
    """The exact model of ``env_id`` if its class is known without importing anything."""
    from avgreward.environments import peek_own_class

    # Known without importing anything: the id may come from a results folder.
    cls = peek_own_class(env_id)
    if cls is None:
        return None
    try:
        return cls().model()
    except (AttributeError, NotImplementedError, TypeError):
        return None
