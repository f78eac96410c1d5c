"""RVI Q-learning (Abounadi, Bertsekas & Borkar 2001) as a learner of the fused loop.

Differential Q-learning (:mod:`avgreward.learners.value`) with R-bar replaced
by a reference function f of the action values themselves, as Wan, Naik &
Sutton (2021, section 3) write it; each step::

    A ~ epsilon-greedy(q(S, ., w))
    delta <- R - f(q) + max_a q(S', a, w) - q(S, A, w)
    w     <- w + alpha delta grad q(S, A, w)

with f of the values before the update and nothing else learned.  f is
:class:`~avgreward.agents.RVIQLearning`'s ``reference``:

* ``FIXED``: ``q(s_ref, a_ref, w)``, the features of the reference state
  (any feature map);
* ``MAX``: the largest entry of ``w`` (tabular maps: each entry is one
  state-action value);
* ``MEAN``: the mean of every entry of ``w`` (tabular maps), kept as the
  entries change (one entry moves by ``alpha delta``, the mean by
  ``alpha delta / w.size``): the exact mean up to rounding, without summing
  ``w.size`` terms each step.

The loop's R-bar slot carries f(q) of the values after each step: the f the
next step's TD error uses, so the run's ``rbar`` trace is f(q) after every
step, which converges to the optimal rate in the tabular case.  Carried
there (the loop keeps R-bar in a register) rather than in an array, f costs
no load and store on the step's chain of dependent arithmetic (in an
array, f = max and f = mean ran 25-30 % slower than differential
Q-learning; so they run as fast).  A run starts from
``w = 0``, where f is 0, R-bar's start.  The draws are differential
Q-learning's (two uniforms per epsilon-greedy choice, A at the start of each
step), so the plain-Python reference
(:func:`avgreward.reference.reference_value_control`) makes them too.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from avgreward.agents import RVIQLearning
from avgreward.critic import column_value
from avgreward.learners import FusedLearner
from avgreward.learners.driver import EPSILON_GREEDY, Built, Driver, Policy
from avgreward.learners.value import ValueWork, q_act, value_begin, value_finish, value_weights

__all__ = ["RVIParams", "RVI_Q_FIXED", "RVI_Q_MAX", "RVI_Q_MEAN", "FIXED", "MAX", "MEAN",
           "RVI_Q_DRIVER"]

FIXED, MAX, MEAN = 0, 1, 2
_CODES = {"fixed": FIXED, "max": MAX, "mean": MEAN}

RVIParams = namedtuple("RVIParams", [
    "w", "values", "reference", "ref_idx", "ref_action", "top_at", "per_entry", "alpha",
    "epsilon",
])
RVIParams.__doc__ = """RVI Q-learning's arrays and settings.

