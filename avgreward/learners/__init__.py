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

:class:`FusedLearner` declares a learner; the loop is compiled for each
(environment, learner) pair (:mod:`avgreward.specialize`).
:mod:`avgreward.learners.actor_critic` declares the differential actor-critic
(softmax, softmax with three actions, Gaussian).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from avgreward.inlining import inline_call
from avgreward.envs._numba_cache import refresh_function_caches

__all__ = ["FusedLearner", "LOOP_VALUES"]

_ROLES = ("begin", "act", "learn", "episode_end", "finish")
_PER_STEP = ("act", "learn", "episode_end")

#: What the loop itself passes to a per-step function that names it.
LOOP_VALUES = ("cur", "nxt", "words", "action", "memo", "reward", "rbar", "terminated", "k")
_AVAILABLE = {"act": ("cur", "words", "k"), "learn": LOOP_VALUES, "episode_end": LOOP_VALUES}


def _is_namedtuple(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


@dataclass(frozen=True)
class FusedLearner:
    """A learner of the fused loop (see :mod:`avgreward.learners`).

    Parameters
    ----------
    name : str
    params_type, work_type : namedtuple classes
        The learner's bundle and a call's working values; no field name in both.
    begin, act, learn, episode_end, finish : numba dispatchers

    Raises
    ------
    ValueError
        Naming the field, if a function is not jitted, a type is not a
        namedtuple, or a per-step function names a value that does not exist.
    """

    name: str
    params_type: Any
    work_type: Any
    begin: Any
    act: Any
    learn: Any
    episode_end: Any
    finish: Any

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("params_type", "work_type"):
            if not _is_namedtuple(getattr(self, field)):
                raise ValueError(f"{field} must be a namedtuple class, got "
                                 f"{getattr(self, field)!r}")
        shared = set(self.params_type._fields) & set(self.work_type._fields)
        if shared:
            raise ValueError(f"params_type and work_type share the field(s) {sorted(shared)}")
        taken = (set(self.params_type._fields) | set(self.work_type._fields)) & set(LOOP_VALUES)
        if taken:
            raise ValueError(f"a bundle field may not be named like one of the loop's values "
                             f"{list(LOOP_VALUES)}: {sorted(taken)}")
        for role in _ROLES:
            function = getattr(self, role)
            if not (callable(function) and hasattr(function, "py_func")):
                raise ValueError(
                    f"{role} must be a numba-jitted function (@numba.njit), got {function!r}"
                )
        for role in _PER_STEP:
            # Names every value it needs and can be written into the loop, or raises.
            inline_call(getattr(self, role), self.arguments(role), None, f"_{role}_")
        refresh_function_caches(self.functions())

    def functions(self):
        """The five functions, in the order ``begin, act, learn, episode_end, finish``."""
        return tuple(getattr(self, role) for role in _ROLES)

    def arguments(self, role: str) -> list[str]:
        """The loop's expressions for the parameters of per-step function ``role``, in order.

        A field of ``params_type`` is ``p_<field>``, of ``work_type``
        ``w_<field>`` (locals of the loop), a loop value its own name.
        """
        names = []
        for name in inspect.signature(getattr(self, role).py_func).parameters:
            if name in self.params_type._fields:
                names.append(f"p_{name}")
            elif name in self.work_type._fields:
                names.append(f"w_{name}")
            elif name in _AVAILABLE[role]:
                names.append(name)
            else:
                raise ValueError(
                    f"{role}: its parameter {name!r} is neither a field of "
                    f"{self.params_type.__name__} or {self.work_type.__name__} nor one of the "
                    f"loop's values {list(_AVAILABLE[role])}"
                )
        return names
