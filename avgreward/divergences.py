"""Forward and reverse KL on a grid, with exact gradients, and the Boltzmann link of max-ent RL.

Seed 002 closes with two ways of fitting a model ``Q_theta`` to a target
``P``: the forward KL ``D(P || Q_theta)``, whose gradient
``-E_P[grad log Q_theta]`` is supervised learning (mode covering: ``Q`` must
put mass wherever ``P`` has some), and the reverse KL ``D(Q_theta || P)``
(mode seeking: ``Q`` is punished for mass where ``P`` has little, not for
missing a mode).  With ``P(x) ~ exp(R(x) / beta)`` the reverse KL is, up to
a constant, minus the maximum-entropy objective ``E_Q[R] + beta H(Q)``
(:func:`max_entropy_objective`, :func:`boltzmann`).

Here everything is exact: the distributions live on a finite grid, the
expectations are sums, and the gradients are written out (no sampling, no
automatic differentiation).  Two families of ``Q``:

* ``"softmax"``: ``Q = softmax(l)``, free logits ``l`` over the grid;
* ``"gaussian"``: the Gaussian restricted to the grid and normalised there,
  ``Q(x_i) ~ exp(-(x_i - mu)^2 / (2 sigma^2))``, parametrised by
  ``(mu, log sigma)``.  It is the exponential family on the grid with
  statistics ``x`` and ``x^2``, so a forward-KL fit matches ``P``'s grid mean
  and variance exactly (moment matching).

The gradients of both directions w.r.t. the logits (``l``) are

* forward: ``d D(P || Q) / dl_j = Q_j - P_j``;
* reverse: ``d D(Q || P) / dl_j = Q_j (log Q_j - log P_j - D(Q || P))``;

and the Gaussian's follow by the chain rule through
``l_i = -(x_i - mu)^2 / (2 sigma^2)``: ``dl_i / dmu = (x_i - mu) / sigma^2``,
``dl_i / d log sigma = (x_i - mu)^2 / sigma^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from avgreward.options import check_int, check_positive

__all__ = [
    "kl",
    "entropy",
    "softmax",
    "gaussian_on_grid",
    "kl_gradient_logits",
    "kl_gradient_gaussian",
    "Fit",
    "fit",
    "boltzmann",
    "max_entropy_objective",
]

# "Sums to one" for a user's distribution (as avgreward.exact's float64 tables).
_SUM_TOL = 1e-9
_DIRECTIONS = ("forward", "reverse")
_FAMILIES = ("softmax", "gaussian")


def _distribution(p, name: str) -> np.ndarray:
    """``p`` as a float64 1-d distribution, or a ValueError naming it."""
    try:
        a = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from exc
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be a probability distribution (finite, non-negative)")
    if abs(a.sum() - 1.0) > _SUM_TOL:
        raise ValueError(f"{name} must be a probability distribution (it sums to {a.sum():.12g})")
    return a / a.sum()


def _same_length(p, q, names=("p", "q")):
    if p.shape != q.shape:
        raise ValueError(f"{names[0]} and {names[1]} must be on the same grid, "
                         f"got lengths {p.size} and {q.size}")


def _log(p: np.ndarray) -> np.ndarray:
    """``log p`` with ``log 0 = -inf`` and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(p)


def kl(p: ArrayLike, q: ArrayLike) -> float:
    r"""``D(p || q) = sum_i p_i log(p_i / q_i)`` in nats (``0 log 0 = 0``).

    Parameters
    ----------
    p, q : array_like, shape (n,)
        Distributions on the same grid (non-negative, summing to 1 within 1e-9).

    Returns
    -------
    float
        ``>= 0``; ``inf`` if ``q`` is 0 where ``p`` is not.

    Raises
    ------
    ValueError
        Naming ``p`` or ``q`` if it is not a distribution, or if their lengths differ.
    """
    p, q = _distribution(p, "p"), _distribution(q, "q")
    _same_length(p, q)
    on = p > 0
    if np.any(q[on] == 0):
        return float("inf")
    return float(np.sum(p[on] * (np.log(p[on]) - np.log(q[on]))))


def entropy(p: ArrayLike) -> float:
    """Shannon entropy ``H(p) = -sum_i p_i log p_i`` in nats (``0 log 0 = 0``)."""
    p = _distribution(p, "p")
    on = p > 0
    return float(-np.sum(p[on] * np.log(p[on])))


def softmax(logits: ArrayLike) -> np.ndarray:
    """``exp(l) / sum exp(l)``, computed stably (the max subtracted first)."""
    l = np.asarray(logits, dtype=np.float64)
    if l.ndim != 1 or l.size == 0 or not np.all(np.isfinite(l)):
        raise ValueError(f"logits must be a finite non-empty 1-d array, got shape {l.shape}")
    return _softmax(l)


def _softmax(l):
    e = np.exp(l - l.max())
    return e / e.sum()


