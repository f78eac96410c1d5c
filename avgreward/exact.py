"""Exact analysis of a tabular task under a fixed policy (no sampling).

Everything here works on an :class:`avgreward.envs.model.TabularModel` (``P[s, a, s']``,
``R[s, a]``, ``start[s]``, ``observations[s]``) and a policy given as a table
``policy[state, action]``. It is the ground truth the learning code and its
tests are checked against: the reward rate, the differential (bias) values,
the discounted values and the exact average-reward policy gradient.

The Cesaro limit matrix ``P*`` of a chain is computed exactly by class
decomposition (see :func:`cesaro_limit`), so periodic chains (the loop MDP)
and multichain policies (deterministic policies of the aliased gridworld that
get stuck in separate closed classes) are handled without power iteration.

Probability tables (``P``, ``start``, policies) may come in any float type;
their rows must sum to 1 within what that type can hold: 1e-9 for float64,
256 float32 eps (about 3e-5) for a table stored in float32 or float16. Every
computation is in float64, on the rows divided by their float64 sums.
"""

from __future__ import annotations

from dataclasses import dataclass
import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from avgreward.options import check_positive

if TYPE_CHECKING:  # for the type hints only: this module needs neither numba nor gymnasium
    from avgreward.envs.model import TabularModel
    from avgreward.features import TileCoder

__all__ = [
    "Evaluation",
    "cesaro_limit",
    "evaluate",
    "discounted_values",
    "observation_classes",
    "policy_on_states",
    "softmax_policy",
    "feature_matrix",
    "OptimalControl",
    "relative_value_iteration",
    "policy_iteration",
    "SoftControl",
    "soft_relative_value_iteration",
    "entropy_bonus_equilibrium",
    "advantage_expectation",
    "discounted_expectation",
    "entropy_gradient",
    "policy_gradient",
    "deterministic_observation_policies",
    "EpisodicEvaluation",
    "evaluate_episodic",
    "episodic_policy_gradient",
    "softmax_scores",
    "score_gradient",
    "NaturalGradient",
    "natural_gradient",
    "natural_gradient_from_scores",
    "model_of",
    "TDFixedPoint",
    "differential_td_fixed_point",
    "centered_rms_error",
]

# Tolerance on "sums to one" for user-given probability tables in float64
# (or integers, or Python floats).
_SUM_TOL = 1e-9
# A table stored in float32 cannot sum to 1 closer than its rounding allows:
# rows normalised in float32 are off by a few eps (3e-8 is typical), so such
# a table is judged by this many of its eps (3e-5) instead. Still far below
# the errors of a table that was not normalised at all.
_SUM_TOL_EPS = 256


