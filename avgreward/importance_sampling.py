"""Importance sampling in the estimator laboratory: a target's gradient from a behaviour's episodes.

Episodes are drawn (jitted, from the model, the package's PCG64 stream) under a
behaviour policy ``b``; the gradient wanted is that of ``J(pi) = E_pi[R(tau)]``
(gamma = 1) of a linear softmax target ``pi``.  With ``rho_t = pi(a_t|s_t) /
b(a_t|s_t)``, ``rho_{0:t} = prod_{k<=t} rho_k``, the trajectory weight
``W = rho_{0:T-1}``, the target's scores ``g_t = grad ln pi(a_t|s_t)``,
``G_t = sum_{t'>=t} r_t'`` and ``v = v_pi`` (the target's exact state value):

==================================  =========================================================
``ordinary IS``                     ``W sum_t g_t G_t``
``ordinary IS, baseline``           ``W sum_t g_t (G_t - v(s_t))``
``per-decision IS``                 ``sum_t g_t sum_{t'>=t} rho_{0:t'} r_t'``
``per-decision IS, baseline``       ``sum_t g_t (sum_{t'>=t} rho_{0:t'} r_t' - rho_{0:t} v(s_t))``
``weighted IS``                     ``sum_e W_e X_e / sum_e W_e`` over a batch,
                                    ``X_e = sum_t g_t G_t`` of episode e
``weighted IS, baseline``           the same with ``X_e = sum_t g_t (G_t - v(s_t))``
==================================  =========================================================

Per-decision (Precup, Sutton & Singh 2000; Sutton & Barto 5.9): the reward
``r_t'`` depends on the actions up to ``t'`` only, so it is weighted by the
ratios up to its own step, and the score ``g_t`` (t <= t') shares them.  The
kernel computes it by the recursion ``H_t = r_t + rho_{t+1} H_{t+1}`` (``H_T
= 0``), the estimate being ``sum_t rho_{0:t} g_t (H_t - v(s_t))``.  The two
ordinary forms and per-decision are unbiased for every batch size; weighted IS
(self-normalised, Sutton & Barto 5.5) is biased, its expectation at one
episode a batch being ``E_b[X]`` (:func:`weighted_expectation_at_one`), and
consistent: the bias shrinks as ``1 / batch_size``.

:func:`importance_sampling_lab` measures them (mean with a 95% confidence
interval from the spread of the independent batch estimates, variance,
effective sample size ``(sum w)^2 / sum w^2`` of the trajectory weights);
:func:`mixture` makes the behaviours ``(1 - m) pi + m uniform`` and
:func:`visit_kl` the distance ``KL(pi || b)`` under the target's visits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from avgreward import exact
from avgreward._episode_batches import (
    _FULL,
    _OK,
    _TOO_LONG,
    _episodic_features,
    _initial_capacity,
    _model_arrays,
    _sample_batch,
)
from avgreward._pcg64 import load_state, store_state
from avgreward.estimators import EstimatorLab
from avgreward.stats import t_quantile

__all__ = ["ImportanceSamplingLab", "importance_sampling_lab", "mixture", "visit_kl",
           "weight_second_moment", "weighted_expectation_at_one", "IS_ESTIMATORS", "is_table"]

#: The estimators' names, in the order of :class:`ImportanceSamplingLab`'s arrays.
IS_ESTIMATORS = ("ordinary IS", "ordinary IS, baseline", "per-decision IS",
                 "per-decision IS, baseline", "weighted IS", "weighted IS, baseline")
_N_EPISODE = 4  # the estimators that are a mean of per-episode estimates


@njit(cache=True, error_model="numpy")
def _is_estimates(scores, pi, b, v, states, actions, rewards, offsets, out, weights, prefix):
    """The four per-episode estimates into ``out[e, :, 0..3]``, ``W_e`` into ``weights[e]``.

    A forward pass for the ratio products ``rho_{0:t}`` (into ``prefix``), a
    backward one for ``G_t`` and the per-decision ``H_t``.
    """
    n = offsets.shape[0] - 1
    D = scores.shape[2]
    out[:] = 0.0
    for e in range(n):
        first, end = offsets[e], offsets[e + 1]
        w = 1.0
        for t in range(first, end):
            w *= pi[states[t], actions[t]] / b[states[t], actions[t]]
            prefix[t - first] = w
        weights[e] = w
        g = 0.0
        h = 0.0
        rho_next = 1.0  # rho_{t+1}; H_T = 0 makes its value at the last step irrelevant
        for t in range(end - 1, first - 1, -1):
            s, a, r = states[t], actions[t], rewards[t]
            g += r
            h = r + rho_next * h
            rho_next = pi[s, a] / b[s, a]
            p = prefix[t - first]
            for i in range(D):
                sc = scores[s, a, i]
                out[e, i, 0] += sc * g
                out[e, i, 1] += sc * (g - v[s])
                out[e, i, 2] += p * sc * h
                out[e, i, 3] += p * sc * (h - v[s])
        for i in range(D):
            out[e, i, 0] *= w
            out[e, i, 1] *= w


@njit(cache=True, error_model="numpy")
def _is_run(P, R, start, terminal, pi, b, words, batch_size, n_batches, max_steps, scores, v,
            states, actions, rewards, offsets, out, weights, prefix, ep_sums, batch_sums,
            ess_sums, done):
    """Batches ``done .. n_batches - 1`` under ``b``, accumulated into the sums.

    ``ep_sums[0|1]``: sums and squares of the per-episode estimates;
    ``batch_sums[0|1]``: of each estimator's batch estimate; ``ess_sums``:
    the batches' ESS, and the sums of ``W`` and ``W^2`` over all episodes.
    Returns (status, batches done), as :func:`avgreward.estimators._run`.
    """
    D = scores.shape[2]
    batch = np.zeros((batch_sums.shape[1], D))
    for k in range(done, n_batches):
        status = _sample_batch(P, R, start, terminal, b, words, batch_size, max_steps,
                               states, actions, rewards, offsets)
        if status != _OK:  # the generator is back at this batch's start
            return status, k
        _is_estimates(scores, pi, b, v, states, actions, rewards, offsets, out, weights,
                      prefix)
        batch[:] = 0.0
        w_sum = 0.0
        w_sq = 0.0
        for e in range(batch_size):
            w_sum += weights[e]
            w_sq += weights[e] ** 2
            for j in range(_N_EPISODE):
                for i in range(D):
                    x = out[e, i, j]
                    ep_sums[0, j, i] += x
                    ep_sums[1, j, i] += x * x
                    batch[j, i] += x
        for i in range(D):
            for j in range(_N_EPISODE):
                batch[j, i] /= batch_size
            # self-normalised: the ordinary numerators over the batch's summed weights
            batch[4, i] = batch[0, i] * batch_size / w_sum if w_sum > 0.0 else 0.0
            batch[5, i] = batch[1, i] * batch_size / w_sum if w_sum > 0.0 else 0.0
        for j in range(batch.shape[0]):
            for i in range(D):
                batch_sums[0, j, i] += batch[j, i]
                batch_sums[1, j, i] += batch[j, i] ** 2
        ess_sums[0] += w_sum * w_sum / w_sq if w_sq > 0.0 else 0.0
        ess_sums[1] += w_sum
        ess_sums[2] += w_sq
    return _OK, n_batches


def mixture(pi, m):
    """``(1 - m) pi + m / n_actions``: the target mixed with the uniform policy, ``m`` in [0, 1]."""
    pi = np.asarray(pi, dtype=np.float64)
    if isinstance(m, bool) or not isinstance(m, (int, float, np.integer, np.floating)) \
            or not 0.0 <= m <= 1.0:
        raise ValueError(f"m (the mixing weight) must be a number in [0, 1], got {m!r}")
    return (1.0 - m) * pi + m / pi.shape[1]


def visit_kl(model, pi, b) -> float:
    """``sum_s eta_pi(s) KL(pi(.|s) || b(.|s))``: KL(pi || b) under the target's expected visits.

    With ``eta_pi`` the expected visits of an episode under ``pi`` (not
    normalised: divide by the mean episode length ``eta_pi.sum()`` for the
    per-step average) this is exactly the KL divergence between the two
    policies' distributions of whole episodes, ``E_pi[ln W]`` (the
    transitions cancel in the ratio).
    """
    pi, b = _check_pair(model, pi, b)
    ev = exact.evaluate_episodic(model, pi)
    logs = np.log(np.where(pi > 0.0, pi, 1.0)) - np.log(np.where(pi > 0.0, b, 1.0))
    return float(ev.visits @ (pi * logs).sum(axis=1))


def weight_second_moment(model, pi, b) -> float:
    """``E_b[W^2]`` exactly (``inf`` if it diverges); ``ESS / n`` tends to its inverse.

    ``u(s) = E_b[prod rho^2 | s_0 = s]`` solves ``u = 1`` on terminal states and
    ``u(s) = sum_a pi(a|s)^2 / b(a|s) sum_s' P(s'|s, a) u(s')``: finite when the
    spectral radius of that matrix among the non-terminal states is below 1.
    """
    pi, b = _check_pair(model, pi, b)
    P = np.asarray(model.P, dtype=np.float64)
    n_states = P.shape[0]
    transient = np.array([s for s in range(n_states) if s not in model.terminal])
    term = np.array(sorted(model.terminal))
    ratio2 = np.divide(pi ** 2, b, out=np.zeros_like(pi), where=b > 0)
    M = np.einsum("sa,sat->st", ratio2, P)
    A = M[np.ix_(transient, transient)]
    if np.max(np.abs(np.linalg.eigvals(A))) >= 1.0:
        return math.inf
    c = M[np.ix_(transient, term)].sum(axis=1)
    u = np.ones(n_states)
    u[transient] = np.linalg.solve(np.eye(transient.size) - A, c)
    return float(np.asarray(model.start) @ u)


def weighted_expectation_at_one(model, pi, b, scores, baseline=False):
    """The exact expectation of weighted IS from batches of one episode: ``E_b[X]``.

    One episode's weights cancel (``W X / W``), leaving ``X = sum_t g_t G_t``
    (or ``g_t (G_t - v_pi(s_t))``) under ``b``:
    ``sum_s eta_b(s) sum_a b(a|s) g(s, a) (q_b(s, a) - [v_pi(s)])``.
    """
    pi, b = _check_pair(model, pi, b)
    ev_b = exact.evaluate_episodic(model, b)
    q = np.array(ev_b.q)
    if baseline:
        q = q - np.asarray(exact.evaluate_episodic(model, pi).v)[:, None]
    return np.einsum("s,sa,sap,sa->p", ev_b.visits, b, scores, q)


def _check_pair(model, pi, b):
    """``pi`` and ``b`` as policy tables, ``b`` covering every action ``pi`` takes."""
    pi, b = _table("policy", pi, model), _table("behaviour", b, model)
    live = [s for s in range(model.n_states) if s not in model.terminal]
    uncovered = (pi[live] > 0.0) & (b[live] <= 0.0)
    if np.any(uncovered):
        s, a = np.argwhere(uncovered)[0]
        raise ValueError(f"behaviour gives action {a} in state {live[s]} probability 0 where "
                         "the target takes it: no importance weight can correct that")
    return pi, b


def _table(name, table, model):
    """``table`` as a float64 policy table of the model's shape, or a ValueError naming ``name``."""
    try:
        table = np.array(table, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of probabilities, got {table!r}") from None
    shape = (model.n_states, model.n_actions)
    if table.shape != shape:
        raise ValueError(f"{name} must have shape (n_states, n_actions) = {shape}, "
                         f"got {table.shape}")
    if not np.all(np.isfinite(table)) or np.any(table < 0):
        raise ValueError(f"{name} must be non-negative and finite")
    off = np.abs(table.sum(axis=1) - 1.0)
    if np.any(off > 1e-9):
        bad = np.flatnonzero(off > 1e-9).tolist()
        raise ValueError(f"{name} rows must sum to 1 (state(s) {bad} are off by up to "
                         f"{off.max():.3g})")
    return table


@dataclass(frozen=True)
class ImportanceSamplingLab:
    """What :func:`importance_sampling_lab` measured under one behaviour.

    Attributes
    ----------
    names : tuple of str
        :data:`IS_ESTIMATORS`.
    exact_gradient : ndarray, shape (D,)
        ``grad J(pi)``, from the model.
    means, ci_halfwidths : ndarray, shape (6, D)
        The mean of the batch estimates and the 95% interval's half-width
        (Student t over the independent batches).
    variance_per_episode : ndarray, shape (6,)
        Trace of the covariance of one episode's estimate (the four
        per-episode estimators; for the weighted ones ``batch_size`` times
        ``variance_per_batch``, the same scale).
    variance_per_batch : ndarray, shape (6,)
        Trace of the covariance of a batch's estimate.
    ess : float
        The mean over batches of ``(sum w)^2 / sum w^2`` (w: the trajectory weights).
    ess_all : float
        The same over all the episodes at once.
    weight_mean : float
        The mean trajectory weight (``E_b[W] = 1``).
    kl : float
        :func:`visit_kl` of the target and the behaviour.
    weight_second_moment : float
        :func:`weight_second_moment` (``inf`` when infinite: the variances then diverge).
    episodes, batch_size : int
    """

    names: tuple
    exact_gradient: np.ndarray
    means: np.ndarray
    ci_halfwidths: np.ndarray
    variance_per_episode: np.ndarray
    variance_per_batch: np.ndarray
    ess: float
    ess_all: float
    weight_mean: float
    kl: float
    weight_second_moment: float
    episodes: int
    batch_size: int

    # the estimator lab's, on the same attributes: Bonferroni-widened joint intervals
    covers = EstimatorLab.covers
    bias = EstimatorLab.bias


def _whole(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def importance_sampling_lab(model, theta, features, behaviour, *, tau=1.0, episodes=100_000,
                            batch_size=100, seed=0, max_steps=100_000) -> ImportanceSamplingLab:
    """Measure each estimator of the module docstring from episodes drawn under ``behaviour``.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        Episodic; rewards taken as ``R[s, a]``.
    theta : array_like, shape (n_features, n_actions)
        The target's linear softmax weights.
    features : array_like, shape (n_states, n_features)
    behaviour : array_like, shape (n_states, n_actions)
        ``b(a|s)``, rows summing to 1, positive wherever the target acts
        (every action: a softmax has full support); :func:`mixture` makes one.
    tau : float, default 1.0
        The target's softmax temperature.
    episodes : int, default 100,000
        Rounded up to a multiple of ``batch_size``; at least two batches.
    batch_size : int, default 100
        Episodes a batch (>= 1): weighted IS normalises over a batch.
    seed : int
    max_steps : int
        Refuse an episode longer than this (ValueError).

    Returns
    -------
    ImportanceSamplingLab
    """
    episodes = _whole("episodes", episodes, 1)
    batch_size = _whole("batch_size", batch_size, 1)
    max_steps = _whole("max_steps", max_steps, 1)
    seed = _whole("seed", seed, 0)
    features = _episodic_features(model, features)
    pi = exact.softmax_policy(theta, features, tau)
    pi, b = _check_pair(model, pi, behaviour)
    scores = np.ascontiguousarray(exact.softmax_scores(theta, features, tau))
    ev = exact.evaluate_episodic(model, pi)
    ev_b = exact.evaluate_episodic(model, b)   # also refuses a behaviour that never ends
    if ev_b.visits.sum() > max_steps:
        raise ValueError(f"episodes last {ev_b.visits.sum():,.0f} steps on average under the "
                         f"behaviour, more than max_steps={max_steps:,}")
    grad = exact.score_gradient(model, pi, scores)
    P, R, start, terminal = _model_arrays(model)
    v = np.ascontiguousarray(ev.v, dtype=np.float64)
    D, n_est = grad.size, len(IS_ESTIMATORS)
    n_batches = max(2, -(-episodes // batch_size))

    rng = np.random.default_rng(seed)
    words = load_state(rng)
    capacity = min(_initial_capacity(ev_b.visits.sum(), batch_size), batch_size * max_steps)
    offsets = np.zeros(batch_size + 1, np.int64)
    out = np.zeros((batch_size, D, _N_EPISODE))
    weights = np.zeros(batch_size)
    ep_sums = np.zeros((2, _N_EPISODE, D))
    batch_sums = np.zeros((2, n_est, D))
    ess_sums = np.zeros(3)
    done = 0
    while True:
        buffers = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64),
                   np.zeros(capacity))
        status, done = _is_run(P, R, start, terminal, pi, b, words, batch_size, n_batches,
                               max_steps, scores, v, *buffers, offsets, out, weights,
                               np.zeros(capacity), ep_sums, batch_sums, ess_sums, done)
        if status == _TOO_LONG:
            raise ValueError(f"an episode lasted more than max_steps={max_steps:,} steps "
                             "under the behaviour")
        if status == _OK:
            break
        assert status == _FULL
        capacity = min(2 * capacity, batch_size * max_steps)  # the same batch, bigger buffers
    store_state(rng, words)

    n = n_batches * batch_size
    ep_mean = ep_sums[0] / n
    ep_var = np.maximum(ep_sums[1] - n * ep_mean ** 2, 0.0) / (n - 1)
    means = batch_sums[0] / n_batches
    batch_var = np.maximum(batch_sums[1] - n_batches * means ** 2, 0.0) / (n_batches - 1)
    halfwidths = t_quantile(0.975, n_batches - 1) * np.sqrt(batch_var / n_batches)
    per_batch = batch_var.sum(axis=1)
    per_episode = batch_size * per_batch
    per_episode[:_N_EPISODE] = ep_var.sum(axis=1)
    return ImportanceSamplingLab(
        IS_ESTIMATORS, grad, means, halfwidths, per_episode, per_batch,
        float(ess_sums[0] / n_batches), float(ess_sums[1] ** 2 / ess_sums[2]),
        float(ess_sums[1] / n), visit_kl(model, pi, b), weight_second_moment(model, pi, b),
        n, batch_size)


def is_table(labs, as_frame=False):
    """One row per (behaviour, estimator) of a sequence of ``(label, lab)`` pairs.

    Columns: ``behaviour`` (the label), ``kl``, ``estimator``, ``bias_norm``
    (``|mean - grad J|``), ``ci_halfwidth_max``, ``unbiased_within_ci``,
    ``variance_per_episode``, ``variance_per_batch``, ``ess``, ``ess_fraction``
    (``ess / batch_size``), ``episodes``, ``batch_size``.
    """
    rows = []
    for label, lab in labs:
        for i, name in enumerate(lab.names):
            rows.append({
                "behaviour": label, "kl": lab.kl, "estimator": name,
                "bias_norm": float(np.linalg.norm(lab.bias()[i])),
                "ci_halfwidth_max": float(lab.ci_halfwidths[i].max()),
                "unbiased_within_ci": lab.covers(name),
                "variance_per_episode": float(lab.variance_per_episode[i]),
                "variance_per_batch": float(lab.variance_per_batch[i]),
                "ess": lab.ess, "ess_fraction": lab.ess / lab.batch_size,
                "episodes": lab.episodes, "batch_size": lab.batch_size})
    if as_frame:
        from avgreward.extras import require

        return require("pandas", "analysis", "tables as frames").DataFrame(rows)
    return rows
