"""The average-reward natural actor-critic (Bhatnagar et al. 2009, Algorithm 3) in the fused loop.

One learner, :data:`NATURAL`, for :class:`~avgreward.agents.NaturalActorCritic`:
a softmax actor over sparse binary features, a linear differential critic
``w`` and advantage weights ``advantage`` (the paper's ``w``) over the
compatible features ``psi(s, a) = grad ln pi(a|s)``, which for the linear
softmax are ``psi_(i, b) = x_i(s) (1[a = b] - pi(b|s)) / tau``: nonzero only on
the rows of the active features, each row the same ``n_actions`` coefficients.
So ``psi . u`` and the advantage weights' update touch k rows of
``n_actions``.

The actor's step ``theta <- theta + alpha_theta u`` moves every row of theta,
active or not.  Done as written it would cost ``n_features n_actions`` a step;
instead each row is brought up to date when it is next needed.  A row ``i``
of ``u`` changes only on steps where feature ``i`` is active, so between two
such steps the actor adds the same ``alpha_theta u_i`` on every step: a row
last brought up to date after step ``last[i]`` is, at step ``t``,
``theta_i + (alpha_theta (t - last[i])) u_i``.  The rows of S are brought up to
date before its preferences are read (and before ``u`` changes them); the
result's ``theta`` is brought up to date when it is read
(:func:`natural_weights`).  ``last`` and the step counter ``clock`` are arrays of
the bundle, so a run split into chunks or continued (``init=``) does the same
arithmetic as one call.  One difference from the dense update remains: a
row idle for ``m`` steps gets one product ``(alpha_theta m) u_i`` instead of
``m`` additions of ``alpha_theta u_i``, equal to rounding (the tests compare
with the dense reference, :func:`avgreward.reference.reference_natural_actor_critic`).
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double
from avgreward.actors import sample_discrete, softmax_of_preferences, softmax_score
from avgreward.agents import NaturalActorCritic
from avgreward.critic import add_at, column_value, linear_value
from avgreward.learners.driver import SOFTMAX as SOFTMAX_POLICY
from avgreward.learners.driver import Built, Driver, Policy
from avgreward.learners.fused import FusedLearner

__all__ = ["NaturalParams", "NaturalWork", "NATURAL", "NATURAL_DRIVER", "natural_weights",
           "caught_up_theta"]

NaturalParams = namedtuple("NaturalParams", [
    "w", "theta", "advantage", "last", "clock", "probs", "coef",
    "alpha_w", "alpha_advantage", "alpha_theta", "alpha_rbar", "tau",
])
NaturalParams.__doc__ = """The natural actor-critic's arrays and settings.

``w`` the critic ``[n_features]``; ``theta`` and ``advantage`` (the paper's
advantage parameters ``w``) ``[n_features, n_actions]``; ``last[i]`` the step
after which row ``i`` of theta was last brought up to date and ``clock[0]``
the steps learned so far (see the module docstring: theta's rows are behind by
``clock[0] - last[i]`` actor steps); ``probs`` and ``coef`` scratch of length
``n_actions``.
"""

NaturalWork = namedtuple("NaturalWork", ["step_w", "step_advantage"])


@njit(cache=True, error_model="numpy", forceinline=True)
def natural_begin(params, k):
    return NaturalWork(params.alpha_w / k, params.alpha_advantage / k)


@njit(cache=True, error_model="numpy", forceinline=True)
def natural_act(theta, advantage, last, clock, probs, alpha_theta, tau, cur, words):
    # theta's rows of S up to date: the actor steps they missed, all along the same u_i
    t = clock[0]
    n_actions = probs.shape[0]
    for j in range(cur.shape[0]):
        i = cur[j]
        behind = t - last[i]
        if behind > 0:
            step = alpha_theta * behind
            for b in range(n_actions):
                theta[i, b] += step * advantage[i, b]
            last[i] = t
    for b in range(n_actions):
        probs[b] = column_value(theta, cur, b)
    softmax_of_preferences(probs, 0, tau, probs)
    return True, sample_discrete(probs, next_double(words)), 0.0


@njit(cache=True, error_model="numpy", forceinline=True)
def natural_learn(w, theta, advantage, last, clock, probs, coef, step_w, step_advantage,
                  alpha_theta, alpha_rbar, tau, cur, nxt, action, reward, rbar):
    n_actions = probs.shape[0]
    # the reward rate first: the TD error takes the new average (their order)
    rbar_new = (1.0 - alpha_rbar) * rbar + alpha_rbar * reward
    delta = reward - rbar_new + linear_value(w, nxt) - linear_value(w, cur)
    if not math.isfinite(delta):
        return False, rbar, delta
    add_at(w, cur, step_w * delta)
    # psi = x(S) (1[A = b] - pi(b|S)) / tau, so psi . u = sum_b coef_b (u_b . x(S))
    softmax_score(probs, action, tau, coef)
    fit = 0.0
    for b in range(n_actions):
        fit += coef[b] * column_value(advantage, cur, b)
    # u <- u + alpha_u (delta - psi . u) psi;  theta <- theta + alpha_theta u (rows of S now,
    # the others when next needed)
    g = step_advantage * (delta - fit)
    t = clock[0] + 1
    for j in range(cur.shape[0]):
        i = cur[j]
        for b in range(n_actions):
            advantage[i, b] += g * coef[b]
            theta[i, b] += alpha_theta * advantage[i, b]
        last[i] = t
    clock[0] = t
    return True, rbar_new, delta


@njit(cache=True, error_model="numpy", forceinline=True)
def _nothing():
    """End of an episode: learning goes on across it (S' is the next start), as the
    differential actor-critic's does."""


@njit(cache=True, error_model="numpy", forceinline=True)
def _finish(params, work):
    """Nothing to put back: the kernels work on the bundle's arrays (theta stays lazy)."""


NATURAL = FusedLearner("natural actor-critic", NaturalParams, NaturalWork, natural_begin,
                       natural_act, natural_learn, _nothing, _finish, td_error=True)


# --- the driver -----------------------------------------------------------------------------


def caught_up_theta(params):
    """theta with every row brought up to date (a copy): the same arithmetic as the kernel's."""
    behind = params.clock[0] - params.last
    return params.theta + (params.alpha_theta * behind)[:, None] * params.advantage


def natural_weights(agent, params):
    """``Result.weights``: ``w`` (critic), ``theta`` (up to date) and ``advantage``."""
    return {"w": params.w.copy(), "theta": caught_up_theta(params),
            "advantage": params.advantage.copy()}


def _check(agent, task):
    if task.fused.n_actions == 0:
        raise ValueError(
            f"agent: NaturalActorCritic needs discrete actions (a softmax policy), but "
            f"{task.env_id} has a continuous action")


def _build(agent, task):
    d, n_actions = task.features.n_features, task.fused.n_actions
    params = NaturalParams(
        np.zeros(d), np.zeros((d, n_actions)), np.zeros((d, n_actions)),
        np.zeros(d, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(n_actions),
        np.zeros(n_actions), float(agent.alpha_w), float(agent.advantage_step),
        float(agent.alpha_theta), float(agent.alpha_rbar), float(agent.tau))
    return Built(NATURAL, params, np.int64)


def _policy(agent, weights):
    return Policy(SOFTMAX_POLICY, weights["theta"], tau=float(agent.tau))


NATURAL_DRIVER = Driver(
    NaturalActorCritic, _build, natural_weights, _policy, _check,
    memory=lambda agent, task: 8 * task.features.n_features * (2 + 2 * task.fused.n_actions),
    weight_names=("w", "theta", "advantage"))
