"""Jitted policy kernels: softmax (temperature tau) and Gaussian (linear mean, exp-linear sigma).

All kernels work on the active indices ``idx`` of a binary feature vector
``x(s)``: a linear function ``theta . x(s)`` is the sum of the active rows,
taken in the package's summation order (:mod:`avgreward.critic`; ``theta``
C-contiguous).  Weights are laid out ``theta[feature, action]`` (softmax) and
``theta[feature, 0] = theta_mu``, ``theta[feature, 1] = theta_sigma``
(Gaussian), so that one active feature's weights sit side by side in memory.

A bounded action ``[low, high]`` may be reached through a tanh-squashed
Gaussian (:func:`squash_action`): ``u ~ N(mu, sigma^2)`` is drawn and scored
as above, and the environment gets ``low + (high - low) (tanh(u) + 1) / 2``.

Because ``x(s)`` is binary, the score ``grad ln pi(A|S)`` is a per-action
coefficient times ``x(s)``; the kernels return those coefficients and the
updates add them at the active indices.
"""

import math

import numpy as np
from numba import njit

from avgreward.critic import column_value

__all__ = [
    "softmax_probabilities",
    "softmax_of_preferences",
    "sample_discrete",
    "softmax_log_prob",
    "softmax_score",
    "softmax_entropy_gradient",
    "softmax3",
    "sample3",
    "softmax3_score",
    "gaussian_parameters",
    "gaussian_log_prob",
    "gaussian_score",
    "squash_action",
    "squash_log_jacobian",
    "squashed_gaussian_log_prob",
]


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_probabilities(theta, idx, tau, probs):
    """Write ``pi(.|s)`` into ``probs`` for preferences ``h(s, a) = theta[idx, a].sum()``.

    Subtracts the largest preference before exponentiating so that large
    preferences cannot overflow.
    """
    for a in range(probs.shape[0]):
        probs[a] = column_value(theta, idx, a)
    softmax_of_preferences(probs, 0, tau, probs)


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_of_preferences(h, first, tau, probs):
    """Write ``pi(a|s)`` into ``probs[a]`` for preferences ``h[first + a]``.

    ``h`` may be ``probs`` itself (``first = 0``).  Subtracts the largest
    preference before exponentiating so that large preferences cannot overflow.
    """
    n_actions = probs.shape[0]
    best = 0
    top = h[first]
    for a in range(1, n_actions):
        if h[first + a] > top:
            best = a
            top = h[first + a]
    total = 0.0
    for a in range(n_actions):
        # exp(0) is exactly 1: one exp fewer per step.
        probs[a] = 1.0 if a == best else math.exp((h[first + a] - top) / tau)
        total += probs[a]
    for a in range(n_actions):
        probs[a] /= total


@njit(cache=True, error_model="numpy", forceinline=True)
def sample_discrete(probs, u):
    """Inverse-CDF sample: the first action whose cumulative probability exceeds ``u``.

    ``u`` is a uniform draw in [0, 1).  The last action takes any rounding
    remainder, so the result is always a valid index.
    """
    last = probs.shape[0] - 1
    cumulative = 0.0
    for a in range(last):
        cumulative += probs[a]
        if u < cumulative:
            return a
    return last


@njit(cache=True, error_model="numpy")
def softmax_log_prob(theta, idx, tau, action):
    """``ln pi(action | s)`` for the softmax policy (used for finite-difference checks)."""
    n_actions = theta.shape[1]
    h = np.zeros(n_actions)
    for a in range(n_actions):
        h[a] = column_value(theta, idx, a)
    top = h.max()
    total = 0.0
    for a in range(n_actions):
        total += math.exp((h[a] - top) / tau)
    return (h[action] - top) / tau - math.log(total)


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_score(probs, action, tau, coef):
    """Coefficients of ``grad_{theta_b} ln pi(action|s) = (1[action = b] - pi(b|s)) x(s) / tau``."""
    for b in range(probs.shape[0]):
        coef[b] = -probs[b] / tau
    coef[action] += 1.0 / tau


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_entropy_gradient(probs, tau, coef):
    """Coefficients of ``grad_{theta_b} H(pi(.|s)) = -pi_b (ln pi_b + H) x(s) / tau``.

    Actions with probability 0 contribute nothing (``p ln p -> 0``).
    """
    entropy = 0.0
    for b in range(probs.shape[0]):
        if probs[b] > 0.0:
            entropy -= probs[b] * math.log(probs[b])
    for b in range(probs.shape[0]):
        if probs[b] > 0.0:
            coef[b] = -probs[b] * (math.log(probs[b]) + entropy) / tau
        else:
            coef[b] = 0.0


# --- three actions in scalars ------------------------------------------------------------
#
# The fused loop's fast path for three actions (the pendulum's torques) keeps the
# preferences, probabilities and score coefficients in registers.  Each function
# below makes the operations of its array counterpart above in the same order, so
# the numbers are the same to the bit (tests compare them).


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax3(h0, h1, h2, tau):
    """:func:`softmax_of_preferences` of three preferences: ``(pi_0, pi_1, pi_2)``."""
    best = 0
    top = h0
    if h1 > top:
        best = 1
        top = h1
    if h2 > top:
        best = 2
        top = h2
    p0 = 1.0 if best == 0 else math.exp((h0 - top) / tau)
    p1 = 1.0 if best == 1 else math.exp((h1 - top) / tau)
    p2 = 1.0 if best == 2 else math.exp((h2 - top) / tau)
    total = p0 + p1 + p2
    return p0 / total, p1 / total, p2 / total


