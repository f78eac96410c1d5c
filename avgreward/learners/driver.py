"""What a learner is to the rest of the package: its :class:`Driver`.

A learner module (:mod:`avgreward.learners.actor_critic`, ...) holds its
kernel functions (a :class:`~avgreward.learners.FusedLearner`) and one
driver per settings class it serves.  :func:`avgreward.train`, saving and
loading, the runner, :meth:`Result.policy <avgreward.result.Result.policy>`
and :func:`avgreward.evaluate` ask the driver (through
:mod:`avgreward.learners.registry`) instead of listing learner kinds:

``check(agent, task)``
    Refuse, with a ValueError naming the setting, an agent that does not fit
    the environment (a softmax actor on a continuous action, ...).
``build(agent, task) -> Built``
    The learner's kernels and a new bundle of its arrays for one run.
``weights(agent, params)``
    ``Result.weights`` by name: the only place those names are made.
``policy(agent, weights) -> Policy``
    The learned policy as data: which kind, its weight matrix and settings,
    for ``Result.policy`` (:func:`policy_at`) and ``evaluate`` (frozen).

This module imports no learner: learner modules import it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from avgreward.actors import gaussian_parameters, softmax_probabilities

__all__ = ["Driver", "Task", "Built", "Policy", "policy_at"]

Task = namedtuple("Task", ["env_id", "fused", "features", "steps", "episode_steps",
                           "bin_size"], defaults=(0, None))
Task.__doc__ = """What a driver knows of a run: the environment's id and its
:class:`~avgreward.envs.declare.FusedEnv` (actions, episodic, sizes), the
feature map (``None`` while checking), the number of steps and, for a run
continued (``train(..., init=...)``), the steps of the episode in progress it
carries in (0 for a new run), and the run's ``bin_size`` (None: a reward a
step), for a learner that records something per bin."""

Built = namedtuple("Built", ["learner", "params", "action_dtype", "episode_cap",
                             "keep_state", "on_divergence", "episode_buffers", "from_settings"],
                   defaults=(np.int64, 0, True, None, (), ()))
Built.__doc__ = """One run's learner: its :class:`~avgreward.learners.FusedLearner`, its
bundle (``learner.params_type``), the dtype of recorded actions, the episode
cap (0: none), whether the run keeps a state to continue from, and
``on_divergence(error)``, which may give a clearer exception for a
:class:`~avgreward.result.DivergenceError` (or None to keep it), and the
names of the bundle's episode buffers: arrays with a row per step of the
episode in progress (REINFORCE's), saved up to that episode's steps only and
put back into the first rows of a continued run's (longer) buffers, and the
names of the bundle's arrays computed from the settings alone (a prediction
learner's policy tables): a continued run keeps them as this run's settings
built them, not as they were saved."""

#: Kinds of :class:`Policy`.
SOFTMAX, GAUSSIAN, EPSILON_GREEDY = "softmax", "gaussian", "epsilon_greedy"

Policy = namedtuple("Policy", ["kind", "theta", "tau", "sigma_min", "epsilon"],
                    defaults=(1.0, 0.0, 0.0))
Policy.__doc__ = """A learned policy as data.  ``kind`` "softmax" (``theta``
``[n_features, n_actions]`` preferences, temperature ``tau``), "gaussian"
(``theta[:, 0]`` the mean's and ``theta[:, 1]`` the log-sigma's weights,
``sigma_min``) or "epsilon_greedy" (``theta`` the action values, ``epsilon``)."""


def _accept(agent, task) -> None:
    """No check beyond the settings' own."""


def _no_memory(agent, task) -> int:
    return 0


def _discrete(agent) -> bool:
    return False


def _no_policy(agent, weights):
    raise ValueError(f"this result's learner has no policy the package can read: {agent!r}")


@dataclass(frozen=True)
class Driver:
    """How the package runs, saves and reads the learner of one settings class.

    Parameters
    ----------
    settings : type
        The settings class it serves (its ``kind`` names it in records).
    build : callable
        ``build(agent, task) -> Built``.
    weights : callable
        ``weights(agent, params) -> dict``: ``Result.weights``.
    policy : callable, optional
        ``policy(agent, weights) -> Policy``; by default a ValueError.
    check : callable, optional
        ``check(agent, task)``: ValueError if the agent does not fit.
    memory : callable, optional
        ``memory(agent, task) -> int``: bytes of the learner's arrays, checked
        against the memory available before they are allocated.
    stepwise : bool, default False
        Whether :mod:`avgreward.stepwise` runs it on a gymnasium environment
        stepped from Python.
    parallel : bool, default False
        Whether ``actors > 1`` runs it as parallel actors (:mod:`avgreward.parallel`).
    cannot_continue : str, default ""
        Why its runs cannot be continued (``train(..., init=...)``), or ""
        if they can.
    weight_names : tuple of str, default ()
        Weights every saved run of it holds (the runner checks run files for them).
    continuous : callable, optional
        ``continuous(agent) -> bool or None``: whether its policy is over one
        continuous action (None: it does not say); by default False
        (discrete actions).
    """

    settings: type
    build: Callable[[Any, Task], Built]
    weights: Callable[[Any, Any], dict]
    policy: Callable[[Any, dict], Policy] = _no_policy
    check: Callable[[Any, Task], None] = _accept
    memory: Callable[[Any, Task], int] = _no_memory
    stepwise: bool = False
    parallel: bool = False
    cannot_continue: str = ""
    weight_names: tuple = ()

    continuous: Callable[[Any], bool | None] = _discrete

    @property
    def kind(self) -> str:
        return self.settings.kind


def policy_at(policy: Policy, idx) -> np.ndarray | tuple[float, float]:
    """The policy at the state whose active features are ``idx``.

    Softmax: the action probabilities; epsilon-greedy: the greedy action's
    mass shared between ties, plus epsilon spread over every action;
    Gaussian: ``(mean, sigma)``.
    """
    if policy.kind == EPSILON_GREEDY:
        q = policy.theta[idx].sum(axis=0)
        greedy = (q == q.max()).astype(float)
        eps = policy.epsilon
        return eps / q.size + (1.0 - eps) * greedy / greedy.sum()
    if policy.kind == GAUSSIAN:
        mu, _, sigma = gaussian_parameters(policy.theta, idx, policy.sigma_min)
        return mu, sigma
    probs = np.empty(policy.theta.shape[1])
    softmax_probabilities(policy.theta, idx, policy.tau, probs)
    return probs