def _sum_tolerance(dtype) -> float:
    """Tolerance on "sums to one" for a table stored as ``dtype``.

    ``max(1e-9, 256 eps)`` of the floating type: 1e-9 for float64 (and
    wider types, and integers), about 3e-5 for float32. float16 is judged as
    float32: its own eps would let through rows off by 0.25.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return _SUM_TOL
    eps = float(np.finfo(np.promote_types(dtype, np.float32)).eps)
    return max(_SUM_TOL, _SUM_TOL_EPS * eps)


def _as_float64(x, name: str):
    """``x`` as a float64 array, with the sum tolerance its own dtype earns."""
    try:
        raw = np.asarray(x)
        return raw.astype(np.float64), _sum_tolerance(raw.dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from exc


@dataclass(frozen=True)
class Evaluation:
    """Exact quantities of a tabular task under a fixed policy.

    All arrays are read-only.

    Attributes
    ----------
    stationary : ndarray, shape (n_states,)
        ``mu = start^T P*``: the Cesaro-limit state distribution of the chain
        started from ``model.start`` (the unique stationary distribution when
        the policy is unichain).
    reward_rate : float
        ``r(pi) = mu . r_pi = start^T P* r_pi`` (for a multichain policy: the
        start-weighted gain).
    v : ndarray, shape (n_states,)
        Differential values (bias) ``v_pi = D r_pi`` with
        ``D = (I - P_pi + P*)^-1 - P*``: the Cesaro-summed differential return.
        It satisfies ``P* v = 0`` and ``v = r_pi - gain + P_pi v``.
    q : ndarray, shape (n_states, n_actions)
        Differential action values
        ``q[s, a] = R[s, a] - r(pi) + sum_s' P[s, a, s'] v[s']``.
    P_pi : ndarray, shape (n_states, n_states)
        State transition matrix ``P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']``.
    r_pi : ndarray, shape (n_states,)
        Expected one-step reward ``r_pi[s] = sum_a pi(a|s) R[s, a]``.
    gain : ndarray, shape (n_states,)
        Per-state gain ``g = P* r_pi`` (the reward rate started from each
        state); constant and equal to ``reward_rate`` for a unichain policy.
    P_star : ndarray, shape (n_states, n_states)
        The Cesaro limit ``P* = lim_N (1/N) sum_{k<N} P_pi^k``.
    """

    stationary: np.ndarray
    reward_rate: float
    v: np.ndarray
    q: np.ndarray
    P_pi: np.ndarray
    r_pi: np.ndarray
    gain: np.ndarray
    P_star: np.ndarray


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _check_model(model):
    """Validate a TabularModel's arrays; return (P, R, start) as float64.

    ``P[s, a]`` and ``start`` are renormalised in float64, so that a model
    stored in float32 gives chains whose rows sum to 1 to float64 precision.
    """
    try:
        P, P_tol = _as_float64(model.P, "model.P")
        R, _ = _as_float64(model.R, "model.R")
        start, start_tol = _as_float64(model.start, "model.start")
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"model must be a TabularModel with P, R, start arrays: {exc}") from exc
    if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
        raise ValueError(f"model.P must have shape (n_states, n_actions, n_states), got {P.shape}")
    n_states, n_actions = P.shape[:2]
    if R.shape != (n_states, n_actions):
        raise ValueError(f"model.R must have shape {(n_states, n_actions)}, got {R.shape}")
    if start.shape != (n_states,):
        raise ValueError(f"model.start must have shape {(n_states,)}, got {start.shape}")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(R)) and np.all(np.isfinite(start))):
        raise ValueError("model arrays must be finite")
    if np.any(P < 0) or not np.allclose(P.sum(axis=2), 1.0, rtol=0, atol=P_tol):
        raise ValueError("model.P[s, a] must be probability distributions")
    if np.any(start < 0) or abs(start.sum() - 1.0) > start_tol:
        raise ValueError("model.start must be a probability distribution")
    return P / P.sum(axis=2, keepdims=True), R, start / start.sum()


def _check_policy(policy, n_states: int, n_actions: int, name: str = "policy",
                  tol: float | None = None) -> np.ndarray:
    """Validate a policy table; return it in float64 with rows renormalised.

    The rows must sum to 1 within ``tol`` (default: what the table's own
    dtype allows, see :func:`_sum_tolerance`). They are then divided by
    their float64 sums, so that ``P_pi`` is row-stochastic to float64
    precision even for a table normalised in float32.
    """
    pi, own_tol = _as_float64(policy, name)
    tol = own_tol if tol is None else tol
    if pi.shape != (n_states, n_actions):
        raise ValueError(f"{name} must have shape (n_states, n_actions) = "
                         f"{(n_states, n_actions)}, got {pi.shape}")
    if not np.all(np.isfinite(pi)):
        raise ValueError(f"{name} must be finite")
    if np.any(pi < 0):
        raise ValueError(f"{name} must be non-negative")
    sums = pi.sum(axis=1)
    off = np.abs(sums - 1.0)
    bad = off > tol
    if np.any(bad):
        raise ValueError(f"{name} rows must sum to 1 (state(s) {np.flatnonzero(bad).tolist()} "
                         f"are off by up to {off.max():.3g} > {tol:.3g})")
    return pi / sums[:, None]


def _check_stochastic_matrix(P, name: str) -> np.ndarray:
    """Validate a row-stochastic matrix; return it in float64 with rows renormalised."""
    P, tol = _as_float64(P, name)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {P.shape}")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if not np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=tol):
        raise ValueError(f"{name} rows must sum to 1")
    return P / P.sum(axis=1, keepdims=True)


def _chain(P: np.ndarray, R: np.ndarray, pi: np.ndarray):
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.einsum("sa,sa->s", pi, R)
    return P_pi, r_pi


def _stationary_of_irreducible(P: np.ndarray) -> np.ndarray:
    """Stationary distribution of an irreducible (possibly periodic) chain.

    Solves ``mu (I - P) = 0`` with one balance equation replaced by
    ``sum(mu) = 1``; for an irreducible chain that system is nonsingular
    (the balance equations have rank n - 1 and ``mu`` is not orthogonal to 1).
    """
    n = P.shape[0]
    A = np.eye(n) - P.T
    A[-1, :] = 1.0
    b = np.zeros(n)
    b[-1] = 1.0
    mu = np.linalg.solve(A, b)
    # Round-off can leave -1e-17 entries; mu is a distribution.
    mu = np.clip(mu, 0.0, None)
    return mu / mu.sum()


def cesaro_limit(P: ArrayLike) -> np.ndarray:
    r"""Exact Cesaro limit ``P* = lim_{N->inf} (1/N) sum_{k=0}^{N-1} P^k``.

    Computed by class decomposition, which is exact for periodic and
    multichain chains (no power iteration, no eigen-decomposition):

    1. the reachability relation of the graph ``P[s, s'] > 0`` (transitive
       closure by repeated boolean squaring);
    2. the recurrent classes ``C_1 .. C_m`` (closed communicating classes: a
       state is recurrent iff every state it reaches reaches it back); the
       rest are transient states ``T``;
    3. per class, its stationary distribution ``pi_k`` (``pi_k (I - P_kk) = 0``,
       ``sum pi_k = 1``);
    4. the absorption probabilities of the transient states,
       ``B = (I - P_TT)^{-1} P_{T, C}`` summed per class;
    5. ``P*[s, C_k] = pi_k`` for ``s`` in ``C_k``, ``P*[s, C_k] = B[s, k] pi_k``
       for transient ``s``, zero elsewhere (no mass ends on transient states).

    An entry counts as an edge when it is exactly positive.

    Parameters
    ----------
    P : array_like, shape (n, n)
        Row-stochastic matrix (rows summing to 1 within 1e-9, or about 3e-5
        in float32; renormalised in float64).

    Returns
    -------
    ndarray, shape (n, n)
        ``P*``; it satisfies ``P P* = P* P = P* P* = P*``.

    Raises
    ------
    ValueError
        If ``P`` is not a square row-stochastic matrix.
    """
    P = _check_stochastic_matrix(P, "P")
    n = P.shape[0]
    reach = (P > 0) | np.eye(n, dtype=bool)
    while True:
        r = reach.astype(np.float64)
        nxt = (r @ r) > 0
        if np.array_equal(nxt, reach):
            break
        reach = nxt
    recurrent = np.array([np.all(reach[:, s][reach[s]]) for s in range(n)])

    P_star = np.zeros((n, n))
    classes = []
    seen = np.zeros(n, dtype=bool)
    for s in range(n):
        if recurrent[s] and not seen[s]:
            members = np.flatnonzero(reach[s] & reach[:, s])
            seen[members] = True
            classes.append(members)
            pi_c = _stationary_of_irreducible(P[np.ix_(members, members)])
            P_star[np.ix_(members, members)] = pi_c[None, :]

    transient = np.flatnonzero(~recurrent)
    if transient.size:
        into = np.stack([P[np.ix_(transient, c)].sum(axis=1) for c in classes], axis=1)
        B = np.linalg.solve(np.eye(transient.size) - P[np.ix_(transient, transient)], into)
        for k, c in enumerate(classes):
            P_star[np.ix_(transient, c)] = B[:, k:k + 1] * P_star[c[0], c][None, :]
    return P_star


def evaluate(model: TabularModel, policy: ArrayLike) -> Evaluation:
    r"""Exact average-reward evaluation of a policy on a tabular model.

    With ``P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']`` and
    ``r_pi[s] = sum_a pi(a|s) R[s, a]``:

    - ``P*`` = the Cesaro limit of ``P_pi`` (:func:`cesaro_limit`);
    - ``mu = start^T P*`` (the stationary distribution; unique if unichain);
    - ``r(pi) = mu . r_pi``;
    - ``v_pi = D r_pi``, ``D = (I - P_pi + P*)^{-1} - P*`` (the bias, i.e. the
      Cesaro-summed differential return
      ``v(s) = C-lim_N sum_{t<N} E[r_pi(S_t) - g(S_t) | S_0 = s]``, correct for
      periodic chains such as the loop MDP); ``I - P_pi + P*`` is nonsingular
      for every stochastic matrix;
    - ``q_pi[s, a] = R[s, a] - r(pi) + sum_s' P[s, a, s'] v_pi[s']``.

    For a unichain policy ``v = r_pi - r(pi) + P_pi v`` (the differential
    Bellman equation) and ``sum_a pi(a|s) q(s, a) = v(s)``. For a multichain
    policy the gain depends on the state: ``g = P* r_pi`` (field ``gain``),
    ``reward_rate`` is the start-weighted gain ``start^T g``, ``v`` is the
    bias (``v = r_pi - g + P_pi v``), and ``q`` still uses the scalar
    ``reward_rate``, so ``sum_a pi(a|s) q(s, a) = v(s) + g(s) - r(pi)``.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        The task.
    policy : array_like, shape (n_states, n_actions)
        ``policy[s, a] = pi(a | s)``; non-negative, rows sum to 1 (within
        1e-9, or about 3e-5 for a float32 table; the rows are renormalised
        in float64 before use).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        If ``policy`` has the wrong shape, negative entries or rows not
        summing to 1, or ``model`` is malformed.
    """
    P, R, start = _check_model(model)
    pi = _check_policy(policy, P.shape[0], P.shape[1])
    P_pi, r_pi = _chain(P, R, pi)
    P_star = cesaro_limit(P_pi)
    n = P_pi.shape[0]
    mu = start @ P_star
    gain = P_star @ r_pi
    rate = float(mu @ r_pi)
    # D r = (I - P + P*)^-1 r - P* r, since (I - P + P*)^-1 P* = P*.
    v = np.linalg.solve(np.eye(n) - P_pi + P_star, r_pi) - gain
    q = R - rate + np.einsum("sat,t->sa", P, v)
    return Evaluation(
        stationary=_readonly(mu), reward_rate=rate, v=_readonly(v), q=_readonly(q),
        P_pi=_readonly(P_pi), r_pi=_readonly(r_pi), gain=_readonly(gain),
        P_star=_readonly(P_star),
    )


def discounted_values(model: TabularModel, policy: ArrayLike, gamma: float) -> np.ndarray:
    r"""Discounted state values ``v = (I - gamma P_pi)^{-1} r_pi``.

    ``v(s) = E[sum_{t>=0} gamma^t R_{t+1} | S_0 = s]`` under ``pi``.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    policy : array_like, shape (n_states, n_actions)
        ``policy[s, a] = pi(a | s)``, as in :func:`evaluate`.
    gamma : float
        Discount factor, ``0 <= gamma < 1``.

    Returns
    -------
    ndarray, shape (n_states,)

    Raises
    ------
    ValueError
        If ``gamma`` is outside ``[0, 1)`` or ``policy`` is invalid.
    """
    P, R, _ = _check_model(model)
    pi = _check_policy(policy, P.shape[0], P.shape[1])
    try:
        g = float(gamma)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"gamma must be a number in [0, 1), got {gamma!r}") from exc
    if not (0.0 <= g < 1.0):
        raise ValueError(f"gamma must be in [0, 1), got {gamma!r}")
    P_pi, r_pi = _chain(P, R, pi)
    return np.linalg.solve(np.eye(P_pi.shape[0]) - g * P_pi, r_pi)


def observation_classes(model: TabularModel) -> tuple[np.ndarray, np.ndarray]:
    """The distinct observations of a model and the class of each state.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel

    Returns
    -------
    distinct : ndarray, shape (n_obs, obs_size)
        The distinct rows of ``model.observations``, in order of first
        appearance over the states 0, 1, ...
    index : ndarray of int64, shape (n_states,)
        ``distinct[index[s]] == model.observations[s]``.

    Notes
    -----
    For the aliased gridworld: c0, c1 (= c3), c2, c4 -> ``n_obs = 4`` and
    ``index = [0, 1, 2, 1, 3]``. For the loop MDP ``index = arange(9)``.
    """
    obs = np.asarray(model.observations, dtype=np.float64)
    if obs.ndim == 1:
        obs = obs[:, None]
    first: dict[tuple, int] = {}
    index = np.empty(obs.shape[0], dtype=np.int64)
    for s, row in enumerate(obs):
        index[s] = first.setdefault(tuple(row.tolist()), len(first))
    distinct = np.array([list(k) for k in first], dtype=np.float64).reshape(len(first), obs.shape[1])
    return distinct, index


def policy_on_states(
    model: TabularModel,
    obs_policy: Callable[[np.ndarray], ArrayLike] | Mapping[object, ArrayLike] | ArrayLike,
) -> np.ndarray:
    """Turn a policy over observations into a policy over true states.

    States with the same observation (aliased states) get the same row.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    obs_policy : callable, mapping or array_like
        One of

        - a callable ``obs -> probabilities``: called with a copy of
          ``model.observations[s]`` (float64, shape ``(obs_size,)``) and
          returning ``n_actions`` action probabilities;
        - a mapping keyed by the observation as a tuple of its values, e.g.
          ``{(1, 0, 0, 1): [0, 1, 0, 0], ...}`` (ints and floats compare
          equal); for one-dimensional observations a scalar key (``{0: ...}``)
          is accepted too;
        - an array of shape ``(n_obs, n_actions)`` whose row ``k`` is the
          policy for ``distinct[k]`` of :func:`observation_classes` (the
          first-appearance order of the observations over the states); this
          is the table format :func:`deterministic_observation_policies`
          yields.

    Returns
    -------
    ndarray of float64, shape (n_states, n_actions)
        ``pi[s, a] = obs_policy(observations[s])[a]``, each row divided by
        its sum (rows given in float32 may be off by about 3e-5, see
        :func:`evaluate`).

    Raises
    ------
    ValueError
        If an observation is missing from the mapping, the table has the
        wrong shape, or the resulting rows are not probability distributions
        (the message names ``obs_policy``).
    """
    P, _, _ = _check_model(model)
    n_states, n_actions = P.shape[:2]
    obs = np.asarray(model.observations, dtype=np.float64)
    if obs.ndim == 1:
        obs = obs[:, None]
    # The rows are judged by the precision they were given in (a float32
    # table may be off by ~1e-7), although pi is float64 from here on.
    if callable(obs_policy):
        rows = []
        tol = _SUM_TOL
        for s in range(n_states):
            row, row_tol = _as_float64(obs_policy(obs[s].copy()), "obs_policy")
            if row.shape != (n_actions,):
                raise ValueError(f"obs_policy must return {n_actions} action probabilities, "
                                 f"got shape {row.shape} for observation {obs[s].tolist()}")
            rows.append(row)
            tol = max(tol, row_tol)
        pi = np.stack(rows)
    elif isinstance(obs_policy, Mapping):
        rows = []
        for s in range(n_states):
            key = tuple(obs[s].tolist())
            if key in obs_policy:
                rows.append(obs_policy[key])
            elif len(key) == 1 and key[0] in obs_policy:
                rows.append(obs_policy[key[0]])
            else:
                raise ValueError(f"obs_policy has no entry for observation {key}")
        pi, tol = _as_float64(rows, "obs_policy")
    else:
        _, index = observation_classes(model)
        n_obs = int(index.max()) + 1
        try:
            table, tol = _as_float64(obs_policy, "obs_policy")
        except ValueError as exc:
            raise ValueError(f"obs_policy must be a callable, a mapping or an array: {exc}") from exc
        if table.shape != (n_obs, n_actions):
            raise ValueError(f"obs_policy table must have shape (n_obs, n_actions) = "
                             f"{(n_obs, n_actions)}, got {table.shape}")
        pi = table[index]
    return _check_policy(pi, n_states, n_actions, name="obs_policy", tol=tol)


def _check_theta_features(theta: ArrayLike, features: ArrayLike,
                          tau: float) -> tuple[np.ndarray, np.ndarray, float]:
    try:
        theta = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"theta must be a numeric array: {exc}") from exc
    try:
        features = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features must be a numeric array: {exc}") from exc
    if features.ndim != 2:
        raise ValueError(f"features must have shape (n_states, n_features), got {features.shape}")
    if theta.ndim != 2 or theta.shape[0] != features.shape[1] or theta.shape[1] == 0:
        raise ValueError(f"theta must have shape (n_features, n_actions) with n_features = "
                         f"{features.shape[1]}, got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta must be finite")
    if not np.all(np.isfinite(features)):
        raise ValueError("features must be finite")
    try:
        tau_f = float(tau)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tau must be a positive number, got {tau!r}") from exc
    if not (np.isfinite(tau_f) and tau_f > 0):
        raise ValueError(f"tau must be positive and finite, got {tau!r}")
    return theta, features, tau_f


def _check_linear(model, theta, features, tau):
    """:func:`_check_theta_features`, and the shapes matching the model's states and actions."""
    P, _, _ = _check_model(model)
    theta, features, tau = _check_theta_features(theta, features, tau)
    if features.shape[0] != P.shape[0]:
        raise ValueError(f"features must have one row per state ({P.shape[0]}), "
                         f"got {features.shape[0]}")
    if theta.shape[1] != P.shape[1]:
        raise ValueError(f"theta must have one column per action ({P.shape[1]}), "
                         f"got {theta.shape[1]}")
    return theta, features, tau


def _softmax(theta, features, tau):
    h = features @ theta / tau
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)


