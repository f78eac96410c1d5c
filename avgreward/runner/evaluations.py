"""Every finished run of an experiment evaluated frozen, and ``evaluation.json`` that keeps it.

:meth:`avgreward.experiment.Experiment.evaluate` runs each finished run's
learned policy without learning (:func:`avgreward.evaluate`), so that what
is compared is the policy an agent learned, not its exploring behaviour
while it learned.  The numbers are kept in the experiment's directory, in
``evaluation.json``, under the evaluation's settings: asking again (or
``avgreward stats --evaluated``) reads them instead of running again.

``evaluation.json`` is a cache, never the only copy of anything: it carries
the sha256 of its own contents and, per run, the sha256 of the run's arrays
it evaluated.  A file that is not valid JSON, not of this shape, or does not
match its checksum is named in a warning and rewritten; an entry whose run's
arrays changed, or that an other avgreward version computed, is computed
again.  Nothing in it is ever run or imported.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avgreward.files import sha256_hex, write_json
from avgreward.runner.records import run_name

if TYPE_CHECKING:
    import pandas

    from avgreward.runner.view import Experiment

__all__ = ["RunEvaluation", "AgentEvaluation", "ExperimentEvaluation", "evaluation_seed",
           "evaluate_experiment", "EVALUATION_FILE"]

log = logging.getLogger("avgreward.experiment")

#: The cache's file name, in the experiment's directory.
EVALUATION_FILE = "evaluation.json"
_FORMAT = 1


def evaluation_seed(seed: int, run_seed: int) -> int:
    """The seed of the evaluation of the run of seed ``run_seed``, for the evaluation seed ``seed``.

    A pure function of the two seeds (:class:`numpy.random.SeedSequence` of
    both, 63 bits): the same for every agent of the experiment, so all
    settings of one seed face the same evaluation draws, and unlike the
    run's own seed, so the evaluation does not replay the draws the run
    trained on.
    """
    state = np.random.SeedSequence([int(seed), int(run_seed)]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


@dataclass(frozen=True)
class RunEvaluation:
    """One run's frozen policy, evaluated.

    Attributes
    ----------
    agent_index : int
    label : str
        :meth:`Experiment.label` of the agent.
    seed : int
        The run's seed.
    eval_seed : int
        The evaluation's seed (:func:`evaluation_seed`).
    reward_rate, low, high : float
        The simulated reward rate and its 95% batch-means interval
        (:class:`avgreward.evaluation.PolicyEvaluation`).
    exact_rate : float or None
        The same policy's exact reward rate on a continuing tabular task.
    """

    agent_index: int
    label: str
    seed: int
    eval_seed: int
    reward_rate: float
    low: float
    high: float
    exact_rate: float | None


@dataclass(frozen=True)
class AgentEvaluation:
    """One agent's runs, evaluated: means over seeds with Student-t 95% intervals.

    Attributes
    ----------
    agent_index : int
    label : str
    runs : int
        Finished runs evaluated (0 if none finished: the rates are then NaN).
    reward_rate, low, high : float
        Mean over seeds of the simulated rates, and its interval (``low =
        high = reward_rate`` with one seed).
    exact_rate, exact_low, exact_high : float or None
        The same of the exact rates, when every run has one.
    """

    agent_index: int
    label: str
    runs: int
    reward_rate: float
    low: float
    high: float
    exact_rate: float | None
    exact_low: float | None
    exact_high: float | None


@dataclass(frozen=True)
class ExperimentEvaluation:
    """What :meth:`Experiment.evaluate` measured.

    Attributes
    ----------
    env_id : str
    steps, seed, batches : int
        The evaluation's settings.
    greedy : bool
    optimum : float or None
        The environment's best reward rate where it is known
        (:func:`avgreward.evaluation.optimal_reward_rate`).
    runs : tuple of RunEvaluation
        Every finished run, by agent then seed.
    agents : tuple of AgentEvaluation
        One per agent, in order.
    left_out : tuple of (agent_index, seed)
        Failed runs: not evaluated.
    reused : int
        How many of ``runs`` were read from ``evaluation.json`` instead of run.
    """

    env_id: str
    steps: int
    seed: int
    greedy: bool
    batches: int
    optimum: float | None
    runs: tuple[RunEvaluation, ...]
    agents: tuple[AgentEvaluation, ...]
    left_out: tuple[tuple[int, int], ...]
    reused: int

    def scores(self, agent_index: int, exact: bool | None = None) -> np.ndarray:
        """Agent ``agent_index``'s evaluated rate per finished seed.

        ``exact=None`` (default): the exact rates if every run has one, else
        the simulated ones; ``True``: the exact rates (``ValueError`` if some
        run has none); ``False``: the simulated rates.
        """
        runs = [r for r in self.runs if r.agent_index == agent_index]
        has_exact = all(r.exact_rate is not None for r in runs)
        if exact is None:
            exact = has_exact
        if exact and not has_exact:
            raise ValueError(f"exact rates are known on continuing tabular tasks only, not "
                             f"{self.env_id}")
        return np.array([r.exact_rate if exact else r.reward_rate for r in runs],
                        dtype=np.float64)

    def to_frame(self, what: str = "runs") -> pandas.DataFrame:
        """A tidy table (needs the ``analysis`` extra): ``"runs"``, one row per run
        (the fields of :class:`RunEvaluation`), or ``"agents"``, one per agent
        (those of :class:`AgentEvaluation`)."""
        from dataclasses import asdict

        from avgreward.extras import require

        pandas = require("pandas", "analysis", "tables of results")
        if what not in ("runs", "agents"):
            raise ValueError(f"what must be 'runs' or 'agents', got {what!r}")
        rows = self.runs if what == "runs" else self.agents
        cls = RunEvaluation if what == "runs" else AgentEvaluation
        return pandas.DataFrame([asdict(r) for r in rows],
                                columns=list(cls.__dataclass_fields__))


def _settings_key(steps, seed, greedy, batches) -> str:
    return f"steps={steps} seed={seed} {'greedy' if greedy else 'sampled'} batches={batches}"


def _float_or_none(value) -> float | None:
    """NaN as null: JSON has no NaN."""
    return None if value is None or math.isnan(value) else float(value)


def _read_cache(path: Path) -> dict:
    """The settings blocks of ``evaluation.json``; {} if absent, named and dropped if damaged."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        log.warning("%s cannot be read (%s): evaluating again", path, err.strerror or err)
        return {}
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not an evaluation file of format {_FORMAT}")
        blocks = data.get("evaluations")
        if not isinstance(blocks, dict) or data.get("sha256") != _digest(blocks):
            raise ValueError("its contents do not match its sha256")
        for block in blocks.values():
            _check_block(block)
    except (ValueError, TypeError, KeyError) as err:
        log.warning("%s is corrupt (%s): evaluating again and rewriting it", path,
                    " ".join(str(err).split())[:200])
        return {}
    return blocks


