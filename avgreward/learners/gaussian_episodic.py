"""REINFORCE and the episodic actor-critic with a Gaussian policy over one continuous action.

``mu(s) = theta[:, 0] . x(s)``, ``sigma(s) = sigma_min + exp(theta[:, 1] . x(s))``,
``A = mu + sigma * N(0, 1)``; the score's coefficients
(:func:`avgreward.actors.gaussian_score`) are ``g_mu = (A - mu) / sigma^2`` and
``g_sigma = ((A - mu)^2 / sigma^2 - 1) exp(h_sigma) / sigma``, each times
``x(s)``; the mean's column moves with ``alpha_theta`` and the log-sigma column
with ``alpha_sigma``.  The boxes are those of
:mod:`avgreward.learners.reinforce` and
:mod:`avgreward.learners.episodic_actor_critic` (S&B 13.3-13.5) with this
score; the entropy bonus adds ``beta grad H = beta exp(h_sigma) / sigma x(s)``
to the log-sigma column (``H = ln sigma + const``).  Settings:
:class:`avgreward.agents.Reinforce` and
:class:`avgreward.agents.EpisodicActorCritic` with ``policy="gaussian"``.
"""

import math
from collections import namedtuple

from numba import njit

from avgreward._pcg64 import standard_normal
from avgreward.actors import gaussian_parameters, gaussian_score
from avgreward.critic import add_at, add_outer_at, linear_value
from avgreward.learners import FusedLearner
from avgreward.learners.reinforce import (  # the same bookkeeping, any action type
    baseline_delta,
    episode_returns,
    reinforce_learn,
)

__all__ = ["GaussianReinforceParams", "GaussianEACParams", "REINFORCE_GAUSSIAN",
           "EPISODIC_AC_GAUSSIAN"]

GaussianReinforceParams = namedtuple("GaussianReinforceParams", [
    "theta", "w", "coef", "ep_features", "ep_actions", "ep_rewards", "ep_returns", "ep_length",
    "alpha_theta", "alpha_sigma", "alpha_w", "baseline", "gamma", "sigma_min", "entropy",
])
GaussianReinforceParams.__doc__ = """Gaussian REINFORCE's arrays and settings.

``theta`` is ``[n_features, 2]`` (mean, log-sigma); the rest as
:class:`avgreward.learners.reinforce.ReinforceParams`, with float actions.
"""

GaussianEACParams = namedtuple("GaussianEACParams", [
    "w", "theta", "z_w", "z_theta", "coef", "discounting",
    "alpha_w", "alpha_theta", "alpha_sigma", "gamma", "lambda_w", "lambda_theta", "sigma_min",
    "entropy",
])
GaussianEACParams.__doc__ = """The Gaussian episodic actor-critic's arrays and settings.

``theta`` is ``[n_features, 2]`` (mean, log-sigma); ``z_theta`` its trace;
``discounting[0]`` is I.
"""

Steps = namedtuple("Steps", ["step_theta", "step_sigma", "step_w", "traced"])


@njit(cache=True, error_model="numpy")
def _begin(alpha_theta, alpha_sigma, alpha_w, traced, k):
    return Steps(alpha_theta / k, alpha_sigma / k, alpha_w / k, traced)


@njit(cache=True, error_model="numpy")
def gaussian_act(theta, sigma_min, cur, words):
    # A ~ N(mu(S), sigma(S)^2)
    mu, exp_h, sigma = gaussian_parameters(theta, cur, sigma_min)
    if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0.0):
        return False, 0.0, (mu, exp_h, sigma)
    return True, mu + sigma * standard_normal(words), (mu, exp_h, sigma)


@njit(cache=True, error_model="numpy", forceinline=True)
def _score_coef(coef, action, mu, exp_h, sigma, step_theta, step_sigma):
    """``coef = (alpha_theta g_mu, alpha_sigma g_sigma) / k``: the score, with each column's step."""
    g_mu, g_sigma = gaussian_score(action, mu, exp_h, sigma, False)
    coef[0] = step_theta * g_mu
    coef[1] = step_sigma * g_sigma


@njit(cache=True, error_model="numpy", forceinline=True)
def _entropy_step(theta, idx, exp_h, sigma, step_sigma, entropy):
    """theta_sigma <- theta_sigma + alpha_sigma beta grad H, grad H = exp(h_sigma) / sigma x(s)."""
    g = step_sigma * entropy * (exp_h / sigma)
    for j in range(idx.shape[0]):
        theta[idx[j], 1] += g


