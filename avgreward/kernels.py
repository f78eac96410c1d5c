"""The fused loop's jitted kernels, as a template compiled once per environment.

This file is never compiled as it stands (the lines marked ``# <unpack ...>``
and ``# <args ...>`` are written out for the learner: the fields of its
bundles taken out before the loop, and passed to its per-step functions by
name, see :mod:`avgreward.learners`): :mod:`avgreward.specialize` copies
it into a module of its own for each pair of a declared environment
(:class:`avgreward.envs.declare.FusedEnv`) and a learner
(:class:`avgreward.learners.FusedLearner`) and sets the placeholders below to
their functions and flags before anything is compiled.  numba then compiles
the environment's dynamics and the learner into the loop (inlined, the flags
constant folded) and caches the result under the copy's file, whose name holds
a hash of their sources: an edit makes a new copy, never a stale kernel.  What the kernels do, step by step, is described in
:mod:`avgreward.loop`, which calls them.
"""

import math

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double
from avgreward.actors import (
    sample_discrete,
    softmax_entropy_gradient,
    softmax_of_preferences,
    softmax_probabilities,
    softmax_score,
)
from avgreward.critic import add_at, add_outer_at, add_rows, column_sum, linear_value, row_sums
from avgreward.features import tile_indices
from avgreward.weight_rows import pack_rows, unpack_rows

# The environment and the learner, set by avgreward.specialize in each copy (see
# avgreward.envs.declare and avgreward.learners for the functions' signatures).
# env_transition returns (reward, terminated).
env_reset = env_step = env_observe = env_transition = None
RANDOM_RESET = RANDOM_STEP = EPISODIC = False
learner_begin = learner_act = learner_learn = learner_episode_end = learner_finish = None


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
def run_chunk(
    params, state, obs, tc, idx, idx_next, rbar_box,
    words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
    td_box,
):
    """Steps ``t0 .. t0+n-1`` of a run; returns the steps completed (see :mod:`avgreward.loop`).

    ``params`` is the learner's bundle of arrays and settings, ``words`` the
    run's PCG64 state, ``rbar_box[0]`` R-bar between calls and ``idx`` the
    features of S (``idx_next`` scratch of the same length).  ``td_box[0]``
    receives the sum of the absolute TD errors over the steps completed (NaN for a
    learner that declares none, see :class:`avgreward.learners.FusedLearner`).
    """
    box, grid, offsets, tiling_size = tc
    k = idx.shape[0]
    work = learner_begin(params, k)
    # The bundles' fields, taken out once for the whole call (see avgreward.learners).
    p_fields = params  # <unpack params>
    w_fields = work  # <unpack work>
    rbar = rbar_box[0]
    cur = idx.copy()
    nxt = idx_next.copy()
    done = n
    n_ends = 0
    episode_steps = ends_count[1]  # steps of the current episode before this call
    cap = ends_count[2]  # truncate episodes at this many steps (0: never)
    countdown = rbar_every - t0 % rbar_every  # steps until R-bar is recorded
    # Summed in a register, not stored per step: an abs and an add off the step's
    # dependency chains, whether or not anyone logs it.
    td_sum = 0.0
    for i in range(n):  # step t0 + i
        ok, action, memo = learner_act(cur, words)  # <args act>
        if not ok:
            done = i
            break
        # Take A, observe S', R
        u = next_double(words) if RANDOM_STEP else 0.0
        reward, terminated = env_transition(state, float(action), u, state)
        ended = False
        if EPISODIC:
            episode_steps += 1
            ended = terminated or episode_steps == cap
            if ended:
                # S' is the next episode's start: the stream goes on.  A truncated
                # episode (the cap) is written as -1 - step.
                env_reset(state, next_double(words) if RANDOM_RESET else 0.0)
                ends[n_ends] = t0 + i if terminated else -1 - (t0 + i)
                n_ends += 1
                episode_steps = 0
        env_observe(state, obs)
        tile_indices(obs, box, grid, offsets, tiling_size, nxt)

        # A learner without a TD error gets ``td = math.nan`` here (avgreward.specialize).
        ok, rbar, td = learner_learn(cur, nxt, action, memo, reward, rbar)  # <args learn>
        if not ok:
            done = i
            break
        td_sum += abs(td)
        if EPISODIC and ended:
            learner_episode_end()  # <args episode_end>

        # The step's outputs.  (Written out here: passing the output arrays to a
        # helper, even one numba inlines, leaves reference counting on every step.)
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
    learner_finish(params, work)
    rbar_box[0] = rbar
    idx[:] = cur
    ends_count[0] = n_ends
    ends_count[1] = episode_steps
    td_box[0] = td_sum
    return done


