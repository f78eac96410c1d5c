"""Deprecated: the environments are now :mod:`avgreward.envs` (``import avgreward.envs``).

This top-level package is kept for one release so that code written for the
old name goes on working:

- ``import envs`` warns (``DeprecationWarning``), registers the ids as
  ``import avgreward.envs`` does, and gives the names of :mod:`avgreward.envs`
  (``envs.PendulumSwingUpEnv is avgreward.envs.PendulumSwingUpEnv``);
- ``import envs.pendulum``, ``from envs.declare import FusedEnv``... give the
  submodules of :mod:`avgreward.envs` themselves (``sys.modules`` aliases, not
  copies: one class, one jitted function, one numba cache each);
- ``gymnasium.make("envs:avgreward/LoopMDP-v0")`` still works.

avgreward itself never imports this package.
"""

import importlib
import pkgutil
import sys
import warnings

warnings.warn("envs is now avgreward.envs; import avgreward.envs", DeprecationWarning,
              stacklevel=2)

import avgreward.envs as _envs  # noqa: E402
from avgreward.envs import *  # noqa: E402,F401,F403
from avgreward.envs import __all__  # noqa: E402,F401

# Each submodule of avgreward.envs under its old name too: ``import envs.pendulum``
# finds it in sys.modules (this package is always imported first), and
# ``envs.pendulum`` / ``from envs import pendulum`` find the attribute.
for _info in pkgutil.iter_modules(_envs.__path__):
    _module = importlib.import_module(f"{_envs.__name__}.{_info.name}")
    sys.modules[f"{__name__}.{_info.name}"] = _module
    globals()[_info.name] = _module
del _info, _module


def __getattr__(name):
    # Anything else avgreward.envs has (its private names too: envs._ENTRY_POINTS).
    if not name.startswith("__"):
        try:
            return getattr(_envs, name)
        except AttributeError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
