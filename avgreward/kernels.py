"""The fused loop's jitted kernels, as a template compiled once per environment.

This file is never compiled as it stands: :mod:`avgreward.specialize` copies
it into a module of its own for each declared environment
(:class:`envs.declare.FusedEnv`) and sets the placeholders below to that
environment's functions and flags before anything is compiled.  numba then
compiles the environment's dynamics into the loop (inlined, the flags constant
folded) and caches the result under the copy's file, whose name holds a hash
of the environment's sources: an edit of the environment makes a new copy,
never a stale kernel.  What the kernels do, step by step, is described in
:mod:`avgreward.loop`, which calls them.
"""

import math

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
from avgreward.features import tile_indices
from avgreward.weight_rows import hand_back, pack_rows, pack_traces

# The environment, set by avgreward.specialize in each copy (see envs.declare for
# the functions' signatures).  env_transition returns (reward, terminated).
env_reset = env_step = env_observe = env_transition = None
RANDOM_RESET = RANDOM_STEP = EPISODIC = False


@njit(forceinline=True)
def continuing_transition(state, action, u, next_state):
    """A continuing environment's step as ``(reward, terminated)``: never terminated."""
    return env_step(state, action, u, next_state), False


@njit(cache=True, error_model="numpy")
def reset(state, u):
    """The environment's start state into ``state`` (``u`` used only if its reset is random)."""
    env_reset(state, u)


@njit(cache=True, error_model="numpy")
def start_features(state, obs, tc, idx):
    """Features of the start state (the loop keeps the features of S in ``idx``).

    ``tc`` is the tuple :meth:`avgreward.features.TileCoder.kernel_args`.
    """
    env_observe(state, obs)
    tile_indices(obs, *tc, idx)