def _digest(blocks) -> str:
    return sha256_hex(json.dumps(blocks, sort_keys=True).encode())


_ENTRY_FIELDS = {"sha256", "eval_seed", "reward_rate", "low", "high", "exact_rate"}


def _check_block(block) -> None:
    """Raise ValueError unless ``block`` is ``{"avgreward": str, "runs": {name: entry}}``."""
    if not isinstance(block, dict) or not isinstance(block.get("avgreward"), str) \
            or not isinstance(block.get("runs"), dict):
        raise ValueError("a settings block is malformed")
    for name, entry in block["runs"].items():
        if not isinstance(entry, dict) or set(entry) != _ENTRY_FIELDS:
            raise ValueError(f"entry {name!r} is malformed")
        if not isinstance(entry["eval_seed"], int) or not isinstance(
                entry["sha256"], (str, type(None))):
            raise ValueError(f"entry {name!r} is malformed")
        for field in ("reward_rate", "low", "high", "exact_rate"):
            value = entry[field]
            if field == "reward_rate" and value is None:
                raise ValueError(f"entry {name!r} has no reward_rate")
            if value is not None and (not isinstance(value, (int, float))
                                      or isinstance(value, bool) or not math.isfinite(value)):
                raise ValueError(f"entry {name!r}: {field} is not a finite number")


