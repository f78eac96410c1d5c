"""The differential actor-critic (Sutton & Barto, section 13.6) as learners of the fused loop.

Three learners, each a :class:`~avgreward.learners.FusedLearner`:

* :data:`SOFTMAX`: the softmax actor, any number of actions, eligibility
  traces and an entropy bonus;
* :data:`SOFTMAX3`: the same for three actions, one step and no entropy
  bonus (the pendulum swing-up's case): a weight row is exactly one 4-wide
  vector and the probabilities and score coefficients stay in registers, the
  same operations in the same order (tests compare the two bit for bit);
* :data:`GAUSSIAN`: the Gaussian actor (mean and log-sigma linear in the
  features), traces and entropy bonus.

Their arrays travel in one namedtuple (:class:`SoftmaxParams`,
:class:`GaussianParams`): the learner's weights, traces and scratch, and its
settings.  For the length of a call the critic's and the actor's weights live
in one array of weight rows (:mod:`avgreward.weight_rows`), read once for
``v(S)`` and every preference and written once for both updates; see
:mod:`avgreward.loop` for where the speed comes from.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double, standard_normal
from avgreward.actors import (
    gaussian_score,
    sample3,
    sample_discrete,
    softmax3,
    softmax3_score,
    softmax_entropy_gradient,
    softmax_of_preferences,
    softmax_score,
)
from avgreward.critic import (
    accumulate_rows,
    add_row_block,
    add_rows,
    apply_traces,
    column_sum,
    decay_traces,
    row_sums,
)
from avgreward.agents import GaussianActorCritic, SoftmaxActorCritic
from avgreward.learners import FusedLearner
from avgreward.learners.driver import GAUSSIAN as GAUSSIAN_POLICY
from avgreward.learners.driver import SOFTMAX as SOFTMAX_POLICY
from avgreward.learners.driver import Built, Driver, Policy
from avgreward.weight_rows import pack_rows, pack_traces, unpack_rows, unpack_traces

__all__ = ["SoftmaxParams", "GaussianParams", "Work", "SOFTMAX", "SOFTMAX3", "GAUSSIAN",
           "SOFTMAX_DRIVER", "GAUSSIAN_DRIVER", "softmax_learner", "actor_critic_arrays",
           "actor_critic_memory", "softmax_weights", "gaussian_weights"]

SoftmaxParams = namedtuple("SoftmaxParams", [
    "w", "theta", "z_w", "z_theta", "probs", "coef",
    "alpha_w", "alpha_theta", "alpha_rbar", "tau", "lambda_w", "lambda_theta", "entropy",
])
SoftmaxParams.__doc__ = """The softmax actor-critic's arrays and settings.

``theta`` is ``[n_features, n_actions]``; ``z_w``/``z_theta`` are the traces
(empty and untouched when the matching lambda is 0); ``probs`` and ``coef``
are scratch of length ``n_actions``.
"""

GaussianParams = namedtuple("GaussianParams", [
    "w", "theta", "z_w", "z_theta",
    "alpha_w", "alpha_mu", "alpha_sigma", "alpha_rbar", "lambda_w", "lambda_theta",
    "scale_mean_gradient", "sigma_min", "entropy",
])
GaussianParams.__doc__ = """The Gaussian actor-critic's arrays and settings.

