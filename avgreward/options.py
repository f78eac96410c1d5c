"""A run's options as one checked value: :class:`RunOptions`.

:func:`avgreward.train` builds one from its keyword arguments, and the
fused loop, the Python-stepped path, the parallel actors and the runner
take it as it is: the options are checked here, once, and nowhere else.
This module imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["RunOptions"]

#: Steps per jitted call unless ``chunk_steps`` says otherwise.
DEFAULT_CHUNK = 1 << 18

#: R-bar is recorded at most this many times by default.
MAX_RBAR_POINTS = 10_000

# Step counts go on plot axes and into bin_steps as float64: beyond 2**53
# consecutive integers are no longer distinct there.
MAX_STEPS = 2**53


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``name`` (bools are not integers here)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    """``value`` as a finite float > 0, or a ValueError naming ``name`` (bools are not numbers)."""
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from exc
    if isinstance(value, (bool, np.bool_)) or not (np.isfinite(x) and x > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def check_steps(steps) -> int:
    """``steps`` as an int, checked: an integer in ``1 .. 2**53``."""
    steps = check_int("steps", steps, 1)
    if steps > MAX_STEPS:
        raise ValueError(
            f"steps must be at most 2**53 = {MAX_STEPS:,} (step counts must stay exact as "
            f"float64, e.g. on plot axes), got {steps:,}"
        )
    return steps


@dataclass(frozen=True)
class RunOptions:
    """How one run goes: its length, seed and outputs, checked on construction.

    Parameters
    ----------
    steps : int
        Number of steps, 1 to 2**53.
    seed : int
        Seed of the run's generator (``np.random.default_rng(seed)``).
    record_actions : bool, default False
        Keep every step's action.
    rbar_every : int, optional
        Record R-bar every this many steps; default: at most 10,000 points.
    chunk_steps : int, optional
        Steps per jitted call (default 2**18); results do not depend on it.
    bin_size : int, optional
        Keep the mean reward of each bin of this many steps instead of every
        step's reward (``1 <= bin_size <= steps``).
    callback : callable, optional
        ``callback(steps_done, steps)`` after each chunk.
    log : callable, optional
        ``log(metrics)`` after each chunk, with the run's
        :class:`avgreward.metrics.Metrics` (a writer of :mod:`avgreward.logs`).

    Raises
    ------
    ValueError
        Naming the option that is out of range or of the wrong type.

    Examples
    --------
    >>> from avgreward.options import RunOptions
    >>> RunOptions(steps=50_000, seed=0).rbar_every
    5
    """

    steps: int
    seed: int
    record_actions: bool = False
    rbar_every: int | None = None
    chunk_steps: int | None = None
    bin_size: int | None = None
    callback: Callable[[int, int], object] | None = None
    log: Callable[[object], object] | None = None

    def __post_init__(self):
        steps = check_steps(self.steps)
        rbar_every = self.rbar_every
        if rbar_every is None:
            rbar_every = max(1, -(-steps // MAX_RBAR_POINTS))
        chunk = self.chunk_steps if self.chunk_steps is not None else DEFAULT_CHUNK
        values = {
            "steps": steps,
            "seed": check_int("seed", self.seed, 0),
            "rbar_every": check_int("rbar_every", rbar_every, 1),
            "chunk_steps": check_int("chunk_steps", chunk, 1),
        }
        for name in ("callback", "log"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ValueError(f"{name} must be callable, got {getattr(self, name)!r}")
        if self.bin_size is not None:
            bin_size = check_int("bin_size", self.bin_size, 1)
            if bin_size > steps:
                raise ValueError(f"bin_size ({bin_size:,}) must be at most steps ({steps:,})")
            values["bin_size"] = bin_size
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes) -> RunOptions:
        """A copy with some options changed (checked again; ``rbar_every`` kept as it is)."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return RunOptions(**{**fields, **changes})
