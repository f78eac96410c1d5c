"""Jitted kernels of the linear differential critic and its eligibility traces.

The critic is ``v(s, w) = w . x(s)`` over a binary feature vector given by its
active indices; it learns with the differential TD error
``delta = R - Rbar + v(S', w) - v(S, w)`` (Sutton & Barto, section 13.6).
Trace kernels serve the actor as well: they take the per-column coefficient
that multiplies ``x(s)`` in a gradient.
"""

from numba import njit

__all__ = [
    "linear_value",
    "add_at",
    "add_outer_at",
    "accumulate_trace",
    "accumulate_trace_outer",
    "apply_trace",
    "apply_trace_outer",
    "critic_update",
]


@njit(cache=True)
def linear_value(w, idx):
    """``w . x(s)`` for the binary ``x(s)`` with active indices ``idx``."""
    total = 0.0
    for j in range(idx.shape[0]):
        total += w[idx[j]]
    return total


@njit(cache=True)
def add_at(w, idx, step):
    """``w <- w + step * x(s)``: the one-step (lambda = 0) critic update."""
    for j in range(idx.shape[0]):
        w[idx[j]] += step


@njit(cache=True)
def add_outer_at(theta, idx, step, coef):
    """``theta[:, b] <- theta[:, b] + step * coef[b] * x(s)`` for every column b."""
    n_cols = coef.shape[0]
    for j in range(idx.shape[0]):
        i = idx[j]
        for b in range(n_cols):
            theta[i, b] += step * coef[b]


@njit(cache=True)
def accumulate_trace(z, lam, idx):
    """``z <- lam * z + x(s)`` (accumulating trace of the critic's gradient)."""
    for i in range(z.shape[0]):
        z[i] *= lam
    for j in range(idx.shape[0]):
        z[idx[j]] += 1.0


@njit(cache=True)
def accumulate_trace_outer(z, lam, idx, coef):
    """``z[:, b] <- lam * z[:, b] + coef[b] * x(s)`` (trace of a score ``coef (x) x(s)``)."""
    n_cols = coef.shape[0]
    for i in range(z.shape[0]):
        for b in range(n_cols):
            z[i, b] *= lam
    for j in range(idx.shape[0]):
        i = idx[j]
        for b in range(n_cols):
            z[i, b] += coef[b]


@njit(cache=True)
def apply_trace(w, z, step):
    """``w <- w + step * z``."""
    for i in range(w.shape[0]):
        w[i] += step * z[i]


@njit(cache=True)
def apply_trace_outer(theta, z, steps):
    """``theta[:, b] <- theta[:, b] + steps[b] * z[:, b]`` (a step size per column)."""
    n_cols = steps.shape[0]
    for i in range(theta.shape[0]):
        for b in range(n_cols):
            theta[i, b] += steps[b] * z[i, b]


@njit(cache=True)
def critic_update(w, z_w, lambda_w, idx, step):
    """``z_w <- lambda_w z_w + x(s)``; ``w <- w + step z_w`` (``step = alpha_w delta``).

    With ``lambda_w = 0`` the trace is ``x(s)`` itself and ``z_w`` is not touched.
    """
    if lambda_w == 0.0:
        add_at(w, idx, step)
    else:
        accumulate_trace(z_w, lambda_w, idx)
        apply_trace(w, z_w, step)
