"""Saving and loading a result: kept for compatibility, the code is in :mod:`avgreward.result`.

:func:`save_result`, :func:`load_result` and :func:`result_paths` moved into
:mod:`avgreward.result` next to :class:`~avgreward.result.Result` (they needed
each other: an import circle); this module re-exports them, so
``from avgreward.persist import load_result`` works as before.
"""

from avgreward.result import FORMAT, load_result, result_paths, save_result

__all__ = ["save_result", "load_result", "result_paths", "FORMAT"]
