"""The gradient-estimator laboratory: every estimator of the lecture notes, against the exact gradient.

Under a fixed linear softmax policy (or a ReLU network policy,
:class:`avgreward.network_policy.ReLUPolicy`, given as ``network``) on an
episodic tabular task (an absorbing :class:`avgreward.envs.model.TabularModel`),
:func:`estimator_lab` samples episodes in
batches (jitted, from the model itself) and computes, for each episode, each
estimator of ``grad J`` (``J = E[R(tau)]``, gamma = 1) of the notes (seeds
000-002; ``../shared/spec/algorithms.md``, "Policy-gradient estimators"), with
``g_t = grad ln pi(a_t | s_t)``, ``r_t`` the reward after ``a_t``,
``G_t = sum_{t' >= t} r_t'`` and ``delta_t = r_t + v(s_{t+1}) - v(s_t)``:

================================  =============================================
``total return``                  ``g(tau) R(tau)``, ``g(tau) = sum_t g_t``
``reward-to-go``                  ``sum_t g_t G_t`` (causality)
``discounted reward-to-go``       ``sum_t g_t sum_{t'>=t} gamma^(t'-t) r_t'``
                                  (biased: see :func:`advantage_expectation`)
``constant baseline``             ``sum_t g_t (G_t - b)``, b the mean return of
                                  the batch's *other* episodes
``total return, mean b``          ``g(tau) (R(tau) - b)``, the same b
``total return, optimal b``       ``g_i(tau) (R(tau) - b*_i)``,
                                  ``b*_i = E[g_i^2 R] / E[g_i^2]`` from the
                                  other episodes (seed 002)
``time baseline``                 ``sum_t g_t (G_t - b_t)``, b_t the mean of
                                  G_t over the other episodes (0 where they
                                  ended)
``state value (exact|learned)``   ``sum_t g_t (G_t - v(s_t))``
``TD advantage (exact|learned)``  ``sum_t g_t delta_t`` (the actor-critic's)
``reward-to-go + entropy bonus``  ``sum_t g_t G_t + beta sum_t grad H(pi(.|s_t))``
``GAE(lambda) (exact|learned)``   ``sum_t g_t sum_l (gamma lambda)^l delta_{t+l}``
                                  at GAE's own gamma, for each lambda asked
================================  =============================================

"Exact" uses the policy's true ``v``; "learned" a linear ``v`` fitted by least
squares to the returns of separate episodes, so a function of the
observation only (in an aliased task it cannot be the true ``v``).

For each estimator: its exact expectation from the model, its mean over all
episodes with a 95% confidence interval per component from the spread of
the independent batch means, and its variance (per component, and the trace
of the covariance of one episode's estimate and of a batch's mean).
:func:`lab_table` makes the tidy table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from avgreward import exact
from avgreward.exact import advantage_expectation, discounted_expectation, entropy_gradient
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
from avgreward.stats import t_quantile

__all__ = ["EstimatorLab", "advantage_expectation", "discounted_expectation",
           "entropy_gradient", "estimator_lab", "estimator_names", "lab_table"]

_FIXED = ("total return", "reward-to-go", "discounted reward-to-go", "constant baseline",
          "total return, mean b", "total return, optimal b", "time baseline",
          "state value (exact)", "state value (learned)", "TD advantage (exact)",
          "TD advantage (learned)", "reward-to-go + entropy bonus")
_N_FIXED = len(_FIXED)



def estimator_names(lambdas) -> list[str]:
    """The estimators' names, in the order of :class:`EstimatorLab`'s arrays."""
    return [*_FIXED, *(f"GAE({lam:g}) (exact)" for lam in lambdas),
            *(f"GAE({lam:g}) (learned)" for lam in lambdas)]


@njit(cache=True, error_model="numpy")
def _estimates(scores, support, support_size, entropy_grad, values, states, actions, rewards,
               offsets, gamma, gae_gamma, lambdas, out, moments):
    """Every estimator of each episode of a batch into ``out[episode, parameter, estimator]``.

    ``values``: rows exact v (gamma 1), learned v, exact v at ``gae_gamma``,
    learned v (for GAE).  One backward pass per episode (reward-to-go,
    discounted reward-to-go and each GAE advantage by their recursions);
    each step touches only the parameters its score can move
    (``support[s, :support_size[s]]``: the features active in ``s``, every action).
    Adds ``g_i^2, g_i^2 R, g_i^2 R^2, g_i R`` (``g = g(tau)``) of each episode to
    ``moments[0..3, i]``.
    """
    n = offsets.shape[0] - 1
    D = scores.shape[2]
    n_est = out.shape[2]
    n_lam = lambdas.shape[0]
    out[:] = 0.0
    total = np.zeros(n)
    longest = 0
    for e in range(n):
        for t in range(offsets[e], offsets[e + 1]):
            total[e] += rewards[t]
        longest = max(longest, offsets[e + 1] - offsets[e])
    total_sum = total.sum()
    # Reward-to-go at each time, summed over the batch's episodes (for b_t).
    rtg_sum = np.zeros(longest + 1)
    for e in range(n):
        g = 0.0
        for t in range(offsets[e + 1] - 1, offsets[e] - 1, -1):
            g += rewards[t]
            rtg_sum[t - offsets[e]] += g
    # The episodes' summed scores, and sum_e g_i^2 R_e, sum_e g_i^2 for b*.
    gsum = np.zeros((n, D))
    for e in range(n):
        for t in range(offsets[e], offsets[e + 1]):
            s = states[t]
            for m in range(support_size[s]):
                i = support[s, m]
                gsum[e, i] += scores[s, actions[t], i]
    g2r = np.zeros(D)
    g2 = np.zeros(D)
    for e in range(n):
        for i in range(D):
            g2r[i] += gsum[e, i] ** 2 * total[e]
            g2[i] += gsum[e, i] ** 2
            moments[2, i] += gsum[e, i] ** 2 * total[e] ** 2
            moments[3, i] += gsum[e, i] * total[e]
    for i in range(D):
        moments[0, i] += g2[i]
        moments[1, i] += g2r[i]
    adv_exact = np.zeros(n_lam)
    adv_learned = np.zeros(n_lam)
    c = np.zeros(n_est)  # each estimator's weight on this step's score
    for e in range(n):
        first, end = offsets[e], offsets[e + 1]
        # leave-one-out: the baselines never see this episode (so they stay unbiased)
        b = (total_sum - total[e]) / (n - 1)
        for i in range(D):
            out[e, i, 0] = gsum[e, i] * total[e]
            out[e, i, 4] = gsum[e, i] * (total[e] - b)
            den = g2[i] - gsum[e, i] ** 2
            b_star = (g2r[i] - gsum[e, i] ** 2 * total[e]) / den if den > 0.0 else 0.0
            out[e, i, 5] = gsum[e, i] * (total[e] - b_star)
        rtg = 0.0
        disc = 0.0
        adv_exact[:] = 0.0
        adv_learned[:] = 0.0
        for t in range(end - 1, first - 1, -1):
            s, a, r = states[t], actions[t], rewards[t]
            last = t == end - 1  # s_{t+1} is terminal: v = 0
            nxt = s if last else states[t + 1]
            rtg += r
            disc = r + gamma * disc
            c[1] = rtg
            c[2] = disc
            c[3] = rtg - b
            c[6] = rtg - (rtg_sum[t - first] - rtg) / (n - 1)
            c[7] = rtg - values[0, s]
            c[8] = rtg - values[1, s]
            c[9] = r + (0.0 if last else values[0, nxt]) - values[0, s]
            c[10] = r + (0.0 if last else values[1, nxt]) - values[1, s]
            c[11] = rtg
            for j in range(n_lam):
                decay = gae_gamma * lambdas[j]
                x_next = 0.0 if last else values[2, nxt]
                y_next = 0.0 if last else values[3, nxt]
                adv_exact[j] = r + gae_gamma * x_next - values[2, s] + decay * adv_exact[j]
                adv_learned[j] = r + gae_gamma * y_next - values[3, s] + decay * adv_learned[j]
                c[_N_FIXED + j] = adv_exact[j]
                c[_N_FIXED + n_lam + j] = adv_learned[j]
            for m in range(support_size[s]):
                i = support[s, m]
                sc = scores[s, a, i]
                for k in range(1, 4):
                    out[e, i, k] += c[k] * sc
                for k in range(6, n_est):
                    out[e, i, k] += c[k] * sc
                out[e, i, 11] += entropy_grad[s, i]


@njit(cache=True, error_model="numpy")
def _run(P, R, start, terminal, pi, words, batch_size, n_batches, max_steps, scores,
         support, support_size, entropy_grad, values, gamma, gae_gamma, lambdas, states, actions, rewards, offsets,
         out, total, squares, batch_total, batch_squares, moments, done):
    """Batches ``done .. n_batches - 1``, accumulated into the four sums.

    Returns (status, batches done); on _FULL the generator is back at the
    start of the batch that did not fit, so it can be run again in bigger
    buffers with the same numbers.
    """
    n_est, D = total.shape
    for k in range(done, n_batches):
        status = _sample_batch(P, R, start, terminal, pi, words, batch_size, max_steps,
                               states, actions, rewards, offsets)
        if status != _OK:  # the generator is back at this batch's start
            return status, k
        _estimates(scores, support, support_size, entropy_grad, values, states, actions,
                   rewards, offsets, gamma, gae_gamma, lambdas, out, moments)
        for i in range(D):
            for j in range(n_est):
                mean = 0.0
                for e in range(batch_size):
                    x = out[e, i, j]
                    total[j, i] += x
                    squares[j, i] += x * x
                    mean += x
                mean /= batch_size
                batch_total[j, i] += mean
                batch_squares[j, i] += mean * mean
    return _OK, n_batches


@dataclass(frozen=True)
class EstimatorLab:
    """What :func:`estimator_lab` measured (estimators in the order of ``names``).

    Arrays over estimators and parameters are shaped ``(n_estimators, D)``,
    ``D`` the number of policy parameters (``theta`` flattened,
    ``theta[feature, action]``).

    Attributes
    ----------
    names : list of str
    exact_gradient : ndarray, shape (D,)
        The exact gradient of J (gamma = 1).
    expectations : ndarray, shape (n_estimators, D)
        Each estimator's exact expectation, from the model (for the
        leave-one-out baselines: the gradient, which is what the notes prove).
    means : ndarray
        Each estimator's mean over all episodes.
    ci_halfwidths : ndarray
        Half-widths of the 95% confidence intervals of the means (Student t
        over the independent batch means).
    component_variance : ndarray
        The variance of one episode's estimate, per parameter.
    variance_per_episode, variance_per_batch : ndarray, shape (n_estimators,)
        Trace of the covariance of one episode's estimate, and of a batch's mean.
    episodes, batch_size : int
    settings : dict
        gamma, gae_gamma, lambdas, entropy_beta, tau, critic_episodes, seed.
    score_moments : ndarray, shape (4, D)
        Over the episodes, the means of ``g_i^2``, ``g_i^2 R``, ``g_i^2 R^2`` and
        ``g_i R`` (``g = g(tau)``, ``R = R(tau)``): the variance of the total
        return estimator with any constant baseline.
    """

    names: list
    exact_gradient: np.ndarray
    expectations: np.ndarray
    means: np.ndarray
    ci_halfwidths: np.ndarray
    component_variance: np.ndarray
    variance_per_episode: np.ndarray
    variance_per_batch: np.ndarray
    episodes: int
    batch_size: int
    settings: dict
    score_moments: np.ndarray

    @property
    def optimal_baseline(self):
        """``b*_i = E[g_i^2 R] / E[g_i^2]`` from all the episodes (0 where ``g_i`` is always 0)."""
        g2, g2r = self.score_moments[:2]
        return np.divide(g2r, g2, out=np.zeros_like(g2), where=g2 > 0)

    def constant_baseline_variance(self, b):
        """Per component, the variance of ``g_i(tau) (R(tau) - b_i)`` with ``b`` known.

        From the episodes' moments: ``E[g^2 R^2] - 2 b E[g^2 R] + b^2 E[g^2] -
        E[g R]^2`` (``E[g_i] = 0``, so a constant shifts no mean).  ``b`` is a
        number or one per component; ``optimal_baseline`` minimises it.
        """
        g2, g2r, g2r2, gr = self.score_moments
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), g2.shape)
        return g2r2 - 2 * b * g2r + b * b * g2 - gr * gr

    def bias(self):
        """Each estimator's measured mean minus the exact gradient."""
        return self.means - self.exact_gradient

    def exact_bias(self):
        """Each estimator's exact expectation minus the exact gradient."""
        return self.expectations - self.exact_gradient

    def covers(self, name, target=None, level=0.95) -> bool:
        """Whether ``name``'s confidence intervals hold ``target`` in every component.

        ``target`` defaults to the exact gradient.  The intervals are
        Bonferroni-widened over the components so that ``level`` is the joint
        confidence for the whole vector (at 0.95 per component, a 16-vector
        would miss somewhere more often than not).
        """
        i = self.names.index(name)
        target = self.exact_gradient if target is None else np.asarray(target)
        D = self.means.shape[1]
        n_batches = self.episodes // self.batch_size
        per_component = 1.0 - (1.0 - level) / D
        scale = (t_quantile(0.5 + per_component / 2, n_batches - 1)
                 / t_quantile(0.975, n_batches - 1))
        return bool(np.all(np.abs(self.means[i] - target) <= scale * self.ci_halfwidths[i]))

    def unbiased(self, name, level=0.95) -> bool:
        """Whether the exact gradient lies inside ``name``'s joint ``level`` interval."""
        return self.covers(name, None, level)