def feature_matrix(model: TabularModel, features: TileCoder | str) -> np.ndarray:
    """The dense feature vector ``x(s)`` of every state: what a learner sees there.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        Its ``observations[s]`` are what state ``s`` shows.
    features : avgreward.features.TileCoder or str
        A feature map (its ``indices`` of an observation are the active binary
        features), or an environment id whose default map to take.

    Returns
    -------
    ndarray, shape (n_states, n_features)
        Aliased states (same observation) get the same row.
    """
    if isinstance(features, str):
        from avgreward.environments import default_features
        features = default_features(features)
    observations = getattr(model, "observations", None)
    if observations is None:
        raise ValueError("model.observations is missing: no features without observations")
    rows = np.zeros((len(observations), features.n_features))
    for s, obs in enumerate(observations):
        rows[s, features.indices(np.asarray(obs, dtype=np.float64))] = 1.0
    return rows


def softmax_policy(theta: ArrayLike, features: ArrayLike, tau: float = 1.0) -> np.ndarray:
    r"""Softmax policy with linear preferences, for every state.

    ``h(s, a) = theta[:, a] . x(s)``,
    ``pi(a|s) = exp(h(s, a)/tau) / sum_b exp(h(s, b)/tau)``
    (computed with the maximum preference subtracted).

    Parameters
    ----------
    theta : array_like, shape (n_features, n_actions)
        Weights, ``theta[feature, action]`` (the package's layout).
    features : array_like, shape (n_states, n_features)
        Dense feature vector ``x(s)`` of each state (binary for the package's
        feature maps, but any real values work).
    tau : float, default 1.0
        Temperature, ``> 0``.

    Returns
    -------
    ndarray, shape (n_states, n_actions)

    Raises
    ------
    ValueError
        On mismatched shapes, non-finite values or ``tau <= 0``.
    """
    theta, features, tau = _check_theta_features(theta, features, tau)
    return _softmax(theta, features, tau)


def policy_gradient(model: TabularModel, theta: ArrayLike, features: ArrayLike,
                    tau: float = 1.0) -> np.ndarray:
    r"""Exact gradient of the reward rate ``r(pi_theta)`` for a softmax policy.

    Policy gradient theorem (continuing case):

    ``grad r(pi) = sum_s mu(s) sum_a grad pi(a|s) q_pi(s, a)``, with
    ``grad_{theta[:, b]} pi(a|s) = pi(a|s) (1[a = b] - pi(b|s)) x(s) / tau``,

    so that column ``b`` is
    ``sum_s mu(s) pi(b|s) (q(s, b) - sum_a pi(a|s) q(s, a)) x(s) / tau``.
    ``mu`` and ``q`` come from :func:`evaluate`. The theorem needs a unichain
    policy (true whenever every action has positive probability on the
    package's tabular tasks); for a multichain policy the returned value is
    the same formula but need not be the derivative of ``reward_rate``.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    theta : array_like, shape (n_features, n_actions)
        ``theta[feature, action]``; ``n_actions`` must equal the model's.
    features : array_like, shape (n_states, n_features)
        Dense ``x(s)`` of each true state (for a partially observed task, the
        features of the state's observation).
    tau : float, default 1.0
        Softmax temperature, ``> 0``.

    Returns
    -------
    ndarray, shape (n_features, n_actions)

    Raises
    ------
    ValueError
        On mismatched shapes (``features`` must have ``n_states`` rows,
        ``theta`` ``n_actions`` columns), non-finite values or ``tau <= 0``.
    """
    theta, features, tau = _check_linear(model, theta, features, tau)
    pi = _softmax(theta, features, tau)
    ev = evaluate(model, pi)
    q = ev.q
    advantage = q - np.sum(pi * q, axis=1, keepdims=True)
    weights = ev.stationary[:, None] * pi * advantage
    return features.T @ weights / tau


def deterministic_observation_policies(
    model: TabularModel, max_policies: int = 1_000_000
) -> Iterator[tuple[np.ndarray, float]]:
    """Enumerate every deterministic policy of the observation, with its rate.

    There are ``n_actions ** n_obs`` of them (``n_obs`` distinct
    observations, see :func:`observation_classes`): 256 for the aliased
    gridworld, 512 for the loop MDP.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    max_policies : int, default 1_000_000
        Refuse (ValueError) to enumerate more than this many.

    Yields
    ------
    table : ndarray, shape (n_obs, n_actions)
        One-hot rows; row ``k`` is the action taken on ``distinct[k]``
        (pass it to :func:`policy_on_states`).
    reward_rate : float
        ``evaluate(model, policy_on_states(model, table)).reward_rate`` (the
        start-weighted gain when the policy is multichain).

    Raises
    ------
    ValueError
        If there are more than ``max_policies`` policies.
    """
    P, _, _ = _check_model(model)
    n_actions = P.shape[1]
    _, index = observation_classes(model)
    n_obs = int(index.max()) + 1
    if n_actions ** n_obs > max_policies:
        raise ValueError(f"{n_actions}**{n_obs} deterministic policies exceed "
                         f"max_policies={max_policies}")
    eye = np.eye(n_actions)
    for choice in itertools.product(range(n_actions), repeat=n_obs):
        table = eye[list(choice)]
        yield table, evaluate(model, table[index]).reward_rate


# --- episodic tasks: absorbing models ------------------------------------------------------