# --- parallel actors (A2C): N copies of the environment, one learner -----------------------
# Not the learner plug-in: every copy acts with the same weights, and the update is the
# mean of the N one-copy updates, so no copy's update may land before all TD errors are
# known.  The arithmetic is the one-copy learners', in their order, so that N = 1 gives
# their numbers bit for bit (SOFTMAX's for the continuing actor-critic,
# EPISODIC_ACTOR_CRITIC's one-step box for the episodic one).  Copies draw in copy order.


@njit(cache=True, error_model="numpy")
def a2c_chunk(
    w, theta, settings, states, obs, tc, cur, nxt, rbar_box, words, t0, n, rewards, actions,
    record_actions, rbar_trace, rbar_every, partial, ends_return, ends_length, counts, td_box,
):
    """Updates ``t0 .. t0+n-1`` of the differential softmax actor-critic with N actors.

    ``settings`` = (alpha_w, alpha_theta, alpha_rbar, tau, entropy); ``states[c]``
    and ``cur[c]`` are copy c's state and features of S.  ``rewards[i]`` is the
    mean reward of update ``t0 + i`` over the copies; ``actions[i]`` copy 0's
    action.  On an episodic environment (the stream goes on from the next
    start, as with one copy) the episodes that end are written as
    :func:`a2c_episodic_chunk` writes them (``counts[0]`` of them).
    ``td_box[0]`` receives the sum over the completed updates of the copies'
    mean absolute TD error.  Returns the updates completed (fewer if a TD error
    became non-finite).
    """
    box, grid, offsets, tiling_size = tc
    alpha_w, alpha_theta, alpha_rbar, tau, entropy = settings
    n_copies, k = cur.shape
    n_actions = theta.shape[1]
    width = 4 * ((n_actions + 4) // 4)
    rows = pack_rows(w, theta, width)
    sums = np.zeros((n_copies, width))
    probs = np.zeros((n_copies, n_actions))
    coef = np.zeros(n_actions)
    g = np.zeros(width)
    chosen = np.zeros(n_copies, np.int64)
    earned = np.zeros(n_copies)
    deltas = np.zeros(n_copies)
    step_w = alpha_w / k
    step_theta = alpha_theta / k
    inv_n = 1.0 / n_copies
    rbar = rbar_box[0]
    done = n
    n_ends = 0
    td_sum = 0.0
    countdown = rbar_every - t0 % rbar_every
    for i in range(n):
        for c in range(n_copies):
            row_sums(rows, width, cur[c], sums[c])
            softmax_of_preferences(sums[c], 1, tau, probs[c])
            action = sample_discrete(probs[c], next_double(words))
            u = next_double(words) if RANDOM_STEP else 0.0
            reward, terminated = env_transition(states[c], float(action), u, states[c])
            if EPISODIC:
                partial[c] += np.float32(reward)
                partial[n_copies + c] += 1.0
                if terminated:
                    env_reset(states[c], next_double(words) if RANDOM_RESET else 0.0)
                    ends_return[n_ends] = partial[c]
                    ends_length[n_ends] = int(partial[n_copies + c])
                    n_ends += 1
                    partial[c] = 0.0
                    partial[n_copies + c] = 0.0
            env_observe(states[c], obs)
            tile_indices(obs, box, grid, offsets, tiling_size, nxt[c])
            chosen[c] = action
            earned[c] = reward
        # Every copy's TD error with the weights and R-bar they all acted with.
        finite = True
        for c in range(n_copies):
            deltas[c] = earned[c] - rbar + column_sum(rows, width, nxt[c], 0) - sums[c, 0]
            finite = finite and math.isfinite(deltas[c])
        if not finite:
            done = i
            break
        for c in range(n_copies):
            td_sum += abs(deltas[c])
        mean_delta = deltas[0]
        for c in range(1, n_copies):
            mean_delta += deltas[c]
        rbar += alpha_rbar * (mean_delta * inv_n)
        for c in range(n_copies):
            delta = deltas[c] * inv_n
            softmax_score(probs[c], chosen[c], tau, coef)
            g[0] = step_w * delta
            step = step_theta * delta
            for b in range(n_actions):
                g[1 + b] = step * coef[b]
            add_rows(rows, width, cur[c], g)
            if entropy > 0.0:
                softmax_entropy_gradient(probs[c], tau, coef)
                g[0] = 0.0
                step = step_theta * entropy * inv_n
                for b in range(n_actions):
                    g[1 + b] = step * coef[b]
                add_rows(rows, width, cur[c], g)
        mean_reward = earned[0]
        for c in range(1, n_copies):
            mean_reward += earned[c]
        rewards[i] = mean_reward * inv_n
        countdown -= 1
        if countdown == 0:
            rbar_trace[(t0 + i + 1) // rbar_every - 1] = rbar
            countdown = rbar_every
        if record_actions:
            actions[i] = chosen[0]
        for c in range(n_copies):
            for j in range(k):
                cur[c, j] = nxt[c, j]
    unpack_rows(rows, width, w, theta)
    rbar_box[0] = rbar
    counts[0] = n_ends
    td_box[0] = td_sum * inv_n
    return done


@njit(cache=True, error_model="numpy")
def a2c_episodic_chunk(
    w, theta, settings, discounting, states, obs, tc, cur, nxt, words, t0, n, rewards, actions,
    record_actions, partial, ends_return, ends_length, counts, td_box,
):
    """Updates ``t0 .. t0+n-1`` of the one-step episodic actor-critic with N actors.

    ``settings`` = (alpha_w, alpha_theta, gamma, tau, entropy); ``discounting[c]`` is
    copy c's I.  Each episode that ends is written, in the order they end,
    as its return (float64 sum of float32 rewards) and length into
    ``ends_return``/``ends_length`` (``counts[0]`` of them); ``partial[c]`` and
    ``partial[n_copies + c]`` carry copy c's current episode's return and
    length between calls.  ``td_box[0]`` receives the sum over the completed
    updates of the copies' mean absolute TD error.  Returns the updates completed.
    """
    box, grid, offsets, tiling_size = tc
    alpha_w, alpha_theta, gamma, tau, entropy = settings
    n_copies, k = cur.shape
    n_actions = theta.shape[1]
    probs = np.zeros((n_copies, n_actions))
    coef = np.zeros(n_actions)
    chosen = np.zeros(n_copies, np.int64)
    earned = np.zeros(n_copies)
    ended = np.zeros(n_copies, np.bool_)
    deltas = np.zeros(n_copies)
    step_w = alpha_w / k
    step_theta = alpha_theta / k
    inv_n = 1.0 / n_copies
    done = n
    n_ends = 0
    td_sum = 0.0
    for i in range(n):
        for c in range(n_copies):
            softmax_probabilities(theta, cur[c], tau, probs[c])
            action = sample_discrete(probs[c], next_double(words))
            u = next_double(words) if RANDOM_STEP else 0.0
            reward, terminated = env_transition(states[c], float(action), u, states[c])
            partial[c] += np.float32(reward)
            partial[n_copies + c] += 1.0
            if terminated:
                env_reset(states[c], next_double(words) if RANDOM_RESET else 0.0)
                ends_return[n_ends] = partial[c]
                ends_length[n_ends] = int(partial[n_copies + c])
                n_ends += 1
                partial[c] = 0.0
                partial[n_copies + c] = 0.0
            env_observe(states[c], obs)
            tile_indices(obs, box, grid, offsets, tiling_size, nxt[c])
            chosen[c] = action
            earned[c] = reward
            ended[c] = terminated
        finite = True
        for c in range(n_copies):
            v_next = 0.0 if ended[c] else linear_value(w, nxt[c])
            deltas[c] = earned[c] + gamma * v_next - linear_value(w, cur[c])
            finite = finite and math.isfinite(deltas[c])
        if not finite:
            done = i
            break
        for c in range(n_copies):
            td_sum += abs(deltas[c])
        for c in range(n_copies):
            softmax_score(probs[c], chosen[c], tau, coef)
            add_at(w, cur[c], step_w * deltas[c] * inv_n)
            add_outer_at(theta, cur[c], step_theta * discounting[c] * deltas[c] * inv_n, coef)
            if entropy > 0.0:
                softmax_entropy_gradient(probs[c], tau, coef)
                add_outer_at(theta, cur[c], step_theta * entropy * inv_n, coef)
            discounting[c] = 1.0 if ended[c] else gamma * discounting[c]
        mean_reward = earned[0]
        for c in range(1, n_copies):
            mean_reward += earned[c]
        rewards[i] = mean_reward * inv_n
        if record_actions:
            actions[i] = chosen[0]
        for c in range(n_copies):
            for j in range(k):
                cur[c, j] = nxt[c, j]
    counts[0] = n_ends
    td_box[0] = td_sum * inv_n
    return done
