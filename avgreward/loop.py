"""The fused training loop: environment, features, actor and critic in one jitted call.

Each kernel runs steps ``t0 .. t0 + n - 1`` of a run and updates the learner's
arrays in place, so a long run is a sequence of calls (chunks) whose result is
identical to one call.  Per step, in the order of Sutton & Barto's box
(section 13.6), with the random draws in this order (the plain-Python
reference, :mod:`avgreward.reference`, makes the same draws):

1. ``A ~ pi(.|S)``: softmax by inverse CDF of one ``rng.random()``; Gaussian
   as ``mu + sigma * rng.standard_normal()``;
2. the environment step, with one ``rng.random()`` if its step is random;
3. ``delta = R - Rbar + v(S') - v(S)`` with the old weights and R-bar;
4. ``Rbar += alpha_rbar * delta``; critic; actor (traces if lambda > 0).

The features of S' computed for ``v(S')`` become those of S for the next
step, and the environment steps its state in place.  The kernels return the
number of steps completed: fewer than ``n`` when a TD error or the policy
became non-finite, in which case that step's updates were not applied.
"""

import math

from numba import njit

from avgreward.actors import (
    gaussian_parameters,
    gaussian_score,
    sample_discrete,
    softmax_entropy_gradient,
    softmax_probabilities,
    softmax_score,
)
from avgreward.critic import (
    accumulate_trace_outer,
    add_outer_at,
    apply_trace_outer,
    critic_update,
    linear_value,
)
from avgreward.features import tile_indices
from envs.dynamics import env_observe, env_step

__all__ = ["softmax_chunk", "gaussian_chunk", "start_features"]


@njit(cache=True)
def start_features(kind, state, obs, tc, idx):
    """Features of the start state (the loop keeps the features of S in ``idx``).

    ``tc`` is the tuple :meth:`avgreward.features.TileCoder.kernel_args`.
    """
    env_observe(kind, state, obs)
    tile_indices(obs, *tc, idx)


