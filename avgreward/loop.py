"""The fused training loop: environment, features, actor and critic in one jitted call.

Each kernel runs steps ``t0 .. t0 + n - 1`` of a run and updates the learner's
arrays in place, so a long run is a sequence of calls (chunks) whose result is
identical to one call.  A call writes the reward (and action) of step
``t0 + i`` at index ``i`` of the arrays it is given: the caller passes views of
whole-run arrays, or one chunk-sized buffer that it folds into bin means
between calls, so that memory need not grow with the number of steps.  Per step, in the order of Sutton & Barto's box
(section 13.6), with the random draws in this order (the plain-Python
reference, :mod:`avgreward.reference`, makes the same draws):

1. ``A ~ pi(.|S)``: softmax by inverse CDF of one ``rng.random()``; Gaussian
   as ``mu + sigma * rng.standard_normal()``;
2. the environment step, with one ``rng.random()`` if its step is random;
3. ``delta = R - Rbar + v(S') - v(S)`` with the old weights and R-bar;
4. ``Rbar += alpha_rbar * delta``; critic; actor (traces if lambda > 0).

The kernels return the number of steps completed: fewer than ``n`` when a TD
error or the policy became non-finite, in which case that step's updates were
not applied.

Where the speed comes from (measured by :mod:`avgreward.bench`):

* **One row per feature.**  For the length of a call the critic's and the
  actor's weights live in one array of rows ``(w_i, theta_i0, theta_i1, ...)``
  padded to a multiple of four doubles (:mod:`avgreward.critic`, "weight
  rows").  The active rows of S are read once for ``v(S)`` and every
  preference ``h(S, .)`` together, and written once for the critic's and the
  actor's update together, each a 4-wide vector operation.  The features of
  S' computed for ``v(S')`` become those of S for the next step.
* **Four chains per sum.**  Every sum over the active features is four
  interleaved running sums (the package's summation order, used by the
  reference too): a step's two 32-term sums are then 2 x 10 dependent
  additions instead of 2 x 32, the longest chains of a step.
* **Nothing called, nothing counted.**  The helpers are inlined into the loop
  (``forceinline``), raise no Python exceptions (``error_model="numpy"``:
  no reference counting survives around them), and the draws step numpy's
  PCG64 in line (:mod:`avgreward._pcg64`): the same numbers as
  ``rng.random()`` and ``rng.standard_normal()``.  The Gaussian's ``exp(h_sigma)``
  is computed once per step and serves sigma and the score.
* **Three actions in registers.**  With three actions (the swing-up's torques),
  one step and no entropy bonus, :func:`_softmax3_chunk` does the work: a
  weight row is exactly one vector and the preferences, probabilities and
  score coefficients are scalars instead of small arrays, the same arithmetic
  in the same order (tests compare the two kernels bit for bit).
* **Sparse traces, exactly.**  With eligibility traces the traces use the
  same rows, and only features whose trace is not exactly zero are visited:
  a zero trace changes no weight, so the result is the dense textbook update
  to the bit, at a cost that follows the number of recently active features
  (a few dozen on the balanced pendulum) instead of the number of features.
"""

import math

import numpy as np
from numba import njit

from avgreward._pcg64 import load_state, next_double, standard_normal, store_state
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
from envs.dynamics import env_observe, env_step

__all__ = ["softmax_chunk", "gaussian_chunk", "start_features"]


@njit(cache=True, error_model="numpy")
def start_features(kind, state, obs, tc, idx):
    """Features of the start state (the loop keeps the features of S in ``idx``).

    ``tc`` is the tuple :meth:`avgreward.features.TileCoder.kernel_args`.
    """
    env_observe(kind, state, obs)
    tile_indices(obs, *tc, idx)


# --- a call's working arrays: weight rows and live traces ------------------------------