def _grid(x) -> np.ndarray:
    try:
        g = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"x must be a numeric array: {exc}") from exc
    if g.ndim != 1 or g.size < 2 or not np.all(np.isfinite(g)):
        raise ValueError(f"x must be a finite 1-d grid of at least 2 points, got shape {g.shape}")
    return g


def _gaussian_params(params) -> tuple[float, float]:
    try:
        mu, log_sigma = (float(v) for v in params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params must be (mu, log_sigma), got {params!r}") from exc
    if not (np.isfinite(mu) and np.isfinite(log_sigma)):
        raise ValueError(f"params (mu, log_sigma) must be finite, got {params!r}")
    return mu, log_sigma


def _gaussian_logits(x, mu, log_sigma):
    return -0.5 * ((x - mu) * np.exp(-log_sigma)) ** 2


def gaussian_on_grid(x: ArrayLike, params) -> np.ndarray:
    """The Gaussian ``N(mu, sigma^2)`` restricted to the grid ``x`` and normalised there.

    Parameters
    ----------
    x : array_like, shape (n,)
        The grid (any finite points, at least 2).
    params : (float, float)
        ``(mu, log sigma)``.

    Returns
    -------
    ndarray, shape (n,)
        ``Q_i ~ exp(-(x_i - mu)^2 / (2 sigma^2))``, summing to 1.
    """
    x = _grid(x)
    mu, log_sigma = _gaussian_params(params)
    return softmax(_gaussian_logits(x, mu, log_sigma))


def _check_direction(direction):
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")


def _logit_gradient(p, q, direction):
    if direction == "forward":
        return q - p
    # reverse: d/dl_j sum_i q_i (log q_i - log p_i) = q_j (log q_j - log p_j - D(q || p))
    on = q > 0
    if np.any(p[on] == 0):
        raise ValueError("the reverse KL D(Q || P) is infinite: Q has mass where p is 0")
    log_ratio = np.zeros_like(q)
    log_ratio[on] = np.log(q[on]) - np.log(p[on])
    return q * (log_ratio - np.sum(q * log_ratio))


def kl_gradient_logits(p: ArrayLike, logits: ArrayLike, direction: str) -> np.ndarray:
    r"""Exact gradient w.r.t. the logits ``l`` of ``D(P || Q)`` or ``D(Q || P)``, ``Q = softmax(l)``.

    Parameters
    ----------
    p : array_like, shape (n,)
        The target ``P``.
    logits : array_like, shape (n,)
    direction : {"forward", "reverse"}
        ``"forward"``: ``D(P || Q)``, gradient ``Q - P``.  ``"reverse"``:
        ``D(Q || P)``, gradient ``Q_j (log Q_j - log P_j - D(Q || P))``.

    Returns
    -------
    ndarray, shape (n,)

    Raises
    ------
    ValueError
        On a ``p`` that is not a distribution, lengths that differ, an
        unknown ``direction``, or (reverse) a ``p`` with zeros, where
        ``D(Q || P)`` is infinite.
    """
    _check_direction(direction)
    p = _distribution(p, "p")
    q = softmax(logits)
    _same_length(p, q, ("p", "logits"))
    return _logit_gradient(p, q, direction)


def kl_gradient_gaussian(p: ArrayLike, x: ArrayLike, params, direction: str) -> np.ndarray:
    r"""Exact gradient w.r.t. ``(mu, log sigma)`` of ``D(P || Q)`` or ``D(Q || P)``.

    ``Q`` is :func:`gaussian_on_grid` ``(x, params)``; the gradient is the
    logits' (:func:`kl_gradient_logits`) through
    ``dl_i / dmu = (x_i - mu) / sigma^2`` and
    ``dl_i / d log sigma = (x_i - mu)^2 / sigma^2``.

    Parameters
    ----------
    p : array_like, shape (n,)
    x : array_like, shape (n,)
        The grid ``P`` and ``Q`` live on.
    params : (float, float)
        ``(mu, log sigma)``.
    direction : {"forward", "reverse"}

    Returns
    -------
    ndarray, shape (2,)
        ``(d/dmu, d/d log sigma)``.
    """
    _check_direction(direction)
    p, x = _distribution(p, "p"), _grid(x)
    _same_length(p, x, ("p", "x"))
    mu, log_sigma = _gaussian_params(params)
    q = softmax(_gaussian_logits(x, mu, log_sigma))
    g = _logit_gradient(p, q, direction)
    z = (x - mu) * np.exp(-log_sigma)
    return np.array([np.sum(g * z) * np.exp(-log_sigma), np.sum(g * z * z)])


def _positive_int(value, name):
    return check_int(name, value, 1)


def _positive_float(value, name):
    return check_positive(name, value)


@dataclass(frozen=True)
class Fit:
    """A fit of ``Q_theta`` to ``P`` by gradient descent on one KL direction.

    Attributes
    ----------
    family : str
        ``"gaussian"`` or ``"softmax"``.
    direction : str
        ``"forward"`` (``D(P || Q)``) or ``"reverse"`` (``D(Q || P)``).
    params : ndarray
        The final parameters: ``(mu, log sigma)``, or the logits.
    q : ndarray, shape (n,)
        The final ``Q`` on the grid.
    divergence : ndarray, shape (steps + 1,)
        The fitted divergence at the start and after every step.
    """

    family: str
    direction: str
    params: np.ndarray
    q: np.ndarray
    divergence: np.ndarray


def fit(p: ArrayLike, x: ArrayLike, direction: str, family: str = "gaussian", start=None,
        steps: int = 2000, learning_rate: float = 0.1) -> Fit:
    """Fit ``Q_theta`` to ``P`` by plain gradient descent with the exact gradients.

    Parameters
    ----------
    p : array_like, shape (n,)
        The target distribution on the grid.
    x : array_like, shape (n,)
        The grid.
    direction : {"forward", "reverse"}
        Minimise ``D(P || Q)`` (mode covering) or ``D(Q || P)`` (mode seeking).
    family : {"gaussian", "softmax"}, default "gaussian"
    start : array_like, optional
        Initial parameters: ``(mu, log sigma)`` (default: the grid's middle and
        a quarter of its width), or the logits (default: all zero, uniform).
    steps : int, default 2000
    learning_rate : float, default 0.1

    Returns
    -------
    Fit

    Raises
    ------
    ValueError
        Naming the setting: ``p`` not a distribution, ``x`` not a grid of
        ``p``'s length, an unknown ``direction`` or ``family``, a bad
        ``start``, ``steps`` or ``learning_rate``; or if a step makes the
        parameters non-finite (``learning_rate`` too large).
    """
    _check_direction(direction)
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {_FAMILIES}, got {family!r}")
    p, x = _distribution(p, "p"), _grid(x)
    _same_length(p, x, ("p", "x"))
    steps = _positive_int(steps, "steps")
    lr = _positive_float(learning_rate, "learning_rate")
    if family == "gaussian":
        theta = (np.array([0.5 * (x.min() + x.max()), np.log(0.25 * np.ptp(x))]) if start is None
                 else np.array(_gaussian_params(start)))

        def q_of(t):
            return _softmax(_gaussian_logits(x, t[0], t[1]))

        def grad(t):
            return kl_gradient_gaussian(p, x, t, direction)
    else:
        theta = np.zeros(p.size) if start is None else np.array(start, dtype=np.float64)
        if theta.shape != p.shape or not np.all(np.isfinite(theta)):
            raise ValueError(f"start must be {p.size} finite logits, got shape {theta.shape}")
        q_of = _softmax

        def grad(t):
            return kl_gradient_logits(p, t, direction)

    def divergence(t):
        q = q_of(t)
        return kl(p, q) if direction == "forward" else kl(q, p)

    trace = [divergence(theta)]
    for step in range(steps):
        with np.errstate(over="ignore", invalid="ignore"):
            theta = theta - lr * grad(theta)
            q = q_of(theta) if np.all(np.isfinite(theta)) else None
        if q is None or not np.all(np.isfinite(q)):
            raise ValueError(f"learning_rate {lr:g} is too large: the parameters became "
                             f"non-finite at step {step + 1}")
        trace.append(divergence(theta))
    return Fit(family=family, direction=direction, params=theta, q=q_of(theta),
               divergence=np.array(trace))


def _temperature(beta):
    return _positive_float(beta, "temperature")


def _rewards(r):
    a = np.asarray(r, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"r must be a finite non-empty 1-d array, got shape {a.shape}")
    return a


def boltzmann(r: ArrayLike, temperature: float) -> np.ndarray:
    """The Boltzmann distribution of rewards, ``P(x) = exp(r(x) / beta) / Z``.

    Parameters
    ----------
    r : array_like, shape (n,)
        A reward per grid point (or per action, or per trajectory).
    temperature : float
        ``beta > 0``.

    Returns
    -------
    ndarray, shape (n,)
    """
    return softmax(_rewards(r) / _temperature(temperature))


def max_entropy_objective(q: ArrayLike, r: ArrayLike, temperature: float) -> float:
    r"""``E_Q[r] + beta H(Q)``, the maximum-entropy objective of one decision.

    It equals ``beta log Z - beta D(Q || P)`` with ``P = boltzmann(r, beta)``
    and ``Z = sum_x exp(r(x) / beta)``: since ``log P = r / beta - log Z``,
    ``D(Q || P) = E_Q[log Q] - E_Q[r] / beta + log Z``.  So maximising it is
    minimising the reverse KL to the Boltzmann distribution, the constant
    ``beta log Z`` is its maximum, reached at ``Q = P``.

    Parameters
    ----------
    q : array_like, shape (n,)
        A distribution.
    r : array_like, shape (n,)
    temperature : float
        ``beta > 0``.

    Returns
    -------
    float
    """
    q = _distribution(q, "q")
    r = _rewards(r)
    _same_length(q, r, ("q", "r"))
    return float(q @ r + _temperature(temperature) * entropy(q))