@dataclass(frozen=True)
class EpisodicEvaluation:
    """Exact quantities of an episodic (absorbing) tabular task under a fixed policy.

    All arrays are read-only; terminal states have 0 visits, values and
    action values.

    Attributes
    ----------
    gamma : float
        The discount (1: undiscounted).
    visits : ndarray, shape (n_states,)
        ``eta(s) = sum_t gamma^t Pr(S_t = s)``: the expected (discounted)
        number of visits to ``s`` in an episode from ``model.start``.
    v : ndarray, shape (n_states,)
        ``v_pi(s) = E[sum_k gamma^k R_{t+k+1} | S_t = s]``.
    q : ndarray, shape (n_states, n_actions)
        ``q_pi(s, a) = R[s, a] + gamma sum_s' P[s, a, s'] v_pi(s')``.
    J : float
        ``v_pi`` at the start distribution: the objective ``E[G_0]``.
    P_pi, r_pi : ndarray
        The chain and expected one-step reward under the policy.
    """

    gamma: float
    visits: np.ndarray
    v: np.ndarray
    q: np.ndarray
    J: float
    P_pi: np.ndarray
    r_pi: np.ndarray


def _check_episodic(model, gamma):
    P, R, start = _check_model(model)
    terminal = tuple(getattr(model, "terminal", ()) or ())
    n_states = P.shape[0]
    if not terminal:
        raise ValueError("model.terminal is empty: this is a continuing model (use evaluate)")
    if any(not isinstance(s, (int, np.integer)) or not 0 <= s < n_states for s in terminal):
        raise ValueError(f"model.terminal must hold state indices in 0..{n_states - 1}, "
                         f"got {terminal}")
    for s in terminal:
        if not (np.allclose(P[s, :, s], 1.0) and np.allclose(R[s], 0.0)):
            raise ValueError(f"terminal state {s} must be absorbing with reward 0")
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a number in (0, 1], got {gamma!r}") from None
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    transient = np.array([s for s in range(n_states) if s not in terminal], dtype=np.int64)
    return P, R, start, transient, gamma


def evaluate_episodic(model: TabularModel, policy: ArrayLike,
                      gamma: float = 1.0) -> EpisodicEvaluation:
    r"""Evaluate a policy exactly on an episodic task (an absorbing model).

    With ``Q`` the policy's chain among the non-terminal states,
    ``N = (I - gamma Q)^-1`` counts the (discounted) visits:
    ``visits = start^T N`` and ``v = N r_pi`` on the non-terminal states,
    0 on the terminal ones.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        With ``terminal`` states (absorbing, reward 0).
    policy : array_like, shape (n_states, n_actions)
    gamma : float, default 1.0
        Discount in (0, 1].

    Returns
    -------
    EpisodicEvaluation

    Raises
    ------
    ValueError
        On an invalid model, policy or gamma, or (gamma = 1) a policy under
        which some episode from a reachable state never ends.
    """
    P, R, start, transient, gamma = _check_episodic(model, gamma)
    n_states, n_actions = P.shape[:2]
    pi = _check_policy(policy, n_states, n_actions)
    P_pi, r_pi = _chain(P, R, pi)
    Q = P_pi[np.ix_(transient, transient)]
    identity = np.eye(transient.size)
    try:
        N = np.linalg.solve(identity - gamma * Q, identity)
    except np.linalg.LinAlgError:
        raise ValueError("under this policy some episodes never end (gamma = 1): "
                         "no finite values") from None
    if not np.all(np.isfinite(N)) or np.any(N < -1e-9):
        raise ValueError("under this policy some episodes never end (gamma = 1): "
                         "no finite values")
    v = np.zeros(n_states)
    v[transient] = N @ r_pi[transient]
    visits = np.zeros(n_states)
    visits[transient] = start[transient] @ N
    q = R + gamma * P @ v
    for s in set(range(n_states)) - set(transient.tolist()):
        q[s] = 0.0
    return EpisodicEvaluation(
        gamma=gamma, visits=_readonly(visits), v=_readonly(v), q=_readonly(q),
        J=float(start @ v), P_pi=_readonly(P_pi), r_pi=_readonly(r_pi),
    )