def _score_entropy_gradient(pi, scores):
    """``grad H(pi(.|s))`` of any policy from its scores: ``-sum_a pi ln pi grad ln pi``.

    (``grad H = -sum_a grad pi (ln pi + 1)``, and ``sum_a grad pi = 0``; for the
    linear softmax it is :func:`entropy_gradient`.)
    """
    logs = np.log(np.where(pi > 0.0, pi, 1.0))
    return -np.einsum("sa,sap->sp", pi * logs, scores)


def _policy_tables(model, theta, features, tau, network):
    """(pi, scores, entropy gradient) of the linear or the network policy."""
    if network is None:
        pi = exact.softmax_policy(theta, features, tau)
        scores = exact.softmax_scores(theta, features, tau)
        entropy = entropy_gradient(pi, features, tau)
        return pi, scores, entropy
    from avgreward.network_policy import ReLUPolicy

    if not isinstance(network, ReLUPolicy):
        raise ValueError(f"network must be an avgreward.network_policy.ReLUPolicy, "
                         f"got {type(network).__name__}")
    if tau != 1.0:
        raise ValueError(f"tau is the linear policy's; a network has its own "
                         f"(ReLUPolicy.tau), got tau={tau!r}")
    if network.n_actions != model.n_actions:
        raise ValueError(f"network.n_actions = {network.n_actions} does not match the "
                         f"model's {model.n_actions} actions")
    pi, scores = network.tables(theta, features)
    return pi, scores, _score_entropy_gradient(pi, scores)


