"""Validation shared by the gymnasium wrappers (private).

The jitted kernels trust their inputs (they run millions of times inside the
fused loop); the gymnasium classes check everything a user can pass in, here,
and raise ``ValueError`` naming what was expected.
"""

import math

import numpy as np
from gymnasium.error import ResetNeeded

RENDER_MODES = ("rgb_array",)


def check_render_mode(render_mode):
    """Return ``render_mode`` if it is None or a supported mode, else raise ValueError."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"render_mode must be None or one of {list(RENDER_MODES)}, got {render_mode!r}"
        )
    return render_mode


def require_reset(state):
    """Raise ``gymnasium.error.ResetNeeded`` if the environment has not been reset."""
    if state is None:
        raise ResetNeeded("Cannot call step() or render() before reset(): call env.reset() first.")


def discrete_action(action, n):
    """Validate a discrete action and return it as a Python int in ``range(n)``.

    Accepts Python ints, numpy integer scalars and integer arrays holding one
    element (0-d or shape (1,)); rejects bools, floats (even integral ones),
    strings and everything else.
    """
    expected = "{" + ", ".join(str(i) for i in range(n)) + "}"
    message = f"action must be an integer in {expected}, got {action!r}"
    if isinstance(action, (bool, np.bool_)):
        raise ValueError(message)
    if isinstance(action, (int, np.integer)):
        value = int(action)
    elif (
        isinstance(action, np.ndarray)
        and action.ndim <= 1
        and action.size == 1
        and np.issubdtype(action.dtype, np.integer)
    ):
        value = int(action.reshape(()))
    else:
        raise ValueError(message)
    if not 0 <= value < n:
        raise ValueError(message)
    return value


def continuous_action(action, low, high):
    """Validate a scalar continuous action and return it as a finite Python float.

    Accepts a real number, or an integer/float array (or list) of shape () or
    (1,). Finite values outside [low, high] are returned unchanged (the kernel
    clips them); NaN and infinities raise ValueError.
    """
    message = (
        f"action must be a finite real number, or an array of shape (1,) holding one "
        f"(values outside [{low}, {high}] are clipped), got {action!r}"
    )
    if isinstance(action, (bool, np.bool_)):
        raise ValueError(message)
    if isinstance(action, (int, float, np.integer, np.floating)):
        value = float(action)
    else:
        if isinstance(action, (list, tuple)):
            try:
                action_array = np.asarray(action)
            except (ValueError, TypeError):
                raise ValueError(message) from None
        elif isinstance(action, np.ndarray):
            action_array = action
        else:
            raise ValueError(message)
        numeric = np.issubdtype(action_array.dtype, np.floating) or np.issubdtype(
            action_array.dtype, np.integer
        )
        if not numeric or action_array.shape not in ((), (1,)):
            raise ValueError(message)
        value = float(action_array.reshape(()))
    if not math.isfinite(value):
        raise ValueError(message)
    return value