def episodic_policy_gradient(model: TabularModel, theta: ArrayLike, features: ArrayLike,
                             tau: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    r"""Exact gradient of ``J = v_pi(start)`` for a linear softmax policy on an episodic task.

    Policy gradient theorem (episodic, Sutton & Barto 13.2, with the
    discounted visits when ``gamma < 1``):
    ``grad J = sum_s eta(s) sum_a grad pi(a|s) q_pi(s, a)``, column ``b`` being
    ``sum_s eta(s) pi(b|s) (q(s, b) - sum_a pi(a|s) q(s, a)) x(s) / tau``
    (``eta`` and ``q`` from :func:`evaluate_episodic`).

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        With ``terminal`` states.
    theta : array_like, shape (n_features, n_actions)
    features : array_like, shape (n_states, n_features)
        ``x(s)`` of each state (the features of its observation).
    tau : float, default 1.0
    gamma : float, default 1.0

    Returns
    -------
    ndarray, shape (n_features, n_actions)

    Raises
    ------
    ValueError
        As :func:`policy_gradient` and :func:`evaluate_episodic`.
    """
    theta, features, tau = _check_linear(model, theta, features, tau)
    pi = _softmax(theta, features, tau)
    ev = evaluate_episodic(model, pi, gamma)
    advantage = ev.q - np.sum(pi * ev.q, axis=1, keepdims=True)
    return features.T @ (ev.visits[:, None] * pi * advantage) / tau


# --- the exact expectations of the policy-gradient estimators (avgreward.estimators) ---


def entropy_gradient(pi: ArrayLike, features: np.ndarray, tau: float = 1.0) -> np.ndarray:
    r"""``grad_theta H(pi(.|s))`` for every state, flattened over theta: shape (S, d * A).

    ``dH/dh_b = -pi_b (ln pi_b + H)`` for the preferences ``h = theta^T x / tau``
    (``0 ln 0 = 0``).
    """
    pi = np.asarray(pi, dtype=np.float64)
    logs = np.log(np.where(pi > 0.0, pi, 1.0))
    H = -np.sum(pi * logs, axis=1, keepdims=True)
    dh = -pi * (logs + H) / tau
    return (features[:, :, None] * dh[:, None, :]).reshape(pi.shape[0], -1)


def advantage_expectation(model: TabularModel, pi: ArrayLike, features: ArrayLike, tau: float,
                          v: ArrayLike, gamma: float = 1.0, lam: float = 1.0,
                          scores: ArrayLike | None = None) -> np.ndarray:
    r"""The exact expectation of ``sum_t g_t A_t``, ``A_t = sum_l (gamma lam)^l delta_{t+l}``.

    ``delta_t = r_t + gamma v(s_{t+1}) - v(s_t)`` with any fixed ``v`` (0 at
    terminal states), the sum over t undiscounted (the notes' estimators
    carry no ``gamma^t``).  With ``u(s) = E[A_t | s_t = s]`` solving
    ``u = d_pi + gamma lam P_pi u`` on the non-terminal states and
    ``A(s, a) = R(s, a) + gamma P v - v(s) + gamma lam P u``, the expectation is
    ``sum_s eta(s) sum_a grad pi(a|s) A(s, a)`` with the undiscounted visits
    ``eta``.  Special cases: ``lam = 1, v = 0`` is the discounted reward-to-go,
    ``lam = 0`` the one-step TD advantage; with ``gamma = 1`` and the exact
    ``v`` every ``lam`` gives ``grad J``.  Flattened like
    :class:`avgreward.estimators.EstimatorLab`'s arrays.  ``scores`` (shape
    ``(S, A, n_params)``), when given, is the policy's ``grad ln pi(a|s)`` in place
    of the linear softmax's (then ``features`` and ``tau`` are not used): any
    differentiable policy, such as :class:`avgreward.network_policy.ReLUPolicy`.
    """
    pi = np.asarray(pi, dtype=np.float64)
    features = np.asarray(features, dtype=np.float64)
    P = np.asarray(model.P, dtype=np.float64)
    R = np.asarray(model.R, dtype=np.float64)
    v = np.array(v, dtype=np.float64)
    terminal = list(model.terminal)
    v[terminal] = 0.0
    transient = np.array([s for s in range(P.shape[0]) if s not in set(terminal)])
    delta = R + gamma * P @ v - v[:, None]              # E[delta | s, a]
    P_pi = np.einsum("sa,sat->st", pi, P)
    d = np.sum(pi * delta, axis=1)
    u = np.zeros(P.shape[0])
    Q = P_pi[np.ix_(transient, transient)]
    u[transient] = np.linalg.solve(np.eye(transient.size) - gamma * lam * Q, d[transient])
    A = delta + gamma * lam * P @ u
    A[terminal] = 0.0
    visits = evaluate_episodic(model, pi).visits
    centred = A - np.sum(pi * A, axis=1, keepdims=True)
    if scores is not None:
        return np.einsum("s,sa,sap->p", visits, pi * centred, np.asarray(scores, np.float64))
    return (features.T @ (visits[:, None] * pi * centred) / tau).reshape(-1)


def discounted_expectation(model: TabularModel, theta: ArrayLike, features: ArrayLike,
                           tau: float = 1.0, gamma: float = 0.9) -> np.ndarray:
    r"""The exact expectation of the discounted reward-to-go estimator (not ``grad J``).

    ``E[sum_t g_t sum_{t'>=t} gamma^(t'-t) r_t'] = sum_s eta(s) sum_a grad pi(a|s) q_gamma(s, a)``:
    the undiscounted visits ``eta`` with the discounted action values (the
    seed's form has no ``gamma^t`` factor, so it is the gradient of no
    objective); its difference from :func:`episodic_policy_gradient`
    is the bias the notes speak of.  Flattened like :class:`avgreward.estimators.EstimatorLab`'s arrays.
    """
    features = np.asarray(features, dtype=np.float64)
    pi = softmax_policy(theta, features, tau)
    visits = evaluate_episodic(model, pi).visits
    q = evaluate_episodic(model, pi, gamma).q
    advantage = q - np.sum(pi * q, axis=1, keepdims=True)
    return (features.T @ (visits[:, None] * pi * advantage) / tau).reshape(-1)


# --- any differentiable policy given by its scores; the natural gradient -------------------


def softmax_scores(theta: ArrayLike, features: ArrayLike, tau: float = 1.0) -> np.ndarray:
    r"""``grad ln pi(a|s)`` of the linear softmax policy for every (s, a), flattened over theta.

    ``d ln pi(a|s) / d theta[i, b] = x_i(s) (1[a = b] - pi(b|s)) / tau``; the
    flat index of ``theta[i, b]`` is ``i * n_actions + b`` (``theta.reshape(-1)``).

    Returns
    -------
    ndarray, shape (n_states, n_actions, n_features * n_actions)
    """
    theta, features, tau = _check_theta_features(theta, features, tau)
    pi = _softmax(theta, features, tau)
    n_states, n_actions = pi.shape
    scores = np.zeros((n_states, n_actions, features.shape[1], n_actions))
    for a in range(n_actions):
        coef = -pi / tau
        coef[:, a] += 1.0 / tau
        scores[:, a] = features[:, :, None] * coef[:, None, :]
    return scores.reshape(n_states, n_actions, -1)


def _check_scores(scores, n_states: int, n_actions: int) -> np.ndarray:
    scores, _ = _as_float64(scores, "scores")
    if scores.ndim != 3 or scores.shape[:2] != (n_states, n_actions) or scores.shape[2] == 0:
        raise ValueError(f"scores must have shape (n_states, n_actions, n_params) with "
                         f"(n_states, n_actions) = {(n_states, n_actions)}, got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return scores


def _weighting(model, pi, gamma):
    """(episodic?, state weights d, advantage A = q - v) of the policy-gradient theorem.

    Continuing: ``d`` the stationary distribution, ``q`` the differential
    action values.  Episodic: ``d`` the expected (gamma-discounted) visits,
    unnormalised, as the episodic theorem has them.
    """
    if getattr(model, "terminal", None):
        ev = evaluate_episodic(model, pi, gamma)
        d, q = ev.visits, ev.q
        episodic = True
    else:
        if not (isinstance(gamma, (int, float, np.integer, np.floating))
                and not isinstance(gamma, bool) and float(gamma) == 1.0):
            raise ValueError(f"gamma is for episodic models only (this one is continuing), "
                             f"got {gamma!r}")
        ev = evaluate(model, pi)
        d, q = ev.stationary, ev.q
        episodic = False
    advantage = q - np.sum(pi * q, axis=1, keepdims=True)
    return episodic, np.asarray(d), advantage


def score_gradient(model: TabularModel, policy: ArrayLike, scores: ArrayLike,
                   gamma: float = 1.0) -> np.ndarray:
    r"""The exact policy gradient of any differentiable policy, given its scores.

    ``grad J = sum_s d(s) sum_a pi(a|s) grad ln pi(a|s) A(s, a)`` with, for a
    continuing model (no ``terminal`` states), ``d`` the stationary
    distribution and ``A`` the differential advantage (:func:`evaluate`), and
    for an episodic one the expected visits and ``q - v`` of
    :func:`evaluate_episodic`.  The policy's parametrisation enters only
    through ``scores``: for the linear softmax it is
    :func:`softmax_scores` (and this equals :func:`policy_gradient` or
    :func:`episodic_policy_gradient`, flattened); for a network, its
    backpropagated score (the chain rule through the layers), as
    :func:`avgreward.network_policy.policy_gradient` does.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    policy : array_like, shape (n_states, n_actions)
        ``pi(a|s)``, rows summing to 1.
    scores : array_like, shape (n_states, n_actions, n_params)
        ``grad ln pi(a|s)`` with respect to the parameters.
    gamma : float, default 1.0
        The discount of an episodic model (a continuing one accepts only 1).

    Returns
    -------
    ndarray, shape (n_params,)

    Raises
    ------
    ValueError
        On a policy that is not stochastic (naming ``policy``), scores of the
        wrong shape, or a malformed model.
    """
    P, _, _ = _check_model(model)
    pi = _check_policy(policy, P.shape[0], P.shape[1])
    scores = _check_scores(scores, *P.shape[:2])
    _, d, advantage = _weighting(model, pi, gamma)
    return np.einsum("s,sa,sap->p", d, pi * advantage, scores)


@dataclass(frozen=True)
class NaturalGradient:
    """The Fisher information of a policy and its natural gradient (arrays read-only).

    Attributes
    ----------
    episodic : bool
        Whether ``weights`` are expected visits (episodic) or the stationary
        distribution (continuing).
    weights : ndarray, shape (n_states,)
        ``d(s)`` of the policy-gradient theorem.
    fisher : ndarray, shape (n_params, n_params)
        ``F = sum_s d(s) sum_a pi(a|s) g(s, a) g(s, a)^T``, ``g`` the score.
    gradient : ndarray, shape (n_params,)
        ``grad J``.
    natural : ndarray, shape (n_params,)
        ``F^+ grad J`` (Moore-Penrose pseudo-inverse).
    compatible_weights : ndarray, shape (n_params,)
        The minimum-norm least-squares ``w`` of ``A(s, a) ~ w . g(s, a)`` weighted
        by ``d(s) pi(a|s)``; ``F w = grad J``, and ``w = natural``.
    advantage : ndarray, shape (n_states, n_actions)
        ``A = q - v``.
    rank : int
        The rank of ``F`` (below ``n_params`` for the softmax: see
        :func:`natural_gradient`).
    """

    episodic: bool
    weights: np.ndarray
    fisher: np.ndarray
    gradient: np.ndarray
    natural: np.ndarray
    compatible_weights: np.ndarray
    advantage: np.ndarray
    rank: int


# Singular values of F below this fraction of the largest are taken as 0: the softmax's
# null directions come out at rounding level (~1e-17 relative), real ones far above it.
_FISHER_RCOND = 1e-12


def natural_gradient_from_scores(model: TabularModel, policy: ArrayLike, scores: ArrayLike,
                                 gamma: float = 1.0) -> NaturalGradient:
    """:func:`natural_gradient` for any differentiable policy given by its scores.

    Parameters and errors as :func:`score_gradient`.

    Returns
    -------
    NaturalGradient
    """
    P, _, _ = _check_model(model)
    pi = _check_policy(policy, P.shape[0], P.shape[1])
    scores = _check_scores(scores, *P.shape[:2])
    episodic, d, advantage = _weighting(model, pi, gamma)
    gradient = np.einsum("s,sa,sap->p", d, pi * advantage, scores)
    weight = d[:, None] * pi
    fisher = np.einsum("sa,sap,saq->pq", weight, scores, scores)
    fisher = (fisher + fisher.T) / 2  # exactly symmetric, for the symmetric pseudo-inverse
    natural = np.linalg.pinv(fisher, rcond=_FISHER_RCOND, hermitian=True) @ gradient
    # Compatible features: regress A on the scores, each (s, a) weighted by d(s) pi(a|s).
    root = np.sqrt(weight).reshape(-1)
    design = scores.reshape(-1, scores.shape[2]) * root[:, None]
    # (the design's singular values are the square roots of F's eigenvalues)
    w = np.linalg.lstsq(design, advantage.reshape(-1) * root,
                        rcond=np.sqrt(_FISHER_RCOND))[0]
    rank = int(np.linalg.matrix_rank(fisher, tol=_FISHER_RCOND * max(
        np.abs(fisher).max(), np.finfo(float).tiny), hermitian=True))
    return NaturalGradient(
        episodic=episodic, weights=_readonly(d), fisher=_readonly(fisher),
        gradient=_readonly(gradient), natural=_readonly(natural),
        compatible_weights=_readonly(w), advantage=_readonly(advantage), rank=rank)


def natural_gradient(model: TabularModel, theta: ArrayLike, features: ArrayLike,
                     tau: float = 1.0, gamma: float = 1.0) -> NaturalGradient:
    r"""The exact natural gradient ``F^+ grad J`` of the linear softmax policy.

    ``F = sum_s d(s) sum_a pi(a|s) g(s, a) g(s, a)^T`` with ``g`` the score
    (:func:`softmax_scores`) and ``d`` the state weighting of the
    policy-gradient theorem: the stationary distribution for a continuing
    model, the expected (unnormalised) visits for an episodic one (so that
    ``F w = grad J`` holds with the theorem's own ``grad J``; normalising the
    visits would scale ``F`` and leave the natural direction's length
    ``sum_s eta(s)`` times larger).

    ``F`` is singular by construction: the softmax is unchanged when the same
    amount is added to every action's preference, so for every feature
    vector ``u`` the direction ``theta += u 1^T`` has zero score in every state
    (``sum_b g_(i, b)(s, a) = 0``), and ``F`` has at least ``n_features`` zero
    eigenvalues (more where states are never visited, or aliased states leave
    directions unidentified).  The pseudo-inverse gives the natural
    gradient of least norm, orthogonal to those directions; since
    ``grad J`` lies in the range of ``F`` (it is ``F w`` for the compatible
    ``w`` below), ``F F^+ grad J = grad J`` exactly, so no damping is needed.

    Compatible features (Sutton et al. 2000; Kakade 2002): the least-squares
    fit of the advantage ``A(s, a)`` by ``w . g(s, a)``, weighted by
    ``d(s) pi(a|s)``, has normal equations ``F w = sum_s d(s) sum_a pi g A =
    grad J``: its minimum-norm ``w`` is the natural gradient.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        Continuing, or episodic (with ``terminal`` states).
    theta : array_like, shape (n_features, n_actions)
    features : array_like, shape (n_states, n_features)
    tau : float, default 1.0
    gamma : float, default 1.0
        Episodic models only.

    Returns
    -------
    NaturalGradient
        Vectors flattened like ``theta.reshape(-1)``.

    Raises
    ------
    ValueError
        As :func:`policy_gradient`; and a ``gamma`` other than 1 for a
        continuing model.
    """
    theta, features, tau = _check_linear(model, theta, features, tau)
    return natural_gradient_from_scores(model, _softmax(theta, features, tau),
                                        softmax_scores(theta, features, tau), gamma)


# --- optimal control: relative value iteration, checked by policy iteration ---------------


@dataclass(frozen=True)
class OptimalControl:
    """An optimal policy of a tabular task, its reward rate and differential values.

    Attributes
    ----------
    reward_rate : float
        The optimal reward rate ``r*`` from the model's start distribution
        (``start . gain``).
    policy : ndarray, shape (n_states, n_actions)
        A deterministic optimal policy (one-hot rows; among actions whose
        values agree within a relative ``1e-9``, the lowest index).
    v : ndarray, shape (n_states,)
        Differential values (bias) of the optimal policy, normalised as
        :class:`Evaluation`'s (``P* v = 0`` under it).
    q : ndarray, shape (n_states, n_actions)
        ``q*(s, a) = R[s, a] - r* + sum_s' P[s, a, s'] v(s')``.
    iterations : int
        Sweeps (relative value iteration) or improvements (policy iteration).
    gain : ndarray, shape (n_states,)
        The optimal reward rate from each state.  Constant when the model is
        weakly communicating (every task of this package's); it varies only in
        a multichain model where some states cannot reach the best loop.
    """

    reward_rate: float
    policy: np.ndarray
    v: np.ndarray
    q: np.ndarray
    iterations: int
    gain: np.ndarray


# Actions whose values agree within this relative amount count as tied.  Fixed
# rather than tied to ``tol``: a loose tolerance must not make a worse action
# look optimal.
_TIE = 1e-9


def _optimal_from(model, actions, iterations):
    """The :class:`OptimalControl` of the deterministic policy ``actions``."""
    n_states, n_actions = model.R.shape
    policy = np.zeros((n_states, n_actions))
    policy[np.arange(n_states), actions] = 1.0
    ev = evaluate(model, policy)
    return ev, OptimalControl(reward_rate=ev.reward_rate, policy=_readonly(policy),
                              v=ev.v, q=ev.q, iterations=iterations, gain=ev.gain)


def _check_iterations(max_iterations) -> int:
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, (int, np.integer)) \
            or max_iterations < 1:
        raise ValueError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    return int(max_iterations)


def _check_open_unit(value, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}") from exc
    if isinstance(value, bool) or not 0.0 < x < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return x


def _check_tol(tol) -> float:
    return _check_positive(tol, "tol")


def _check_positive(value, name: str) -> float:
    return check_positive(name, value)


def _first_best(values: np.ndarray, keep=None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the lowest index within ``_TIE`` of the best (``keep``'s if it is)."""
    best = values.max(axis=1, keepdims=True)
    tied = values >= best - _TIE * (1.0 + np.abs(best))
    chosen = np.argmax(tied, axis=1)
    if keep is not None:
        chosen = np.where(tied[np.arange(len(keep)), keep], keep, chosen)
    return chosen, tied


def relative_value_iteration(model: TabularModel, tau: float = 0.5, tol: float = 1e-12,
                             max_iterations: int = 1_000_000) -> OptimalControl:
    r"""The optimal reward rate and policy by relative value iteration (Puterman 8.5).

    On the aperiodic transform ``P' = tau P + (1 - tau) I``, ``R' = tau R``
    (the same optimal policies; rates scale by ``tau``), from ``h = 0``::

        h <- T h - (T h)(s_ref),   T h(s) = max_a R'(s, a) + sum_s' P'(s, a, s') h(s')

    with ``s_ref = 0``, until the span of ``T h - h`` is below
    ``tol * max(1, span(R))``: then the greedy policy (ties within a relative
    ``1e-9`` to the lowest action) is optimal.  The transform makes periodic
    chains (the loop MDP's) converge.

    Relative value iteration needs the optimal reward rate to be the same
    from every state (a weakly communicating model: every task of this
    package's).  If it has not converged after 1,000 sweeps, the optimal gain
    is computed by :func:`policy_iteration`; if it varies across states, a
    ``ValueError`` says so at once instead of sweeping on.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        A continuing task.
    tau : float, default 0.5
        In (0, 1).
    tol : float, default 1e-12
        Finite, > 0; relative to the span of the rewards.
    max_iterations : int, default 1,000,000

    Returns
    -------
    OptimalControl
        Its ``reward_rate``, ``v``, ``q`` and ``gain`` are the greedy
        policy's, evaluated exactly.

    Raises
    ------
    ValueError
        On a bad model or setting, a model whose optimal reward rate depends
        on the start state, or no convergence in ``max_iterations``.
    """
    P, R, _ = _check_model(model)
    tau = _check_open_unit(tau, "tau")
    tol = _check_tol(tol) * max(1.0, float(np.ptp(R)))
    max_iterations = _check_iterations(max_iterations)
    n_states = P.shape[0]
    P_t = tau * P + (1.0 - tau) * np.eye(n_states)[:, None, :]
    R_t = tau * R
    h = np.zeros(n_states)
    for sweep in range(1, max_iterations + 1):
        Th = np.max(R_t + P_t @ h, axis=1)
        diff = Th - h
        if diff.max() - diff.min() < tol:
            break
        if sweep == 1000:
            _refuse_multichain(model)
        h = Th - Th[0]
    else:
        raise ValueError(f"relative value iteration did not converge in {max_iterations:,} "
                         f"sweeps (span {diff.max() - diff.min():.3g})")
    actions, _ = _first_best(R_t + P_t @ h)
    return _optimal_from(model, actions, sweep)[1]


def _refuse_multichain(model):
    gain = policy_iteration(model).gain
    if np.ptp(gain) > 1e-9 * (1.0 + np.abs(gain).max()):
        raise ValueError(
            "relative value iteration needs the optimal reward rate to be the same from every "
            f"state, but this model is multichain (it ranges from {gain.min():.6g} to "
            f"{gain.max():.6g} across states); use policy_iteration")


def policy_iteration(model: TabularModel, max_iterations: int = 10_000) -> OptimalControl:
    """The optimal reward rate and policy by multichain policy iteration (Puterman 9.2).

    From "action 0 everywhere": evaluate the policy exactly (per-state gain
    ``g`` and bias ``v``, :func:`evaluate`); then improve the gain, in every
    state taking an action maximising ``sum_s' P[s, a, s'] g(s')``; if no
    action changes, improve the bias among those gain-maximising actions,
    taking one maximising ``R[s, a] + sum_s' P[s, a, s'] v(s')``.  The
    current action is kept whenever it is within a relative ``1e-9`` of the
    best; the policy is optimal when neither step changes it.  For a
    unichain model the first step never changes anything and this is
    Howard's unichain policy iteration; the first step is what finds the
    best recurrent class when some policies are multichain (in the aliased
    gridworld, for one, deterministic policies can split the grid into
    separate loops).

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    max_iterations : int, default 10,000
        Improvements before giving up.

    Returns
    -------
    OptimalControl

    Raises
    ------
    ValueError
        On a bad model or setting, or no convergence in ``max_iterations``.
    """
    P, R, _ = _check_model(model)
    max_iterations = _check_iterations(max_iterations)
    actions = np.zeros(P.shape[0], dtype=np.int64)
    for iteration in range(1, max_iterations + 1):
        ev, current = _optimal_from(model, actions, iteration)
        chosen, tied = _first_best(P @ ev.gain, keep=actions)
        if np.array_equal(chosen, actions):
            values = np.where(tied, R + P @ ev.v, -np.inf)
            chosen, _ = _first_best(values, keep=actions)
            if np.array_equal(chosen, actions):
                return current
        actions = chosen
    raise ValueError(f"policy iteration did not converge in {max_iterations:,} improvements")


# --- maximum-entropy control: the soft Bellman operator in the average-reward form ---------


@dataclass(frozen=True)
class SoftControl:
    """The soft-optimal (maximum-entropy) policy of a tabular task at one temperature.

    The objective is the entropy-regularised reward rate
    ``rho_beta(pi) = lim (1/N) E[sum_t R_t + beta H(pi(.|S_t))]``
    ``= sum_s mu_pi(s) (r_pi(s) + beta H(pi(.|s)))``.

    All arrays are read-only.

    Attributes
    ----------
    temperature : float
        ``beta``, the weight of the entropy.
    policy : ndarray, shape (n_states, n_actions)
        ``pi(a|s) = exp(q(s, a) / beta) / sum_b exp(q(s, b) / beta)``.
    regularised_rate : float
        ``rho_beta`` of ``policy``: the best any policy reaches.
    reward_rate : float
        The plain reward rate ``r(pi)`` of ``policy`` (no entropy).
    entropy : float
        The stationary mean entropy ``sum_s mu(s) H(pi(.|s))`` in nats per
        step; ``regularised_rate = reward_rate + temperature * entropy``.
    v : ndarray, shape (n_states,)
        Soft differential values: the bias of the reward ``r_pi + beta H_pi``
        under ``policy`` (normalised as :class:`Evaluation`'s, ``P* v = 0``).
        They satisfy the soft Bellman equation
        ``v(s) = beta log sum_a exp(q(s, a) / beta)``.
    q : ndarray, shape (n_states, n_actions)
        ``q(s, a) = R[s, a] - rho_beta + sum_s' P[s, a, s'] v(s')``.
    iterations : int
        Sweeps of relative value iteration.
    """

    temperature: float
    policy: np.ndarray
    regularised_rate: float
    reward_rate: float
    entropy: float
    v: np.ndarray
    q: np.ndarray
    iterations: int


def _log_sum_exp(values: np.ndarray, beta: float) -> np.ndarray:
    """Per row ``beta log sum_a exp(values / beta)``, the max taken out first."""
    top = values.max(axis=1)
    return top + beta * np.log(np.exp((values - top[:, None]) / beta).sum(axis=1))


def _boltzmann_rows(values: np.ndarray, beta: float) -> np.ndarray:
    e = np.exp((values - values.max(axis=1, keepdims=True)) / beta)
    return e / e.sum(axis=1, keepdims=True)


def _row_entropy(pi: np.ndarray) -> np.ndarray:
    logs = np.log(np.where(pi > 0.0, pi, 1.0))
    return -np.sum(pi * logs, axis=1)


def _soft_control(model, P, R, start, pi, beta, iterations) -> SoftControl:
    """Evaluate ``pi`` exactly, with and without the entropy bonus."""
    H = _row_entropy(pi)
    plain = evaluate(model, pi)
    # The entropy as a reward of the state: the same for every action there.
    soft = evaluate(_Model(P, R + beta * H[:, None], start), pi)
    entropy_rate = float(plain.stationary @ H)
    return SoftControl(
        temperature=beta, policy=_readonly(pi), regularised_rate=soft.reward_rate,
        reward_rate=plain.reward_rate, entropy=entropy_rate, v=soft.v,
        q=_readonly(soft.q - beta * H[:, None]), iterations=iterations)


@dataclass(frozen=True)
class _Model:
    """The arrays of a TabularModel, for evaluating a changed reward."""

    P: np.ndarray
    R: np.ndarray
    start: np.ndarray


def soft_relative_value_iteration(model: TabularModel, temperature: float, tau: float = 0.5,
                                  tol: float = 1e-12,
                                  max_iterations: int = 1_000_000) -> SoftControl:
    r"""The maximum-entropy optimal policy by soft relative value iteration.

    Maximises the entropy-regularised reward rate
    ``rho_beta(pi) = sum_s mu_pi(s) (r_pi(s) + beta H(pi(.|s)))`` over all
    stationary policies, ``beta = temperature``.  Its optimality equation is
    the soft (softmax) Bellman equation in the average-reward form::

        v(s) + rho_beta = beta log sum_a exp((R(s, a) + sum_s' P(s, a, s') v(s')) / beta)

    (the hard max of :func:`relative_value_iteration` with its
    ``beta -> 0`` limit, ``beta log sum exp(x / beta) -> max x``), and the
    soft-optimal policy is ``pi(a|s) = exp(q(s, a) / beta) / exp(v(s) / beta)``.
    As there, the iteration runs on the aperiodic transform
    ``P' = tau P + (1 - tau) I`` with the whole per-step objective scaled by
    ``tau`` (reward and entropy alike: a policy's stationary distribution is
    unchanged, its rate scales by ``tau``, so the optimal policy is the same)::

        h <- T h - (T h)(0),
        T h(s) = tau beta log sum_a exp((R(s, a) + sum_s' P(s, a, s') h(s')) / beta) + (1 - tau) h(s)

    until the span of ``T h - h`` is below ``tol * max(1, span(R))``.  The
    policy it gives is then evaluated exactly (:func:`evaluate`).

    Bounds that follow from ``0 <= H <= log n_actions``:
    ``r* <= rho_beta <= r* + beta log n_actions`` and the soft policy's plain
    rate is at least ``r* - beta log n_actions`` (``r*``:
    :func:`policy_iteration`'s rate); as ``beta`` grows the policy tends
    to the uniform one.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        A continuing task (every soft policy takes every action, so the
        model need only be weakly communicating: every task of this package's).
    temperature : float
        ``beta > 0``, the entropy's weight.  It is the actor-critic's
        ``entropy=`` setting, not its softmax ``tau`` (see the guide's page
        "Maximum entropy").
    tau : float, default 0.5
        The aperiodic transform's weight, in (0, 1).
    tol : float, default 1e-12
        Finite, > 0; relative to the span of the rewards.
    max_iterations : int, default 1,000,000

    Returns
    -------
    SoftControl

    Raises
    ------
    ValueError
        Naming the setting, on a ``temperature`` that is not a finite number
        > 0, a bad ``tau``, ``tol``, ``max_iterations`` or model, a model
        whose optimal reward rate depends on the start state (after 1,000
        sweeps, as :func:`relative_value_iteration`), or no convergence in
        ``max_iterations``.

    Examples
    --------
    >>> from avgreward import exact
    >>> soft = exact.soft_relative_value_iteration(exact.model_of("avgreward/LoopMDP-v0"), 1.0)
    >>> round(soft.policy[0, 1], 6)  # right over left at S: exp(2) / (exp(1) + exp(2))
    0.731059
    """
    P, R, start = _check_model(model)
    beta = _check_positive(temperature, "temperature")
    tau = _check_open_unit(tau, "tau")
    tol = _check_tol(tol) * max(1.0, float(np.ptp(R)))
    max_iterations = _check_iterations(max_iterations)
    h = np.zeros(P.shape[0])
    for sweep in range(1, max_iterations + 1):
        Th = tau * _log_sum_exp(R + P @ h, beta) + (1.0 - tau) * h
        diff = Th - h
        if diff.max() - diff.min() < tol:
            break
        if sweep == 1000:  # as relative_value_iteration: say so rather than sweep on
            _refuse_multichain(model)
        h = Th - Th[0]
    else:
        raise ValueError(f"soft relative value iteration did not converge in "
                         f"{max_iterations:,} sweeps (span {diff.max() - diff.min():.3g})")
    pi = _boltzmann_rows(R + P @ h, beta)
    return _soft_control(model, P, R, start, pi, beta, sweep)


def entropy_bonus_equilibrium(model: TabularModel, entropy: float, tol: float = 1e-12,
                              max_iterations: int = 100_000) -> SoftControl:
    r"""The policy the actor-critic's entropy bonus settles on: ``pi = softmax(q_pi / beta)``.

    The softmax actor-critic with ``entropy=beta`` (:mod:`avgreward.reference`,
    the spec's "theta <- theta + alpha_theta beta grad H(pi(.|S))") learns a
    critic of the plain reward, so its expected actor update with tabular
    features and an exact critic is, in every state ``s`` (``mu(s) > 0``),

        ``mu(s) sum_b pi_b (q_pi(s, b) - v_pi(s) - beta (log pi_b + H)) / tau``

    for the preference of action ``b``.  It vanishes exactly when
    ``pi(.|s) = softmax(q_pi(s, .) / beta)`` with the *plain* differential
    action values ``q_pi`` of :func:`evaluate`: the entropy is rewarded where
    it is taken, not where it leads.  The soft-optimal policy
    (:func:`soft_relative_value_iteration`) is the same equation with the
    soft values, which also count the entropy of the states an action leads
    to; the two agree when that future entropy is the same after every action
    (the loop MDP) and differ otherwise.  Neither depends on the softmax
    ``tau`` or the step sizes, which only set how fast and how noisily the
    learner gets there.

    Found by the damped iteration ``l <- (l + q_pi / beta) / 2`` of the
    logits ``l`` of ``pi`` from the uniform policy, until
    ``max |pi - softmax(q_pi / beta)| < tol``.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    entropy : float
        ``beta > 0``, the actor-critic's ``entropy=`` setting.
    tol : float, default 1e-12
    max_iterations : int, default 100,000

    Returns
    -------
    SoftControl
        ``regularised_rate``, ``v`` and ``q`` are the entropy-regularised
        ones of this policy (as in :func:`soft_relative_value_iteration`),
        so the two can be compared; it is never above the soft optimum.

    Raises
    ------
    ValueError
        Naming the setting, on an ``entropy`` that is not a finite number > 0,
        a bad ``tol``, ``max_iterations`` or model, or no convergence.
    """
    P, R, start = _check_model(model)
    beta = _check_positive(entropy, "entropy")
    tol = _check_tol(tol)
    max_iterations = _check_iterations(max_iterations)
    logits = np.zeros(R.shape)
    for iteration in range(1, max_iterations + 1):
        pi = _boltzmann_rows(logits, 1.0)
        target = evaluate(model, pi).q / beta
        if np.abs(pi - _boltzmann_rows(target, 1.0)).max() < tol:
            break
        logits = 0.5 * (logits + target)
    else:
        raise ValueError(f"entropy_bonus_equilibrium did not converge in {max_iterations:,} "
                         "iterations")
    return _soft_control(model, P, R, start, pi, beta, iteration)


def model_of(env_id: str) -> TabularModel:
    """The exact model of one of this package's tabular environments, by its id.

    The same :class:`~avgreward.envs.model.TabularModel` as the environment's
    own ``model()`` method (``envs.loop_mdp_model()`` for the loop MDP,
    ``envs.access_control_model()`` for access control...), without having
    to know which function writes it down.

    Parameters
    ----------
    env_id : str
        A registered id of an environment of the fused loop
        (``"avgreward/LoopMDP-v0"``, with or without the ``"avgreward.envs:"``
        module prefix), or of a user's declared environment that declares a model.

    Returns
    -------
    avgreward.envs.model.TabularModel

    Raises
    ------
    ValueError
        Naming ``env_id``, if it is not such an environment, or if that
        environment has no exact model (the pendulum swing-up: its states
        are continuous).

    Examples
    --------
    >>> import numpy as np
    >>> from avgreward import exact
    >>> model = exact.model_of("avgreward/LoopMDP-v0")
    >>> always_right = np.tile([0.0, 1.0], (model.n_states, 1))
    >>> round(exact.evaluate(model, always_right).reward_rate, 6)
    0.4
    """
    from avgreward.environments import resolve_env

    if not isinstance(env_id, str):
        raise ValueError(f"model_of: env_id must be an environment id (a str), got {env_id!r}")
    try:
        _, cls = resolve_env(env_id)
    except ValueError as error:
        raise ValueError(f"model_of: no exact model for {env_id!r}: {error}") from None
    model = _declared_model(cls)
    if model is None:
        from avgreward import envs

        with_one = [i for i in envs.ENV_IDS if _declared_model(resolve_env(i)[1]) is not None]
        raise ValueError(
            f"model_of: {env_id!r} has no exact model ({cls.__name__} declares none); "
            f"this package's environments with one are {with_one}"
        )
    return model


def _declared_model(cls):
    """``cls().model()``, or None if the environment class declares no exact model."""
    try:
        return cls().model()
    except (AttributeError, NotImplementedError):
        return None


@dataclass(frozen=True)
class TDFixedPoint:
    """The fixed point of linear differential TD (one step) for a target and a behaviour.

    Attributes
    ----------
    weights : ndarray, shape (n_features,)
        ``w``, in the span of the states' feature vectors (where updates from
        ``w = 0`` stay), its constant fixed as :func:`differential_td_fixed_point` says.
    reward_rate : float
        ``Rbar`` of the fixed point (the target's rate when the features can
        represent its differential values).
    values : ndarray, shape (n_states,)
        ``X w``.
    stationary : ndarray, shape (n_states,)
        ``d_b``, the behaviour's state distribution that weights the projection.
    """

    weights: np.ndarray
    reward_rate: float
    values: np.ndarray
    stationary: np.ndarray


def differential_td_fixed_point(model: TabularModel, features, target: ArrayLike,
                                behaviour: ArrayLike | None = None, *,
                                eta: float | None = None) -> TDFixedPoint:
    r"""Weights and rate of linear differential TD(0)'s fixed point (Wan, Naik & Sutton 2021).

    With ``X`` the feature matrix, ``d_b`` the behaviour's state distribution
    (``evaluate(model, behaviour).stationary``), ``D = diag(d_b)`` and the
    target's ``P_pi``, ``r_pi``, the expected update of
    :class:`~avgreward.agents.DifferentialTD` is zero where

    .. math:: X^\top D \,(r_\pi - \bar R \mathbf 1 + P_\pi X w - X w) = 0,

    the projected differential Bellman equation (``E_b[rho delta x(S)] = 0``;
    ``E_b[rho delta] = 0`` follows when ``X`` spans the constants, as binary
    features with k active in every state do).  ``Rbar`` is unique; ``w`` is
    unique in the span of the rows of ``X`` up to a shift of every value by
    one constant, which is fixed by

    * ``eta`` given: the learner's invariant from ``w = 0, Rbar = 0``: each
      update moves ``Rbar`` by ``eta / k`` times what it adds to ``sum(w)``
      (``alpha`` divided by the ``k`` active features), so the limit has
      ``Rbar = (eta / k) sum(w)``;
    * ``eta`` None: ``d_b . X w = 0`` (values centered under ``d_b``).

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    features : array_like (n_states, n_features), TileCoder or str
        The feature matrix ``X``, or a feature map or environment id for
        :func:`feature_matrix`.
    target : array_like, shape (n_states, n_actions)
    behaviour : array_like, optional
        Default the target (on-policy).
    eta : float, optional
        The learner's ``eta`` (see above); needs the same number of active
        features in every state.

    Returns
    -------
    TDFixedPoint

    Raises
    ------
    ValueError
        If the policies or features do not fit the model, the projected
        equation has no solution, or ``eta`` is not > 0.
    """
    P, R, _ = _check_model(model)
    n_states, n_actions = P.shape[:2]
    X = features if isinstance(features, np.ndarray) else None
    if X is None and (isinstance(features, str) or hasattr(features, "indices")):
        X = feature_matrix(model, features)
    X = _as_float64(features if X is None else X, "features")[0]
    if X.ndim != 2 or X.shape[0] != n_states or not np.all(np.isfinite(X)):
        raise ValueError(f"features must be a finite matrix (n_states, n_features) with "
                         f"n_states = {n_states}, got shape {X.shape}")
    pi = _check_policy(target, n_states, n_actions, "target")
    b = pi if behaviour is None else _check_policy(behaviour, n_states, n_actions, "behaviour")
    uncovered = (pi > 0) & (b == 0)
    if np.any(uncovered):
        s, a = np.argwhere(uncovered)[0]
        raise ValueError(f"behaviour must cover the target: at state {s} the target takes "
                         f"action {a} and the behaviour never does")
    d = evaluate(model, b).stationary
    P_pi, r_pi = _chain(P, R, pi)
    XD = X.T * d
    M = np.hstack([XD @ (P_pi - np.eye(n_states)) @ X, -(XD.sum(axis=1))[:, None]])
    rhs = -(XD @ r_pi)
    sol, *_ = np.linalg.lstsq(M, rhs, rcond=None)
    scale = max(1.0, float(np.abs(rhs).max()))
    if np.abs(M @ sol - rhs).max() > 1e-8 * scale:
        raise ValueError("features: the projected differential Bellman equation has no "
                         "solution for these features and policies")
    pinv = np.linalg.pinv(X)
    w, rate = pinv @ (X @ sol[:-1]), float(sol[-1])
    shift = pinv @ np.ones(n_states)
    if np.abs(X @ shift - 1.0).max() < 1e-9:  # the features span the constants
        if eta is None:
            w = w - (d @ X @ w) * shift
        else:
            eta = float(eta)
            if not (math.isfinite(eta) and eta > 0):
                raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
            k = X.sum(axis=1)
            if np.ptp(k) > 1e-12 or k[0] <= 0:
                raise ValueError("eta: the learner's invariant needs the same number of "
                                 "active features in every state")
            # Rbar = (eta / k) sum(w + t shift)
            w = w + (rate * k[0] / eta - w.sum()) / shift.sum() * shift
    return TDFixedPoint(weights=_readonly(w), reward_rate=rate, values=_readonly(X @ w),
                        stationary=_readonly(d))


def centered_rms_error(values: ArrayLike, true_values: ArrayLike,
                       weights: ArrayLike | None = None) -> np.ndarray | float:
    r"""RMS error of values after each is centered: what differential values are up to a constant.

    .. math:: \sqrt{\textstyle\sum_s d(s)\,\big((\hat v(s) - d\cdot\hat v)
              - (v(s) - d\cdot v)\big)^2}

    Parameters
    ----------
    values : array_like, shape (..., n_states)
        Learned values ``v_hat`` (one row per time, say).
    true_values : array_like, shape (n_states,)
        Exact differential values (``evaluate(model, target).v``).
    weights : array_like, shape (n_states,), optional
        ``d``, a distribution over states; default uniform.

    Returns
    -------
    float or ndarray of shape ``values.shape[:-1]``
    """
    v_hat = _as_float64(values, "values")[0]
    v = _as_float64(true_values, "true_values")[0]
    if v.ndim != 1 or v_hat.shape[-1:] != v.shape:
        raise ValueError(f"values must end in true_values' length {v.shape}, got "
                         f"{v_hat.shape}")
    d = (np.full(v.size, 1.0 / v.size) if weights is None
         else _as_float64(weights, "weights")[0])
    if d.shape != v.shape or np.any(d < 0) or abs(d.sum() - 1.0) > 1e-9:
        raise ValueError("weights must be a distribution over the states")
    error = (v_hat - (v_hat @ d)[..., None]) - (v - v @ d)
    out = np.sqrt((error**2) @ d)
    return float(out) if out.ndim == 0 else out