def _learned_values(states, actions, rewards, offsets, features, gammas):
    """Least-squares fits of the (discounted) returns-to-go on the features, one per gamma.

    Monte Carlo regression from episodes the lab does not reuse, so the
    learned v is a fixed function of the observation: a fair baseline, and a
    critic with the error a linear one has when states are aliased.
    """
    n = offsets.size - 1
    X = features[states[:offsets[n]]]
    fits = []
    for gamma in gammas:
        targets = np.zeros(offsets[n])
        for e in range(n):
            g = 0.0
            for t in range(offsets[e + 1] - 1, offsets[e] - 1, -1):
                g = rewards[t] + gamma * g
                targets[t] = g
        w = np.linalg.lstsq(X, targets, rcond=None)[0]
        fits.append(features @ w)
    return fits


def _support(scores, entropy):
    """The parameters each state's score (or entropy gradient) can move, and how many."""
    n_states, D = entropy.shape
    support = np.zeros((n_states, D), np.int64)
    support_size = np.zeros(n_states, np.int64)
    for s in range(n_states):
        moved = np.flatnonzero(np.abs(scores[s]).sum(axis=0) + np.abs(entropy[s]) > 0.0)
        support[s, :moved.size] = moved
        support_size[s] = moved.size
    return support, support_size


