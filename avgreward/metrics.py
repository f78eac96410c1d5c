"""Live metrics of a run, between its chunks: what a log writer receives.

The fused loop never returns to Python per step; between two jitted calls
(every ``chunk_steps`` steps, 2**18 by default) the run hands a
:class:`Metrics` to the run's ``log`` (``train(..., log=...)``, see
:mod:`avgreward.logs`).  Everything in it is computed from what the run
keeps anyway (the chunk's rewards, R-bar, the episodes' returns, the sum of
absolute TD errors the fused loop adds up in a register), so a run with a
log gives the same numbers, bit for bit, as one without.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Metrics", "MetricsTracker", "METRIC_NAMES"]


@dataclass(frozen=True)
class Metrics:
    """A run's state after a chunk of steps.

    Attributes
    ----------
    step : int
        Steps done so far (counting from the start of this call: a continued
        run counts from where it continued).
    steps : int
        Steps this call runs in all.
    total_step : int
        Steps done since the run's very first start: ``step`` plus the steps
        of the run it continues (``init``'s ``run_state.steps_done``), so that
        the logs of a run saved and continued read like one run's (the log
        writers' step axis).  Equal to ``step`` for a run that continues none.
        Parallel actors count environment steps (actors x updates) in all three.
    rbar : float
        The learner's estimate of the reward rate, R-bar, after ``step`` steps.
    reward_rate : float
        The mean reward of the steps since the last metrics (the recent
        reward rate).
    episodes : int
        Episodes finished so far, since the run's very first start as
        ``total_step`` (0 for a continuing task).
    episode_return, episode_length : float
        Mean return and length of the episodes finished since the last
        metrics; NaN when none finished.
    mean_abs_td_error : float
        The mean of ``abs(delta)``, delta the learner's TD error, over the steps since the
        last metrics (for the differential learners ``R - Rbar + v(S') -
        v(S)`` with the weights before the step's update; with parallel
        actors the mean over the updates and the copies).  NaN for a learner
        without one (REINFORCE, a bandit, a
        :class:`~avgreward.learners.FusedLearner` not declaring
        ``td_error=True``).
    seconds : float
        Wall time since the run started (this call).
    steps_per_second : float
        Steps per second since the last metrics.
    """

    step: int
    steps: int
    total_step: int
    rbar: float
    reward_rate: float
    episodes: int
    episode_return: float
    episode_length: float
    mean_abs_td_error: float
    seconds: float
    steps_per_second: float

    def as_dict(self) -> dict:
        """The fields by name, in order (a CSV row)."""
        return asdict(self)


#: The metrics' names, in the order of a CSV log's columns.
METRIC_NAMES = tuple(Metrics.__dataclass_fields__)


class MetricsTracker:
    """Makes each chunk's :class:`Metrics` and hands it to ``log``.

    Parameters
    ----------
    steps : int
        The call's steps.
    log : callable
        ``log(metrics)`` after each chunk.
    seen : int, default 0
        Arrays already in the run's episode lists (a continued run's), not this call's.
    before, episodes_before : int, default 0
        Steps and episodes the run had done before this call (a continued
        run's ``run_state``): what ``total_step`` adds to ``step``, and where
        ``episodes`` starts.
    """

    def __init__(self, steps: int, log, seen: int = 0, before: int = 0,
                 episodes_before: int = 0):
        self.steps, self.log, self.before = steps, log, before
        self.started = self.last_time = time.perf_counter()
        self.last_step = 0
        self.episodes = episodes_before
        self.seen = seen  # arrays of the run's episode lists taken so far

    def chunk(self, done: int, rewards, rbar: float, returns=(), lengths=(),
              abs_td_sum: float = math.nan) -> None:
        """Steps up to ``done`` are run; ``rewards`` are those since the last call.

        ``rewards`` holds one reward per step, or (parallel actors) the
        copies' mean of each update: either way their mean is the recent
        reward rate per step.

        ``returns`` and ``lengths`` are the run's lists of the finished
        episodes' returns and lengths, an array appended per chunk
        (:class:`avgreward.run_arrays.EpisodeEnds`): those appended since
        the last call are this call's.  ``abs_td_sum`` is the sum over
        ``rewards``' entries of their absolute TD error (parallel actors: the
        copies' mean of each update's); NaN: the run has none.
        """
        now = time.perf_counter()
        n = done - self.last_step
        appended = len(returns)
        returns = np.concatenate([np.zeros(0), *returns[self.seen:]])
        lengths = np.concatenate([np.zeros(0), *lengths[self.seen:]])
        self.seen = appended
        self.episodes += returns.size
        reward_sum = float(np.sum(rewards, dtype=np.float64))
        elapsed = now - self.last_time
        self.log(Metrics(
            step=done, steps=self.steps, total_step=self.before + done, rbar=float(rbar),
            reward_rate=reward_sum / len(rewards) if len(rewards) else math.nan,
            episodes=self.episodes,
            episode_return=float(returns.mean()) if returns.size else math.nan,
            episode_length=float(lengths.mean()) if lengths.size else math.nan,
            mean_abs_td_error=float(abs_td_sum) / len(rewards) if len(rewards) else math.nan,
            seconds=now - self.started,
            steps_per_second=n / elapsed if elapsed > 0 else math.inf,
        ))
        self.last_step, self.last_time = done, now