@njit(cache=True, error_model="numpy")
def _pack_rows(w, theta, width):
    """The weight rows ``(w_i, theta_i., 0...)`` of ``w`` and ``theta``, flattened."""
    d = w.shape[0]
    rows = np.zeros(d * width)
    for i in range(d):
        rows[i * width] = w[i]
        for b in range(theta.shape[1]):
            rows[i * width + 1 + b] = theta[i, b]
    return rows


@njit(cache=True, error_model="numpy")
def _unpack_rows(rows, width, w, theta):
    """Copy the weight rows back into ``w`` and ``theta``."""
    for i in range(w.shape[0]):
        w[i] = rows[i * width]
        for b in range(theta.shape[1]):
            theta[i, b] = rows[i * width + 1 + b]


@njit(cache=True, error_model="numpy")
def _pack_traces(z_w, z_theta, d, n_cols, width, live, slot):
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
def _unpack_traces(traces, width, z_w, z_theta):
    """Copy the trace rows back into ``z_w`` and ``z_theta`` (those that are kept)."""
    for i in range(z_w.shape[0]):
        z_w[i] = traces[i * width]
    for i in range(z_theta.shape[0]):
        for b in range(z_theta.shape[1]):
            z_theta[i, b] = traces[i * width + 1 + b]


@njit(cache=True, error_model="numpy")
def _hand_back(rbar, cur, rows, width, traced, traces, rbar_box, idx, w, theta, z_w, z_theta):
    """End of a chunk: R-bar, the features of S, weights and traces back into the caller's arrays."""
    rbar_box[0] = rbar
    idx[:] = cur
    _unpack_rows(rows, width, w, theta)
    if traced:
        _unpack_traces(traces, width, z_w, z_theta)


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
    (empty and untouched when the matching lambda is 0); ``probs``, ``coef`` and
    ``steps_theta`` are scratch of length ``n_actions``; ``rbar_box[0]`` holds
    R-bar between calls.  ``rewards[i]`` (and ``actions[i]`` if
    ``record_actions``) are written for step ``t0 + i``, so they need at
    least ``n`` elements; ``rbar_trace[m]`` is R-bar after step
    ``(m + 1) * rbar_every`` (indexed over the whole run).
    ``rng`` is the run's ``np.random.Generator`` (PCG64); the kernel draws from a
    copy of its state, written back afterwards, so that ``rng`` continues
    exactly as if it had made the draws itself.
    """
    words = load_state(rng)
    if _three_action_path(theta, lambda_w, lambda_theta, entropy):
        done = _softmax3_chunk(
            kind, random_step, state, obs, tc, idx, idx_next, w, theta, rbar_box,
            alpha_w, alpha_theta, alpha_rbar, tau,
            words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
        )
    else:
        done = _softmax_chunk(
            kind, random_step, state, obs, tc,
            idx, idx_next, w, theta, z_w, z_theta, probs, coef, steps_theta, rbar_box,
            alpha_w, alpha_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy,
            words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
        )
    store_state(rng, words)
    return done


def _three_action_path(theta, lambda_w, lambda_theta, entropy):
    """Whether :func:`_softmax3_chunk` does this run's work (tests turn it off to compare)."""
    return theta.shape[1] == 3 and lambda_w == 0.0 and lambda_theta == 0.0 and entropy == 0.0


