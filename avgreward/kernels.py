"""The fused loop's jitted kernels, as a template compiled once per environment.

This file is never compiled as it stands (the lines marked ``# <unpack ...>``
and ``# <args ...>`` are written out for the learner: the fields of its
bundles taken out before the loop, and passed to its per-step functions by
name, see :mod:`avgreward.learners`): :mod:`avgreward.specialize` copies
it into a module of its own for each pair of a declared environment
(:class:`envs.declare.FusedEnv`) and a learner
(:class:`avgreward.learners.FusedLearner`) and sets the placeholders below to
their functions and flags before anything is compiled.  numba then compiles
the environment's dynamics and the learner into the loop (inlined, the flags
constant folded) and caches the result under the copy's file, whose name holds
a hash of their sources: an edit makes a new copy, never a stale kernel.  What the kernels do, step by step, is described in
:mod:`avgreward.loop`, which calls them.
"""

from numba import njit

from avgreward._pcg64 import next_double
from avgreward.features import tile_indices

# The environment and the learner, set by avgreward.specialize in each copy (see
# envs.declare and avgreward.learners for the functions' signatures).
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
):
    """Steps ``t0 .. t0+n-1`` of a run; returns the steps completed (see :mod:`avgreward.loop`).

    ``params`` is the learner's bundle of arrays and settings, ``words`` the
    run's PCG64 state, ``rbar_box[0]`` R-bar between calls and ``idx`` the
    features of S (``idx_next`` scratch of the same length).
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

        ok, rbar = learner_learn(cur, nxt, action, memo, reward, rbar)  # <args learn>
        if not ok:
            done = i
            break
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
    return done
