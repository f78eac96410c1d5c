"""Parallel actors (A2C): N copies of an environment in lockstep feed one learner.

Every update, each copy ``c = 0 .. N-1`` in turn draws its action from the
*same* weights and steps its environment (its draws from the run's generator
in copy order: the action, the step's if random, the reset's if an episode
ends); then every copy's TD error is computed with those weights (and R-bar),
and the update is the mean of the N one-copy updates (Sutton & Barto's
one-step boxes; R-bar moves by the mean TD error)::

    delta_c <- R_c - Rbar + v(S'_c) - v(S_c)            (continuing, 13.6)
    Rbar    <- Rbar + alpha_rbar mean_c delta_c
    w       <- w + alpha_w mean_c delta_c x(S_c)
    theta   <- theta + alpha_theta mean_c delta_c grad ln pi(A_c | S_c)

    delta_c <- R_c + gamma v(S'_c) - v(S_c)             (episodic, 13.5; v(terminal) = 0)
    w       <- w + alpha_w mean_c delta_c x(S_c)
    theta   <- theta + alpha_theta mean_c I_c delta_c grad ln pi(A_c | S_c);  I_c <- gamma I_c

A run's ``steps`` count *updates*; each takes N environment steps
(``chunk_steps`` still counts environment steps: a call does
``chunk_steps // N`` updates).  ``Result.rewards`` holds the mean reward over
the copies of each update, ``Result.actions`` copy 0's actions, and
``train``'s ``Result.info`` ``"actors"`` (N) and ``"env_steps"``; on an
episodic task, with either learner, the episodes (every copy's, in the order
they ended within an update, copies in order) give ``"episode_returns"`` and
``"episode_lengths"`` (saved by the runner too); the steps that ended them
(``"terminations"`` of one actor) are not kept: with N copies a step is not
an episode's.

Same seed, same numbers, whatever the chunking, and with N = 1 exactly the
numbers of the one-actor fused loop (tested bit for bit).  The copies run
one after the other on one core: what parallel actors buy here is more
diverse data per update (the notes' claim, measured by
``scripts/parallel_actors.py``), not speed.  Asynchronous lock-free updates
(A3C's Hogwild) would not be reproducible, and are not offered.

Set ``actors=N`` in :class:`~avgreward.agents.SoftmaxActorCritic` or
:class:`~avgreward.agents.EpisodicActorCritic` and call
:func:`avgreward.train` (or the experiment runner); this module does the work.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from avgreward._pcg64 import load_state, store_state
from avgreward.agents import EpisodicActorCritic, SoftmaxActorCritic
from avgreward.learners.actor_critic import SOFTMAX, actor_critic_memory, softmax_weights
from avgreward.learners.episodic import episodic_actor_critic_weights, initial_theta
from avgreward.metrics import MetricsTracker
from avgreward.options import RunOptions
from avgreward.result import Result
from avgreward.run_arrays import RunArrays
from avgreward.specialize import kernels_for

__all__ = ["drive_parallel"]

_Arrays = namedtuple("_Arrays", ["w", "theta"])


def drive_parallel(env_id, fused, agent, features, options: RunOptions, actors=None) -> Result:
    """A whole A2C run of ``agent`` (validated settings; ``actors`` overrides ``agent.actors``).

    Called by :func:`avgreward.train` for an agent with ``actors > 1``; the
    arguments are checked there.  Raises
    :class:`~avgreward.result.DivergenceError` with the updates before a
    non-finite TD error.
    """
    n_copies = agent.actors if actors is None else actors
    steps, seed, record_actions = options.steps, options.seed, options.record_actions
    rbar_every, chunk_steps, callback = options.rbar_every, options.chunk_steps, options.callback
    episodic = isinstance(agent, EpisodicActorCritic)
    if not isinstance(agent, (SoftmaxActorCritic, EpisodicActorCritic)):
        raise ValueError(f"agent: parallel actors need a SoftmaxActorCritic or "
                         f"EpisodicActorCritic, got {agent!r}")
    if agent.lambda_w > 0 or agent.lambda_theta > 0:
        raise ValueError("agent: parallel actors (A2C) average one-step updates; "
                         "lambda_w and lambda_theta must be 0")
    if episodic and not fused.episodic:
        raise ValueError(f"agent: EpisodicActorCritic learns episode by episode, and {env_id} "
                         "is continuing")
    # The kernels live in the environment's copy of the loop template (any learner's).
    kernels = kernels_for(fused, SOFTMAX)
    n_actions, k = fused.n_actions, features.n_active
    tc = features.kernel_args()
    rng = np.random.default_rng(seed)
    states = np.zeros((n_copies, fused.state_size))
    obs = np.zeros(fused.obs_size)
    cur = np.empty((n_copies, k), dtype=np.int64)
    for c in range(n_copies):  # each copy's start, drawn in copy order
        kernels.reset(states[c], rng.random() if fused.random_reset else 0.0)
        kernels.start_features(states[c], obs, tc, cur[c])
    nxt = np.empty_like(cur)
    counts = np.zeros(1, np.int64)
    # chunk_steps counts environment steps, as for one actor: a call takes N per update
    chunk_steps = max(1, chunk_steps // n_copies)
    chunk = min(chunk_steps, steps)
    run_options = options.replace(chunk_steps=chunk_steps)
    partial = np.zeros(2 * n_copies)  # each copy's current episode: return, length
    ends_return = np.zeros(chunk * n_copies if fused.episodic else 0)
    ends_length = np.zeros(chunk * n_copies if fused.episodic else 0, np.int64)
    returns, lengths = [], []
    theta = initial_theta(agent, features, n_actions) if episodic else np.zeros(
        (features.n_features, n_actions))
    w = np.zeros(features.n_features)
    if episodic:
        run = RunArrays(env_id, agent, features, run_options, action_dtype=np.int64,
                        weights=episodic_actor_critic_weights(agent, _Arrays(w, theta)))
        settings = (float(agent.alpha_w), float(agent.alpha_theta), float(agent.gamma),
                    float(agent.tau), float(agent.entropy))
        discounting = np.ones(n_copies)
    else:
        run = RunArrays(env_id, agent, features, run_options, action_dtype=np.int64,
                        weights=softmax_weights(agent, _Arrays(w, theta)),
                        weights_bytes=actor_critic_memory(agent, features.n_features,
                                                           n_actions))
        settings = (float(agent.alpha_w), float(agent.alpha_theta), float(agent.alpha_rbar),
                    float(agent.tau), float(agent.entropy))
    info = {"actors": n_copies}
    # The log counts environment steps (N per update), as every other learner's does.
    tracker = None if options.log is None else MetricsTracker(steps * n_copies, options.log)
    td_box = np.zeros(1)
    t0 = 0
    while t0 < steps:
        n = min(chunk_steps, steps - t0)
        rewards, actions = run.outputs(t0, n)
        words = load_state(rng)
        if episodic:
            done = kernels.a2c_episodic_chunk(
                w, theta, settings, discounting, states, obs, tc, cur, nxt, words, t0, n,
                rewards, actions, record_actions, partial, ends_return, ends_length, counts,
                td_box)
        else:
            done = kernels.a2c_chunk(
                w, theta, settings, states, obs, tc, cur, nxt, run.rbar_box, words, t0,
                n, rewards, actions, record_actions, run.rbar_trace, rbar_every, partial,
                ends_return, ends_length, counts, td_box)
        store_state(rng, words)
        returns.append(ends_return[:counts[0]].copy())
        lengths.append(ends_length[:counts[0]].copy())
        run.fold(t0 + done)
        if done < n:
            raise run.diverged(t0 + done, _info(info, t0 + done, n_copies, fused.episodic,
                                                returns, lengths))
        t0 += n
        if tracker is not None:
            # rewards are the copies' means per update: their mean is the mean per step
            tracker.chunk(t0 * n_copies, rewards[:n], run.rbar_box[0], returns, lengths,
                          td_box[0])
        if callback is not None:
            callback(t0, steps)
    return run.result(steps, _info(info, steps, n_copies, fused.episodic, returns, lengths))


def _info(info, done, n_copies, episodic, returns, lengths):
    info = {**info, "env_steps": done * n_copies}
    if episodic:
        info["episode_returns"] = np.concatenate(returns)
        info["episode_lengths"] = np.concatenate(lengths)
    return info
