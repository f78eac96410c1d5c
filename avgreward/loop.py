"""The fused training loop: environment, features, actor and critic in one jitted call.

Each kernel runs steps ``t0 .. t0 + n - 1`` of a run and updates the learner's
arrays in place, so a long run is a sequence of calls (chunks) whose result is
identical to one call.  A call writes the reward (and action) of step
``t0 + i`` at index ``i`` of the arrays it is given: the caller passes views of
whole-run arrays, or one chunk-sized buffer that it folds into bin means
between calls, so that memory need not grow with the number of steps.

The kernels are jitted once per environment: ``kernels`` is the module
:func:`avgreward.specialize.kernels_for` compiled for it (a copy of the template
:mod:`avgreward.kernels` with the environment's own functions in it).  Per step,
in the order of Sutton & Barto's box (section 13.6), with the random draws in
this order (the plain-Python reference, :mod:`avgreward.reference`, makes the
same draws):

1. ``A ~ pi(.|S)``: softmax by inverse CDF of one ``rng.random()``; Gaussian
   as ``mu + sigma * rng.standard_normal()``;
2. the environment step, with one ``rng.random()`` if its step is random;
   if the step ended an episode (an episodic environment), the environment's
   reset, with one ``rng.random()`` if its reset is random, gives S': the
   stream goes on from the next episode's start, and the step is written into
   ``ends[ends_count[0]]`` (``ends`` needs ``n`` elements for an episodic
   environment, none otherwise);
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

from avgreward._pcg64 import load_state, store_state

__all__ = ["softmax_chunk", "gaussian_chunk"]


def softmax_chunk(
    kernels, state, obs, tc,
    idx, idx_next, w, theta, z_w, z_theta, probs, coef, steps_theta, rbar_box,
    alpha_w, alpha_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy,
    rng, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
):
    """Steps ``t0 .. t0+n-1`` of the softmax actor-critic; returns the steps completed.

    ``tc`` is the feature map's :meth:`~avgreward.features.TileCoder.kernel_args`
    tuple.  ``theta`` is ``[n_features, n_actions]``; ``z_w``/``z_theta`` are the traces
    (empty and untouched when the matching lambda is 0); ``probs``, ``coef`` and
    ``steps_theta`` are scratch of length ``n_actions``; ``rbar_box[0]`` holds
    R-bar between calls.  ``rewards[i]`` (and ``actions[i]`` if
    ``record_actions``) are written for step ``t0 + i``, so they need at
    least ``n`` elements; ``rbar_trace[m]`` is R-bar after step
    ``(m + 1) * rbar_every`` (indexed over the whole run).  ``ends`` and
    ``ends_count`` receive the steps that ended an episode (see above).
    ``rng`` is the run's ``np.random.Generator`` (PCG64); the kernel draws from a
    copy of its state, written back afterwards, so that ``rng`` continues
    exactly as if it had made the draws itself.
    """
    words = load_state(rng)
    if _three_action_path(theta, lambda_w, lambda_theta, entropy):
        done = kernels._softmax3_chunk(
            state, obs, tc, idx, idx_next, w, theta, rbar_box,
            alpha_w, alpha_theta, alpha_rbar, tau,
            words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends,
            ends_count,
        )
    else:
        done = kernels._softmax_chunk(
            state, obs, tc,
            idx, idx_next, w, theta, z_w, z_theta, probs, coef, steps_theta, rbar_box,
            alpha_w, alpha_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy,
            words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends,
            ends_count,
        )
    store_state(rng, words)
    return done


def _three_action_path(theta, lambda_w, lambda_theta, entropy):
    """Whether :func:`_softmax3_chunk` does this run's work (tests turn it off to compare)."""
    return theta.shape[1] == 3 and lambda_w == 0.0 and lambda_theta == 0.0 and entropy == 0.0


def gaussian_chunk(
    kernels, state, obs, tc,
    idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta, rbar_box,
    alpha_w, alpha_mu, alpha_sigma, alpha_rbar, lambda_w, lambda_theta,
    scale_mean_gradient, sigma_min, entropy,
    rng, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
):
    """Steps ``t0 .. t0+n-1`` of the Gaussian actor-critic; returns the steps completed.

    ``theta[:, 0]`` are the mean's weights and ``theta[:, 1]`` the log-sigma
    weights; ``coef`` and ``steps_theta`` are scratch of length 2.  Otherwise
    as :func:`softmax_chunk`.  The recorded action is the sample before the
    environment clips it, the one whose score is used.
    """
    words = load_state(rng)
    done = kernels._gaussian_chunk(
        state, obs, tc,
        idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta, rbar_box,
        alpha_w, alpha_mu, alpha_sigma, alpha_rbar, lambda_w, lambda_theta,
        scale_mean_gradient, sigma_min, entropy,
        words, t0, n, rewards, actions, record_actions, rbar_trace, rbar_every, ends, ends_count,
    )
    store_state(rng, words)
    return done
