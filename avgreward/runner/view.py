"""Reading an experiment back: :class:`Experiment` and :func:`load_experiment`."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avgreward.checkpoint import state_from_files
from avgreward.features import features_from_dict
from avgreward.learners.registry import agent_from_dict
from avgreward.extras import require
from avgreward.result import Result, bin_end_steps
from avgreward.runner.records import (
    CorruptRun,
    RunRecord,
    load_array,
    load_arrays,
    read_config,
    read_records,
)

if TYPE_CHECKING:  # the analysis extra, for the type hints only
    import pandas

    from avgreward.runner.evaluations import ExperimentEvaluation

# One logger for the whole runner: what users filter or capture.
log = logging.getLogger("avgreward.experiment")

# A run's arrays that are not weights; the episodic tasks' episodes.
_EPISODE_FIELDS = ("terminations", "truncations", "episode_returns", "episode_lengths",
                   "episode_end_steps")
_RUN_FIELDS = ("rewards", "rbar", "rbar_every", "final_rbar", "steps_done", *_EPISODE_FIELDS)


def _format_value(value, powers: bool = False) -> str:
    """A setting's value as legends show it: ``2^k`` for a power of two (but 1, unless
    ``powers``: all values of the setting are powers of two), ``%g`` for other floats."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        mantissa, exponent = math.frexp(value)
        if value > 0 and mantissa == 0.5 and -40 < exponent - 1 < 40 and (
                exponent != 1 or powers):
            return f"2^{exponent - 1}"
        return f"{value:g}"
    return str(value)


def _all_powers_of_two(values) -> bool:
    return all(isinstance(v, float) and v > 0 and math.frexp(v)[0] == 0.5 for v in values)


