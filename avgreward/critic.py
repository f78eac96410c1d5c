"""Jitted kernels of the linear differential critic and its eligibility traces.

The critic is ``v(s, w) = w . x(s)`` over a binary feature vector given by its
active indices; it learns with the differential TD error
``delta = R - Rbar + v(S', w) - v(S, w)`` (Sutton & Barto, section 13.6).
Trace kernels serve the actor as well: they take the per-column coefficient
that multiplies ``x(s)`` in a gradient.

Summation order.  Every sum over the active features in the package
(``w . x(s)``, each preference ``theta_b . x(s)``, in the fused loop, the
stepwise kernels and the plain-Python reference) is taken the same way: four
running sums, the m-th over ``idx[m::4]`` in index order, combined as
``(s_0 + s_1) + (s_2 + s_3)``.  Rounding is then identical everywhere, and a
32-term sum is four independent chains of 8 additions instead of one chain
of 32, which is what the fused loop's speed is limited by.

Kernels called on every step are compiled with ``forceinline`` (LLVM inlines
them into the loop instead of passing their arrays field by field) and
``error_model="numpy"`` (no Python-exception paths, which would keep numba's
reference counting alive around the call).
"""

import numpy as np
from numba import njit

from avgreward._vec4 import add4, axpy4, ordered_sum, scale4, sum_rows4

__all__ = [
    "linear_value",
    "column_value",
    "add_at",
    "add_outer_at",
    "accumulate_trace",
    "accumulate_trace_outer",
    "apply_trace",
    "apply_trace_outer",
    "critic_update",
    "row_sums",
    "column_sum",
    "add_rows",
    "add_row_block",
    "decay_traces",
    "accumulate_rows",
    "apply_traces",
]

_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)


@njit(cache=True, error_model="numpy", forceinline=True)
def linear_value(w, idx):
    """``w . x(s)`` for the binary ``x(s)`` with active indices ``idx`` (``w`` C-contiguous).

    Summed in the package's order (see the module docstring).
    """
    return ordered_sum(w, idx, 1, 0)


@njit(cache=True, error_model="numpy", forceinline=True)
def column_value(theta, idx, b):
    """``theta[:, b] . x(s)`` for a C-contiguous 2-D ``theta``, in the package's order."""
    return ordered_sum(theta, idx, theta.shape[1], b)


@njit(cache=True, error_model="numpy", forceinline=True)
def add_at(w, idx, step):
    """``w <- w + step * x(s)``: the one-step (lambda = 0) critic update."""
    for j in range(idx.shape[0]):
        w[idx[j]] += step


@njit(cache=True, error_model="numpy", forceinline=True)
def add_outer_at(theta, idx, step, coef):
    """``theta[:, b] <- theta[:, b] + step * coef[b] * x(s)`` for every column b."""
    n_cols = coef.shape[0]
    for j in range(idx.shape[0]):
        i = idx[j]
        for b in range(n_cols):
            theta[i, b] += step * coef[b]


@njit(cache=True, error_model="numpy", forceinline=True)
def accumulate_trace(z, lam, idx):
    """``z <- lam * z + x(s)`` (accumulating trace of the critic's gradient)."""
    for i in range(z.shape[0]):
        z[i] *= lam
    for j in range(idx.shape[0]):
        z[idx[j]] += 1.0


@njit(cache=True, error_model="numpy", forceinline=True)
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


@njit(cache=True, error_model="numpy", forceinline=True)
def apply_trace(w, z, step):
    """``w <- w + step * z``."""
    for i in range(w.shape[0]):
        w[i] += step * z[i]


@njit(cache=True, error_model="numpy", forceinline=True)
def apply_trace_outer(theta, z, steps):
    """``theta[:, b] <- theta[:, b] + steps[b] * z[:, b]`` (a step size per column)."""
    n_cols = steps.shape[0]
    for i in range(theta.shape[0]):
        for b in range(n_cols):
            theta[i, b] += steps[b] * z[i, b]


@njit(cache=True, error_model="numpy", forceinline=True)
def critic_update(w, z_w, lambda_w, idx, step):
    """``z_w <- lambda_w z_w + x(s)``; ``w <- w + step z_w`` (``step = alpha_w delta``).

    With ``lambda_w = 0`` the trace is ``x(s)`` itself and ``z_w`` is not touched.
    """
    if lambda_w == 0.0:
        add_at(w, idx, step)
    else:
        accumulate_trace(z_w, lambda_w, idx)
        apply_trace(w, z_w, step)


