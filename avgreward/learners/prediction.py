"""Average-reward prediction as learners of the fused loop: a fixed policy's rate and values.

Linear state values ``v(s, w) = w . x(s)`` and R-bar, learned while a fixed
behaviour policy acts (both policies are tables over a tabular
environment's states, :class:`~avgreward.agents.DifferentialTD`):

* :data:`DIFFERENTIAL_TD`, differential TD-learning (Wan, Naik & Sutton 2021),
  off-policy with per-step importance-sampling ratios; each step::

      A     ~ b(.|S);   rho <- pi(A|S) / b(A|S)
      delta <- R - Rbar + v(S', w) - v(S, w)
      w     <- w + alpha rho delta x(S)            (lambda = 0)
      z     <- rho (lambda z + x(S));  w <- w + alpha delta z   (lambda > 0)
      Rbar  <- Rbar + eta alpha rho delta

* :data:`AVERAGE_COST_TD`, average-cost TD(lambda) (Tsitsiklis & Van Roy
  1999), on-policy; each step::

      A     ~ pi(.|S)
      delta <- R - Rbar + v(S', w) - v(S, w)
      z     <- lambda z + x(S);   w <- w + alpha delta z
      Rbar  <- Rbar + beta (R - Rbar)

``alpha`` is divided by the number of active features (the package's
convention, in R-bar's ``eta alpha`` too); ``beta`` is used as given.

**How the loop knows the state.**  The loop gives a learner the active
features of S, not S.  The driver finds a position ``key`` of the active
list whose feature decides both policies (states that share it have the same
rows; one-hot features' only position always does), and writes both
policies as tables by that feature: ``b_probs[cur[key]]`` is ``b(.|S)``, ``ratios[cur[key]]`` the
ratios ``pi/b``.  States the features do not tell apart must have the same
policies (the learner could not act otherwise); the driver refuses others.

**Draws.**  One uniform a step: the behaviour's action by inverse CDF (the
last action takes any rounding remainder).  The plain-Python reference
(:func:`avgreward.reference.reference_prediction`) makes the same draw.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double
from avgreward.agents import AverageCostTD, DifferentialTD
from avgreward.critic import linear_value
from avgreward.learners import FusedLearner
from avgreward.learners.driver import Built, Driver
from avgreward.learners.value import ValueWork, value_begin, value_finish

__all__ = ["PredictionParams", "DIFFERENTIAL_TD", "AVERAGE_COST_TD", "policy_tables",
           "DIFFERENTIAL_TD_DRIVER", "AVERAGE_COST_TD_DRIVER"]

PredictionParams = namedtuple("PredictionParams", [
    "w", "z", "b_probs", "ratios", "key", "alpha", "lambda_", "rate_step",
])
PredictionParams.__doc__ = """A prediction learner's arrays and settings.

``w`` the value weights ``[n_features]``; ``z`` the trace (used only with
``lambda_ > 0``); ``b_probs[f]`` and ``ratios[f]`` the behaviour's
probabilities and the ratios ``pi/b`` at the states whose active feature at
position ``key`` is ``f``; ``rate_step`` R-bar's ``eta`` (differential TD)
or ``beta`` (average-cost TD).
"""



@njit(cache=True, error_model="numpy")
def _nothing():
    pass


@njit(cache=True, error_model="numpy", forceinline=True)
def _sample_row(probs, row, u):
    """Inverse-CDF sample from ``probs[row]`` (the last action takes the remainder)."""
    last = probs.shape[1] - 1
    cumulative = 0.0
    for a in range(last):
        cumulative += probs[row, a]
        if u < cumulative:
            return a
    return last


@njit(cache=True, error_model="numpy")
def prediction_act(b_probs, ratios, key, cur, words):
    # A ~ b(.|S); the memo is rho = pi(A|S) / b(A|S)
    row = cur[key]
    action = _sample_row(b_probs, row, next_double(words))
    return True, action, ratios[row, action]


@njit(cache=True, error_model="numpy", forceinline=True)
def _trace_step(w, z, lambda_, rho, cur, step_delta):
    """``z <- rho (lambda z + x(S))``; ``w <- w + step_delta z`` (dense: tabular tasks)."""
    for i in range(z.shape[0]):
        z[i] = lambda_ * z[i]
    for j in range(cur.shape[0]):
        z[cur[j]] += 1.0
    for i in range(z.shape[0]):
        z[i] = rho * z[i]
        w[i] += step_delta * z[i]


@njit(cache=True, error_model="numpy")
def differential_td_learn(w, z, lambda_, rate_step, step, cur, nxt, memo, reward, rbar):
    rho = memo
    delta = reward - rbar + linear_value(w, nxt) - linear_value(w, cur)
    if not math.isfinite(delta):
        return False, rbar, delta
    if lambda_ == 0.0:
        change = step * rho * delta
        for j in range(cur.shape[0]):
            w[cur[j]] += change
    else:
        _trace_step(w, z, lambda_, rho, cur, step * delta)
    # Rbar <- Rbar + eta alpha rho delta
    rbar = rbar + rate_step * step * rho * delta
    return True, rbar, delta


@njit(cache=True, error_model="numpy")
def average_cost_td_learn(w, z, lambda_, rate_step, step, cur, nxt, reward, rbar):
    delta = reward - rbar + linear_value(w, nxt) - linear_value(w, cur)
    if not math.isfinite(delta):
        return False, rbar, delta
    if lambda_ == 0.0:
        change = step * delta
        for j in range(cur.shape[0]):
            w[cur[j]] += change
    else:
        _trace_step(w, z, lambda_, 1.0, cur, step * delta)
    # mu <- mu + beta (R - mu), after delta took the old mu
    rbar = rbar + rate_step * (reward - rbar)
    return True, rbar, delta


# begin and finish are the value learners' (the step alpha / k, nothing to put back)
DIFFERENTIAL_TD, AVERAGE_COST_TD = (
    FusedLearner(name, PredictionParams, ValueWork, value_begin, prediction_act, learn,
                 _nothing, value_finish, td_error=True)
    for name, learn in (("differential td", differential_td_learn),
                        ("average-cost td", average_cost_td_learn)))


# --- drivers --------------------------------------------------------------------------------


def _model(agent, env_id):
    from avgreward import exact

    try:
        return exact.model_of(env_id)
    except ValueError:
        raise ValueError(f"target: {type(agent).__name__}'s policies are tables over a tabular "
                         f"environment's states; {env_id} has no exact model") from None


def _decides(rows, j, target, behaviour) -> bool:
    """Whether the active feature at position ``j`` decides both policies' rows."""
    seen = {}
    for s, row in enumerate(rows):
        first = seen.setdefault(row[j], s)
        if not (np.array_equal(target[first], target[s])
                and np.array_equal(behaviour[first], behaviour[s])):
            return False
    return True