# --- REINFORCE (13.3, 13.4) -------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def greinforce_begin(params, k):
    return _begin(params.alpha_theta, params.alpha_sigma, params.alpha_w, False, k)


@njit(cache=True, error_model="numpy")
def _greinforce_update(theta, w, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                       ep_length, step_theta, step_sigma, step_w, baseline, gamma, sigma_min,
                       entropy):
    n_steps = episode_returns(ep_rewards, ep_returns, ep_length, gamma)
    discount = 1.0  # gamma^t
    for t in range(n_steps):
        idx = ep_features[t]
        delta = baseline_delta(w, idx, ep_returns[t], baseline, step_w)
        # the score at the current theta
        mu, exp_h, sigma = gaussian_parameters(theta, idx, sigma_min)
        _score_coef(coef, ep_actions[t], mu, exp_h, sigma, step_theta, step_sigma)
        add_outer_at(theta, idx, discount * delta, coef)
        if entropy > 0.0:
            _entropy_step(theta, idx, exp_h, sigma, step_sigma, entropy)
        discount *= gamma
    ep_length[0] = 0


@njit(cache=True, error_model="numpy")
def greinforce_episode_end(theta, w, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                           ep_length, step_theta, step_sigma, step_w, baseline, gamma,
                           sigma_min, entropy):
    _greinforce_update(theta, w, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                       ep_length, step_theta, step_sigma, step_w, baseline, gamma, sigma_min,
                       entropy)


@njit(cache=True, error_model="numpy")
def _finish(params, work):
    pass


# --- the episodic actor-critic (13.5), one-step or traced --------------------------------


@njit(cache=True, error_model="numpy")
def geac_begin(params, k):
    return _begin(params.alpha_theta, params.alpha_sigma, params.alpha_w,
                  params.lambda_w > 0.0 or params.lambda_theta > 0.0, k)


@njit(cache=True, error_model="numpy")
def _geac_traced(w, theta, z_w, z_theta, coef, cur, delta, decay_w, decay_theta, discount,
                 step_w):
    # z_w <- gamma lambda_w z_w + x(S);  z_theta <- gamma lambda_theta z_theta + I score
    # (coef holds the score's coefficients, each column's step size inside)
    for i in range(w.shape[0]):
        z_w[i] *= decay_w
        z_theta[i, 0] *= decay_theta
        z_theta[i, 1] *= decay_theta
    for j in range(cur.shape[0]):
        z_w[cur[j]] += 1.0
        z_theta[cur[j], 0] += discount * coef[0]
        z_theta[cur[j], 1] += discount * coef[1]
    for i in range(w.shape[0]):
        w[i] += step_w * delta * z_w[i]
        theta[i, 0] += delta * z_theta[i, 0]
        theta[i, 1] += delta * z_theta[i, 1]


@njit(cache=True, error_model="numpy")
def geac_learn(w, theta, z_w, z_theta, coef, discounting, gamma, lambda_w, lambda_theta,
               sigma_min, entropy, step_theta, step_sigma, step_w, traced, cur, nxt, action,
               memo, reward, terminated, rbar):
    v_next = 0.0 if terminated else linear_value(w, nxt)
    delta = reward + gamma * v_next - linear_value(w, cur)
    if not math.isfinite(delta):
        return False, rbar, delta
    mu, exp_h, sigma = memo
    _score_coef(coef, action, mu, exp_h, sigma, step_theta, step_sigma)
    discount = discounting[0]
    if traced:
        _geac_traced(w, theta, z_w, z_theta, coef, cur, delta, gamma * lambda_w,
                     gamma * lambda_theta, discount, step_w)
    else:
        add_at(w, cur, step_w * delta)
        add_outer_at(theta, cur, discount * delta, coef)
    if entropy > 0.0:
        _entropy_step(theta, cur, exp_h, sigma, step_sigma, entropy)
    discounting[0] = gamma * discount
    return True, rbar, delta


@njit(cache=True, error_model="numpy")
def geac_episode_end(discounting, z_w, z_theta, traced):
    discounting[0] = 1.0  # the next episode starts: I = 1, traces 0
    if traced:
        z_w[:] = 0.0
        z_theta[:] = 0.0


REINFORCE_GAUSSIAN = FusedLearner(
    "reinforce gaussian", GaussianReinforceParams, Steps, greinforce_begin, gaussian_act,
    reinforce_learn, greinforce_episode_end, _finish)
EPISODIC_AC_GAUSSIAN = FusedLearner(
    "episodic actor-critic gaussian", GaussianEACParams, Steps, geac_begin, gaussian_act,
    geac_learn, geac_episode_end, _finish, td_error=True)

