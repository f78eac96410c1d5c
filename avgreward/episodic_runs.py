"""Runs of an episodic learner counted in episodes, through the experiment runner.

The runner runs a fixed number of steps; a study of an episodic learner
(Sutton & Barto's Figures 13.1 and 13.2) wants each run's first N episodes,
however many steps they take.  :func:`run_episodes` runs every (setting,
seed) for ``episodes * steps_per_episode`` steps, then runs again, with four
times the steps, only those that had not finished N episodes, and so on: a run is
the same run whatever its length (same seed, same numbers), so its first
episodes are those of the shorter run.  Every budget is an experiment
directory of its own (the first is ``out``, the longer ones under
``out/longer/steps-B``), so an interrupted study resumes where it stopped,
and rerunning it reads what is done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avgreward.environments import resolve_env
from avgreward.experiment import run_experiment

__all__ = ["EpisodeRuns", "run_episodes"]


@dataclass(frozen=True)
class EpisodeRuns:
    """The first episodes of every run of :func:`run_episodes`.

    Attributes
    ----------
    returns, lengths : ndarray, shape (n_settings, n_seeds, episodes)
        Each episode's total reward (the float64 sum of its float32 rewards)
        and its steps.
    cut : ndarray of int, shape (n_settings, n_seeds)
        How many of those episodes lasted the agent's ``max_episode_steps``
        (cut there; or, rarely, ended on exactly that step).
    seeds : list of int
    directories : list of pathlib.Path
        The experiment directories, shortest budget first.
    steps : ndarray of int, shape (n_settings, n_seeds)
        The budget of steps each run's episodes were read from.
    """

    returns: np.ndarray
    lengths: np.ndarray
    cut: np.ndarray
    seeds: list
    directories: list
    steps: np.ndarray


def run_episodes(out, env, agents, seeds, episodes, *, steps_per_episode=100, workers=None,
                 new=False, progress=None, max_steps=2**31) -> EpisodeRuns:
    """Run each setting and seed until its first ``episodes`` episodes have ended.

    Parameters
    ----------
    out : str or Path
        The first experiment's directory (as :func:`~avgreward.experiment.run_experiment`).
    env : str
        An episodic environment of the fused loop.
    agents : settings or list of settings
        Episodic learners (:class:`~avgreward.agents.Reinforce`,
        :class:`~avgreward.agents.EpisodicActorCritic`).
    seeds : int or list of int
    episodes : int
    steps_per_episode : int, default 100
        The first budget is ``episodes * steps_per_episode`` steps.
    workers, new, progress
        As :func:`~avgreward.experiment.run_experiment`.
    max_steps : int
        Give up (ValueError naming the runs) rather than run longer than this.

    Returns
    -------
    EpisodeRuns

    Raises
    ------
    ValueError
        On bad settings, or if a run failed (diverged) or would need more than
        ``max_steps`` steps: named.
    """
    agents = list(agents) if isinstance(agents, (list, tuple)) else [agents]
    if not agents:
        raise ValueError("agents: no settings given")
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (or a list of seeds), got {seeds}")
        seeds = list(range(seeds))
    else:
        seeds = list(seeds)
        if not seeds:
            raise ValueError("seeds: the list is empty")
    for name, value in (("episodes", episodes), ("steps_per_episode", steps_per_episode),
                        ("max_steps", max_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    env_id, env_class = resolve_env(env)
    fused = getattr(env_class, "fused", None)
    if fused is None or not fused.episodic:
        raise ValueError(f"env: {env_id} is not an episodic environment of the fused loop; "
                         "run_episodes counts episodes")
    shape = (len(agents), len(seeds))
    returns = np.zeros((*shape, episodes))
    lengths = np.zeros((*shape, episodes), np.int64)
    cut = np.zeros(shape, np.int64)
    budgets = np.zeros(shape, np.int64)
    pending = {(i, j) for i in range(len(agents)) for j in range(len(seeds))}
    budget = min(int(episodes * steps_per_episode), int(max_steps))
    directories = []
    while pending:
        if not directories:  # the first budget: every setting and seed, in out
            batches = [(Path(out), list(range(len(agents))), seeds)]
        else:
            # Longer budgets: a directory per setting (named by its settings), so that a
            # study rerun with more seeds adds them where they belong.
            batches = []
            for i in sorted({i for i, _ in pending}):
                name = hashlib.sha256(json.dumps(agents[i].to_dict(complete=True),
                                                 sort_keys=True).encode()).hexdigest()[:10]
                batches.append((directories[0] / "longer" / f"steps-{budget}" / name, [i],
                                [seeds[j] for i2, j in sorted(pending) if i2 == i]))
        for directory, indices, batch_seeds in batches:
            experiment = run_experiment(directory, env, [agents[i] for i in indices],
                                        batch_seeds, budget, workers=workers,
                                        bin_size=max(1, budget // 100), progress=progress,
                                        new=new and not directories)
            directories.append(experiment.path)
            for position, i in enumerate(indices):
                cap = getattr(agents[i], "max_episode_steps", None) or 0
                for j, seed in enumerate(seeds):
                    if (i, j) not in pending:
                        continue
                    record = experiment.run(position, seed)
                    if record.status != "ok":
                        raise ValueError(f"the run of setting {i} ({agents[i]!r}), seed {seed} "
                                         f"failed: {record.error}; see {experiment.path}")
                    info = experiment.result(position, seed).info
                    if "episode_returns" not in info:
                        raise ValueError(f"setting {i} ({agents[i]!r}) records no episodes")
                    if info["episode_returns"].size >= episodes:
                        returns[i, j] = info["episode_returns"][:episodes]
                        lengths[i, j] = info["episode_lengths"][:episodes]
                        cut[i, j] = int(np.sum(lengths[i, j] == cap)) if cap else 0
                        budgets[i, j] = budget
                        pending.discard((i, j))
        if pending and budget >= max_steps:
            runs = ", ".join(f"setting {i} seed {seeds[j]}" for i, j in sorted(pending))
            raise ValueError(f"{runs}: fewer than {episodes:,} episodes in {budget:,} steps "
                             f"(max_steps)")
        budget = min(4 * budget, int(max_steps))  # the same runs, longer: same first episodes
    return EpisodeRuns(returns, lengths, cut, seeds, directories, budgets)
