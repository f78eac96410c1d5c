"""The declaration of a learner of the fused loop: :class:`FusedLearner` (see :mod:`avgreward.learners`)."""

from __future__ import annotations

import ast
import inspect
import textwrap
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


def _returned_lengths(function) -> set[int]:
    """The lengths of the literal tuples ``function`` returns (its source; others not counted)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function.py_func)))
    except (OSError, TypeError, SyntaxError):
        return set()  # inlining it will say why
    return {len(node.value.elts) for node in ast.walk(tree)
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple)}


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
    td_error : bool, default False
        True if ``learn`` returns ``(ok, rbar, delta)``: the step's TD error
        as a third value, whose mean absolute value over the steps since the
        last metrics the run's log receives
        (:attr:`avgreward.metrics.Metrics.mean_abs_td_error`).  False (a
        ``learn`` returning ``(ok, rbar)``) makes that metric NaN.

    Raises
    ------
    ValueError
        Naming the field, if a function is not jitted, a type is not a
        namedtuple, a per-step function names a value that does not exist,
        or ``learn`` returns a tuple of the wrong length for ``td_error``.
    """

    name: str
    params_type: Any
    work_type: Any
    begin: Any
    act: Any
    learn: Any
    episode_end: Any
    finish: Any
    td_error: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.td_error, bool):
            raise ValueError(f"td_error must be True or False, got {self.td_error!r}")
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
        if not self.built_in():
            # The package's own learners are checked by its tests (and inlined
            # again when a loop is compiled), not at each import: 0.1 s of every
            # process's start-up went into checking them.
            self.check()

    def built_in(self) -> bool:
        """Whether all five functions are the package's own (``avgreward.*`` modules)."""
        return all(f.py_func.__module__.startswith("avgreward.") for f in self.functions())

    def check(self) -> None:
        """Check that each per-step function can be written into the loop.

        Run when a learner is made (a built-in one's by the package's tests), so
        that a mistake is named there rather than deep in the loop's compile.

        Raises
        ------
        ValueError
            Naming the function and the parameter or construct it cannot inline,
            or ``learn`` returning a tuple of the wrong length for ``td_error``.
        """
        wrong = _returned_lengths(self.learn) - {3 if self.td_error else 2}
        if wrong:
            returns = "(ok, rbar, delta)" if self.td_error else "(ok, rbar)"
            raise ValueError(f"learn: with td_error={self.td_error} it must return {returns}, "
                             f"but returns a tuple of {sorted(wrong)[0]}")
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
