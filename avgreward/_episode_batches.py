"""Batches of episodes drawn from a tabular model under a policy table, jitted (the labs' sampler).

:func:`_sample_batch` draws with the package's PCG64 stream (:mod:`avgreward._pcg64`)
into flat buffers; :mod:`avgreward.estimators` and :mod:`avgreward.importance_sampling`
share it, so the same seed gives the same episodes in both.
"""

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double

# The answers of the sampler and of the labs' run loops (besides the batches done)
_OK, _TOO_LONG, _FULL = 0, 1, 2


@njit(cache=True, error_model="numpy")
def _sample_batch(P, R, start, terminal, pi, words, n, max_steps, states, actions, rewards,
                  offsets):
    """``n`` episodes into the flat arrays, episode ``e`` at ``offsets[e]:offsets[e + 1]``.

    Returns _OK, _TOO_LONG (an episode outgrew ``max_steps``) or _FULL (the
    buffers are too small for this batch); on either of those the generator
    is put back where the batch started, so it can be drawn again in bigger
    buffers with the same numbers.
    """
    saved = words.copy()
    status = _draw_batch(P, R, start, terminal, pi, words, n, max_steps, states, actions,
                         rewards, offsets)
    if status != _OK:
        words[:] = saved
    return status


@njit(cache=True, error_model="numpy")
def _draw_batch(P, R, start, terminal, pi, words, n, max_steps, states, actions, rewards,
                offsets):
    n_states, n_actions = pi.shape
    capacity = actions.shape[0]
    pos = 0
    for e in range(n):
        offsets[e] = pos
        u = next_double(words)
        s = 0
        c = start[0]
        while u >= c and s < n_states - 1:
            s += 1
            c += start[s]
        first = pos
        while not terminal[s]:
            if pos - first == max_steps:
                return _TOO_LONG
            if pos == capacity:
                return _FULL
            u = next_double(words)
            a = 0
            c = pi[s, 0]
            while u >= c and a < n_actions - 1:
                a += 1
                c += pi[s, a]
            states[pos] = s
            actions[pos] = a
            rewards[pos] = R[s, a]
            u = next_double(words)
            nxt = 0
            c = P[s, a, 0]
            while u >= c and nxt < n_states - 1:
                nxt += 1
                c += P[s, a, nxt]
            s = nxt
            pos += 1
    offsets[n] = pos
    return _OK


def _initial_capacity(expected_length, episodes):
    """Steps the buffers first hold (they double when a batch outgrows them)."""
    return int(max(4 * expected_length, 16) * episodes)


def _episodic_features(model, features):
    """``features`` as float64 rows, one per state of an episodic ``model``, or a ValueError."""
    if not getattr(model, "terminal", None):
        raise ValueError("model.terminal is empty: the laboratory needs an episodic model")
    features = np.ascontiguousarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != model.n_states:
        raise ValueError(f"features must have one row per state of the model "
                         f"({model.n_states}), got shape {features.shape}")
    return features


def _model_arrays(model):
    """``(P, R, start, terminal)`` of the model as :func:`_sample_batch` takes them."""
    terminal = np.zeros(model.n_states, dtype=np.bool_)
    terminal[list(model.terminal)] = True
    return (np.ascontiguousarray(model.P, dtype=np.float64),
            np.ascontiguousarray(model.R, dtype=np.float64),
            np.ascontiguousarray(model.start, dtype=np.float64), terminal)
