"""A call's working arrays: the weight rows and the live traces of the fused loop.

For the length of a call the critic's and the actor's weights live in one
array of rows ``(w_i, theta_i0, theta_i1, ...)`` padded to a multiple of four
doubles (see :mod:`avgreward.critic` and :mod:`avgreward.loop`); these
functions build the rows (and the trace rows) from the learner's arrays at the
start of a call and copy them back at its end.
"""

import numpy as np
from numba import njit

__all__ = ["hand_back", "pack_rows", "pack_traces", "unpack_rows", "unpack_traces"]

@njit(cache=True, error_model="numpy")
def pack_rows(w, theta, width):
    """The weight rows ``(w_i, theta_i., 0...)`` of ``w`` and ``theta``, flattened."""
    d = w.shape[0]
    rows = np.zeros(d * width)
    for i in range(d):
        rows[i * width] = w[i]
        for b in range(theta.shape[1]):
            rows[i * width + 1 + b] = theta[i, b]
    return rows


@njit(cache=True, error_model="numpy")
def unpack_rows(rows, width, w, theta):
    """Copy the weight rows back into ``w`` and ``theta``."""
    for i in range(w.shape[0]):
        w[i] = rows[i * width]
        for b in range(theta.shape[1]):
            theta[i, b] = rows[i * width + 1 + b]


@njit(cache=True, error_model="numpy")
def pack_traces(z_w, z_theta, d, n_cols, width, live, slot):
    """Trace rows from ``z_w``/``z_theta`` (empty when their lambda is 0) and the live list.

    ``live[:n_live]`` gets the features with a non-zero trace, ``slot[i]`` each
    one's position in it (-1 if none); returns ``(traces, n_live)``.
    """
    traces = np.zeros(d * width)
    for i in range(z_w.shape[0]):
        traces[i * width] = z_w[i]
    for i in range(z_theta.shape[0]):
        for b in range(n_cols):
            traces[i * width + 1 + b] = z_theta[i, b]
    n_live = 0
    for i in range(d):
        slot[i] = -1
        for c in range(width):
            if traces[i * width + c] != 0.0:
                slot[i] = n_live
                live[n_live] = i
                n_live += 1
                break
    return traces, n_live


@njit(cache=True, error_model="numpy")
def unpack_traces(traces, width, z_w, z_theta):
    """Copy the trace rows back into ``z_w`` and ``z_theta`` (those that are kept)."""
    for i in range(z_w.shape[0]):
        z_w[i] = traces[i * width]
    for i in range(z_theta.shape[0]):
        for b in range(z_theta.shape[1]):
            z_theta[i, b] = traces[i * width + 1 + b]


@njit(cache=True, error_model="numpy")
def hand_back(rbar, cur, rows, width, traced, traces, rbar_box, idx, w, theta, z_w, z_theta):
    """End of a chunk: R-bar, the features of S, weights and traces back into the caller's arrays."""
    rbar_box[0] = rbar
    idx[:] = cur
    unpack_rows(rows, width, w, theta)
    if traced:
        unpack_traces(traces, width, z_w, z_theta)
