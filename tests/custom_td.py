"""A user's learner in a module of its own, as a user would write it (tests/test_custom.py).

Differential TD(0) evaluation of the uniform random policy (Sutton & Barto,
section 10.3), tabular: R-bar reaches the policy's exact reward rate.
"""

from collections import namedtuple

import numpy as np
from numba import njit

from avgreward.draws import next_double
from avgreward.learners import FusedLearner

UniformTDParams = namedtuple("UniformTDParams", ["v", "alpha", "alpha_rbar", "n_actions"])
UniformTDWork = namedtuple("UniformTDWork", ["step"])


@njit(cache=True)
def begin(params, k):
    return UniformTDWork(params.alpha / k)


@njit(cache=True)
def act(n_actions, words):
    return True, int(next_double(words) * n_actions), 0.0


@njit(cache=True)
def td_error(v, cur, nxt, reward, rbar):
    delta = reward - rbar
    for j in range(nxt.shape[0]):
        delta += v[nxt[j]]
    for j in range(cur.shape[0]):
        delta -= v[cur[j]]
    return delta


@njit(cache=True)
def learn(v, step, alpha_rbar, cur, nxt, reward, rbar):
    delta = td_error(v, cur, nxt, reward, rbar)
    if not np.isfinite(delta):
        return False, rbar
    for j in range(cur.shape[0]):
        v[cur[j]] += step * delta
    return True, rbar + alpha_rbar * delta


@njit(cache=True)
def episode_end():
    pass


@njit(cache=True)
def finish(params, work):
    pass


UNIFORM_TD = FusedLearner("uniform differential TD(0)", UniformTDParams, UniformTDWork, begin,
                          act, learn, episode_end, finish)


@njit(cache=True)
def learn_reporting_td(v, step, alpha_rbar, cur, nxt, reward, rbar):
    delta = td_error(v, cur, nxt, reward, rbar)
    if not np.isfinite(delta):
        return False, rbar, delta
    for j in range(cur.shape[0]):
        v[cur[j]] += step * delta
    return True, rbar + alpha_rbar * delta, delta


# The same learner opted in to the live metric mean_abs_td_error (the learners guide).
UNIFORM_TD_LOGGED = FusedLearner("uniform differential TD(0), td", UniformTDParams,
                                 UniformTDWork, begin, act, learn_reporting_td, episode_end,
                                 finish, td_error=True)

NOT_A_LEARNER = "a string, not a FusedLearner"


def params(n_states, alpha=0.05, alpha_rbar=0.002):
    return UniformTDParams(np.zeros(n_states), alpha, alpha_rbar, 2)