``theta[:, 0]`` are the mean's weights and ``theta[:, 1]`` the log-sigma weights.
"""

# A call's working arrays: the weight rows (and trace rows with their live list),
# the per-column sums and gradient coefficients, and the per-feature step sizes.
Work = namedtuple("Work", [
    "rows", "width", "traced", "traces", "live", "slot", "n_live", "lam", "sums", "g",
    "step_w", "step_theta", "step_sigma",
])


@njit(cache=True, error_model="numpy", forceinline=True)
def _begin(w, theta, z_w, z_theta, n_cols, width, lam, step_w, step_theta, step_sigma):
    d = w.shape[0]
    rows = pack_rows(w, theta, width)
    traced = lam[0] > 0.0 or lam[1] > 0.0
    live = np.empty(d if traced else 0, dtype=np.int64)
    slot = np.empty(d if traced else 0, dtype=np.int64)
    traces, n_live = pack_traces(z_w, z_theta, d if traced else 0, n_cols, width, live, slot)
    n_live_box = np.empty(1, dtype=np.int64)
    n_live_box[0] = n_live
    return Work(rows, width, traced, traces, live, slot, n_live_box, lam, np.zeros(width),
                np.zeros(width), step_w, step_theta, step_sigma)


@njit(cache=True, error_model="numpy", forceinline=True)
def _finish(work, w, theta, z_w, z_theta):
    unpack_rows(work.rows, work.width, w, theta)
    if work.traced:
        unpack_traces(work.traces, work.width, z_w, z_theta)


@njit(cache=True, error_model="numpy", forceinline=True)
def _nothing():
    """End of an episode: the continuing actor-critic learns across it (S' is the next start)."""


# --- softmax, any number of actions ------------------------------------------------------


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_begin(params, k):
    n_actions = params.theta.shape[1]
    width = 4 * ((n_actions + 4) // 4)  # critic + actions, padded to a multiple of 4
    lam = np.zeros(width)  # per column: the critic's lambda, then the actor's
    lam[0] = params.lambda_w
    lam[1:1 + n_actions] = params.lambda_theta
    return _begin(params.w, params.theta, params.z_w, params.z_theta, n_actions, width, lam,
                  params.alpha_w / k, params.alpha_theta / k, 0.0)


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_act(rows, width, sums, probs, tau, cur, words):
    # v(S) and the preferences h(S, .) in one pass over S's rows
    row_sums(rows, width, cur, sums)
    softmax_of_preferences(sums, 1, tau, probs)
    return True, sample_discrete(probs, next_double(words)), 0.0


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_learn(rows, width, traced, traces, live, slot, n_live, lam, sums, g, step_w,
                  step_theta, probs, coef, alpha_rbar, tau, entropy, cur, nxt, action, reward,
                  rbar):
    n_actions = coef.shape[0]
    delta = reward - rbar + column_sum(rows, width, nxt, 0) - sums[0]
    if not math.isfinite(delta):
        return False, rbar, delta
    rbar += alpha_rbar * delta

    softmax_score(probs, action, tau, coef)
    if not traced:
        # w += alpha_w delta x(S);  theta_b += alpha_theta delta score_b x(S)
        g[0] = step_w * delta
        step = step_theta * delta
        for b in range(n_actions):
            g[1 + b] = step * coef[b]
        add_rows(rows, width, cur, g)
    else:
        # z <- lambda z + (x(S), score x(S));  (w, theta) += alpha delta z
        live_count = decay_traces(traces, width, lam, live, n_live[0], slot)
        g[0] = 1.0
        for b in range(n_actions):
            g[1 + b] = coef[b]
        live_count = accumulate_rows(traces, width, cur, g, live, live_count, slot)
        n_live[0] = live_count
        g[0] = step_w * delta
        for b in range(n_actions):
            g[1 + b] = step_theta * delta
        apply_traces(rows, traces, width, g, live, live_count)
    if entropy > 0.0:
        softmax_entropy_gradient(probs, tau, coef)
        g[0] = 0.0
        step = step_theta * entropy
        for b in range(n_actions):
            g[1 + b] = step * coef[b]
        add_rows(rows, width, cur, g)
    return True, rbar, delta


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax_finish(params, work):
    _finish(work, params.w, params.theta, params.z_w, params.z_theta)


# --- softmax, three actions, one step, no entropy bonus --------------------------------------


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax3_begin(params, k):
    lam = np.zeros(4)  # untraced
    return _begin(params.w, params.theta, params.z_w, params.z_theta, 3, 4, lam,
                  params.alpha_w / k, params.alpha_theta / k, 0.0)


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax3_act(rows, sums, tau, cur, words):
    # v(S), h(S, 0), h(S, 1), h(S, 2): one vector per active row
    row_sums(rows, 4, cur, sums)
    p0, p1, p2 = softmax3(sums[1], sums[2], sums[3], tau)
    return True, sample3(p0, p1, next_double(words)), (p0, p1, p2)


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax3_learn(rows, sums, step_w, step_theta, alpha_rbar, tau, cur, nxt, action, memo,
                   reward, rbar):
    delta = reward - rbar + column_sum(rows, 4, nxt, 0) - sums[0]
    if not math.isfinite(delta):
        return False, rbar, delta
    rbar += alpha_rbar * delta
    # w += alpha_w delta x(S);  theta_b += alpha_theta delta score_b x(S)
    p0, p1, p2 = memo
    c0, c1, c2 = softmax3_score(p0, p1, p2, action, tau)
    step = step_theta * delta
    add_row_block(rows, 4, cur, 0, step_w * delta, step * c0, step * c1, step * c2)
    return True, rbar, delta


@njit(cache=True, error_model="numpy", forceinline=True)
def softmax3_finish(params, work):
    unpack_rows(work.rows, 4, params.w, params.theta)


# --- Gaussian -----------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", forceinline=True)
def gaussian_begin(params, k):
    lam = np.array([params.lambda_w, params.lambda_theta, params.lambda_theta, 0.0])
    return _begin(params.w, params.theta, params.z_w, params.z_theta, 2, 4, lam,
                  params.alpha_w / k, params.alpha_mu / k, params.alpha_sigma / k)


@njit(cache=True, error_model="numpy", forceinline=True)
def gaussian_act(rows, sums, sigma_min, cur, words):
    # A ~ N(mu(S), sigma(S)^2): v(S), mu(S) and h_sigma(S) in one pass over S's rows
    row_sums(rows, 4, cur, sums)
    mu = sums[1]
    exp_h = math.exp(sums[2])  # d sigma / d h_sigma as well
    sigma = sigma_min + exp_h
    if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0.0):
        return False, 0.0, (mu, exp_h, sigma)
    return True, mu + sigma * standard_normal(words), (mu, exp_h, sigma)


@njit(cache=True, error_model="numpy", forceinline=True)
def gaussian_learn(rows, traced, traces, live, slot, n_live, lam, sums, g, step_w, step_theta,
                   step_sigma, alpha_rbar, scale_mean_gradient, entropy, cur, nxt, action, memo,
                   reward, rbar):
    delta = reward - rbar + column_sum(rows, 4, nxt, 0) - sums[0]
    if not math.isfinite(delta):
        return False, rbar, delta
    rbar += alpha_rbar * delta

    mu, exp_h, sigma = memo
    g_mu, g_sigma = gaussian_score(action, mu, exp_h, sigma, scale_mean_gradient)
    step_mu = step_theta
    if not traced:
        g[0] = step_w * delta
        g[1] = g_mu * (step_mu * delta)
        g[2] = g_sigma * (step_sigma * delta)
        add_rows(rows, 4, cur, g)
    else:
        live_count = decay_traces(traces, 4, lam, live, n_live[0], slot)
        g[0] = 1.0
        g[1] = g_mu
        g[2] = g_sigma
        live_count = accumulate_rows(traces, 4, cur, g, live, live_count, slot)
        n_live[0] = live_count
        g[0] = step_w * delta
        g[1] = step_mu * delta
        g[2] = step_sigma * delta
        apply_traces(rows, traces, 4, g, live, live_count)
    if entropy > 0.0:
        # H = ln sigma + const, so grad H = exp(h_sigma) / sigma * x(s).
        g[0] = 0.0
        g[1] = 0.0
        g[2] = step_sigma * entropy * exp_h / sigma
        add_rows(rows, 4, cur, g)
    return True, rbar, delta


@njit(cache=True, error_model="numpy", forceinline=True)
def gaussian_finish(params, work):
    _finish(work, params.w, params.theta, params.z_w, params.z_theta)


SOFTMAX = FusedLearner("softmax actor-critic", SoftmaxParams, Work, softmax_begin, softmax_act,
                       softmax_learn, _nothing, softmax_finish, td_error=True)
SOFTMAX3 = FusedLearner("softmax actor-critic 3", SoftmaxParams, Work, softmax3_begin,
                        softmax3_act, softmax3_learn, _nothing, softmax3_finish, td_error=True)
GAUSSIAN = FusedLearner("gaussian actor-critic", GaussianParams, Work, gaussian_begin,
                        gaussian_act, gaussian_learn, _nothing, gaussian_finish, td_error=True)


# --- drivers: how train runs them, what their results hold --------------------------------


def softmax_learner(params):
    """The softmax actor-critic's learner for ``params``: the three-action fast path if it applies."""
    if _three_action_path(params.theta, params.lambda_w, params.lambda_theta, params.entropy):
        return SOFTMAX3
    return SOFTMAX


def _three_action_path(theta, lambda_w, lambda_theta, entropy):
    """Whether :data:`SOFTMAX3` does this run's work (tests turn it off to compare)."""
    return theta.shape[1] == 3 and lambda_w == 0.0 and lambda_theta == 0.0 and entropy == 0.0


def actor_critic_memory(agent, n_features, n_columns):
    """Bytes of w and theta, their traces when lambda > 0, and the fused loop's rows of
    both (padded to 4 doubles a column block) for the length of a call."""
    traced = agent.lambda_w > 0 or agent.lambda_theta > 0
    return 8 * n_features * (1 + n_columns) * (2 + 2 * traced) + 32 * n_features * traced


def actor_critic_arrays(agent, n_features, n_columns):
    """``(w, theta, z_w, z_theta)`` of a new run: zeros, traces only where lambda > 0."""
    return (np.zeros(n_features), np.zeros((n_features, n_columns)),
            np.zeros(n_features if agent.lambda_w > 0 else 0),
            np.zeros((n_features if agent.lambda_theta > 0 else 0, n_columns)))


def _check_softmax(agent, task):
    if task.fused.n_actions == 0:
        raise ValueError(
            f"agent: SoftmaxActorCritic needs discrete actions, but {task.env_id} has a "
            "continuous action; use GaussianActorCritic"
        )


def _build_softmax(agent, task):
    n_actions = task.fused.n_actions
    w, theta, z_w, z_theta = actor_critic_arrays(agent, task.features.n_features, n_actions)
    params = SoftmaxParams(
        w, theta, z_w, z_theta, np.zeros(n_actions), np.zeros(n_actions),
        float(agent.alpha_w), float(agent.alpha_theta), float(agent.alpha_rbar),
        float(agent.tau), float(agent.lambda_w), float(agent.lambda_theta),
        float(agent.entropy))
    return Built(softmax_learner(params), params, np.int64)


def softmax_weights(agent, params):
    """``Result.weights`` of the softmax actor-critic: ``w`` and ``theta``."""
    return {"w": params.w, "theta": params.theta}


def _softmax_policy(agent, weights):
    return Policy(SOFTMAX_POLICY, weights["theta"], tau=float(agent.tau))


SOFTMAX_DRIVER = Driver(
    SoftmaxActorCritic, _build_softmax, softmax_weights, _softmax_policy, _check_softmax,
    memory=lambda agent, task: actor_critic_memory(agent, task.features.n_features,
                                                   task.fused.n_actions),
    stepwise=True, parallel=True, weight_names=("w", "theta"))


def _check_gaussian(agent, task):
    if task.fused.n_actions != 0:
        raise ValueError(
            f"agent: GaussianActorCritic needs a continuous action, but {task.env_id} has "
            f"{task.fused.n_actions} discrete actions; use SoftmaxActorCritic"
        )
    if agent.squash:
        raise ValueError(
            f"agent: squash=True is for the Python-stepped path; {task.env_id} runs in the "
            "fused loop, whose Gaussian actor is unsquashed (the environment clips the "
            "sample): use squash=None (automatic) or False, or "
            "avgreward.stepwise.train_stepwise(...) to run it squashed")


def _build_gaussian(agent, task):
    w, theta, z_w, z_theta = actor_critic_arrays(agent, task.features.n_features, 2)
    params = GaussianParams(
        w, theta, z_w, z_theta, float(agent.alpha_w), float(agent.alpha_mu),
        float(agent.alpha_sigma), float(agent.alpha_rbar), float(agent.lambda_w),
        float(agent.lambda_theta), bool(agent.scale_mean_gradient), float(agent.sigma_min),
        float(agent.entropy))
    return Built(GAUSSIAN, params, np.float64)


def gaussian_weights(agent, params):
    """``Result.weights`` of the Gaussian actor-critic: ``w``, ``theta_mu``, ``theta_sigma``."""
    return {"w": params.w, "theta_mu": params.theta[:, 0].copy(),
            "theta_sigma": params.theta[:, 1].copy()}


def _gaussian_policy(agent, weights):
    theta = np.stack([weights["theta_mu"], weights["theta_sigma"]], axis=1)
    return Policy(GAUSSIAN_POLICY, theta, sigma_min=float(agent.sigma_min))


GAUSSIAN_DRIVER = Driver(
    GaussianActorCritic, _build_gaussian, gaussian_weights, _gaussian_policy, _check_gaussian,
    memory=lambda agent, task: actor_critic_memory(agent, task.features.n_features, 2),
    stepwise=True, weight_names=("w", "theta_mu", "theta_sigma"),
    continuous=lambda agent: True)