def policy_tables(model, features, target, behaviour):
    """Both policies as tables by one active feature, for the fused loop's ``act``.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    features : avgreward.features.TileCoder
        The run's feature map.
    target, behaviour : array_like, shape (n_states, n_actions)

    Returns
    -------
    key : int
        The first position of the active-feature list whose feature decides
        both policies (states that share it have the same rows).
    b_probs, ratios : ndarray, shape (n_features, n_actions)
        ``b(.|s)`` and ``pi(.|s) / b(.|s)`` (0 where ``b`` is 0) at row
        ``x_key(s)``; rows of features no state shows are 0.

    Raises
    ------
    ValueError
        Naming ``target`` or ``behaviour``, if the shapes do not fit the model,
        the policies differ on states the features do not tell apart, or no
        single position decides the policies.
    """
    target, behaviour = np.asarray(target, float), np.asarray(behaviour, float)
    shape = (model.n_states, model.n_actions)
    for name, table in (("target", target), ("behaviour", behaviour)):
        if table.shape != shape:
            raise ValueError(f"{name} must have shape (n_states, n_actions) = {shape} for this "
                             f"environment, got {table.shape}")
    rows = [tuple(int(i) for i in features.indices(np.asarray(obs, np.float64)))
            for obs in model.observations]
    first = {}
    for s, row in enumerate(rows):
        seen = first.setdefault(row, s)
        for name, table in (("target", target), ("behaviour", behaviour)):
            if not np.array_equal(table[seen], table[s]):
                raise ValueError(f"{name}: states {seen} and {s} have the same features but "
                                 "different policies; the learner cannot tell them apart")
    key = next((j for j in range(len(rows[0])) if _decides(rows, j, target, behaviour)), None)
    if key is None:
        raise ValueError("target: no single position of the active features decides the "
                         "policies with these features; use features where one does "
                         "(one-hot features do)")
    b_probs = np.zeros((features.n_features, model.n_actions))
    ratios = np.zeros((features.n_features, model.n_actions))
    for s, row in enumerate(rows):
        b = behaviour[s]
        b_probs[row[key]] = b
        ratios[row[key]] = np.divide(target[s], b, out=np.zeros_like(b), where=b > 0)
    return key, b_probs, ratios


def _check(agent, task):
    if task.fused.n_actions == 0:
        raise ValueError(f"agent: {type(agent).__name__} needs discrete actions; {task.env_id} "
                         "has a continuous action")
    if task.fused.episodic:
        raise ValueError(f"agent: {type(agent).__name__} predicts in continuing tasks; "
                         f"{task.env_id} is episodic")
    model = _model(agent, task.env_id)
    n_states, n_actions = len(agent.target), len(agent.target[0])
    if (n_states, n_actions) != (model.n_states, model.n_actions):
        raise ValueError(f"target must have shape (n_states, n_actions) = "
                         f"{(model.n_states, model.n_actions)} for {task.env_id}, got "
                         f"{(n_states, n_actions)}")


def _build(agent, task):
    model = _model(agent, task.env_id)
    behaviour = getattr(agent, "behaviour", None)
    key, b_probs, ratios = policy_tables(model, task.features, agent.target,
                                         agent.target if behaviour is None else behaviour)
    n = task.features.n_features
    differential = isinstance(agent, DifferentialTD)
    params = PredictionParams(np.zeros(n), np.zeros(n), b_probs, ratios, key,
                              float(agent.alpha), float(agent.lambda_),
                              float(agent.eta if differential else agent.beta))
    # A continued run evaluates this run's target from this run's behaviour.
    return Built(DIFFERENTIAL_TD if differential else AVERAGE_COST_TD, params, np.int64,
                 from_settings=("b_probs", "ratios"))


def _weights(agent, params):
    """``Result.weights``: ``w``, the value weights ``[n_features]``."""
    return {"w": params.w}


DIFFERENTIAL_TD_DRIVER, AVERAGE_COST_TD_DRIVER = (
    Driver(settings, _build, _weights, check=_check, weight_names=("w",))
    for settings in (DifferentialTD, AverageCostTD))
