"""Optional dependencies (the package's extras), imported only when a feature needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency (an extra of the package) is not installed."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the extra to install.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"pandas"``.
    extra : str
        The package's extra that brings it, e.g. ``"analysis"``.
    what : str
        What needs it, the start of the message (``"tables of results"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtraError(f'{what} need{"" if what.endswith("s") else "s"} {package}: '
                                f'pip install "avgreward[{extra}]" (or pip install '
                                f'{package})') from None