def _unit(name, value):
    """``value`` as a float in (0, 1], or a ValueError naming ``name``."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return value


def estimator_lab(model, theta, features, *, tau=1.0, episodes=100_000, batch_size=100,
                  gamma=0.9, gae_gamma=1.0, lambdas=(0.0, 0.5, 0.9, 0.97, 1.0),
                  entropy_beta=0.1, critic_episodes=1000, seed=0,
                  max_steps=100_000, network=None) -> EstimatorLab:
    """Measure every estimator (see the module docstring) against the exact gradient.

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        Episodic (with ``terminal`` states).  Rewards are taken as ``R[s, a]``
        (exact for the package's tasks, whose rewards are deterministic given
        the state and action; otherwise the variances are those of a task with
        the expected rewards).
    theta : array_like, shape (n_features, n_actions), or (network.n_params,)
        The linear softmax's weights; with ``network``, the network's flat
        parameters.
    features : array_like, shape (n_states, n_features)
        ``x(s)`` of each state (of its observation, so aliased states share it).
    tau : float, default 1.0
        The softmax temperature (of the linear policy; a network has its own).
    episodes : int, default 100,000
        Rounded up to a multiple of ``batch_size``; at least two batches.
    batch_size : int, default 100
        Episodes a batch: the leave-one-out baselines use the other episodes of
        their batch, and the confidence intervals the spread of batch means.
    gamma : float, default 0.9
        The discounted reward-to-go estimator's discount.
    gae_gamma : float, default 1.0
        GAE's discount (its exact v is the ``gae_gamma``-discounted value).
    lambdas : sequence of float
        GAE's lambdas, each in [0, 1].
    entropy_beta : float, default 0.1
        The entropy bonus's weight in "reward-to-go + entropy bonus".
    critic_episodes : int, default 1,000
        Episodes (drawn first, and not reused) that the learned v is fitted to.
    seed : int
    max_steps : int
        Refuse an episode longer than this (ValueError).
    network : avgreward.network_policy.ReLUPolicy, optional
        Measure the estimators for this ReLU network policy (parameters
        ``theta``, input ``features``) instead of the linear softmax: every
        estimator needs only the policy's probabilities and scores, here
        backpropagated; the exact gradient and expectations are those of
        :func:`avgreward.exact.score_gradient` with the network's scores.

    Returns
    -------
    EstimatorLab
    """
    for name, value, low in (("episodes", episodes, 1), ("batch_size", batch_size, 2),
                             ("critic_episodes", critic_episodes, 1),
                             ("max_steps", max_steps, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    gamma, gae_gamma = _unit("gamma", gamma), _unit("gae_gamma", gae_gamma)
    if isinstance(entropy_beta, (bool, str)) or not isinstance(
            entropy_beta, (int, float, np.integer, np.floating)) or not math.isfinite(
            entropy_beta):
        raise ValueError(f"entropy_beta must be a finite number, got {entropy_beta!r}")
    entropy_beta = float(entropy_beta)
    try:
        lambdas = np.atleast_1d(np.asarray(lambdas, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"lambdas must be numbers in [0, 1], got {lambdas!r}") from None
    if lambdas.ndim != 1 or lambdas.size == 0 or np.any(~((lambdas >= 0) & (lambdas <= 1))):
        raise ValueError(f"lambdas must be numbers in [0, 1], got {lambdas}")
    if len(set(estimator_names(lambdas))) != len(estimator_names(lambdas)):
        raise ValueError(f"lambdas must differ (to 6 significant digits, their names), "
                         f"got {lambdas.tolist()}")
    features = _episodic_features(model, features)
    theta = np.asarray(theta, dtype=np.float64)
    pi, scores, entropy = _policy_tables(model, theta, features, tau, network)
    ev = exact.evaluate_episodic(model, pi)      # also refuses a policy that never ends
    if ev.visits.sum() > max_steps:
        raise ValueError(f"episodes last {ev.visits.sum():,.0f} steps on average under this "
                         f"policy, more than max_steps={max_steps:,}")
    grad = exact.score_gradient(model, pi, scores)
    P, R, start, terminal = _model_arrays(model)
    names = estimator_names(lambdas)
    n_est, D = len(names), grad.size
    n_batches = max(2, -(-episodes // batch_size))

    rng = np.random.default_rng(seed)
    words = load_state(rng)
    capacity = min(_initial_capacity(ev.visits.sum(), max(batch_size, critic_episodes)),
                   max(batch_size, critic_episodes) * max_steps)
    buffers = None
    while True:
        buffers = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64),
                   np.zeros(capacity))
        offsets = np.zeros(critic_episodes + 1, np.int64)
        status = _sample_batch(P, R, start, terminal, pi, words, critic_episodes, max_steps,
                               *buffers, offsets)
        if status != _FULL:
            break
        capacity = min(2 * capacity, critic_episodes * max_steps)  # enough for any batch
    if status == _TOO_LONG:
        raise ValueError(f"an episode lasted more than max_steps={max_steps:,} steps under "
                         "this policy")
    learned, learned_gae = _learned_values(*buffers, offsets, features, (1.0, gae_gamma))
    v_gae = exact.evaluate_episodic(model, pi, gae_gamma).v
    values = np.ascontiguousarray(np.stack([ev.v, learned, v_gae, learned_gae]))

    offsets = np.zeros(batch_size + 1, np.int64)
    out = np.zeros((batch_size, D, n_est))
    support, support_size = _support(scores, entropy)
    sums = [np.zeros((n_est, D)) for _ in range(4)]
    moments = np.zeros((4, D))
    done = 0
    while True:
        status, done = _run(P, R, start, terminal, pi, words, batch_size, n_batches, max_steps,
                            scores, support, support_size, entropy_beta * entropy, values, float(gamma),
                            float(gae_gamma), lambdas, *buffers, offsets, out, *sums, moments,
                            done)
        if status == _TOO_LONG:
            raise ValueError(f"an episode lasted more than max_steps={max_steps:,} steps "
                             "under this policy")
        if status == _OK:
            break
        # the same batch again, from the same generator state, in bigger buffers
        capacity = min(2 * capacity, batch_size * max_steps)
        buffers = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64),
                   np.zeros(capacity))
    store_state(rng, words)

    total, squares, batch_total, batch_squares = sums
    n = n_batches * batch_size
    means = total / n
    component_variance = np.maximum(squares - n * means ** 2, 0.0) / (n - 1)
    batch_mean = batch_total / n_batches
    batch_var = np.maximum(batch_squares - n_batches * batch_mean ** 2, 0.0) / (n_batches - 1)
    halfwidths = t_quantile(0.975, n_batches - 1) * np.sqrt(batch_var / n_batches)

    expectations = np.tile(grad, (n_est, 1))
    expect = {
        "discounted reward-to-go": advantage_expectation(model, pi, features, tau,
                                                         np.zeros(model.n_states), gamma, 1.0,
                                                         scores),
        "TD advantage (exact)": advantage_expectation(model, pi, features, tau, ev.v, 1.0, 0.0,
                                                      scores),
        "TD advantage (learned)": advantage_expectation(model, pi, features, tau, learned,
                                                        1.0, 0.0, scores),
        "reward-to-go + entropy bonus": grad + entropy_beta * ev.visits @ entropy,
    }
    for lam in lambdas:
        expect[f"GAE({lam:g}) (exact)"] = advantage_expectation(
            model, pi, features, tau, v_gae, gae_gamma, lam, scores)
        expect[f"GAE({lam:g}) (learned)"] = advantage_expectation(
            model, pi, features, tau, learned_gae, gae_gamma, lam, scores)
    for name, value in expect.items():
        expectations[names.index(name)] = value
    settings = {"gamma": float(gamma), "gae_gamma": float(gae_gamma),
                "lambdas": lambdas.tolist(), "entropy_beta": float(entropy_beta),
                "tau": float(tau), "critic_episodes": int(critic_episodes), "seed": seed,
                "policy": "linear softmax" if network is None else
                f"ReLU network {network.n_inputs}-{network.n_hidden}-{network.n_actions}"}
    return EstimatorLab(names, grad, expectations, means, halfwidths, component_variance,
                        component_variance.sum(axis=1), batch_var.sum(axis=1), n, batch_size,
                        settings, moments / n)


def lab_table(lab: EstimatorLab, as_frame: bool = False):
    """The tidy table: one row per estimator, as a list of dicts or a pandas DataFrame.

    Columns: ``estimator``; ``exact_bias_squared`` (``|E[estimate] - grad J|^2``
    from the model); ``bias_squared`` (measured: ``|mean - grad J|^2`` minus its
    expected noise ``tr Cov / n``, so near 0 for an unbiased estimator, and
    possibly slightly negative); ``unbiased_within_ci`` (the gradient inside
    the joint 95% interval); ``expectation_within_ci`` (the exact expectation
    inside it); ``variance_per_episode`` and ``variance_per_batch`` (traces of
    the covariances); ``episodes``, ``batch_size``.

    With ``as_frame=True`` the same rows as a ``pandas.DataFrame`` (pandas
    comes with the ``analysis`` extra; without it
    :class:`avgreward.extras.MissingExtraError` says what to install).
    """
    if not isinstance(as_frame, bool):
        raise ValueError(f"as_frame must be True or False, got {as_frame!r}")
    rows = []
    for i, name in enumerate(lab.names):
        bias = lab.bias()[i]
        exact_bias = lab.exact_bias()[i]
        rows.append({
            "estimator": name,
            "exact_bias_squared": float(exact_bias @ exact_bias),
            "bias_squared": float(bias @ bias - lab.variance_per_episode[i] / lab.episodes),
            "unbiased_within_ci": lab.unbiased(name),
            "expectation_within_ci": lab.covers(name, lab.expectations[i]),
            "variance_per_episode": float(lab.variance_per_episode[i]),
            "variance_per_batch": float(lab.variance_per_batch[i]),
            "episodes": lab.episodes,
            "batch_size": lab.batch_size,
        })
    if as_frame:
        from avgreward.extras import require

        return require("pandas", "analysis", "tables as frames").DataFrame(rows)
    return rows