@njit(cache=True)
def _record(t, reward, rbar, rewards, rbar_trace, rbar_every):
    rewards[t] = reward
    if (t + 1) % rbar_every == 0:
        rbar_trace[(t + 1) // rbar_every - 1] = rbar


@njit(cache=True)
def softmax_chunk(
    kind, random_step, state, obs,
    tc,
    idx, idx_next, w, theta, z_w, z_theta, probs, coef, steps_theta, rbar_box,
    alpha_w, alpha_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy,
    rng, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
):
    """Steps ``t0 .. t0+n-1`` of the softmax actor-critic; returns the steps completed.

    ``tc`` is the feature map's :meth:`~avgreward.features.TileCoder.kernel_args`
    tuple.  ``theta`` is ``[n_features, n_actions]``; ``z_w``/``z_theta`` are the traces
    (untouched when the matching lambda is 0); ``probs``, ``coef`` and
    ``steps_theta`` are scratch of length ``n_actions``; ``rbar_box[0]`` holds
    R-bar between calls.  ``rewards[t]`` (and ``actions[t]`` if
    ``record_actions``) are written for each step; ``rbar_trace[m]`` is R-bar
    after step ``(m + 1) * rbar_every``.
    """
    k = idx.shape[0]
    step_w = alpha_w / k
    step_theta = alpha_theta / k
    for b in range(steps_theta.shape[0]):
        steps_theta[b] = step_theta
    rbar = rbar_box[0]
    cur = idx
    nxt = idx_next
    swapped = False
    done = n
    for t in range(t0, t0 + n):
        softmax_probabilities(theta, cur, tau, probs)
        action = sample_discrete(probs, rng.random())
        u = rng.random() if random_step else 0.0
        reward = env_step(kind, state, float(action), u, state)
        env_observe(kind, state, obs)
        tile_indices(obs, *tc, nxt)

        delta = reward - rbar + linear_value(w, nxt) - linear_value(w, cur)
        if not math.isfinite(delta):
            done = t - t0
            break
        rbar += alpha_rbar * delta

        critic_update(w, z_w, lambda_w, cur, step_w * delta)

        softmax_score(probs, action, tau, coef)
        if lambda_theta == 0.0:
            add_outer_at(theta, cur, step_theta * delta, coef)
        else:
            accumulate_trace_outer(z_theta, lambda_theta, cur, coef)
            for b in range(steps_theta.shape[0]):
                steps_theta[b] = step_theta * delta
            apply_trace_outer(theta, z_theta, steps_theta)
        if entropy > 0.0:
            softmax_entropy_gradient(probs, tau, coef)
            add_outer_at(theta, cur, step_theta * entropy, coef)

        _record(t, reward, rbar, rewards, rbar_trace, rbar_every)
        if record_actions:
            actions[t] = action
        cur, nxt = nxt, cur
        swapped = not swapped
    rbar_box[0] = rbar
    # The features of the current S must be in the caller's idx for the next chunk.
    if swapped:
        idx[:] = cur
    return done


@njit(cache=True)
def gaussian_chunk(
    kind, random_step, state, obs,
    tc,
    idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta, rbar_box,
    alpha_w, alpha_mu, alpha_sigma, alpha_rbar, lambda_w, lambda_theta,
    scale_mean_gradient, sigma_min, entropy,
    rng, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
):
    """Steps ``t0 .. t0+n-1`` of the Gaussian actor-critic; returns the steps completed.

    ``theta[:, 0]`` are the mean's weights and ``theta[:, 1]`` the log-sigma
    weights; ``coef`` and ``steps_theta`` are scratch of length 2.  Otherwise
    as :func:`softmax_chunk`.  The recorded action is the sample before the
    environment clips it, the one whose score is used.
    """
    k = idx.shape[0]
    step_w = alpha_w / k
    step_mu = alpha_mu / k
    step_sigma = alpha_sigma / k
    rbar = rbar_box[0]
    cur = idx
    nxt = idx_next
    swapped = False
    done = n
    for t in range(t0, t0 + n):
        mu, h_sigma, sigma = gaussian_parameters(theta, cur, sigma_min)
        if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0.0):
            done = t - t0
            break
        action = mu + sigma * rng.standard_normal()
        u = rng.random() if random_step else 0.0
        reward = env_step(kind, state, action, u, state)
        env_observe(kind, state, obs)
        tile_indices(obs, *tc, nxt)

        delta = reward - rbar + linear_value(w, nxt) - linear_value(w, cur)
        if not math.isfinite(delta):
            done = t - t0
            break
        rbar += alpha_rbar * delta

        critic_update(w, z_w, lambda_w, cur, step_w * delta)

        g_mu, g_sigma = gaussian_score(action, mu, h_sigma, sigma, scale_mean_gradient)
        coef[0] = g_mu
        coef[1] = g_sigma
        if lambda_theta == 0.0:
            coef[0] *= step_mu * delta
            coef[1] *= step_sigma * delta
            add_outer_at(theta, cur, 1.0, coef)
        else:
            accumulate_trace_outer(z_theta, lambda_theta, cur, coef)
            steps_theta[0] = step_mu * delta
            steps_theta[1] = step_sigma * delta
            apply_trace_outer(theta, z_theta, steps_theta)
        if entropy > 0.0:
            # H = ln sigma + const, so grad H = exp(h_sigma) / sigma * x(s).
            coef[0] = 0.0
            coef[1] = step_sigma * entropy * math.exp(h_sigma) / sigma
            add_outer_at(theta, cur, 1.0, coef)

        _record(t, reward, rbar, rewards, rbar_trace, rbar_every)
        if record_actions:
            actions[t] = action
        cur, nxt = nxt, cur
        swapped = not swapped
    rbar_box[0] = rbar
    if swapped:
        idx[:] = cur
    return done