@njit(cache=True, error_model="numpy")
def _softmax_chunk(
    state, obs, tc,
    idx, idx_next, w, theta, z_w, z_theta, probs, coef, steps_theta, rbar_box,
    alpha_w, alpha_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
):
    """:func:`softmax_chunk` with the PCG64 state ``words`` in place of the generator."""
    box, grid, offsets, tiling_size = tc
    k = idx.shape[0]
    d = w.shape[0]
    n_actions = theta.shape[1]
    width = 4 * ((n_actions + 4) // 4)  # critic + actions, padded to a multiple of 4
    rows = pack_rows(w, theta, width)
    traced = lambda_w > 0.0 or lambda_theta > 0.0
    live = np.empty(d if traced else 0, dtype=np.int64)
    slot = np.empty(d if traced else 0, dtype=np.int64)
    traces, n_live = pack_traces(z_w, z_theta, d if traced else 0, n_actions, width, live, slot)
    lam = np.zeros(width)  # per column: the critic's lambda, then the actor's
    lam[0] = lambda_w
    lam[1:1 + n_actions] = lambda_theta
    sums = np.zeros(width)  # v(S), then h(S, a)
    g = np.zeros(width)  # per column: the gradient's coefficient of x(S) (or step x it)
    step_w = alpha_w / k
    step_theta = alpha_theta / k
    rbar = rbar_box[0]
    cur = idx.copy()
    nxt = idx_next.copy()
    done = n
    n_ends = 0
    countdown = rbar_every - t0 % rbar_every  # steps until R-bar is recorded
    for i in range(n):  # step t0 + i
        # A ~ pi(.|S): v(S) and the preferences h(S, .) in one pass over S's rows
        row_sums(rows, width, cur, sums)
        softmax_of_preferences(sums, 1, tau, probs)
        action = sample_discrete(probs, next_double(words))
        # Take A, observe S', R
        u = next_double(words) if RANDOM_STEP else 0.0
        reward, terminated = env_transition(state, float(action), u, state)
        if EPISODIC and terminated:
            # S' is the next episode's start: the stream goes on.
            env_reset(state, next_double(words) if RANDOM_RESET else 0.0)
            ends[n_ends] = t0 + i
            n_ends += 1
        env_observe(state, obs)
        tile_indices(obs, box, grid, offsets, tiling_size, nxt)

        delta = reward - rbar + column_sum(rows, width, nxt, 0) - sums[0]
        if not math.isfinite(delta):
            done = i
            break
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
            n_live = decay_traces(traces, width, lam, live, n_live, slot)
            g[0] = 1.0
            for b in range(n_actions):
                g[1 + b] = coef[b]
            n_live = accumulate_rows(traces, width, cur, g, live, n_live, slot)
            g[0] = step_w * delta
            for b in range(n_actions):
                g[1 + b] = step_theta * delta
            apply_traces(rows, traces, width, g, live, n_live)
        if entropy > 0.0:
            softmax_entropy_gradient(probs, tau, coef)
            g[0] = 0.0
            step = step_theta * entropy
            for b in range(n_actions):
                g[1 + b] = step * coef[b]
            add_rows(rows, width, cur, g)

        # The step's outputs.  (Written out in each kernel: passing the output arrays
        # to a helper, even one numba inlines, leaves reference counting on every step.)
        rewards[i] = reward
        countdown -= 1
        if countdown == 0:
            rbar_trace[(t0 + i + 1) // rbar_every - 1] = rbar
            countdown = rbar_every
        if record_actions:
            actions[i] = action
        # S <- S'
        for j in range(k):
            cur[j] = nxt[j]
    hand_back(rbar, cur, rows, width, traced, traces, rbar_box, idx, w, theta, z_w, z_theta)
    ends_count[0] = n_ends
    return done


@njit(cache=True, error_model="numpy")
def _softmax3_chunk(
    state, obs, tc,
    idx, idx_next, w, theta, rbar_box,
    alpha_w, alpha_theta, alpha_rbar, tau,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
):
    """:func:`_softmax_chunk` for three actions, one-step, without entropy bonus.

    The pendulum swing-up's case (torques -1, 0, +1): a weight row is exactly
    ``(w_i, theta_i0, theta_i1, theta_i2)``, one vector, and the preferences,
    probabilities and score coefficients stay in registers instead of small
    arrays (:func:`~avgreward.actors.softmax3` and its neighbours).  The same
    operations in the same order as the general kernel: the same numbers to the
    bit (tests compare the two), about 20 % faster.
    """
    box, grid, offsets, tiling_size = tc
    k = idx.shape[0]
    width = 4
    rows = pack_rows(w, theta, width)
    sums = np.zeros(width)  # v(S), then h(S, 0), h(S, 1), h(S, 2)
    step_w = alpha_w / k
    step_theta = alpha_theta / k
    rbar = rbar_box[0]
    cur = idx.copy()
    nxt = idx_next.copy()
    done = n
    n_ends = 0
    countdown = rbar_every - t0 % rbar_every  # steps until R-bar is recorded
    for i in range(n):  # step t0 + i
        # A ~ pi(.|S): v(S) and the preferences h(S, .) in one pass over S's rows
        row_sums(rows, width, cur, sums)
        p0, p1, p2 = softmax3(sums[1], sums[2], sums[3], tau)
        action = sample3(p0, p1, next_double(words))
        # Take A, observe S', R
        u = next_double(words) if RANDOM_STEP else 0.0
        reward, terminated = env_transition(state, float(action), u, state)
        if EPISODIC and terminated:
            # S' is the next episode's start: the stream goes on.
            env_reset(state, next_double(words) if RANDOM_RESET else 0.0)
            ends[n_ends] = t0 + i
            n_ends += 1
        env_observe(state, obs)
        tile_indices(obs, box, grid, offsets, tiling_size, nxt)

        delta = reward - rbar + column_sum(rows, width, nxt, 0) - sums[0]
        if not math.isfinite(delta):
            done = i
            break
        rbar += alpha_rbar * delta
        # w += alpha_w delta x(S);  theta_b += alpha_theta delta score_b x(S)
        c0, c1, c2 = softmax3_score(p0, p1, p2, action, tau)
        step = step_theta * delta
        add_row_block(rows, width, cur, 0, step_w * delta, step * c0, step * c1, step * c2)

        # The step's outputs.  (Written out in each kernel: passing the output arrays
        # to a helper, even one numba inlines, leaves reference counting on every step.)
        rewards[i] = reward
        countdown -= 1
        if countdown == 0:
            rbar_trace[(t0 + i + 1) // rbar_every - 1] = rbar
            countdown = rbar_every
        if record_actions:
            actions[i] = action
        # S <- S'
        for j in range(k):
            cur[j] = nxt[j]
    hand_back(rbar, cur, rows, width, False, rows, rbar_box, idx, w, theta, w, theta)
    ends_count[0] = n_ends
    return done


@njit(cache=True, error_model="numpy")
def _gaussian_chunk(
    state, obs, tc,
    idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta, rbar_box,
    alpha_w, alpha_mu, alpha_sigma, alpha_rbar, lambda_w, lambda_theta,
    scale_mean_gradient, sigma_min, entropy,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
):
    """:func:`gaussian_chunk` with the PCG64 state ``words`` in place of the generator."""
    box, grid, offsets, tiling_size = tc
    k = idx.shape[0]
    d = w.shape[0]
    width = 4  # (w, theta_mu, theta_sigma, 0)
    rows = pack_rows(w, theta, width)
    traced = lambda_w > 0.0 or lambda_theta > 0.0
    live = np.empty(d if traced else 0, dtype=np.int64)
    slot = np.empty(d if traced else 0, dtype=np.int64)
    traces, n_live = pack_traces(z_w, z_theta, d if traced else 0, 2, width, live, slot)
    lam = np.array([lambda_w, lambda_theta, lambda_theta, 0.0])
    sums = np.zeros(width)  # v(S), mu(S), h_sigma(S)
    g = np.zeros(width)
    step_w = alpha_w / k
    step_mu = alpha_mu / k
    step_sigma = alpha_sigma / k
    rbar = rbar_box[0]
    cur = idx.copy()
    nxt = idx_next.copy()
    done = n
    n_ends = 0
    countdown = rbar_every - t0 % rbar_every  # steps until R-bar is recorded
    for i in range(n):  # step t0 + i
        # A ~ N(mu(S), sigma(S)^2): v(S), mu(S) and h_sigma(S) in one pass over S's rows
        row_sums(rows, width, cur, sums)
        mu = sums[1]
        exp_h = math.exp(sums[2])  # d sigma / d h_sigma as well
        sigma = sigma_min + exp_h
        if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0.0):
            done = i
            break
        action = mu + sigma * standard_normal(words)
        # Take A, observe S', R
        u = next_double(words) if RANDOM_STEP else 0.0
        reward, terminated = env_transition(state, action, u, state)
        if EPISODIC and terminated:
            # S' is the next episode's start: the stream goes on.
            env_reset(state, next_double(words) if RANDOM_RESET else 0.0)
            ends[n_ends] = t0 + i
            n_ends += 1
        env_observe(state, obs)
        tile_indices(obs, box, grid, offsets, tiling_size, nxt)

        delta = reward - rbar + column_sum(rows, width, nxt, 0) - sums[0]
        if not math.isfinite(delta):
            done = i
            break
        rbar += alpha_rbar * delta

        g_mu, g_sigma = gaussian_score(action, mu, exp_h, sigma, scale_mean_gradient)
        if not traced:
            g[0] = step_w * delta
            g[1] = g_mu * (step_mu * delta)
            g[2] = g_sigma * (step_sigma * delta)
            add_rows(rows, width, cur, g)
        else:
            n_live = decay_traces(traces, width, lam, live, n_live, slot)
            g[0] = 1.0
            g[1] = g_mu
            g[2] = g_sigma
            n_live = accumulate_rows(traces, width, cur, g, live, n_live, slot)
            g[0] = step_w * delta
            g[1] = step_mu * delta
            g[2] = step_sigma * delta
            apply_traces(rows, traces, width, g, live, n_live)
        if entropy > 0.0:
            # H = ln sigma + const, so grad H = exp(h_sigma) / sigma * x(s).
            g[0] = 0.0
            g[1] = 0.0
            g[2] = step_sigma * entropy * exp_h / sigma
            add_rows(rows, width, cur, g)

        # The step's outputs.  (Written out in each kernel: passing the output arrays
        # to a helper, even one numba inlines, leaves reference counting on every step.)
        rewards[i] = reward
        countdown -= 1
        if countdown == 0:
            rbar_trace[(t0 + i + 1) // rbar_every - 1] = rbar
            countdown = rbar_every
        if record_actions:
            actions[i] = action
        # S <- S'
        for j in range(k):
            cur[j] = nxt[j]
    hand_back(rbar, cur, rows, width, traced, traces, rbar_box, idx, w, theta, z_w, z_theta)
    ends_count[0] = n_ends
    return done