@njit(cache=True, error_model="numpy", forceinline=True)
def sample3(p0, p1, u):
    """:func:`sample_discrete` of three actions with probabilities ``p0, p1`` and the rest."""
    if u < p0:
        return 0
    if u < p0 + p1:
        return 1
    return 2


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax3_score(p0, p1, p2, action, tau):
    """:func:`softmax_score` of three actions: the coefficients ``(c_0, c_1, c_2)``."""
    c0 = -p0 / tau
    c1 = -p1 / tau
    c2 = -p2 / tau
    if action == 0:
        c0 += 1.0 / tau
    elif action == 1:
        c1 += 1.0 / tau
    else:
        c2 += 1.0 / tau
    return c0, c1, c2


@njit(cache=True, error_model="numpy", forceinline=True)
def gaussian_parameters(theta, idx, sigma_min):
    """``(mu, exp_h, sigma)``: ``mu = theta_mu . x``, ``exp_h = exp(theta_sigma . x)`` and
    ``sigma = sigma_min + exp_h`` (``exp_h`` is also d sigma / d h_sigma, for the score)."""
    mu = column_value(theta, idx, 0)
    exp_h = math.exp(column_value(theta, idx, 1))
    return mu, exp_h, sigma_min + exp_h


@njit(cache=True, error_model="numpy")
def gaussian_log_prob(theta, idx, sigma_min, action):
    """``ln pi(action | s)`` of the Gaussian policy (used for finite-difference checks)."""
    mu, _, sigma = gaussian_parameters(theta, idx, sigma_min)
    z = (action - mu) / sigma
    return -0.5 * z * z - math.log(sigma) - 0.5 * math.log(2.0 * math.pi)


@njit(cache=True, error_model="numpy", forceinline=True)
def gaussian_score(action, mu, exp_h, sigma, scale_mean_gradient):
    """Coefficients ``(g_mu, g_sigma)`` of the score, each multiplying ``x(s)``.

    ``g_mu = (a - mu) / sigma^2`` (or ``a - mu`` when ``scale_mean_gradient``) and
    ``g_sigma = ((a - mu)^2 / sigma^2 - 1) * exp(h_sigma) / sigma``, the chain rule
    through ``sigma = sigma_min + exp(h_sigma)`` (the factor is 1 when sigma_min = 0).
    ``exp_h`` is ``exp(h_sigma)``, as :func:`gaussian_parameters` returns it (the
    caller has it already: one ``exp`` per step instead of two).
    """
    diff = action - mu
    var = sigma * sigma
    g_mu = diff if scale_mean_gradient else diff / var
    g_sigma = (diff * diff / var - 1.0) * (exp_h / sigma)
    return g_mu, g_sigma


# --- tanh-squashed Gaussian --------------------------------------------------------------
#
# a = low + (high - low) (tanh(u) + 1) / 2 with u ~ N(mu, sigma^2).  The density of a is
# pi(a|s) = N(u; mu, sigma^2) / |da/du|, and da/du = (high - low) / 2 (1 - tanh(u)^2)
# depends on u only, not on theta.  So for the a actually taken (u fixed by a),
#   grad_theta ln pi(a|s) = grad_theta ln N(u; mu(s), sigma(s)^2) - grad_theta ln |da/du|
#                         = grad_theta ln N(u; mu(s), sigma(s)^2):
# the squashed policy's score is gaussian_score of u, and the learner needs nothing new.


@njit(cache=True, error_model="numpy", forceinline=True)
def squash_action(u, low, high):
    """The action ``low + (high - low) (tanh(u) + 1) / 2``, in ``[low, high]``.

    The clip only catches rounding: ``low + (high - low)`` need not be
    exactly ``high`` in floating point, and the environment must never see an
    action outside its box.
    """
    a = low + (high - low) * (math.tanh(u) + 1.0) / 2.0
    return min(max(a, low), high)


@njit(cache=True, error_model="numpy")
def squash_log_jacobian(u, low, high):
    """``ln |da/du| = ln((high - low) / 2) + ln(1 - tanh(u)^2)`` of :func:`squash_action`.

    ``1 - tanh(u)^2 = 4 / (e^u + e^-u)^2``, so its log is
    ``2 (ln 2 - |u| - ln(1 + e^(-2|u|)))``: finite for every finite ``u``,
    where ``1 - tanh(u)^2`` itself underflows to 0 beyond ``|u| ~ 19``.
    """
    x = abs(u)
    return math.log((high - low) / 2.0) + 2.0 * (math.log(2.0) - x - math.log1p(math.exp(-2.0 * x)))


@njit(cache=True, error_model="numpy")
def squashed_gaussian_log_prob(theta, idx, sigma_min, u, low, high):
    """``ln pi(a | s)`` of the squashed action ``a = squash_action(u, low, high)``.

    The density in action space, ``ln N(u; mu, sigma^2) - ln |da/du|``, written
    in ``u`` because ``a`` loses ``u`` to rounding near the bounds (used for
    checks: the learner only needs the score, :func:`gaussian_score` of ``u``).
    """
    return gaussian_log_prob(theta, idx, sigma_min, u) - squash_log_jacobian(u, low, high)
