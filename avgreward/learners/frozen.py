"""Frozen policies: learners of the fused loop that act and never learn.

:func:`avgreward.evaluate` runs a trained result's policy with these, in the
same fused loop as training (millions of steps a second), its weights left
as they are:

* :data:`FROZEN_DISCRETE` over discrete actions, with ``mode``
  :data:`SAMPLE_SOFTMAX` (``A ~ softmax(h(S, .) / tau)`` by the inverse CDF
  of one uniform, as training draws it) or :data:`EPSILON_GREEDY` (two
  uniforms, as :func:`~avgreward.learners.value.epsilon_greedy`: with
  ``epsilon`` 0 the greedy action, ties broken uniformly at random) over the
  columns of ``theta`` (preferences, or action values);
* :data:`FROZEN_GAUSSIAN` for one continuous action: ``mu(S) + sigma(S) Z``,
  or ``mu(S)`` when ``greedy``.

R-bar stays at 0: the reward rate is the mean of the recorded rewards.
"""

from collections import namedtuple

from numba import njit

from avgreward._pcg64 import next_double, standard_normal
from avgreward.actors import gaussian_parameters, sample_discrete, softmax_probabilities
from avgreward.learners import FusedLearner
from avgreward.learners.value import epsilon_greedy

__all__ = ["FrozenDiscreteParams", "FrozenGaussianParams", "FROZEN_DISCRETE",
           "FROZEN_GAUSSIAN", "SAMPLE_SOFTMAX", "EPSILON_GREEDY"]

SAMPLE_SOFTMAX, EPSILON_GREEDY = 0, 1

FrozenDiscreteParams = namedtuple("FrozenDiscreteParams",
                                  ["theta", "probs", "mode", "tau", "epsilon"])
FrozenDiscreteParams.__doc__ = """A frozen discrete policy: ``theta`` ``[n_features, n_actions]``
(preferences or action values), ``probs`` scratch of ``n_actions``, ``mode``
(:data:`SAMPLE_SOFTMAX` or :data:`EPSILON_GREEDY`), the softmax's ``tau`` and
the epsilon-greedy's ``epsilon``."""

FrozenGaussianParams = namedtuple("FrozenGaussianParams", ["theta", "sigma_min", "greedy"])
FrozenGaussianParams.__doc__ = """A frozen Gaussian policy: ``theta`` ``[n_features, 2]``
(mean and log-sigma weights), ``sigma_min``, and ``greedy`` (act with the mean)."""

FrozenWork = namedtuple("FrozenWork", ["unused"])


@njit(cache=True, error_model="numpy")
def frozen_begin(params, k):
    return FrozenWork(0)


@njit(cache=True, error_model="numpy")
def frozen_finish(params, work):
    pass


@njit(cache=True, error_model="numpy")
def _nothing():
    pass


@njit(cache=True, error_model="numpy")
def discrete_act(theta, probs, mode, tau, epsilon, cur, words):
    if mode == SAMPLE_SOFTMAX:
        softmax_probabilities(theta, cur, tau, probs)
        return True, sample_discrete(probs, next_double(words)), 0.0
    u1 = next_double(words)
    return True, epsilon_greedy(theta, cur, epsilon, probs, u1, next_double(words)), 0.0


@njit(cache=True, error_model="numpy")
def gaussian_act(theta, sigma_min, greedy, cur, words):
    mu, _, sigma = gaussian_parameters(theta, cur, sigma_min)
    if greedy:
        return True, mu, 0.0
    return True, mu + sigma * standard_normal(words), 0.0


@njit(cache=True, error_model="numpy")
def frozen_learn(reward, rbar):
    return True, rbar


FROZEN_DISCRETE = FusedLearner("frozen discrete policy", FrozenDiscreteParams, FrozenWork,
                               frozen_begin, discrete_act, frozen_learn, _nothing,
                               frozen_finish)
FROZEN_GAUSSIAN = FusedLearner("frozen gaussian policy", FrozenGaussianParams, FrozenWork,
                               frozen_begin, gaussian_act, frozen_learn, _nothing,
                               frozen_finish)
