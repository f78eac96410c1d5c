"""Log writers for a run's live metrics: CSV always, TensorBoard where installed.

A writer is a callable taking a :class:`avgreward.metrics.Metrics`, handed to
``train(..., log=writer)``, ``run_experiment(..., log="csv")`` or
``avgreward run --log csv|tb``.  Any callable does: ``log=print`` prints
each chunk's metrics.  A writer is a context manager; :meth:`CSVLog.close`
flushes and closes its file.

Both writers put a metric against ``total_step``, the steps since the run's
very first start: a run saved and continued (``train(..., init=result)``)
logs on from where it stopped, into the same TensorBoard directory or
(``CSVLog(path, append=True)``) the same CSV file, and its log reads like
the log of one run.

>>> import avgreward
>>> from avgreward.logs import CSVLog
>>> with CSVLog("run.csv") as log:                        # doctest: +SKIP
...     avgreward.train("avgreward/LoopMDP-v0", agent, 1_000_000, seed=0, log=log)
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from pathlib import Path

from avgreward.metrics import METRIC_NAMES, Metrics

__all__ = ["CSVLog", "TensorBoardLog", "LOG_KINDS", "open_log"]

#: ``--log`` kinds: a CSV file per run, or a TensorBoard event directory per run.
LOG_KINDS = ("csv", "tb")


class _Log:
    """A writer is its own context manager: ``with`` closes it."""

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CSVLog(_Log):
    """Each chunk's metrics as a row of a CSV file (one column per metric, NaN as empty).

    Parameters
    ----------
    path : str or Path
        The file, created with its parent directories (an existing one is
        replaced unless ``append``).  Each row is flushed as it is written,
        so an interrupted run's log keeps every chunk it finished.
    append : bool, default False
        Add rows to an existing log (the log of the run this one continues:
        its ``total_step`` goes on from the saved run's); a new file is
        started as without it.

    Raises
    ------
    ValueError
        With ``append``, if the existing file's header is not a log's of
        these metrics (``append`` names it).
    """

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = _header(self.path) if append else None
        if header is not None and header != METRIC_NAMES:
            raise ValueError(f"append: {self.path} is not a log of these metrics (its header "
                             f"is {', '.join(header)}); give a new path")
        self._file = open(self.path, "a" if header is not None else "w", newline="")
        self._writer = csv.writer(self._file)
        if header is None:
            self._writer.writerow(METRIC_NAMES)
        self._file.flush()

    def __call__(self, metrics: Metrics) -> None:
        row = metrics.as_dict()
        self._writer.writerow(["" if isinstance(v, float) and math.isnan(v) else repr(v)
                               if isinstance(v, float) else v for v in row.values()])
        self._file.flush()


_opened = itertools.count()  # TensorBoard logs opened in this process


def _header(path: Path) -> tuple | None:
    """The first row of an existing, non-empty CSV file, or None."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with open(path, newline="") as f:
        return tuple(next(csv.reader(f), ()))


class TensorBoardLog(_Log):
    """Each chunk's metrics as TensorBoard scalars (``tensorboardX``), against ``total_step``.

    A continued run logged into the same directory goes on from the saved
    run's last step (TensorBoard reads the directory's event files as one run).

    Parameters
    ----------
    logdir : str or Path
        The run's event directory (``tensorboard --logdir`` its parent to
        compare runs).

    Raises
    ------
    avgreward.extras.MissingExtraError
        Without ``tensorboardX`` (``pip install "avgreward[tensorboard]"``).
    """

    def __init__(self, logdir: str | os.PathLike):
        from avgreward.extras import require

        writer = require("tensorboardX", "tensorboard", "TensorBoard logs").SummaryWriter
        self.path = Path(logdir)
        # Its SummaryWriter closes like a file.  Its event file is named by the
        # second it was opened: a continued run logging into the same directory
        # within that second would replace the saved run's file without a suffix.
        self._writer = self._file = writer(str(self.path),
                                           filename_suffix=f".{os.getpid()}.{next(_opened)}")

    def __call__(self, metrics: Metrics) -> None:
        for name, value in metrics.as_dict().items():
            if name not in ("step", "steps", "total_step") and not (
                    isinstance(value, float) and math.isnan(value)):
                self._writer.add_scalar(name, value, metrics.total_step)
        self._writer.flush()


def open_log(kind: str, path: str | os.PathLike):
    """A writer of ``kind`` (:data:`LOG_KINDS`) at ``path`` (``.csv`` added for a CSV log)."""
    if kind == "csv":
        return CSVLog(Path(f"{path}.csv"))
    if kind == "tb":
        return TensorBoardLog(path)
    raise ValueError(f"log must be one of {', '.join(LOG_KINDS)}, got {kind!r}")
