"""Value-based average-reward control as learners of the fused loop.

Linear action values ``q(s, a, w) = w[:, a] . x(s)`` (tabular with one-hot
features), an epsilon-greedy behaviour policy, and R-bar, the estimate of
the reward rate:

* :data:`DIFFERENTIAL_SARSA`, differential semi-gradient Sarsa (Sutton &
  Barto, section 10.3), each step::

      A' ~ epsilon-greedy(q(S', ., w))
      delta <- R - Rbar + q(S', A', w) - q(S, A, w)
      Rbar  <- Rbar + beta delta
      w     <- w + alpha delta grad q(S, A, w)

* :data:`N_STEP_SARSA`, its n-step form (section 10.4): with ``tau = t - n + 1``,
  ``delta <- sum_{i=tau+1}^{tau+n} (R_i - Rbar) + q(S_{tau+n}, A_{tau+n}) -
  q(S_tau, A_tau)``, then R-bar and ``w`` at ``(S_tau, A_tau)`` as above;

* :data:`DIFFERENTIAL_Q`, differential Q-learning (Wan, Naik & Sutton 2021),
  each step::

      delta <- R - Rbar + max_a q(S', a, w) - q(S, A, w)
      w     <- w + alpha delta grad q(S, A, w);   Rbar <- Rbar + eta alpha delta

``alpha`` is divided by the number of active features (the package's
convention); ``beta`` and ``eta`` are used as given.  The same two learners
run discounted Q-learning and Sarsa with and without reward centering
(Naik et al. 2024): ``delta = (R - Rbar) + gamma q(S', .) - q(S, A)`` with
R-bar moved by simple centering ``Rbar += beta (R - Rbar)``, TD-based
centering ``Rbar += eta alpha delta``, or not at all (see
:class:`ValueParams`).

**Draws.**  An epsilon-greedy choice takes two uniforms, always: ``u1 <
epsilon`` explores, and ``u2`` then picks uniformly among all actions, or
else among the greedy actions (ties broken uniformly at random).  Sarsa
chooses ``A'`` inside the step, after the environment's draws; Q-learning
chooses ``A`` at the start of each step.  The plain-Python references
(:func:`avgreward.reference.reference_value_control`) make the same draws.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double
from avgreward.critic import column_value
from avgreward.agents import (
    DifferentialQLearning,
    DifferentialSarsa,
    DiscountedQLearning,
    DiscountedSarsa,
)
from avgreward.learners import FusedLearner
from avgreward.learners.driver import EPSILON_GREEDY, Built, Driver, Policy

__all__ = ["ValueParams", "NStepSarsaParams", "DIFFERENTIAL_SARSA", "N_STEP_SARSA",
           "DIFFERENTIAL_Q", "epsilon_greedy",
           "NO_CENTERING", "SIMPLE_CENTERING", "TD_CENTERING", "TD_ALPHA_CENTERING"]

ValueParams = namedtuple("ValueParams", [
    "w", "values", "next_action", "alpha", "beta", "epsilon", "gamma", "centering",
])
ValueParams.__doc__ = """A value-based learner's arrays and settings.

