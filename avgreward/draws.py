"""Random draws for a user's jitted code: the fused loop's own stream, draw for draw numpy's.

A learner's per-step functions (:class:`avgreward.learners.FusedLearner`)
receive the run's generator state as the loop value ``words``; they draw from
it with these functions, and the run stays reproducible bit for bit (same
seed, same numbers, chunked or not, 1 or many workers):

>>> from numba import njit
>>> from avgreward.draws import next_double
>>> @njit
... def act(words):                       # uniform over 2 actions
...     return True, int(next_double(words) * 2), 0.0

``next_double(words)`` is ``Generator.random()`` (a float64 in [0, 1)),
``standard_normal(words)`` is ``Generator.standard_normal()`` and
``next_uint64(words)`` a raw 64-bit output, each advancing the state in place
exactly as numpy's PCG64 does.  :func:`load_state` and :func:`store_state`
move a ``numpy.random.Generator``'s state into such an array and back, for
calling jitted code of your own outside the loop with a Generator's stream.
An environment's ``reset``/``step`` do not draw themselves: the loop passes
them one uniform draw ``u`` (:mod:`avgreward.envs.declare`).
"""

from avgreward._pcg64 import load_state, next_double, next_uint64, standard_normal, store_state

__all__ = ["next_double", "standard_normal", "next_uint64", "load_state", "store_state"]
