"""The fused training loop: environment, features and learner in one jitted call.

A call of :func:`run_chunk` runs steps ``t0 .. t0 + n - 1`` of a run and updates the learner's
arrays in place, so a long run is a sequence of calls (chunks) whose result is
identical to one call.  A call writes the reward (and action) of step
``t0 + i`` at index ``i`` of the arrays it is given: the caller passes views of
whole-run arrays, or one chunk-sized buffer that it folds into bin means
between calls, so that memory need not grow with the number of steps.

The loop is one skeleton (:func:`avgreward.kernels.run_chunk`) jitted once
per pair of an environment (:class:`avgreward.envs.declare.FusedEnv`) and a learner
(:class:`avgreward.learners.FusedLearner`), with both compiled in
(:func:`avgreward.specialize.kernels_for`).  Per step, with the
actor-critic's learners (:mod:`avgreward.learners.actor_critic`) in the order
of Sutton & Barto's box (section 13.6), with the random draws in this order
(the plain-Python reference, :mod:`avgreward.reference`, makes the same
draws):

1. ``A ~ pi(.|S)``: softmax by inverse CDF of one ``rng.random()``; Gaussian
   as ``mu + sigma * rng.standard_normal()``;
2. the environment step, with one ``rng.random()`` if its step is random;
   if the step ended an episode (an episodic environment), the environment's
   reset, with one ``rng.random()`` if its reset is random, gives S': the
   stream goes on from the next episode's start, and the step is written into
   ``ends[ends_count[0]]`` (``ends`` needs ``n`` elements for an episodic
   environment, none otherwise).  ``ends_count[1]`` carries the steps of the
   current episode from call to call, and an episode reaching
   ``ends_count[2]`` steps (if > 0) is cut there the same way (truncated,
   written as ``-1 - step``);
3. ``delta = R - Rbar + v(S') - v(S)`` with the old weights and R-bar;
4. ``Rbar += alpha_rbar * delta``; critic; actor (traces if lambda > 0).

A call returns the number of steps completed: fewer than ``n`` when a TD
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
  one step and no entropy bonus, the learner
  :data:`~avgreward.learners.actor_critic.SOFTMAX3` does the work: a
  weight row is exactly one vector and the preferences, probabilities and
  score coefficients are scalars instead of small arrays, the same arithmetic
  in the same order (tests compare the two learners bit for bit).
* **Sparse traces, exactly.**  With eligibility traces the traces use the
  same rows, and only features whose trace is not exactly zero are visited:
  a zero trace changes no weight, so the result is the dense textbook update
  to the bit, at a cost that follows the number of recently active features
  (a few dozen on the balanced pendulum) instead of the number of features.
"""

import numpy as np

from avgreward._pcg64 import load_state, store_state
from avgreward.checkpoint import capture, restore
from avgreward.learners.driver import Built
from avgreward.metrics import MetricsTracker
from avgreward.options import RunOptions
from avgreward.result import DivergenceError
from avgreward.run_arrays import EpisodeEnds, RunArrays
from avgreward.specialize import kernels_for

__all__ = ["run_chunk", "drive", "run_fused"]


def run_chunk(
    fused, learner, params, state, obs, tc, idx, idx_next, rbar_box,
    rng, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
    td_box=None,
):
    """Steps ``t0 .. t0+n-1`` of ``learner`` on environment ``fused``; returns the steps completed.

    ``params`` is the learner's bundle (for the actor-critic
    :class:`~avgreward.learners.actor_critic.SoftmaxParams` or
    :class:`~avgreward.learners.actor_critic.GaussianParams`), updated in place;
    ``state``/``obs`` the environment's arrays; ``tc`` the feature map's
    :meth:`~avgreward.features.TileCoder.kernel_args` tuple; ``idx`` the
    features of S (``idx_next`` scratch of the same length); ``rbar_box[0]``
    R-bar between calls.  ``rewards[i]`` (and ``actions[i]`` if
    ``record_actions``) are written for step ``t0 + i``, so they need at least
    ``n`` elements; ``rbar_trace[m]`` is R-bar after step ``(m + 1) *
    rbar_every`` (indexed over the whole run).  ``ends`` and ``ends_count``
    receive the steps that ended an episode (see above).  ``rng`` is the
    run's ``np.random.Generator`` (PCG64); the kernel draws from a copy of its
    state, written back afterwards, so that ``rng`` continues exactly as if it
    had made the draws itself.  ``td_box[0]``, if given, receives the sum of
    the completed steps' absolute TD errors (NaN if the learner declares no
    ``td_error``).
    """
    kernels = kernels_for(fused, learner)
    words = load_state(rng)
    done = kernels.run_chunk(
        params, state, obs, tc, idx, idx_next, rbar_box,
        words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
        np.zeros(1) if td_box is None else td_box,
    )
    store_state(rng, words)
    return done


