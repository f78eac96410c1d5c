"""A small ReLU network policy: one hidden layer, softmax over actions, backpropagation by hand.

The lecture notes' network (seed 003): ``z = W1 x + b1``, ``h = ReLU(z)``,
``l = W2 h + b2``, ``pi(.|x) = softmax(l / tau)``.  Its score
``grad ln pi(a|x)`` with respect to every parameter comes from the chain
rule written out (numba-jitted): with ``e_a`` the one-hot action,

- ``d ln pi(a|x) / d l = (e_a - pi) / tau``;
- ``d / dW2 = outer(d l, h)``, ``d / db2 = d l``;
- ``d / dz = (W2^T d l) * 1[z > 0]`` (the ReLU's derivative, 0 at the kink);
- ``d / dW1 = outer(d z, x)``, ``d / db1 = d z``.

Parameters are one flat float64 vector, in the order ``W1`` (row-major,
``(n_hidden, n_inputs)``), ``b1``, ``W2`` (``(n_actions, n_hidden)``), ``b2``: a few
hundred numbers, plain arrays, deterministic (``ReLUPolicy.init`` from its
seed).  Not a deep-learning framework: it exists so that the exact analysis
(:func:`policy_gradient`, :func:`natural_gradient`) and the estimator lab
(``avgreward.estimators.estimator_lab(..., network=...)``) can be run for a
nonlinear policy, whose score is all the policy-gradient estimators need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from avgreward import exact
from avgreward.options import check_int

__all__ = ["ReLUPolicy", "policy_gradient", "natural_gradient"]


def _positive_int(name, value):
    return check_int(name, value, 1)


@njit(cache=True, error_model="numpy")
def _forward(params, x, n_hidden, n_actions, tau, z, probs):
    """Pre-activations ``z`` of the hidden layer and the action probabilities, in place."""
    n_in = x.shape[0]
    o_b1 = n_hidden * n_in
    o_w2 = o_b1 + n_hidden
    o_b2 = o_w2 + n_actions * n_hidden
    for j in range(n_hidden):
        acc = params[o_b1 + j]
        for i in range(n_in):
            acc += params[j * n_in + i] * x[i]
        z[j] = acc
    top = -np.inf
    for a in range(n_actions):
        acc = params[o_b2 + a]
        for j in range(n_hidden):
            if z[j] > 0.0:
                acc += params[o_w2 + a * n_hidden + j] * z[j]
        probs[a] = acc / tau
        top = max(top, probs[a])
    total = 0.0
    for a in range(n_actions):
        probs[a] = np.exp(probs[a] - top)  # the largest preference subtracted: no overflow
        total += probs[a]
    for a in range(n_actions):
        probs[a] /= total


@njit(cache=True, error_model="numpy")
def _backprop(params, x, action, n_hidden, n_actions, tau, z, probs, score):
    """``grad ln pi(action|x)`` into ``score`` (flat, the parameters' order), after ``_forward``."""
    n_in = x.shape[0]
    o_b1 = n_hidden * n_in
    o_w2 = o_b1 + n_hidden
    o_b2 = o_w2 + n_actions * n_hidden
    for a in range(n_actions):
        dl = ((1.0 if a == action else 0.0) - probs[a]) / tau
        score[o_b2 + a] = dl
        for j in range(n_hidden):
            score[o_w2 + a * n_hidden + j] = dl * max(z[j], 0.0)
    for j in range(n_hidden):
        dz = 0.0
        if z[j] > 0.0:
            for a in range(n_actions):
                dz += params[o_w2 + a * n_hidden + j] * score[o_b2 + a]
        score[o_b1 + j] = dz
        for i in range(n_in):
            score[j * n_in + i] = dz * x[i]


@njit(cache=True, error_model="numpy")
def _tables(params, X, n_hidden, n_actions, tau, pi, scores):
    """``pi[s]`` and ``scores[s, a]`` for every row ``X[s]``."""
    z = np.zeros(n_hidden)
    for s in range(X.shape[0]):
        _forward(params, X[s], n_hidden, n_actions, tau, z, pi[s])
        for a in range(n_actions):
            _backprop(params, X[s], a, n_hidden, n_actions, tau, z, pi[s], scores[s, a])


@dataclass(frozen=True)
class ReLUPolicy:
    """The shape of a one-hidden-layer ReLU softmax policy, and the seed of its initial weights.

    Parameters
    ----------
    n_inputs : int
        Length of the input (the feature vector ``x(s)``).
    n_hidden : int
        Hidden ReLU units.
    n_actions : int
        Actions (the softmax's outputs).
    seed : int, default 0
        Seeds :meth:`init`.
    tau : float, default 1.0
        Softmax temperature: ``pi = softmax(l / tau)``.

    Raises
    ------
    ValueError
        Naming the setting that is not a positive integer (``seed``: >= 0;
        ``tau``: a positive finite number).
    """

    n_inputs: int
    n_hidden: int
    n_actions: int
    seed: int = 0
    tau: float = 1.0

    def __post_init__(self):
        for name in ("n_inputs", "n_hidden", "n_actions"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if isinstance(self.tau, (bool, str)):
            raise ValueError(f"tau must be a positive finite number, got {self.tau!r}")
        try:
            tau = float(self.tau)
        except (TypeError, ValueError):
            raise ValueError(f"tau must be a positive finite number, got {self.tau!r}") from None
        if not (np.isfinite(tau) and tau > 0):
            raise ValueError(f"tau must be a positive finite number, got {self.tau!r}")
        object.__setattr__(self, "tau", tau)

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return (self.n_hidden * (self.n_inputs + 1)) + self.n_actions * (self.n_hidden + 1)

    def init(self, scale: float = 1.0) -> np.ndarray:
        """Initial parameters from ``seed``: He-scaled normal weights, small normal biases.

        ``W1 ~ N(0, 2 / n_inputs)``, ``W2 ~ N(0, 1 / n_hidden)`` (times ``scale``),
        biases ``N(0, 0.1^2)``: random biases keep every pre-activation off the
        ReLU's kink at 0, where the derivative is one-sided.
        """
        rng = np.random.default_rng(self.seed)
        w1 = rng.normal(scale=scale * np.sqrt(2.0 / self.n_inputs),
                        size=self.n_hidden * self.n_inputs)
        b1 = rng.normal(scale=0.1, size=self.n_hidden)
        w2 = rng.normal(scale=scale / np.sqrt(self.n_hidden),
                        size=self.n_actions * self.n_hidden)
        b2 = rng.normal(scale=0.1, size=self.n_actions)
        return np.concatenate([w1, b1, w2, b2])

    def unpack(self, params) -> dict:
        """The flat vector as ``W1, b1, W2, b2`` arrays (views)."""
        params = self.check_params(params)
        h, i, a = self.n_hidden, self.n_inputs, self.n_actions
        cuts = np.cumsum([h * i, h, a * h])
        w1, b1, w2, b2 = np.split(params, cuts)
        return {"W1": w1.reshape(h, i), "b1": b1, "W2": w2.reshape(a, h), "b2": b2}

    def check_params(self, params) -> np.ndarray:
        """``params`` as a contiguous float64 vector of ``n_params``, or a ValueError."""
        try:
            params = np.ascontiguousarray(params, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params must be a numeric vector: {exc}") from None
        if params.shape != (self.n_params,):
            raise ValueError(f"params must have shape ({self.n_params},) for this network "
                             f"({self.n_inputs}-{self.n_hidden}-{self.n_actions}), "
                             f"got {params.shape}")
        if not np.all(np.isfinite(params)):
            raise ValueError("params must be finite")
        return params

    def check_features(self, features) -> np.ndarray:
        """``features`` as a (n_rows, n_inputs) float64 array, or a ValueError naming n_inputs."""
        try:
            X = np.ascontiguousarray(features, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"features must be a numeric array: {exc}") from None
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"features must have n_inputs = {self.n_inputs} columns "
                             f"(ReLUPolicy.n_inputs), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("features must be finite")
        return X

    def tables(self, params, features) -> tuple[np.ndarray, np.ndarray]:
        """``pi[s, a]`` and the scores ``grad ln pi(a|x(s))``, shape (S, A, n_params), of every row.

        Parameters
        ----------
        params : array_like, shape (n_params,)
        features : array_like, shape (n_states, n_inputs)

        Returns
        -------
        pi : ndarray, shape (n_states, n_actions)
        scores : ndarray, shape (n_states, n_actions, n_params)
        """
        params = self.check_params(params)
        X = self.check_features(features)
        pi = np.zeros((X.shape[0], self.n_actions))
        scores = np.zeros((X.shape[0], self.n_actions, self.n_params))
        _tables(params, X, self.n_hidden, self.n_actions, self.tau, pi, scores)
        return pi, scores

    def probabilities(self, params, features) -> np.ndarray:
        """``pi[s, a]`` for every row of ``features`` (the forward pass)."""
        return self.tables(params, features)[0]


def _model_inputs(model, policy, params, features):
    if not isinstance(policy, ReLUPolicy):
        raise ValueError(f"policy must be a ReLUPolicy, got {type(policy).__name__}")
    n_states, n_actions = np.shape(model.R)
    if policy.n_actions != n_actions:
        raise ValueError(f"ReLUPolicy.n_actions = {policy.n_actions} does not match the "
                         f"model's {n_actions} actions")
    X = policy.check_features(features)
    if X.shape[0] != n_states:
        raise ValueError(f"features must have one row per state of the model ({n_states}), "
                         f"got {X.shape[0]}")
    return policy.tables(params, X)


def policy_gradient(model, policy: ReLUPolicy, params, features, gamma: float = 1.0):
    """The exact gradient of the objective for the network policy (flat, like ``params``).

    The chain rule through the network is in its score: the gradient is
    :func:`avgreward.exact.score_gradient` with the backpropagated scores,
    ``sum_s d(s) sum_a pi(a|s) q(s, a) grad ln pi(a|s)`` with ``d`` the
    stationary distribution (continuing model) or expected visits (episodic).

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
    policy : ReLUPolicy
    params : array_like, shape (policy.n_params,)
    features : array_like, shape (n_states, policy.n_inputs)
    gamma : float, default 1.0
        Episodic models only: the discount.

    Returns
    -------
    ndarray, shape (policy.n_params,)
    """
    pi, scores = _model_inputs(model, policy, params, features)
    return exact.score_gradient(model, pi, scores, gamma)


def natural_gradient(model, policy: ReLUPolicy, params, features, gamma: float = 1.0):
    """:func:`avgreward.exact.natural_gradient`'s analysis for the network policy.

    Returns
    -------
    avgreward.exact.NaturalGradient
    """
    pi, scores = _model_inputs(model, policy, params, features)
    return exact.natural_gradient_from_scores(model, pi, scores, gamma)