``w`` is ``[n_features, n_actions]``; ``values`` scratch of ``n_actions``;
``next_action[0]`` Sarsa's A' between steps (-1 before the first); ``gamma``
the discount (1: differential); ``centering`` how R-bar moves, with ``beta``:
0 never (R-bar stays 0), 1 ``Rbar += beta (R - Rbar)`` (simple centering),
2 ``Rbar += beta delta`` (differential Sarsa), 3 ``Rbar += beta alpha delta``
(differential Q-learning's eta; TD-based centering).
"""

NO_CENTERING, SIMPLE_CENTERING, TD_CENTERING, TD_ALPHA_CENTERING = 0, 1, 2, 3

ValueWork = namedtuple("ValueWork", ["step"])


@njit(cache=True, error_model="numpy", forceinline=True)
def epsilon_greedy(w, idx, epsilon, values, u1, u2):
    """An epsilon-greedy action at the state with active features ``idx``.

    ``u1 < epsilon``: uniform over all actions by ``u2``; else uniform by ``u2``
    over the actions whose value equals the largest.
    """
    n_actions = values.shape[0]
    if u1 < epsilon:
        return min(int(u2 * n_actions), n_actions - 1)
    best = -math.inf
    for a in range(n_actions):
        values[a] = column_value(w, idx, a)
        if values[a] > best:
            best = values[a]
    ties = 0
    for a in range(n_actions):
        if values[a] == best:
            ties += 1
    pick = min(int(u2 * ties), ties - 1)
    for a in range(n_actions):
        if values[a] == best:
            if pick == 0:
                return a
            pick -= 1
    return n_actions - 1  # values not finite: the run stops at its TD error


@njit(cache=True, error_model="numpy")
def value_begin(params, k):
    return ValueWork(params.alpha / k)


@njit(cache=True, error_model="numpy")
def _nothing():
    pass


@njit(cache=True, error_model="numpy")
def value_finish(params, work):
    pass


# --- differential semi-gradient Sarsa ----------------------------------------------------


@njit(cache=True, error_model="numpy")
def sarsa_act(w, values, next_action, epsilon, cur, words):
    # A was chosen as the previous step's A' (at the very first step: now)
    if next_action[0] < 0:
        u1 = next_double(words)
        next_action[0] = epsilon_greedy(w, cur, epsilon, values, u1, next_double(words))
    return True, next_action[0], 0.0


@njit(cache=True, error_model="numpy", forceinline=True)
def _move_rbar(rbar, centering, beta, step, reward, delta):
    """R-bar after a step (see :class:`ValueParams`'s ``centering``)."""
    if centering == SIMPLE_CENTERING:
        return rbar + beta * (reward - rbar)
    if centering == TD_CENTERING:
        return rbar + beta * delta
    if centering == TD_ALPHA_CENTERING:
        return rbar + beta * step * delta
    return rbar


@njit(cache=True, error_model="numpy")
def sarsa_learn(w, values, next_action, beta, epsilon, gamma, centering, step, cur, nxt,
                action, reward, rbar, words):
    # A' ~ epsilon-greedy(q(S', .)), then the box
    u1 = next_double(words)
    a_next = epsilon_greedy(w, nxt, epsilon, values, u1, next_double(words))
    delta = (reward - rbar + gamma * column_value(w, nxt, a_next)
             - column_value(w, cur, action))
    if not math.isfinite(delta):
        return False, rbar, delta
    rbar = _move_rbar(rbar, centering, beta, step, reward, delta)
    for j in range(cur.shape[0]):
        w[cur[j], action] += step * delta
    next_action[0] = a_next
    return True, rbar, delta


# --- differential Q-learning -------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def q_act(w, values, epsilon, cur, words):
    u1 = next_double(words)
    return True, epsilon_greedy(w, cur, epsilon, values, u1, next_double(words)), 0.0


@njit(cache=True, error_model="numpy")
def q_learn(w, beta, gamma, centering, step, cur, nxt, action, reward, rbar):
    best = -math.inf
    for a in range(w.shape[1]):
        best = max(best, column_value(w, nxt, a))
    delta = reward - rbar + gamma * best - column_value(w, cur, action)
    if not math.isfinite(delta):
        return False, rbar, delta
    for j in range(cur.shape[0]):
        w[cur[j], action] += step * delta
    # eta alpha delta (alpha per active feature, as w's), or as centering says
    rbar = _move_rbar(rbar, centering, beta, step, reward, delta)
    return True, rbar, delta


# --- n-step differential semi-gradient Sarsa (S&B 10.4) -----------------------------------

NStepSarsaParams = namedtuple("NStepSarsaParams", [
    "w", "values", "next_action", "ring_features", "ring_actions", "ring_rewards", "t",
    "alpha", "beta", "epsilon",
])
NStepSarsaParams.__doc__ = """n-step differential Sarsa's arrays and settings.

The last n steps' features of S_t (``ring_features[t % n]``), A_t and
R_{t+1}, and ``t[0]`` the steps so far (the ring's position).
"""


@njit(cache=True, error_model="numpy")
def nsarsa_learn(w, values, next_action, ring_features, ring_actions, ring_rewards, t, beta,
                 epsilon, step, cur, nxt, action, reward, rbar, words):
    n = ring_actions.shape[0]
    now = t[0]
    slot = now % n
    for j in range(cur.shape[0]):
        ring_features[slot, j] = cur[j]
    ring_actions[slot] = action
    ring_rewards[slot] = reward
    t[0] = now + 1
    # A_{t+1} ~ epsilon-greedy(q(S_{t+1}, .))
    u1 = next_double(words)
    a_next = epsilon_greedy(w, nxt, epsilon, values, u1, next_double(words))
    next_action[0] = a_next
    tau = now - n + 1
    if tau < 0:
        return True, rbar, 0.0  # no TD error before n steps: counted as 0 in the metric
    # delta <- sum_{i=tau+1}^{tau+n} (R_i - Rbar) + q(S_{tau+n}, A_{tau+n}) - q(S_tau, A_tau)
    total = 0.0
    for i in range(tau, now + 1):
        total += ring_rewards[i % n] - rbar
    first = tau % n
    a_tau = ring_actions[first]
    delta = (total + column_value(w, nxt, a_next)
             - column_value(w, ring_features[first], a_tau))
    if not math.isfinite(delta):
        return False, rbar, delta
    rbar += beta * delta
    for j in range(ring_features.shape[1]):
        w[ring_features[first, j], a_tau] += step * delta
    return True, rbar, delta


DIFFERENTIAL_SARSA = FusedLearner("differential sarsa", ValueParams, ValueWork, value_begin,
                                  sarsa_act, sarsa_learn, _nothing, value_finish, td_error=True)
N_STEP_SARSA = FusedLearner("n-step differential sarsa", NStepSarsaParams, ValueWork,
                            value_begin, sarsa_act, nsarsa_learn, _nothing, value_finish,
                            td_error=True)
DIFFERENTIAL_Q = FusedLearner("differential q-learning", ValueParams, ValueWork, value_begin,
                              q_act, q_learn, _nothing, value_finish, td_error=True)



# --- drivers --------------------------------------------------------------------------------

_CENTERING = {None: NO_CENTERING, "simple": SIMPLE_CENTERING, "td": TD_ALPHA_CENTERING}


def value_settings(agent):
    """``(sarsa, gamma, centering, beta)`` of a value-based agent's settings, for the kernel."""
    if agent.kind == DifferentialSarsa.kind:
        return True, 1.0, TD_CENTERING, float(agent.beta)
    if agent.kind == DifferentialQLearning.kind:
        return False, 1.0, TD_ALPHA_CENTERING, float(agent.eta)
    return (agent.kind == DiscountedSarsa.kind, float(agent.gamma),
            _CENTERING[agent.centering], float(agent.beta))


def _check(agent, task):
    if task.fused.n_actions == 0:
        raise ValueError(f"agent: {type(agent).__name__} needs discrete actions; {task.env_id} "
                         "has a continuous action")


def _build(agent, task):
    features, n_actions = task.features, task.fused.n_actions
    w = np.zeros((features.n_features, n_actions))
    sarsa, gamma, centering, beta = value_settings(agent)
    if getattr(agent, "n", 1) > 1:
        n = agent.n
        params = NStepSarsaParams(
            w, np.zeros(n_actions), np.full(1, -1, np.int64),
            np.zeros((n, features.n_active), np.int64), np.zeros(n, np.int64), np.zeros(n),
            np.zeros(1, np.int64), float(agent.alpha), beta, float(agent.epsilon))
        return Built(N_STEP_SARSA, params, np.int64)
    params = ValueParams(w, np.zeros(n_actions), np.full(1, -1, np.int64),
                         float(agent.alpha), beta, float(agent.epsilon), gamma, centering)
    return Built(DIFFERENTIAL_SARSA if sarsa else DIFFERENTIAL_Q, params, np.int64)


def value_weights(agent, params):
    """``Result.weights``: ``w``, the action values' weights ``[n_features, n_actions]``."""
    return {"w": params.w}


def _policy(agent, weights):
    return Policy(EPSILON_GREEDY, weights["w"], epsilon=float(agent.epsilon))


DIFFERENTIAL_SARSA_DRIVER, DIFFERENTIAL_Q_DRIVER, DISCOUNTED_SARSA_DRIVER, \
    DISCOUNTED_Q_DRIVER = (Driver(settings, _build, value_weights, _policy, _check,
                                  weight_names=("w",))
                           for settings in (DifferentialSarsa, DifferentialQLearning,
                                            DiscountedSarsa, DiscountedQLearning))