@njit(cache=True, error_model="numpy")
def _softmax_chunk(
    kind, random_step, state, obs,
    tc,
    idx, idx_next, w, theta, z_w, z_theta, probs, coef, steps_theta, rbar_box,
    alpha_w, alpha_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
):
    """:func:`softmax_chunk` with the PCG64 state ``words`` in place of the generator."""
    box, grid, offsets, tiling_size = tc
    k = idx.shape[0]
    d = w.shape[0]
    n_actions = theta.shape[1]
    width = 4 * ((n_actions + 4) // 4)  # critic + actions, padded to a multiple of 4
    rows = _pack_rows(w, theta, width)
    traced = lambda_w > 0.0 or lambda_theta > 0.0
    live = np.empty(d if traced else 0, dtype=np.int64)
    slot = np.empty(d if traced else 0, dtype=np.int64)
    traces, n_live = _pack_traces(z_w, z_theta, d if traced else 0, n_actions, width, live, slot)
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
    countdown = rbar_every - t0 % rbar_every  # steps until R-bar is recorded
    for i in range(n):  # step t0 + i
        # A ~ pi(.|S): v(S) and the preferences h(S, .) in one pass over S's rows
        row_sums(rows, width, cur, sums)
        softmax_of_preferences(sums, 1, tau, probs)
        action = sample_discrete(probs, next_double(words))
        # Take A, observe S', R
        u = next_double(words) if random_step else 0.0
        reward = env_step(kind, state, float(action), u, state)
        env_observe(kind, state, obs)
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
    _hand_back(rbar, cur, rows, width, traced, traces, rbar_box, idx, w, theta, z_w, z_theta)
    return done


@njit(cache=True, error_model="numpy")
def _softmax3_chunk(
    kind, random_step, state, obs,
    tc,
    idx, idx_next, w, theta, rbar_box,
    alpha_w, alpha_theta, alpha_rbar, tau,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
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
    rows = _pack_rows(w, theta, width)
    sums = np.zeros(width)  # v(S), then h(S, 0), h(S, 1), h(S, 2)
    step_w = alpha_w / k
    step_theta = alpha_theta / k
    rbar = rbar_box[0]
    cur = idx.copy()
    nxt = idx_next.copy()
    done = n
    countdown = rbar_every - t0 % rbar_every  # steps until R-bar is recorded
    for i in range(n):  # step t0 + i
        # A ~ pi(.|S): v(S) and the preferences h(S, .) in one pass over S's rows
        row_sums(rows, width, cur, sums)
        p0, p1, p2 = softmax3(sums[1], sums[2], sums[3], tau)
        action = sample3(p0, p1, next_double(words))
        # Take A, observe S', R
        u = next_double(words) if random_step else 0.0
        reward = env_step(kind, state, float(action), u, state)
        env_observe(kind, state, obs)
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
    _hand_back(rbar, cur, rows, width, False, rows, rbar_box, idx, w, theta, w, theta)
    return done


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
    words = load_state(rng)
    done = _gaussian_chunk(
        kind, random_step, state, obs, tc,
        idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta, rbar_box,
        alpha_w, alpha_mu, alpha_sigma, alpha_rbar, lambda_w, lambda_theta,
        scale_mean_gradient, sigma_min, entropy,
        words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
    )
    store_state(rng, words)
    return done


@njit(cache=True, error_model="numpy")
def _gaussian_chunk(
    kind, random_step, state, obs,
    tc,
    idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta, rbar_box,
    alpha_w, alpha_mu, alpha_sigma, alpha_rbar, lambda_w, lambda_theta,
    scale_mean_gradient, sigma_min, entropy,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every,
):
    """:func:`gaussian_chunk` with the PCG64 state ``words`` in place of the generator."""
    box, grid, offsets, tiling_size = tc
    k = idx.shape[0]
    d = w.shape[0]
    width = 4  # (w, theta_mu, theta_sigma, 0)
    rows = _pack_rows(w, theta, width)
    traced = lambda_w > 0.0 or lambda_theta > 0.0
    live = np.empty(d if traced else 0, dtype=np.int64)
    slot = np.empty(d if traced else 0, dtype=np.int64)
    traces, n_live = _pack_traces(z_w, z_theta, d if traced else 0, 2, width, live, slot)
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
        u = next_double(words) if random_step else 0.0
        reward = env_step(kind, state, action, u, state)
        env_observe(kind, state, obs)
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
    _hand_back(rbar, cur, rows, width, traced, traces, rbar_box, idx, w, theta, z_w, z_theta)
    return done