``w`` is ``[n_features, n_actions]``, ``values`` scratch of ``n_actions``;
``reference`` f's code (``FIXED``, ``MAX``, ``MEAN``); ``ref_idx`` the active
features of the reference state and ``ref_action`` its action (``FIXED``);
``top_at[0]`` the flat position of the largest entry of ``w`` (``MAX``, kept
up to date step by step and saved with the run's state, so a continued run
goes on with it); ``per_entry`` ``1 / w.size`` (``MEAN``).  f itself is R-bar.
"""


@njit(cache=True, error_model="numpy", forceinline=True)
def _largest(w, top_at):
    """``max(w)``, its flat position into ``top_at[0]`` (the first of ties)."""
    flat = w.reshape(w.size)
    top = -np.inf
    top_at[0] = 0
    for m in range(flat.shape[0]):
        if flat[m] > top:
            top = flat[m]
            top_at[0] = m
    return top


@njit(cache=True, error_model="numpy", forceinline=True)
def _q_update(w, f, step, cur, nxt, action, reward):
    """``delta = R - f + max_a q(S', a) - q(S, A)``, and ``w_A += step delta x(S)`` if finite."""
    best = -math.inf
    for a in range(w.shape[1]):
        best = max(best, column_value(w, nxt, a))
    delta = reward - f + best - column_value(w, cur, action)
    if math.isfinite(delta):
        for j in range(cur.shape[0]):
            w[cur[j], action] += step * delta
    return delta


# One learn function per f, so that each compiled loop holds only its own f.
# Each takes f of the values before the update as R-bar (the previous step's
# f after its update; 0 at the start, from w = 0) and returns f after it.

@njit(cache=True, error_model="numpy")
def fixed_learn(w, ref_idx, ref_action, step, cur, nxt, action, reward, rbar):
    delta = _q_update(w, rbar, step, cur, nxt, action, reward)
    if not math.isfinite(delta):
        return False, rbar, delta
    return True, column_value(w, ref_idx, ref_action), delta  # q(s_ref, a_ref) after the update


@njit(cache=True, error_model="numpy")
def max_learn(w, top_at, step, cur, nxt, action, reward, rbar):
    delta = _q_update(w, rbar, step, cur, nxt, action, reward)
    if not math.isfinite(delta):
        return False, rbar, delta
    # The max moves with the entries updated: up to a larger one, or down (a
    # scan of w) when the largest itself decreased.
    top = rbar
    n_actions = w.shape[1]
    for j in range(cur.shape[0]):
        value = w[cur[j], action]
        if value > top:
            top = value
            top_at[0] = cur[j] * n_actions + action
        elif cur[j] * n_actions + action == top_at[0] and value < top:
            top = _largest(w, top_at)
    return True, top, delta


@njit(cache=True, error_model="numpy")
def mean_learn(w, per_entry, step, cur, nxt, action, reward, rbar):
    delta = _q_update(w, rbar, step, cur, nxt, action, reward)
    if not math.isfinite(delta):
        return False, rbar, delta
    # One entry moved by step delta (tabular: one active feature), the mean by
    # its share: kept as it changes rather than summed again (w.size terms).
    return True, rbar + (step * delta) * per_entry, delta


@njit(cache=True, error_model="numpy")
def _nothing():
    pass


RVI_Q_FIXED, RVI_Q_MAX, RVI_Q_MEAN = (
    FusedLearner(f"rvi q-learning ({name})", RVIParams, ValueWork, value_begin, q_act, learn,
                 _nothing, value_finish, td_error=True)
    for name, learn in (("fixed", fixed_learn), ("max", max_learn), ("mean", mean_learn)))
_LEARNERS = {"fixed": RVI_Q_FIXED, "max": RVI_Q_MAX, "mean": RVI_Q_MEAN}


# --- driver ---------------------------------------------------------------------------------


def _check(agent, task):
    if task.fused.n_actions == 0:
        raise ValueError(f"agent: RVIQLearning needs discrete actions; {task.env_id} has a "
                         "continuous action")
    if agent.reference_action >= task.fused.n_actions:
        raise ValueError(f"reference_action must be an action of {task.env_id} "
                         f"(0..{task.fused.n_actions - 1}), got {agent.reference_action}")
    state = agent.reference_state
    if isinstance(state, tuple) and len(state) != task.fused.obs_size:
        raise ValueError(f"reference_state: an observation of {task.env_id} has "
                         f"{task.fused.obs_size} number(s), got {len(state)}: {state!r}")


def _reference_features(agent, features):
    """The active features of the reference state, or a ValueError naming the setting."""
    state = agent.reference_state
    tabular = features.n_active == 1
    if agent.reference != "fixed":
        if not tabular:
            raise ValueError(
                f"reference={agent.reference!r} is the {agent.reference} over all state-action "
                f"values, defined for tabular features (one active feature per state); these "
                f"have {features.n_active} active features: use reference='fixed'")
        return np.zeros(0, np.int64)
    if isinstance(state, tuple):
        return np.ascontiguousarray(features.indices(np.array(state, dtype=float)), np.int64)
    if not tabular or state >= features.n_features:
        raise ValueError(
            f"reference_state={state} is a feature index of a tabular map (0.."
            f"{features.n_features - 1}, one active feature per state); with "
            f"{features.n_active} active features give an observation instead")
    return np.array([state], np.int64)


def _build(agent, task):
    features, n_actions = task.features, task.fused.n_actions
    w = np.zeros((features.n_features, n_actions))
    ref_idx = _reference_features(agent, features)
    params = RVIParams(w, np.zeros(n_actions), _CODES[agent.reference], ref_idx,
                       int(agent.reference_action), np.zeros(1, np.int64), 1.0 / w.size,
                       float(agent.alpha), float(agent.epsilon))
    return Built(_LEARNERS[agent.reference], params, np.int64)


def _policy(agent, weights):
    return Policy(EPSILON_GREEDY, weights["w"], epsilon=float(agent.epsilon))


RVI_Q_DRIVER = Driver(RVIQLearning, _build, value_weights, _policy, _check, weight_names=("w",))
