"""Learners of the fused loop: declared jitted functions over named bundles of arrays.

The fused loop (:mod:`avgreward.kernels`) is the skeleton every learner
shares: draw an action, step the environment (resetting it when an episode
ends), compute the features of S', let the learner learn from the
transition, record the step's outputs.  A learner fills in its part with five
``@njit`` functions and two namedtuple types:

``params_type``
    The learner's bundle: its arrays (weights, traces, scratch) and settings,
    built by the caller and kept between calls (for the actor-critic,
    :class:`~avgreward.learners.actor_critic.SoftmaxParams`).
``work_type``
    A call's working arrays and values, returned by ``begin``.
``begin(params, k) -> work``
    At the start of a call (``k``: the number of active features).
``act(...) -> (ok, action, memo)``
    ``A ~ pi(.|S)``.  ``memo`` is anything (a number or a tuple of numbers)
    ``learn`` needs from it; ``ok`` False stops the run before the step (the
    policy is not finite).
``learn(...) -> (ok, rbar)``
    Learn from the transition ``S, A, R, S'`` and return R-bar, the loop's
    estimate of the reward rate, updated.  ``ok`` False (a non-finite TD
    error) stops the run with this step not applied.
``episode_end(...)``
    Called after the learning step of a step that ended an episode.
``finish(params, work)``
    At the end of a call: the working arrays back into ``params``.

The per-step functions (``act``, ``learn``, ``episode_end``) receive what
they name, like pytest fixtures: each parameter is a field of
``params_type`` or ``work_type`` by name, or one of the loop's own values
:data:`LOOP_VALUES`: ``cur`` (the active features of S), ``words`` (the
PCG64 state for draws, :mod:`avgreward._pcg64`) and ``k`` for all three;
``nxt`` (the features of S'), ``action``, ``memo``, ``reward``, ``rbar`` and
``terminated`` for ``learn`` and ``episode_end``.  No bundle field may be
named like a loop value.  The loop takes the
fields out of the bundles once per call, and the per-step functions are
written into the loop's source (:mod:`avgreward.inlining`: called, numba's
reference counting of their array arguments ran on every step, five times
slower).  So they are plain jitted functions (callable on their own, in
tests) in the Python numba compiles, with ``return`` at the top level or
inside ``if`` only, and no nested functions or comprehensions; declaring a
learner checks this.

:class:`FusedLearner` (:mod:`avgreward.learners.fused`) declares a
learner; the loop is compiled for each (environment, learner) pair
(:mod:`avgreward.specialize`).  What the rest of the package knows of a
learner is its driver (:mod:`avgreward.learners.driver`, registered in
:mod:`avgreward.learners.registry`); :class:`Custom` gives a learner of your
own the same door as the built-ins (``train``, saving, ``init=``,
``run_experiment``).
:mod:`avgreward.learners.actor_critic` declares the differential actor-critic
(softmax, softmax with three actions, Gaussian).
:mod:`avgreward.learners.natural_actor_critic` the natural actor-critic of
Bhatnagar et al. (2009).
"""

from avgreward.learners.custom import Custom
from avgreward.learners.fused import LOOP_VALUES, FusedLearner

__all__ = ["FusedLearner", "LOOP_VALUES", "Custom"]