# --- weight rows: the fused loop's layout -------------------------------------------------
#
# The fused loop (avgreward.loop) keeps every feature's weights side by side in one
# row of ``width`` doubles, ``width`` a multiple of 4: the critic's weight, then the
# actor's columns, then zeros.  ``rows`` is that (n_features, width) array flattened,
# so feature i's weights are ``rows[i * width : (i + 1) * width]``; the traces use
# the same layout.  One active feature is then one cache-line access for the critic
# and the actor together, and a 4-wide vector operation per block of 4 columns.
# Indices are converted to unsigned so that numba omits its negative-index wraparound.
# The 4-wide operations are LLVM vector instructions (avgreward._vec4).


@njit(cache=True, error_model="numpy", forceinline=True)
def row_sums(rows, width, idx, out):
    """``out[c] = sum_j rows[idx[j], c]`` for every column: ``w . x(s)`` and ``theta_b . x(s)``.

    Each column is summed in the order of ``idx`` (the order of the plain-Python
    reference), four columns at a time in one vector register.
    """
    for c in range(0, width, 4):
        sum_rows4(rows, width, idx, c, out)


@njit(cache=True, error_model="numpy", forceinline=True)
def column_sum(rows, width, idx, c):
    """``sum_j rows[idx[j], c]`` (e.g. ``v(S') = w . x(S')``), in the package's order."""
    return ordered_sum(rows, idx, width, c)


@njit(cache=True, error_model="numpy", forceinline=True)
def add_rows(rows, width, idx, g):
    """``rows[idx[j], :] += g`` for every active feature (the lambda = 0 update)."""
    for c in range(0, width, 4):
        add_row_block(rows, width, idx, c, g[c], g[c + 1], g[c + 2], g[c + 3])


@njit(cache=True, error_model="numpy", forceinline=True)
def add_row_block(rows, width, idx, c, g0, g1, g2, g3):
    """``rows[idx[j], c:c + 4] += (g0, g1, g2, g3)`` for every active feature."""
    uwidth = np.uint64(width)
    c0 = np.uint64(c)
    for j in range(idx.shape[0]):
        add4(rows, np.uint64(idx[j]) * uwidth + c0, g0, g1, g2, g3)


@njit(cache=True, error_model="numpy", forceinline=True)
def decay_traces(traces, width, lam, live, n_live, slot):
    """``z <- lam * z`` (per column) for the live features; returns the new live count.

    ``live[:n_live]`` lists the features whose trace row is not exactly zero and
    ``slot[i]`` is feature i's position in it (-1 if absent).  A row that decays
    to exactly zero leaves the list: its product with any step size is zero, so
    skipping it changes no weight, and the result equals the dense update bit
    for bit.
    """
    uwidth = np.uint64(width)
    q = 0
    while q < n_live:
        i = live[q]
        r = np.uint64(i) * uwidth
        zero = True
        for c in range(0, width, 4):
            zero &= scale4(traces, r + np.uint64(c), lam[c], lam[c + 1], lam[c + 2], lam[c + 3])
        if zero:
            # Swap-remove: the order of the list does not matter.
            n_live -= 1
            last = live[n_live]
            live[q] = last
            slot[last] = q
            slot[i] = -1
        else:
            q += 1
    return n_live


@njit(cache=True, error_model="numpy", forceinline=True)
def accumulate_rows(traces, width, idx, g, live, n_live, slot):
    """``z[idx[j], :] += g``: add ``x(s)`` times the gradient's coefficients.

    Features not yet in the live list join it; returns the new live count.
    """
    uwidth = np.uint64(width)
    for j in range(idx.shape[0]):
        i = idx[j]
        if slot[i] < 0:
            slot[i] = n_live
            live[n_live] = i
            n_live += 1
        r = np.uint64(i) * uwidth
        for c in range(0, width, 4):
            add4(traces, r + np.uint64(c), g[c], g[c + 1], g[c + 2], g[c + 3])
    return n_live


@njit(cache=True, error_model="numpy", forceinline=True)
def apply_traces(rows, traces, width, steps, live, n_live):
    """``rows[i, c] += steps[c] * z[i, c]`` for the live features (all others have z = 0)."""
    uwidth = np.uint64(width)
    for c in range(0, width, 4):
        s0 = steps[c]
        s1 = steps[c + 1]
        s2 = steps[c + 2]
        s3 = steps[c + 3]
        c0 = np.uint64(c)
        for q in range(n_live):
            r = np.uint64(live[q]) * uwidth + c0
            axpy4(rows, r, traces, r, s0, s1, s2, s3)