def drive(fused, built: Built, run, features, options: RunOptions, init=None):
    """A whole run: the environment's start, then :func:`run_chunk` chunk after chunk.

    ``built`` is the run's learner and bundle (its driver's
    :class:`~avgreward.learners.driver.Built`), ``run`` its
    :class:`avgreward.run_arrays.RunArrays` (outputs, bins, R-bar); the
    run's generator, ``np.random.default_rng(options.seed)``, draws the start
    state first.  Returns its :class:`~avgreward.result.Result`; raises its
    :class:`~avgreward.result.DivergenceError` with the steps before a
    non-finite one (or the clearer error of ``built.on_divergence``).
    Episode ends go into ``Result.info`` (see
    :class:`avgreward.run_arrays.EpisodeEnds`); ``built.episode_cap`` > 0
    cuts an episodic environment's episodes at that many steps
    (truncations).  ``init``, a :class:`~avgreward.checkpoint.RunState`,
    continues a run where it stopped instead of starting one (the
    environment, the learner's arrays, R-bar and the generator's state); the
    result's ``run_state`` is where this run stopped (None unless
    ``built.keep_state``: a learner that cannot be continued keeps no copy of
    its arrays).
    """
    try:
        return _drive(fused, built, run, features, options, init)
    except DivergenceError as error:
        clearer = built.on_divergence(error) if built.on_divergence is not None else None
        if clearer is None:
            raise
        raise clearer from None


def _drive(fused, built, run, features, options, init):
    learner, params = built.learner, built.params
    steps, chunk_steps = options.steps, options.chunk_steps
    rng = np.random.default_rng(options.seed)
    kernels = kernels_for(fused, learner)
    tc = features.kernel_args()
    state = np.zeros(fused.state_size)
    obs = np.zeros(fused.obs_size)
    idx = np.empty(features.n_active, dtype=np.int64)
    idx_next = np.empty_like(idx)
    episodes = EpisodeEnds(fused.episodic, steps, min(chunk_steps, steps), options.bin_size,
                           built.episode_cap)
    if init is None:
        kernels.reset(state, rng.random() if fused.random_reset else 0.0)
        kernels.start_features(state, obs, tc, idx)
    else:
        restore(init, params, state, obs, idx, run.rbar_box, rng, episodes,
                built.episode_buffers, built.from_settings)
    tracker = (None if options.log is None
               else MetricsTracker(steps, options.log, len(episodes.returns),
                                   0 if init is None else init.steps_done,
                                   0 if init is None else init.episodes_done))
    td_box = np.zeros(1)
    t0 = 0
    while t0 < steps:
        n = min(chunk_steps, steps - t0)
        rewards, actions = run.outputs(t0, n)
        completed = run_chunk(
            fused, learner, params, state, obs, tc, idx, idx_next, run.rbar_box,
            rng, t0, n, rewards, actions, options.record_actions, run.rbar_trace,
            options.rbar_every, episodes.buffer, episodes.count, td_box,
        )
        episodes.collect(t0 + completed, rewards, t0)
        run.fold(t0 + completed)
        if completed < n:
            raise run.diverged(t0 + completed, episodes.info(t0 + completed))
        t0 += n
        if tracker is not None:
            tracker.chunk(t0, rewards[:n], run.rbar_box[0], episodes.returns, episodes.lengths,
                          td_box[0])
        if options.callback is not None:
            options.callback(t0, steps)
    result = run.result(steps, episodes.info(steps))
    before = 0 if init is None else init.steps_done
    if built.keep_state:
        finished = sum(a.size for a in episodes.returns)
        result.run_state = capture(params, state, obs, idx, run.rbar_box, rng, episodes,
                                   before + steps, built.episode_buffers,
                                   finished + (0 if init is None else init.episodes_done))
    if init is not None:
        result.info["continued_from"] = before
    return result


def run_fused(env_id, fused, agent, driver, built, features, options, init=None):
    """One run of ``built`` (``driver``'s learner for ``agent``) in the fused loop."""
    run = RunArrays(env_id, agent, features, options, action_dtype=built.action_dtype,
                    weights=lambda: driver.weights(agent, built.params))
    return drive(fused, built, run, features, options, init)