def format_settings(dicts: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """``"name=value, ..."`` of each settings dict over ``names``, one formatting for all.

    A setting whose values are all powers of two prints every one as ``2^k``
    (``alpha_w=2^0`` beside ``alpha_w=2^1``), as legends, labels and the CLI do.
    """
    powers = {n: _all_powers_of_two([d[n] for d in dicts if n in d]) for n in names}
    return [", ".join(f"{n}={_format_value(d[n], powers[n])}" for n in names if n in d)
            for d in dicts]


class Experiment:
    """An experiment directory: its settings and its finished runs.

    Get one from :func:`run_experiment` or :func:`load_experiment`.

    Attributes
    ----------
    path : pathlib.Path
    env_id : str
    steps : int
        Steps of every run.
    agents : list
        The settings objects; runs refer to them by index.
    seeds : list of int
    bin_size : int
        Rewards are stored as means of bins of this many steps.
    features : TileCoder
    config : dict
        The whole ``experiment.json``.
    corrupt : list of CorruptRun
        Runs left out because their files are damaged (missing, unreadable,
        not matching their checksum, lacking arrays); running the experiment
        again repairs them.
    """

    def __init__(self, path: Path, config: dict, runs: list[RunRecord],
                 corrupt: list[CorruptRun] = ()):
        self.path = Path(path)
        self.corrupt = list(corrupt)
        self.config = config
        self.env_id = config["env"]
        self.steps = int(config["steps"])
        self.agents = [agent_from_dict(d) for d in config["agents"]]
        self.seeds = [int(s) for s in config["seeds"]]
        self.bin_size = int(config["bin_size"])
        self.features = features_from_dict(config["features"])
        self._runs = {(r.agent_index, r.seed): r for r in runs}

    def __repr__(self):
        return f"Experiment({str(self.path)!r}: {self.summary()})"

    @property
    def runs(self) -> list[RunRecord]:
        """Every finished or failed run of the experiment's agents and seeds, in order."""
        return [self._runs[(i, s)] for i in range(len(self.agents)) for s in self.seeds
                if (i, s) in self._runs]

    @property
    def failed(self) -> list[RunRecord]:
        """The runs that failed."""
        return [r for r in self.runs if r.status != "ok"]

    @property
    def missing(self) -> list[tuple[int, int]]:
        """``(agent_index, seed)`` of the runs not finished yet (run the experiment again)."""
        return [(i, s) for i in range(len(self.agents)) for s in self.seeds
                if (i, s) not in self._runs]

    def summary(self) -> str:
        """One line: how many runs finished, failed, and are missing."""
        total = len(self.agents) * len(self.seeds)
        failed = self.failed
        diverged = sum(r.failure == "divergence" for r in failed)
        text = f"{total - len(self.missing)} of {total} runs done, {len(failed)} failed"
        if failed:
            text += f" ({diverged} diverged)"
        if self.missing:
            text += f", {len(self.missing)} not run yet"
        if self.corrupt:
            text += (f" ({len(self.corrupt)} of them corrupt: "
                     f"{', '.join(c.path.name for c in self.corrupt[:3])}"
                     f"{', ...' if len(self.corrupt) > 3 else ''}; run again to repair)")
        return text

    def run(self, agent_index: int, seed: int) -> RunRecord:
        """The record of one run (``KeyError`` if it has not finished)."""
        try:
            return self._runs[(agent_index, seed)]
        except KeyError:
            raise KeyError(
                f"run of agent {agent_index} with seed {seed} is not in {self.path} "
                "(not finished yet, or not part of the experiment)"
            ) from None

    def _check_agent(self, i):
        if not 0 <= i < len(self.agents):
            raise IndexError(f"agent index {i} out of range: {len(self.agents)} agents")

    def finished_seeds(self, i: int) -> list[int]:
        """Seeds of agent ``i``'s runs that finished ("ok"): the rows of :meth:`rewards`."""
        self._check_agent(i)
        return [s for s in self.seeds
                if (i, s) in self._runs and self._runs[(i, s)].status == "ok"]

    @property
    def bin_steps(self) -> np.ndarray:
        """Step count at the end of each reward bin (the last bin may be shorter)."""
        return bin_end_steps(self.steps, self.bin_size)

    def _load(self, i, seed):
        return load_arrays(self.run(i, seed).path)

    def rewards(self, i: int) -> np.ndarray:
        """Binned mean rewards of agent ``i``: shape ``(len(finished_seeds(i)), n_bins)``.

        Column ``j`` is the mean reward of the steps up to ``bin_steps[j]``
        since the previous bin.  Failed runs are left out.
        """
        rows = [load_array(self._runs[(i, seed)].path, "rewards")
                for seed in self.finished_seeds(i)]
        if not rows:
            return np.zeros((0, self.bin_steps.size))
        return np.stack(rows)

    def final_performance(self, i: int, fraction: float = 0.1) -> np.ndarray:
        """Mean reward of each finished seed of agent ``i`` over the last ``fraction`` of steps.

        The window is widened to whole bins (exact when ``fraction * steps``
        is a multiple of ``bin_size``); bins are weighted by their length.
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
        rewards = self.rewards(i)
        ends = self.bin_steps
        lengths = np.diff(ends, prepend=0)
        start = self.steps - max(1, round(fraction * self.steps))
        first = start // self.bin_size
        weights = lengths[first:] / lengths[first:].sum()
        return rewards[:, first:] @ weights

    def episodes(self, i: int) -> list[dict]:
        """Each finished run's episodes, agent ``i``: one dict per :meth:`finished_seeds` entry.

        A dict holds ``"return"`` (float64: each finished episode's total
        reward), ``"length"`` (int64: its steps) and ``"end_step"`` (int64:
        the run's step count when it ended, as :attr:`bin_steps`), in the
        order the episodes ended; empty arrays on a continuing task.
        ``"end_step"`` is None for parallel actors (``actors`` > 1: an
        update's steps are several episodes'); in a run saved before end
        steps were recorded it is the running sum of the lengths (exact: a
        run of the runner starts at step 0).
        """
        out = []
        for seed in self.finished_seeds(i):
            data = load_arrays(self._runs[(i, seed)].path)
            returns = data.get("episode_returns", np.zeros(0)).astype(np.float64)
            lengths = data.get("episode_lengths", np.zeros(0, np.int64)).astype(np.int64)
            ends = data.get("episode_end_steps")
            if ends is None and getattr(self.agents[i], "actors", 1) == 1:
                ends = np.cumsum(lengths)
            out.append({"return": returns, "length": lengths,
                        "end_step": None if ends is None else ends.astype(np.int64)})
        return out

    @property
    def has_episodes(self) -> bool:
        """Whether a finished run of the experiment has a finished episode (an episodic task)."""
        return any(e["return"].size for i in range(len(self.agents))
                   for e in self.episodes(i))

    def final_episodes(self, i: int, fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Mean return and mean length of each finished run's last ``fraction`` of its episodes.

        The window is ``max(1, round(fraction * n))`` of a run's ``n``
        episodes: a share of episodes, not of steps, so that a run of long
        episodes is judged by as many of its own as one of short ones.  A
        run with no finished episode gives NaN.

        Returns
        -------
        returns, lengths : ndarray of float64, one entry per :meth:`finished_seeds` entry
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
        returns, lengths = [], []
        for e in self.episodes(i):
            n = e["return"].size
            last = slice(n - max(1, round(fraction * n)), None)
            returns.append(e["return"][last].mean() if n else np.nan)
            lengths.append(e["length"][last].mean() if n else np.nan)
        return np.array(returns, dtype=np.float64), np.array(lengths, dtype=np.float64)

    def result(self, i: int, seed: int) -> Result:
        """The run rebuilt as an :class:`avgreward.Result` (policy, values, R-bar trace).

        ``Result.rewards`` holds the per-step rewards (float32, as ``train``
        returns them) only when ``bin_size`` is 1; otherwise it holds the
        binned means (float64) and ``Result.info["bin_size"]`` says so.
        ``Result.info`` also has ``"bin_steps"``, ``"status"`` and ``"error"``.
        A failed run gives the result of the steps it completed.

        A finished run's result carries its ``run_state``, so that
        ``train(exp.env_id, result.agent, more_steps, init=result)`` goes on
        from where it stopped, bit for bit.  Where it cannot (a failed run,
        a directory written before run states were kept, an environment
        whose state cannot be saved) ``info["cannot_continue"]`` says why,
        and ``train`` refuses with that reason.
        """
        record = self.run(i, seed)
        agent = self.agents[i]
        data = self._load(i, seed) if record.steps_done else {}
        if not data:
            raise ValueError(f"run of agent {i} with seed {seed} failed before any step: "
                             f"{record.error}")
        # The weights are what is not a run's record, named as the agent's driver names them.
        weights = {name: value for name, value in data.items()
                   if name not in _RUN_FIELDS and not name.startswith("state/")}
        episodes = {name: data[name] for name in _EPISODE_FIELDS if name in data}
        rewards = data["rewards"]
        if self.bin_size == 1:
            rewards = rewards.astype(np.float32)
        every = int(data["rbar_every"])
        info = {"bin_size": self.bin_size,
                "bin_steps": bin_end_steps(int(data["steps_done"]), self.bin_size),
                "status": record.status, "error": record.error, **episodes}
        run_state = self._run_state(record, data, weights, info)
        return Result(
            env_id=self.env_id, agent=agent, seed=seed, steps=int(data["steps_done"]),
            rewards=rewards, rbar=data["rbar"],
            rbar_steps=np.arange(1, data["rbar"].size + 1, dtype=np.int64) * every,
            final_rbar=float(data["final_rbar"]), weights=weights, features=self.features,
            wall_time=record.wall_time, info=info, run_state=run_state,
        )

    def evaluate(self, steps: int = 100_000, seed: int = 0, greedy: bool = True, *,
                 batches: int = 20, trust: bool = False, save: bool = True
                 ) -> ExperimentEvaluation:
        """Every finished run's learned policy, frozen (no learning): its reward rate.

        Each finished run is :func:`avgreward.evaluate` of :meth:`result`:
        ``steps`` steps from the start state, greedy or sampled, a 95%
        batch-means interval, and the exact rate on continuing tabular
        tasks.  Failed runs are left out (and listed).  Unlike
        :meth:`final_performance`, which is the behaviour's reward while it
        learned (exploring), this is the policy it learned.

        Parameters
        ----------
        steps : int, default 100_000
            Steps of each run's evaluation.
        seed : int, default 0
            The evaluation's seed.  The run of seed ``s`` is evaluated with
            the seed :func:`avgreward.runner.evaluations.evaluation_seed`
            ``(seed, s)``: a function of the two seeds only, the same for
            every agent (their policies face the same draws) and not the
            run's own, so the numbers are the same bit for bit whatever the
            order, the number of workers that ran the experiment, or which
            runs were read from ``evaluation.json``.
        greedy : bool, default True
            The greedy policy (most preferred action, epsilon 0, the
            Gaussian's mean), else the learned policy sampled.
        batches : int, default 20
            Batches of the interval of each run.
        trust : bool, default False
            Allow importing the module that a ``"module:id"`` environment
            of the directory names (:func:`avgreward.environments.check_trusted`);
            the package's own and gymnasium's environments need nothing.
        save : bool, default True
            Keep the numbers in ``DIR/evaluation.json`` under these settings
            (and the avgreward version) and reuse those already there: a run
            is evaluated again only if its arrays changed (their sha256).
            The file is written atomically; a damaged one is named in a
            warning, never read as data, and rewritten.  A directory that
            cannot be written only warns.

        Returns
        -------
        avgreward.runner.evaluations.ExperimentEvaluation
            ``runs`` (agent index, label, seed, eval seed, reward rate, low,
            high, exact rate), ``agents`` (the means over seeds with
            Student-t intervals), ``optimum`` where known; ``to_frame()``.

        Raises
        ------
        ValueError
            Naming the argument; or if the environment would import a module
            the directory names and ``trust`` is False.
        """
        from avgreward.runner.evaluations import evaluate_experiment

        return evaluate_experiment(self, steps, seed, greedy, batches=batches, trust=trust,
                                   save=save)

    def _run_state(self, record, data, weights, info):
        """The finished run's state to continue from, or None (and why in ``info``)."""
        if record.status != "ok":
            info["cannot_continue"] = f"the run failed ({record.error})"
            return None
        saved = record.record.get("run_state")
        if "run_state" not in record.record:
            info["cannot_continue"] = (
                f"{record.path.name} was saved without its run state (by an avgreward older "
                "than continuable experiments); rerun the experiment with this version, into "
                "a new directory, to continue its runs")
            return None
        if not isinstance(saved, dict):
            info["cannot_continue"] = str(saved)
            return None
        try:
            return state_from_files(saved, data, weights)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            # The rest of the run is whole (its arrays match their checksum): still read.
            info["cannot_continue"] = (f"{record.path.name}: its run state is damaged "
                                       f"({type(error).__name__}: {error}); rerun the run to "
                                       "continue it")
            return None

    def to_frame(self, what: str = "bins", fraction: float = 0.1) -> pandas.DataFrame:
        """The experiment as a tidy :class:`pandas.DataFrame` (needs the ``analysis`` extra).

        Parameters
        ----------
        what : {"bins", "runs", "episodes"}, default "bins"
            ``"bins"``: one row per run and reward bin, with columns
            ``agent_index``, ``label``, every setting that varies between
            the agents, ``seed``, ``status``, ``step`` (the step count at the
            end of the bin) and ``reward`` (the bin's mean reward); a failed
            run contributes the bins it completed.  ``"runs"``: one row per
            run, with ``agent_index``, ``label``, the varying settings,
            ``seed``, ``status``, ``failure``, ``steps_done``,
            ``final_performance`` (the mean reward over the last
            ``fraction`` of steps; NaN for a failed run), ``final_rbar``,
            ``wall_time`` (seconds) and ``error``.  ``"episodes"``: one row
            per finished episode of a finished run (none on a continuing
            task), with ``agent_index``, ``label``, the varying settings,
            ``seed``, ``episode`` (0-based, in the order they ended),
            ``end_step`` (the run's step count when it ended; ``<NA>`` for
            parallel actors), ``return`` (its total reward) and ``length``
            (its steps).
        fraction : float, default 0.1
            The window of ``final_performance``, in (0, 1].

        Returns
        -------
        pandas.DataFrame
        """
        pandas = _pandas()
        if what not in ("bins", "runs", "episodes"):
            raise ValueError(f"what must be 'bins', 'runs' or 'episodes', got {what!r}")
        varying = [n for n in self.varying() if n != "kind"] + (
            ["kind"] if "kind" in self.varying() else [])
        settings = [self.agents[i].to_dict(complete=True) for i in range(len(self.agents))]

        def head(run):
            d = settings[run.agent_index]
            return {"agent_index": run.agent_index, "label": self.label(run.agent_index),
                    **{n: d.get(n) for n in varying}, "seed": run.seed}

        if what == "runs":
            finals = {}
            for i in range(len(self.agents)):
                seeds = self.finished_seeds(i)
                if seeds:
                    finals.update(zip(((i, s) for s in seeds),
                                      self.final_performance(i, fraction)))
            rows = [{**head(r), "status": r.status, "failure": r.failure,
                     "steps_done": r.steps_done,
                     "final_performance": finals.get((r.agent_index, r.seed), np.nan),
                     "final_rbar": r.record.get("final_rbar"), "wall_time": r.wall_time,
                     "error": r.error} for r in self.runs]
            columns = [*head(_Blank()).keys(), "status", "failure", "steps_done",
                       "final_performance", "final_rbar", "wall_time", "error"]
            frame = pandas.DataFrame(rows, columns=columns)
            return frame.astype({"final_performance": float, "final_rbar": float})
        if what == "episodes":
            return self._episodes_frame(pandas, head)
        parts, ends = [], self.bin_steps
        for r in self.runs:
            rewards = load_array(r.path, "rewards") if r.steps_done else np.zeros(0)
            part = pandas.DataFrame({"step": ends[:rewards.size], "reward": rewards})
            for name, value in reversed([*head(r).items(), ("status", r.status)]):
                part.insert(0, name, value)
            cols = [*head(r).keys(), "status", "step", "reward"]
            parts.append(part[cols])
        if not parts:
            columns = [*head(_Blank()).keys(), "status", "step", "reward"]
            return pandas.DataFrame(columns=columns)
        return pandas.concat(parts, ignore_index=True)

    def _episodes_frame(self, pandas, head):
        names = ["episode", "end_step", "return", "length"]
        columns = [*head(_Blank()).keys(), *names]
        parts = []
        for i in range(len(self.agents)):
            for seed, e in zip(self.finished_seeds(i), self.episodes(i)):
                n = e["return"].size
                ends = e["end_step"]
                part = pandas.DataFrame({
                    "episode": np.arange(n, dtype=np.int64),
                    "end_step": pandas.array(ends if ends is not None else [None] * n,
                                             dtype="Int64"),
                    "return": e["return"], "length": e["length"]})
                for name, value in reversed(head(self._runs[(i, seed)]).items()):
                    part.insert(0, name, value)
                parts.append(part[columns])
        if not any(len(p) for p in parts):
            frame = pandas.DataFrame(columns=columns)
            return frame.astype({"episode": "int64", "end_step": "Int64", "return": float,
                                 "length": "int64"})
        return pandas.concat([p for p in parts if len(p)], ignore_index=True)

    def varying(self) -> list[str]:
        """Names of the settings that differ between the agents (``"kind"`` first if it does)."""
        dicts = [a.to_dict(complete=True) for a in self.agents]
        names = []
        for d in dicts:
            names.extend(n for n in d if n not in names)
        return [n for n in names if len({repr(d.get(n)) for d in dicts}) > 1]

    def label(self, i: int) -> str:
        """A short name of agent ``i`` for legends: the settings that differ between agents.

        With a single agent (or identical ones) it is the actor's kind,
        ``"softmax"`` or ``"gaussian"``.  Powers of two print as ``2^k``.
        """
        self._check_agent(i)
        d = self.agents[i].to_dict(complete=True)
        varying = self.varying()
        if not varying:
            return d["kind"]
        parts = [d["kind"]] if "kind" in varying else []
        names = [n for n in varying if n != "kind"]
        everyone = [a.to_dict(complete=True) for a in self.agents]
        text = format_settings(everyone, names)[i]
        return ", ".join(parts + ([text] if text else []))


class _Blank:
    """Stands for a run when only the column names of :meth:`Experiment.to_frame` are needed."""

    agent_index = 0
    seed = 0


def _pandas():
    return require("pandas", "analysis", "tables of results")


def load_experiment(out: str | os.PathLike[str]) -> Experiment:
    """Read an experiment directory written by :func:`run_experiment`.

    Every run's ``.npz`` is checked against the checksum in its record and
    read (without pickle) for the arrays a run has.  A run whose files are
    missing, unreadable, do not match or lack arrays is left out, with a
    warning naming the file, and listed in :attr:`Experiment.corrupt`;
    :func:`run_experiment` on the directory runs it again.

    Raises
    ------
    ValueError
        If ``out`` holds no experiment, its ``experiment.json`` is malformed,
        a run's record disagrees with it, or a file is of a format newer than
        this avgreward reads (each error names the file).
    """
    path = Path(out)
    config = read_config(path)
    runs, corrupt = read_records(path, config)
    for bad in corrupt:
        log.warning("%s; left out (running the experiment again repairs it)", bad)
    return Experiment(path, config, runs, corrupt)