def _write_cache(path: Path, blocks: dict) -> None:
    """Keep the numbers for next time; a directory that cannot be written only warns."""
    try:
        write_json(path, {"format": _FORMAT, "evaluations": blocks, "sha256": _digest(blocks)})
    except OSError as err:
        log.warning("cannot write %s (%s): the evaluation is not kept", path,
                    err.strerror or err)


def evaluate_experiment(experiment: Experiment, steps: int = 100_000, seed: int = 0,
                        greedy: bool = True, *, batches: int = 20, trust: bool = False,
                        save: bool = True) -> ExperimentEvaluation:
    """:meth:`Experiment.evaluate` (see there)."""
    import avgreward
    from avgreward.environments import check_trusted
    from avgreward.evaluation import check_settings, evaluate, optimal_reward_rate
    from avgreward.stats import mean_confidence_interval

    steps, seed, greedy, batches = check_settings(steps, seed, greedy, batches)
    if not isinstance(save, bool):
        raise ValueError(f"save must be True or False, got {save!r}")
    # Before anything is read or run: the folder names the environment, not the user.
    check_trusted(experiment.env_id, trust)

    path = experiment.path / EVALUATION_FILE
    key = _settings_key(steps, seed, greedy, batches)
    blocks = _read_cache(path) if save else {}
    block = blocks.get(key)
    if block is None or block["avgreward"] != avgreward.__version__:
        block = {"avgreward": avgreward.__version__, "runs": {}}
    cached = block["runs"]
    runs, left_out, reused, changed = [], [], 0, False
    for record in experiment.runs:
        i, run_seed = record.agent_index, record.seed
        if record.status != "ok":
            left_out.append((i, run_seed))
            continue
        name = run_name(i, run_seed)
        digest = record.record.get("sha256")
        eval_seed = evaluation_seed(seed, run_seed)
        entry = cached.get(name)
        if entry is not None and entry["sha256"] == digest and entry["eval_seed"] == eval_seed:
            reused += 1
        else:
            e = evaluate(experiment.result(i, run_seed), steps, eval_seed, greedy,
                         batches=batches, trust=trust)
            entry = {"sha256": digest, "eval_seed": eval_seed, "reward_rate": e.reward_rate,
                     "low": _float_or_none(e.low), "high": _float_or_none(e.high),
                     "exact_rate": e.exact_rate}
            cached[name] = entry
            changed = True
        runs.append(RunEvaluation(
            agent_index=i, label=experiment.label(i), seed=run_seed, eval_seed=eval_seed,
            reward_rate=float(entry["reward_rate"]),
            low=math.nan if entry["low"] is None else float(entry["low"]),
            high=math.nan if entry["high"] is None else float(entry["high"]),
            exact_rate=None if entry["exact_rate"] is None else float(entry["exact_rate"])))
    if save and changed:
        blocks[key] = block
        _write_cache(path, blocks)

    agents = []
    for i in range(len(experiment.agents)):
        mine = [r for r in runs if r.agent_index == i]
        rate, low, high = _mean_interval([r.reward_rate for r in mine], mean_confidence_interval)
        exact = (None,) * 3
        if mine and all(r.exact_rate is not None for r in mine):
            exact = _mean_interval([r.exact_rate for r in mine], mean_confidence_interval)
        agents.append(AgentEvaluation(i, experiment.label(i), len(mine), rate, low, high, *exact))
    return ExperimentEvaluation(
        env_id=experiment.env_id, steps=steps, seed=seed, greedy=greedy, batches=batches,
        optimum=optimal_reward_rate(experiment.env_id), runs=tuple(runs), agents=tuple(agents),
        left_out=tuple(left_out), reused=reused)


def _mean_interval(values, interval) -> tuple[float, float, float]:
    if not values:
        return math.nan, math.nan, math.nan
    return tuple(float(v) for v in interval(np.asarray(values, dtype=np.float64)))

