"""Benchmark: how fast the fused loop runs on this machine, and against what.

``python scripts/bench.py`` (or ``avgreward bench``) measures, in one run:

* **fused loop**: steps per second of :func:`avgreward.train` (median of
  several calls after a warm-up call) on the softmax swing-up (the spec's
  reference setting), the Gaussian swing-up with lambda = 0 and 0.5, the
  loop MDP and the aliased gridworld;
* **plain Python**: the package's own line-by-line reference
  (:func:`avgreward.reference.reference_train`) on the same work with fewer
  steps, and the ratio fused / plain Python measured side by side;
* **a user-declared environment**: RiverSwim as declared by
  ``scripts/custom_env.py`` (imported by path; the rows are skipped with a
  note where the scripts are not next to the package) against the built-in
  loop MDP, the same agent and budget, the repeats alternated between the
  two so that machine drift affects both, and the ratio user-declared /
  built-in.  RiverSwim's step is stochastic: it draws one more uniform
  random number per step than the deterministic loop MDP, which the ratio
  includes;
* **C reference**: a hand-written C program doing the same work
  (``avgreward/bench_c/actor_critic.c``: the same tile coder, dynamics and
  updates, one plain serial loop, dense eligibility traces), compiled here
  with ``cc -std=c99 -O3 -march=native`` and run with the budgets of the fused
  loop on the softmax swing-up and the Gaussian swing-up with lambda = 0 and
  0.5, and the ratio fused / C; "n/a" with the reason when no C compiler
  is found;
* **many seeds**: ``2 K`` runs of the softmax swing-up through the
  experiment runner on 1 worker and on all ``K`` cores, and the scaling;
* **start-up**: a fresh process importing avgreward and training 1,000
  steps, with an empty numba cache (cold) and with the cache it left (warm);
* **an experiment**: 30 seeds x 1,000,000 steps of the swing-up through the
  runner in a fresh process, end to end: wall time, peak memory of the
  process tree and the size of the results on disk;
* **the main job**: ``scripts/swingup_softmax.py`` (30 seeds x 50,000 steps,
  four figures and a 600-step GIF) run as a user runs it, in a fresh process,
  warm (numba's cache compiled by a first run): the median wall time of 3
  runs that train into a fresh directory, and of 3 that reuse those runs (the
  figures and the GIF only), with its parts measured one after another in
  one process (start-up and imports, training, each figure, the GIF); skipped
  with a note where the scripts are not next to the package;
* **memory of a long run** (full mode only): peak resident memory of the
  whole process tree of the command line ``avgreward run pendulum --steps
  200000000 --seeds 2 --workers 2 --quiet``, sampled every 20 ms: with rewards
  binned as they are computed (``train(..., bin_size=...)``) it does not grow
  with the number of steps;
* **start-up timed from outside** (only when asked: ``--startup`` adds it to
  the run, ``--only startup`` runs it alone): a fresh interpreter per sample,
  timed as a whole process from this one, for ``python -c "import numpy"``
  (the floor), ``python -c "import avgreward"``, a 1,000-step ``avgreward run
  pendulum --seeds 1`` into a new ``--out`` and the main job
  (``scripts/swingup_softmax.py``) into a new ``--out``: after one warm-up run
  of each (numba's cache filled), ``--samples`` rounds (default 5) of each
  command once, in turn, so that the machine's drift affects them alike; the
  median, min and max of each, its difference and ratio to the floor's median,
  and one cold run of the 1,000-step run (empty numba cache:
  ``NUMBA_CACHE_DIR`` and ``AVGREWARD_CACHE_DIR`` in a new directory), beside
  the number of processors and the load average.

It prints a table and writes every figure to a JSON file.  ``--quick`` runs
everything on a tiny budget (a check that the benchmark works, as in CI: its
timings mean nothing).  Targets are those of the project's performance issue;
the table says which are met.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

__all__ = ["main", "measure", "format_table", "add_arguments", "run", "c_compiler",
           "compile_c_reference", "cli_memory_command", "C_SOURCE", "SECTIONS",
           "StartupCommand", "startup_commands"]

SWINGUP = "avgreward/PendulumSwingUp-v0"
CONTINUOUS = "avgreward/PendulumSwingUpContinuous-v0"

# Budgets: (full, quick).
_FUSED_STEPS = (3_000_000, 20_000)
_FUSED_REPEATS = (7, 2)
_PYTHON_STEPS = (5_000, 100)
_MANY_SEEDS_STEPS = (30_000_000, 20_000)
_EXPERIMENT = ((30, 1_000_000), (4, 20_000))  # (seeds, steps)
_STARTUP_STEPS = 1_000
# The long run whose memory is measured (full mode only: ~30 s on two cores).
_CLI_MEMORY = {"env": "pendulum", "steps": 200_000_000, "seeds": 2, "workers": 2}

# The main job (full, quick): (seeds, steps, GIF steps) of scripts/swingup_softmax.py,
# and how many times it is run end to end (after a warm-up run, full mode only).
def _script_path(name: str) -> Path:
    """``scripts/<name>`` of the checkout: next to the package, else in the working directory.

    An installed (not editable) package has no scripts next to it; run from a
    checkout (as CI runs the tests), the working directory has them.
    """
    beside = Path(__file__).resolve().parent.parent / "scripts" / name
    here = Path.cwd() / "scripts" / name
    return beside if beside.is_file() or not here.is_file() else here


MAIN_JOB_SCRIPT = _script_path("swingup_softmax.py")
_MAIN_JOB = ((30, 50_000, 600), (2, 2_000, 30))
_MAIN_JOB_REPEATS = (3, 1)
_MAIN_JOB_ROW = "main job end to end, warm s"

# The sections run only when asked for (``--startup``, ``--only SECTION``).
SECTIONS = ("startup",)
# The start-up section, timed from outside: samples (full, quick), the floor every
# command is shown against, the command also run once cold, and its targets' rows.
_STARTUP_SAMPLES = (5, 1)
_STARTUP_FLOOR = "import numpy"
_STARTUP_COLD = "1,000-step run"
_IMPORT_ROW = "start-up: import avgreward above import numpy s"
_SMALL_RUN_ROW = "start-up: 1,000-step run, warm, above import numpy s"
_OUTSIDE_JOB_ROW = "start-up: main job, warm, new --out, wall s"

# The C reference: its source (package data) and, per fused case it mirrors,
# the program's arguments before and after ``N SEED``.  With lambda > 0 the C
# updates dense traces over all features every step (the textbook box); the
# fused loop visits only the features whose trace is not zero, to the same
# result, so that row compares implementations, not just compilers.
C_SOURCE = Path(__file__).resolve().parent / "bench_c" / "actor_critic.c"
_C_CASES = [
    ("softmax swing-up", ["softmax"], []),
    ("Gaussian swing-up, lambda 0", ["gaussian"], ["0"]),
    ("Gaussian swing-up, lambda 0.5", ["gaussian"], ["0.5"]),
]
# -std=c99: in ISO mode gcc does not contract a * b + c into fused
# multiply-adds (GNU mode does), so the C's arithmetic is the package's, as
# numba compiles it without fastmath; the second set is the fallback for a
# compiler that rejects -march=native.
_C_FLAGS = (["-std=c99", "-O3", "-march=native"], ["-std=c99", "-O3"])

# The user-declared environment against a built-in one: the script that declares
# it (next to the package in a checkout), the module name it is imported under
# (in sys.modules: numba's cache finds a compiled function's module by name),
# and the budgets (full, quick).
CUSTOM_ENV_SCRIPT = _script_path("custom_env.py")
_CUSTOM_ENV_MODULE = "_avgreward_bench_custom_env"
_DECLARED_STEPS = (2_000_000, 20_000)
_DECLARED_REPEATS = (7, 2)
_DECLARED_RATIO = "user-declared / built-in (RiverSwim / loop MDP)"
# RVI Q-learning's reference functions, each a row of the value-based section.
_RVI_REFERENCES = ("fixed", "max", "mean")
# The contextual-bandit learners' rows of the value-based section (on the registered bandit).
_BANDIT_ROWS = ("epsilon-greedy LS", "LinUCB", "SquareCB", "softmax bandit")

# The natural actor-critic's row of the fused loop (issue 26).
_NATURAL_ROW = "natural actor-critic, loop MDP"

# The targets: figure -> (threshold, "min" or "max").
# The importance-sampling lab's six estimators from a uniform behaviour on the short corridor.
_IS_LAB_ROW = "importance sampling lab, short corridor episodes/min"

TARGETS = {
    "softmax swing-up steps/s": (6.5e6, "min"),
    "softmax swing-up fused / plain Python": (350.0, "min"),
    "Gaussian swing-up, lambda 0 steps/s": (6.5e6, "min"),
    "Gaussian swing-up, lambda 0.5 steps/s": (1.5e6, "min"),
    f"{_NATURAL_ROW} steps/s": (3e6, "min"),
    "many seeds: all workers / 1 worker": (1.8, "min"),
    "warm start-up s": (1.5, "max"),
    "cold start-up s": (20.0, "max"),
    "30 x 1M experiment wall s": (15.0, "max"),
    "30 x 1M experiment peak memory MB": (1024.0, "max"),
    "30 x 1M experiment results MB": (150.0, "max"),
    "CLI run 2 x 200M peak memory MB": (400.0, "max"),
    _DECLARED_RATIO: (0.8, "min"),
    "REINFORCE, short corridor steps/s": (2e6, "min"),
    "estimator lab: 1M gridworld episodes s": (10.0, "max"),
    _IS_LAB_ROW: (1e6, "min"),
    "Figure 13.1: 3 x 100 runs x 1,000 episodes s": (10.0, "max"),
    "differential Sarsa, access control steps/s": (10e6, "min"),
    "differential Q-learning, access control steps/s": (10e6, "min"),
    "differential TD off-policy, access control steps/s": (10e6, "min"),
    "average-cost TD, access control steps/s": (10e6, "min"),
    **{f"RVI Q-learning, f {ref}, access control steps/s": (10e6, "min")
       for ref in _RVI_REFERENCES},
    **{f"{name}, contextual bandit steps/s": (5e6, "min") for name in _BANDIT_ROWS},
    "access control: 10 x 2M Sarsa steps, all cores s": (2.0, "max"),
    "Dask / local runner, 1,000 x 20,000 steps": (0.8, "min"),
    "Dask / local runner, 8 x 30M steps": (0.9, "min"),
    _MAIN_JOB_ROW: (2.5, "max"),
    _IMPORT_ROW: (0.3, "max"),
    _SMALL_RUN_ROW: (1.0, "max"),
    _OUTSIDE_JOB_ROW: (2.0, "max"),
}

# Value-based control (full, quick): access control's 10 seeds x 2,000,000 steps.
_VALUE_EXPERIMENT = ((10, 2_000_000), (2, 20_000))

# A Dask LocalCluster against the local runner, both on every core (full, quick):
# many short runs, a few long ones, and the per-run cost on runs of 1,000 steps.
_DASK_SHORT = ((1_000, 20_000), (20, 2_000))
_DASK_LONG = ((8, 30_000_000), (2, 20_000))
_DASK_TINY = ((2_000, 1_000), (50, 1_000))

# Policy gradients (full, quick): REINFORCE's steps, the estimator laboratory's
# episodes, and Figure 13.1's (runs per step size, episodes per run).
_PG_STEPS = (3_000_000, 20_000)
_PG_LAB_EPISODES = (1_000_000, 2_000)
_PG_FIGURE = ((100, 1_000), (3, 20))


def _cases():
    from avgreward import GaussianActorCritic, NaturalActorCritic, SoftmaxActorCritic

    return [
        ("softmax swing-up", SWINGUP, SoftmaxActorCritic.pendulum_reference()),
        ("Gaussian swing-up, lambda 0", CONTINUOUS, GaussianActorCritic.pendulum_default()),
        ("Gaussian swing-up, lambda 0.5", CONTINUOUS,
         GaussianActorCritic.pendulum_default(lambda_w=0.5, lambda_theta=0.5)),
        ("loop MDP", "avgreward/LoopMDP-v0",
         SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)),
        ("aliased gridworld", "avgreward/AliasedGridworld-v0",
         SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)),
        (_NATURAL_ROW, "avgreward/LoopMDP-v0",
         NaturalActorCritic(alpha_w=0.1, alpha_theta=0.01, alpha_rbar=0.01)),
    ]


# ---------------------------------------------------------------------------
# Measurements


def _fused(env_id, agent, steps, repeats):
    """Steps per second of train() (after a warm-up call that loads or compiles the kernels)."""
    import avgreward

    avgreward.train(env_id, agent, 1_000, seed=0)
    rates = []
    for seed in range(1, repeats + 1):
        started = time.perf_counter()
        avgreward.train(env_id, agent, steps, seed=seed)
        rates.append(steps / (time.perf_counter() - started))
    return {"steps": steps, "repeats": repeats, "steps_per_s": statistics.median(rates),
            "steps_per_s_best": max(rates), "ns_per_step": 1e9 / statistics.median(rates)}


def _logging(steps, repeats):
    """The cost of live metrics: the swing-up with and without a CSV log, interleaved.

    At the default interval (a chunk, 2**18 steps); each repeat times both
    back to back (the machine's drift between processes does not enter the
    ratio), and the ratio is of the medians.
    """
    import tempfile

    import avgreward
    from avgreward.logs import CSVLog

    name, env_id, agent = _cases()[0]
    avgreward.train(env_id, agent, 1_000, seed=0)
    plain, logged = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, repeats + 1):
            started = time.perf_counter()
            avgreward.train(env_id, agent, steps, seed=seed)
            plain.append(time.perf_counter() - started)
            with CSVLog(Path(tmp) / f"{seed}.csv") as log:
                started = time.perf_counter()
                avgreward.train(env_id, agent, steps, seed=seed, log=log)
                logged.append(time.perf_counter() - started)
    ratio = statistics.median(logged) / statistics.median(plain)
    return {"name": name, "steps": steps, "repeats": repeats,
            "plain_s": statistics.median(plain), "logged_s": statistics.median(logged),
            "logged_over_plain": ratio}


def _policy_gradient(q, workers):
    """REINFORCE's speed, the estimator laboratory's time, Figure 13.1's time (all cores)."""
    import gymnasium
    import numpy as np

    from avgreward import estimators, exact
    from avgreward.agents import Reinforce
    from avgreward.episodic_runs import run_episodes

    corridor, grid = "avgreward/ShortCorridor-v0", "avgreward/AliasedGridworldEpisodic-v0"
    book = dict(initial_preferences=(1.47, -1.47), max_episode_steps=1_000)
    reinforce = _fused(corridor, Reinforce(alpha_theta=2**-13, **book), _PG_STEPS[q],
                       _FUSED_REPEATS[q])
    model = gymnasium.make(grid).unwrapped.model()
    features = exact.feature_matrix(model, grid)
    theta = np.random.default_rng(1).normal(scale=0.5, size=(features.shape[1], 4))
    estimators.estimator_lab(model, theta, features, episodes=200)  # loads the kernels
    started = time.perf_counter()
    lab = estimators.estimator_lab(model, theta, features, episodes=_PG_LAB_EPISODES[q])
    lab_s = time.perf_counter() - started
    is_lab = _importance_sampling_lab(corridor, _PG_LAB_EPISODES[q])
    seeds, episodes = _PG_FIGURE[q]
    agents = [Reinforce(alpha_theta=2.0**e, **book) for e in (-12, -13, -14)]
    with tempfile.TemporaryDirectory(prefix="avgreward-bench-") as directory:
        run_episodes(Path(directory) / "warm", corridor, agents[:1], 1, 10, workers=workers,
                     progress=False)
        started = time.perf_counter()
        run_episodes(Path(directory) / "figure", corridor, agents, seeds, episodes,
                     workers=workers, progress=False)
        figure_s = time.perf_counter() - started
    return {"reinforce": reinforce, "lab_episodes": lab.episodes,
            "lab_estimators": len(lab.names), "lab_s": lab_s, "figure_runs": 3 * seeds,
            "figure_episodes": episodes, "figure_workers": workers, "figure_s": figure_s,
            "is_lab": is_lab}


def _importance_sampling_lab(env_id, episodes):
    """The importance-sampling lab's episodes a minute: target right 0.4, uniform behaviour."""
    import numpy as np

    from avgreward import exact, importance_sampling

    model = exact.model_of(env_id)
    features = exact.feature_matrix(model, env_id)
    theta = np.log([[0.6, 0.4]])
    behaviour = np.full((model.n_states, model.n_actions), 0.5)
    importance_sampling.importance_sampling_lab(model, theta, features, behaviour,
                                                episodes=200)  # loads the kernels
    started = time.perf_counter()
    lab = importance_sampling.importance_sampling_lab(model, theta, features, behaviour,
                                                      episodes=episodes)
    seconds = time.perf_counter() - started
    return {"episodes": lab.episodes, "estimators": len(lab.names), "s": seconds,
            "episodes_per_min": 60.0 * lab.episodes / seconds}


def _value_based(q, workers):
    """The value-based learners' speed (one core) and access control's 10 x 2M on all cores.

    Beside them the prediction learners on access control: differential TD
    evaluating "accept with probability 1/2" from a behaviour that accepts 7
    times in 10, and average-cost TD following the target.
    """
    from avgreward.agents import (
        AverageCostTD,
        DifferentialQLearning,
        DifferentialSarsa,
        DifferentialTD,
        RVIQLearning,
    )
    from avgreward.experiment import run_experiment

    access, loop_mdp = "avgreward/AccessControl-v0", "avgreward/LoopMDP-v0"
    sarsa = DifferentialSarsa(alpha=0.01, beta=0.01, epsilon=0.1)
    q_learning = DifferentialQLearning(alpha=0.01, eta=1.0, epsilon=0.1)
    rvi = [(f"RVI Q-learning, f {ref}", RVIQLearning(alpha=0.01, epsilon=0.1, reference=ref))
           for ref in _RVI_REFERENCES]
    # The loop MDP's rows (no target) in full mode only: with --quick each row is a compile of
    # its own (environment, learner) loop, five of them for figures nothing checks.
    tasks = (("access control", access),) + (() if q else (("loop MDP", loop_mdp),))
    rates = {f"{name}, {label}": _fused(env_id, agent, _FUSED_STEPS[q], _FUSED_REPEATS[q])
             for name, agent in (("differential Sarsa", sarsa),
                                 ("differential Q-learning", q_learning), *rvi)
             for label, env_id in tasks}
    n_states = 44  # access control's 11 x 4 states (exact.model_of(access).n_states)
    target = [[0.5, 0.5]] * n_states
    prediction = (("differential TD off-policy",
                   DifferentialTD(alpha=0.01, eta=1.0, target=target,
                                  behaviour=[[0.3, 0.7]] * n_states)),
                  ("average-cost TD", AverageCostTD(alpha=0.01, beta=0.01, target=target)))
    rates.update({f"{name}, access control": _fused(access, agent, _FUSED_STEPS[q],
                                                    _FUSED_REPEATS[q])
                  for name, agent in prediction})
    rates.update(_bandits(q))
    seeds, steps = _VALUE_EXPERIMENT[q]
    with tempfile.TemporaryDirectory(prefix="avgreward-bench-") as directory:
        run_experiment(Path(directory) / "warm", access, sarsa, 1, 1_000, workers=workers,
                       progress=False)
        started = time.perf_counter()
        run_experiment(Path(directory) / "sarsa", access, sarsa, seeds, steps, workers=workers,
                       progress=False)
        wall = time.perf_counter() - started
    return {"rates": rates, "seeds": seeds, "steps": steps, "workers": workers,
            "experiment_s": wall}


def _bandits(q):
    """The contextual-bandit learners on avgreward/LinearContextualBandit-v0 (d = 5, K = 5)."""
    from avgreward.learners.contextual import (
        EpsilonGreedyLeastSquares,
        LinUCB,
        SoftmaxBandit,
        SquareCB,
    )

    agents = (EpsilonGreedyLeastSquares(), LinUCB(), SquareCB(), SoftmaxBandit())
    return {f"{name}, contextual bandit": _fused("avgreward/LinearContextualBandit-v0", agent,
                                                 _FUSED_STEPS[q], _FUSED_REPEATS[q])
            for name, agent in zip(_BANDIT_ROWS, agents)}


def _dask_cluster(q, workers):
    """The local runner and a Dask LocalCluster of ``workers`` processes, side by side.

    The cluster is started and its workers' kernels loaded before the timing
    (a running cluster is what a sweep meets; its start-up is reported apart).
    Each case is timed local, cluster, local, cluster; the better of each is kept
    (once each for the long runs and with ``--quick``).
    None when dask's distributed is not installed.
    """
    try:
        import distributed  # noqa: F401
    except ImportError:
        return None
    from avgreward import SoftmaxActorCritic
    from avgreward.experiment import run_experiment
    from avgreward.runner.cluster import local_cluster

    agent = SoftmaxActorCritic.pendulum_reference()
    out = {"workers": workers}
    with tempfile.TemporaryDirectory(prefix="avgreward-bench-") as directory:
        root = Path(directory)
        started = time.perf_counter()
        with local_cluster(workers) as client:
            client.wait_for_workers(workers)
            out["cluster_start_s"] = time.perf_counter() - started
            run_experiment(root / "warm", SWINGUP, agent, 2 * workers, 1_000, cluster=client,
                           progress=False)
            k = 0
            for case, (runs, steps) in (("short", _DASK_SHORT[q]), ("long", _DASK_LONG[q]),
                                        ("tiny", _DASK_TINY[q])):
                walls = {"local": [], "dask": []}
                # Twice each (the better kept), once for long runs and in --quick
                # mode (where the figures are only checked to be there).
                for _ in range(1 if case == "long" or q else 2):
                    for label in ("local", "dask"):
                        k += 1
                        where = {"cluster": client} if label == "dask" else {"workers": workers}
                        t = time.perf_counter()
                        run_experiment(root / f"{k}", SWINGUP, agent, runs, steps,
                                       progress=False, **where)
                        walls[label].append(time.perf_counter() - t)
                local, dask = min(walls["local"]), min(walls["dask"])
                out[case] = {"runs": runs, "steps": steps, "local_s": local, "dask_s": dask,
                             "ratio": local / dask,
                             "overhead_ms_per_run": 1e3 * workers * (dask - local) / runs}
    return out


def _import_script(path, name):
    """The module of the script at ``path``, imported (once per process) as ``name``."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as ``import`` does: numba's cache of the
    # kernels compiled with its functions imports their module by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _user_declared(steps, repeats, script=None):
    """Steps per second of RiverSwim (declared by a script) and of the loop MDP, side by side.

    The same agent (the loop MDP's case of :func:`_cases`) and the same
    number of steps on both; after a warm-up call of each, the repeats
    alternate between them (seeds ``1 .. repeats``, the first of each pair
    switching every repeat), so that a machine slowing down or speeding up
    affects both.  ``ratio`` is the median over repeats of the pair's rates
    RiverSwim / loop MDP.  RiverSwim's step draws a uniform number (its
    outcome); the loop MDP's is deterministic and draws none.

    Never raises for a missing or broken script: the figures are then None
    and ``reason`` says why.
    """
    import avgreward

    script = CUSTOM_ENV_SCRIPT if script is None else Path(script)
    agent = next(agent for name, _, agent in _cases() if name == "loop MDP")
    out = {"script": "scripts/custom_env.py", "steps": steps, "repeats": repeats,
           "agent": agent.to_dict(), "reason": None, "ratio": None,
           "note": "RiverSwim's step is random: it draws one more uniform random number "
                   "per step than the loop MDP's",
           "cases": [{"name": "RiverSwim (user-declared)", "env": None, "steps_per_s": None},
                     {"name": "loop MDP (built-in)", "env": "avgreward/LoopMDP-v0",
                      "steps_per_s": None}]}
    if not script.is_file():
        out["reason"] = (f"{script} not found (the scripts are not installed with the "
                         "package: run the benchmark from a checkout)")
        return out
    # A user's script: what goes wrong with it is reported, and the benchmark goes on.
    try:
        module = _import_script(script, _CUSTOM_ENV_MODULE)
    except Exception as exc:
        out["reason"] = f"importing {out['script']} failed: {type(exc).__name__}: {exc}"
        return out
    env_ids = [getattr(module, "ENV_ID", "RiverSwim-v0"), "avgreward/LoopMDP-v0"]
    out["cases"][0]["env"] = env_ids[0]
    try:
        avgreward.train(env_ids[0], agent, 1_000, seed=0)  # warm-up: load or compile
    except Exception as exc:
        out["reason"] = f"training {env_ids[0]} failed: {type(exc).__name__}: {exc}"
        return out
    avgreward.train(env_ids[1], agent, 1_000, seed=0)
    rates = [[], []]
    for seed in range(1, repeats + 1):
        order = (0, 1) if seed % 2 else (1, 0)
        for k in order:
            started = time.perf_counter()
            avgreward.train(env_ids[k], agent, steps, seed=seed)
            rates[k].append(steps / (time.perf_counter() - started))
    for case, case_rates in zip(out["cases"], rates):
        median = statistics.median(case_rates)
        case.update(steps_per_s=median, steps_per_s_best=max(case_rates),
                    ns_per_step=1e9 / median)
    out["ratio"] = statistics.median(a / b for a, b in zip(*rates))
    return out


def _plain_python(env_id, agent, steps):
    from avgreward.agents import NaturalActorCritic
    from avgreward.reference import reference_natural_actor_critic, reference_train

    reference = (reference_natural_actor_critic  # the paper's algorithm, dense
                 if isinstance(agent, NaturalActorCritic) else reference_train)
    reference(env_id, agent, 10, seed=0)
    started = time.perf_counter()
    reference(env_id, agent, steps, seed=1)
    return {"steps": steps, "steps_per_s": steps / (time.perf_counter() - started)}


def c_compiler():
    """The C compiler command: ``$CC`` (may carry flags), else ``cc``, else ``gcc``.

    Returns
    -------
    list of str or None
        The command (its first word resolved by :func:`shutil.which`), or
        None if none of them is found.
    """
    for command in (os.environ.get("CC", ""), "cc", "gcc"):
        try:
            words = shlex.split(command)
        except ValueError:  # unbalanced quotes in $CC: try the next one
            continue
        found = shutil.which(words[0]) if words else None
        if found:
            return [found, *words[1:]]
    return None


def _compiler_version(compiler):
    """First line of ``compiler --version``, or None."""
    try:
        run = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = run.stdout.strip().splitlines()
    return lines[0].strip() if run.returncode == 0 and lines else None


def compile_c_reference(directory):
    """Compile the C reference (:data:`C_SOURCE`) into ``directory``.

    Parameters
    ----------
    directory : str or Path
        Where the executable goes (e.g. a temporary directory).

    Returns
    -------
    executable : Path or None
    flags : list of str or None
        The optimisation flags used (``-march=native`` dropped if the compiler
        rejected it).
    reason : str or None
        Why there is no executable (no compiler, no source, compile error).
    """
    compiler = c_compiler()
    if compiler is None:
        return None, None, "no C compiler found ($CC, cc, gcc)"
    if not C_SOURCE.is_file():
        return None, None, f"C source not found: {C_SOURCE}"
    executable = Path(directory) / "actor_critic"
    error = ""
    for flags in _C_FLAGS:
        command = [*compiler, *flags, "-o", str(executable), str(C_SOURCE), "-lm"]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            error = str(exc)
            continue
        if run.returncode == 0 and executable.is_file():
            return executable, flags, None
        error = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
    return None, None, f"compile failed: {error}"


def _c_run(executable, args):
    """One run of the C program; its JSON line as a dict (RuntimeError if it failed)."""
    run = subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"C run {' '.join(args)} failed: {run.stderr.strip()}")
    try:
        out = json.loads(run.stdout.strip().splitlines()[-1])
        complete = out["steps"] == out["steps_asked"]
    except (IndexError, KeyError, TypeError, ValueError):
        raise RuntimeError(f"C run {' '.join(args)} printed no result: {run.stdout!r}") from None
    if not complete:
        # A broken C must not pass for a fast one.
        raise RuntimeError(f"C run {' '.join(args)} stopped after {out['steps']} steps "
                           "(non-finite TD error or policy)")
    return out


def _c_reference(steps, repeats):
    """Steps per second of the C reference on the cases of :data:`_C_CASES`.

    As :func:`_fused`: a warm-up run, then ``repeats`` runs with seeds
    ``1 .. repeats`` of ``steps`` steps each, median rate.  The program times
    its loop only (process start and allocation excluded) while the fused
    figure times the whole :func:`avgreward.train` call: the comparison
    favours the C, if anything.  Never raises for a missing or failing
    compiler or run: the figures are then None and ``reason`` says why.
    """
    compiler = c_compiler()
    out = {"source": "avgreward/bench_c/actor_critic.c",
           "compiler": None if compiler is None else " ".join(compiler),
           "flags": None, "reason": None, "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        executable, flags, reason = compile_c_reference(tmp)
        out["flags"], out["reason"] = flags, reason
        for name, mode, extra in _C_CASES:
            case = {"name": name, "args": [*mode, "N", "SEED", *extra], "steps": steps,
                    "repeats": repeats, "steps_per_s": None, "reason": reason}
            if executable is not None:
                try:
                    _c_run(executable, [*mode, "1000", "0", *extra])
                    runs = [_c_run(executable, [*mode, str(steps), str(seed), *extra])
                            for seed in range(1, repeats + 1)]
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    case["reason"] = str(exc)
                else:
                    rates = [r["steps_per_s"] for r in runs]
                    case.update(
                        steps_per_s=statistics.median(rates), steps_per_s_best=max(rates),
                        ns_per_step=1e9 / statistics.median(rates),
                        # Mean reward and R-bar: a broken C would show here.
                        mean_reward=statistics.mean(r["mean_reward"] for r in runs),
                        rbar=statistics.mean(r["rbar"] for r in runs),
                        settings=runs[0]["settings"])
            out["cases"].append(case)
    return out


def _many_seeds(steps, workers):
    """Wall time of ``2 * workers`` runs through the runner on 1 worker and on ``workers``."""
    from avgreward import SoftmaxActorCritic
    from avgreward.experiment import run_experiment

    agent = SoftmaxActorCritic.pendulum_reference()
    runs = 2 * workers
    out = {"runs": runs, "steps_per_run": steps, "workers": workers}
    for label, n_workers in (("one_worker", 1), ("all_workers", workers)):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            run_experiment(Path(tmp) / "exp", SWINGUP, agent, runs, steps, workers=n_workers,
                           progress=False)
            wall = time.perf_counter() - started
        out[label] = {"wall_s": wall, "steps_per_s": runs * steps / wall}
    out["scaling"] = out["all_workers"]["steps_per_s"] / out["one_worker"]["steps_per_s"]
    return out


_STARTUP_CHILD = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    import avgreward
    imported = time.perf_counter()
    avgreward.train("{env}", avgreward.SoftmaxActorCritic.pendulum_reference(), {steps}, seed=0)
    done = time.perf_counter()
    print(json.dumps({{"import_s": imported - started, "train_s": done - imported}}))
""")


def _startup():
    """A fresh process: ``import avgreward`` and a first 1,000-step train, cold and warm.

    The child gets its own numba cache directory (``NUMBA_CACHE_DIR``, empty
    for the cold start), so that the figures do not depend on what this
    checkout's ``__pycache__`` holds (and ``AVGREWARD_CACHE_DIR``, the same
    directory, for the loop's compiled copies).  The package's cache guard
    (``avgreward/envs/_numba_cache.py``) only manages ``__pycache__`` next to the
    sources; a fresh directory needs no guarding.
    """
    code = _STARTUP_CHILD.format(env=SWINGUP, steps=_STARTUP_STEPS)
    out = {"steps": _STARTUP_STEPS}
    with tempfile.TemporaryDirectory() as cache:
        # The loop's compiled copies (avgreward.specialize) in there too.
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, AVGREWARD_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            started = time.perf_counter()
            child = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True)
            wall = time.perf_counter() - started
            parts = json.loads(child.stdout.strip().splitlines()[-1])
            out[label] = {"wall_s": wall, **parts}
    return out


_EXPERIMENT_CHILD = textwrap.dedent("""
    import avgreward
    from avgreward.experiment import run_experiment
    run_experiment({out!r}, "{env}", avgreward.SoftmaxActorCritic.pendulum_reference(),
                   {seeds}, {steps}, progress=False)
""")


def _tree_rss(root):
    """Summed resident memory (bytes) of ``root`` and its descendants; None without /proc."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    children = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            total += int((proc / str(pid) / "statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def _watched(command, what):
    """Run ``command``; its wall time (s) and the peak RSS (bytes) of its process tree.

    The tree's resident memory is sampled every 20 ms (None without
    ``/proc``).  Raises RuntimeError, with the child's stderr, if it fails.
    """
    peak = [0]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)

    def watch():
        while child.poll() is None:
            rss = _tree_rss(child.pid)
            if rss is None:
                peak[0] = None
                return
            peak[0] = max(peak[0], rss)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, stderr = child.communicate()
    wall = time.perf_counter() - started
    watcher.join()
    if child.returncode != 0:
        raise RuntimeError(f"the {what} process failed:\n{stderr}")
    return wall, peak[0]


def _experiment(seeds, steps):
    """``seeds`` x ``steps`` of the swing-up through the runner in a fresh process, end to end."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "exp"
        code = _EXPERIMENT_CHILD.format(out=str(out), env=SWINGUP, seeds=seeds, steps=steps)
        wall, peak = _watched([sys.executable, "-c", code], "experiment")
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seeds": seeds, "steps": steps, "wall_s": wall,
            "peak_memory_mb": None if peak is None else peak / 2**20,
            "results_mb": size / 2**20}


# The main job's parts, one after another in a fresh process: what the script
# calls, with its arguments.
_MAIN_JOB_PARTS = textwrap.dedent("""
    import json, time
    from pathlib import Path
    from avgreward import SoftmaxActorCritic
    from avgreward.animation import animate_policy, rollout
    from avgreward.experiment import run_experiment
    from avgreward.plotting import (exponential_average_curve, learning_curve, policy_map,
                                    save_figure, value_map)
    parts = {{}}

    def timed(name, make):
        started = time.perf_counter()
        value = make()
        parts[name] = time.perf_counter() - started
        return value

    experiment = timed("training", lambda: run_experiment(
        {out!r}, "avgreward/PendulumSwingUp-v0", SoftmaxActorCritic.pendulum_reference(),
        {seeds}, {steps}, progress=False))
    out, rewards, steps = experiment.path, experiment.rewards(0), experiment.bin_steps
    result = experiment.result(0, experiment.finished_seeds(0)[0])
    path = rollout(result, {gif_steps}, seed=0).observations
    timed("learning curve", lambda: save_figure(
        learning_curve(rewards, steps=steps, title="t"), out / "learning_curve.png"))
    timed("exponential average", lambda: save_figure(
        exponential_average_curve(rewards, steps=steps, title="t"), out / "exp.png"))
    timed("policy map", lambda: save_figure(
        policy_map(result, trajectory=path, title="t"), out / "policy_map.png"))
    timed("value map", lambda: save_figure(
        value_map(result, trajectory=path, title="t"), out / "value_map.png"))
    timed("GIF", lambda: animate_policy(result, out / "swingup.gif", steps={gif_steps},
                                        every=3, seed=0, size=240))
    print(json.dumps(parts))
""")


def _timed_run(command, what):
    """Wall time (s) of ``command``, its stdout; RuntimeError with its stderr if it fails."""
    started = time.perf_counter()
    child = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"the {what} failed:\n{child.stderr}")
    return wall, child.stdout


def _main_job(q, script=None):
    """The main job (``scripts/swingup_softmax.py``) end to end, warm, and its parts.

    End to end: fresh processes, as a user runs it; after a warm-up run (full
    mode) so that numba's cache is compiled.  "retrained" runs train into a
    fresh directory; "reused" runs find those runs finished and draw the
    figures and the GIF only.  The parts are measured one after another in
    one process (the script itself draws the GIF in a second process while
    it draws the figures), and start-up and imports as ``script --help``.
    """
    script = MAIN_JOB_SCRIPT if script is None else Path(script)
    seeds, steps, gif_steps = _MAIN_JOB[q]
    repeats = _MAIN_JOB_REPEATS[q]
    out = {"script": "scripts/swingup_softmax.py", "seeds": seeds, "steps": steps,
           "gif_steps": gif_steps, "repeats": repeats, "wall_s": None, "reused_wall_s": None,
           "parts_s": None, "reason": None}
    if not script.is_file():
        out["reason"] = f"{script} not found (the scripts are not installed with the package)"
        return out
    flags = ["--seeds", str(seeds), "--steps", str(steps), "--gif-steps", str(gif_steps)]
    with tempfile.TemporaryDirectory(prefix="avgreward-bench-") as tmp:
        def job(directory):
            return _timed_run([sys.executable, str(script), *flags, "--out", str(directory)],
                              "main job")[0]

        if not q:
            job(Path(tmp) / "warm-up")
        retrained = [job(Path(tmp) / f"job-{k}") for k in range(repeats)]
        reused = [job(Path(tmp) / "job-0") for _ in range(repeats)]
        imports = [_timed_run([sys.executable, str(script), "--help"], "main job's --help")[0]
                   for _ in range(repeats)]
        code = _MAIN_JOB_PARTS.format(out=str(Path(tmp) / "parts"), seeds=seeds, steps=steps,
                                      gif_steps=gif_steps)
        _, stdout = _timed_run([sys.executable, "-c", code], "main job's parts")
    parts = {"start-up and imports": statistics.median(imports)}
    parts.update(json.loads(stdout.strip().splitlines()[-1]))
    out.update(wall_s=statistics.median(retrained), reused_wall_s=statistics.median(reused),
               parts_s=parts)
    return out


@dataclasses.dataclass(frozen=True)
class StartupCommand:
    """One command of the start-up section (see :func:`startup_commands`).

    ``argv`` takes a new, empty directory of the sample's own (for the
    command's ``--out``) and returns the command line; None when the command
    cannot be run here, ``reason`` then says why.
    """

    shown: str
    argv: object = None
    reason: str | None = None


def startup_commands(quick=False, script=None):
    """The start-up section's commands, the floor first: name -> :class:`StartupCommand`.

    Each runs with this interpreter (``sys.executable``, and this process's
    environment), so with the avgreward imported here.  The main job runs as
    the README runs it, with its default budget (the quick one with
    ``quick``); it is there, with a reason and no command line, where the
    scripts are not next to the package.
    """
    python = sys.executable
    script = MAIN_JOB_SCRIPT if script is None else Path(script)
    run = ["run", "pendulum", "--steps", str(_STARTUP_STEPS), "--seeds", "1"]
    seeds, steps, gif_steps = _MAIN_JOB[1]
    flags = (["--seeds", str(seeds), "--steps", str(steps), "--gif-steps", str(gif_steps)]
             if quick else [])
    commands = {
        "import numpy": StartupCommand("python -c 'import numpy'",
                                       lambda directory: [python, "-c", "import numpy"]),
        "import avgreward": StartupCommand("python -c 'import avgreward'",
                                           lambda directory: [python, "-c", "import avgreward"]),
        "1,000-step run": StartupCommand(
            f"avgreward {' '.join(run)} --out NEW_DIR --quiet",
            lambda directory: [python, "-m", "avgreward.cli", *run, "--out",
                               str(directory / "run"), "--quiet"]),
    }
    shown = " ".join(["python scripts/swingup_softmax.py", *flags, "--out NEW_DIR"])
    if script.is_file():
        commands["main job"] = StartupCommand(
            shown, lambda directory: [python, str(script), *flags, "--out",
                                      str(directory / "job")])
    else:
        commands["main job"] = StartupCommand(
            shown, reason=f"{script} not found (the scripts are not installed with the package)")
    return commands


def _whole_process(argv, env=None):
    """Wall and CPU seconds (user + sys, its reaped descendants too) of one run of ``argv``.

    Timed from outside: from before the process is started to after it is
    reaped.  Its output is thrown away; RuntimeError with its stderr if it fails.
    """
    try:
        import resource
    except ImportError:  # not on Windows: no CPU figure
        resource = None

    def cpu():
        if resource is None:
            return None
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    before = cpu()
    started = time.perf_counter()
    child = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = cpu()
    if child.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed (exit status {child.returncode}):\n"
                           f"{child.stderr}")
    return wall, None if before is None else after - before


def _processors():
    """``os.cpu_count()`` and the processors this process may run on (None where unknown)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu_count": os.cpu_count(), "usable": usable}


def _load_average():
    """The 1, 5 and 15-minute load averages, or None where the system has none."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def _startup_outside(samples, quick=False, commands=None, cold=_STARTUP_COLD, log=None):
    """The start-up section: each command as a whole process, a fresh interpreter per sample.

    Parameters
    ----------
    samples : int
        Counted runs of each command (the median of 5 or more is the figure
        to quote).
    quick : bool
        The main job on its quick budget (see :func:`startup_commands`).
    commands : dict of str to StartupCommand, optional
        Default :func:`startup_commands`; the first is the floor.
    cold : str or None
        The command also run once with empty caches, after the others.
    log : callable, optional
        Called with a line of progress text before each round.

    After one warm-up run of each command (not counted: numba's cache and the
    operating system's are then filled), ``samples`` rounds run every command
    once, in turn, each sample with a new directory for its ``--out``.  The
    cold run gets a new directory as ``NUMBA_CACHE_DIR`` and
    ``AVGREWARD_CACHE_DIR`` (the loop's compiled copies), so it compiles
    every kernel it needs.
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    commands = startup_commands(quick) if commands is None else commands
    floor = next(iter(commands))
    out = {"samples": samples, "floor": floor, "processors": _processors(),
           "load_average_before": _load_average(), "load_average_after": None,
           "rows": [], "cold": None, "scipy_installed": _scipy_installed()}
    walls = {name: [] for name in commands}
    cpus = {name: [] for name in commands}
    runnable = {name: c for name, c in commands.items() if c.argv is not None}
    with tempfile.TemporaryDirectory(prefix="avgreward-bench-startup-") as tmp:
        count = 0

        def sample(name, env=None):
            nonlocal count
            count += 1
            directory = Path(tmp) / f"{count}"
            directory.mkdir()
            try:
                return _whole_process(runnable[name].argv(directory), env)
            finally:
                shutil.rmtree(directory, ignore_errors=True)

        if log is not None:
            log("start-up, timed from outside: one warm-up run of each command")
        for name in runnable:
            sample(name)
        for k in range(samples):
            if log is not None:
                log(f"start-up, timed from outside: round {k + 1} of {samples}")
            for name in runnable:
                wall, cpu = sample(name)
                walls[name].append(wall)
                cpus[name].append(cpu)
        if cold is not None and cold in runnable:
            if log is not None:
                log(f"start-up, timed from outside: {cold}, cold (empty numba cache)")
            with tempfile.TemporaryDirectory(prefix="avgreward-bench-cold-") as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, AVGREWARD_CACHE_DIR=cache)
                wall, cpu = sample(cold, env)
            out["cold"] = {"name": cold, "command": commands[cold].shown, "wall_s": wall,
                           "cpu_s": cpu}
    out["load_average_after"] = _load_average()
    base = statistics.median(walls[floor]) if walls[floor] else None

    def beside_floor(row, name):
        above = name != floor and base is not None and row["wall_s"] is not None
        row.update(over_floor_s=row["wall_s"] - base if above else None,
                   over_floor=row["wall_s"] / base if above else None)
        return row

    for name, command in commands.items():
        row = {"name": name, "command": command.shown, "reason": command.reason,
               "wall_s": None, "min_s": None, "max_s": None, "cpu_s": None,
               "walls_s": walls[name]}
        if walls[name]:
            measured = [c for c in cpus[name] if c is not None]
            row.update(wall_s=statistics.median(walls[name]), min_s=min(walls[name]),
                       max_s=max(walls[name]),
                       cpu_s=statistics.median(measured) if measured else None)
        out["rows"].append(beside_floor(row, name))
    if out["cold"] is not None:
        beside_floor(out["cold"], cold)
    return out


def _scipy_installed() -> bool:
    """Whether this interpreter has scipy: numba then imports scipy.linalg when it starts."""
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


def _startup_outside_table(s):
    """The start-up section's lines of the table."""
    def load(values):
        return "n/a" if values is None else " ".join(f"{v:.2f}" for v in values)

    def seconds(value, signed=False):
        return "" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")

    p = s["processors"]
    usable = "" if p["usable"] is None else f", {p['usable']} usable by this process"
    lines = [f"start-up, timed from outside: a fresh process per sample, wall s, median of "
             f"{s['samples']} (after one warm-up run of each)",
             f"  nproc {p['cpu_count']}{usable}; load average (1, 5, 15 min) "
             f"{load(s['load_average_before'])} before, {load(s['load_average_after'])} after",
             *_scipy_line(s.get("scipy_installed")),
             f"  {'':34s} {'median':>8s} {'min':>8s} {'max':>8s} {'cpu':>8s} "
             f"{'- floor':>8s} {'/ floor':>8s}"]

    def line(label, r, lowest=None, highest=None):
        ratio = "" if r["over_floor"] is None else f"{r['over_floor']:.2f}x"
        return (f"  {label:34s} {seconds(r['wall_s']):>8s} {seconds(lowest):>8s} "
                f"{seconds(highest):>8s} {seconds(r['cpu_s']):>8s} "
                f"{seconds(r['over_floor_s'], signed=True):>8s} {ratio:>8s}")

    for r in s["rows"]:
        label = r["name"] + (" (the floor)" if r["name"] == s["floor"] else
                             ", warm" if r["name"] != "import avgreward" else "")
        if r["wall_s"] is None:
            lines.append(f"  {label:34s} n/a ({r['reason'] or 'not measured'})")
        else:
            lines.append(line(label, r, r["min_s"], r["max_s"]))
    c = s["cold"]
    if c is not None:
        lines.append(line(f"{c['name']}, cold (one run)", c))
    lines += ["  the commands (python: this interpreter; NEW_DIR: a new directory each run; cold:",
              "  NUMBA_CACHE_DIR and AVGREWARD_CACHE_DIR a new, empty directory):"]
    lines += [f"    {r['name']}: {r['command']}" for r in s["rows"]]
    return lines


def _scipy_line(installed):
    # Written before it was recorded: no line.  numba looks for BLAS through
    # scipy.linalg.cython_blas when it starts; with scipy installed (the analysis
    # extra) that import costs about 0.2 s in every process that runs a kernel.
    if installed is None:
        return []
    if installed:
        return ["  scipy installed: numba imports scipy.linalg as it starts (about 0.2 s a "
                "process; README's `pip install .` has no scipy)"]
    return ["  scipy not installed (as after README's `pip install .`)"]


def cli_memory_command(out, env="pendulum", steps=200_000_000, seeds=2, workers=2):
    """The command line whose memory :func:`measure` reports (``python -m avgreward.cli run ...``).

    Run with this interpreter, so that it uses the avgreward that is imported here.
    """
    return [sys.executable, "-m", "avgreward.cli", "run", env, "--steps", str(steps),
            "--seeds", str(seeds), "--workers", str(workers), "--out", str(out), "--quiet"]


def _cli_memory(env, steps, seeds, workers):
    """Peak RSS of the whole process tree of ``avgreward run`` (see :func:`cli_memory_command`)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = cli_memory_command(Path(tmp) / "exp", env, steps, seeds, workers)
        wall, peak = _watched(command, "avgreward run")
    shown = ["avgreward", *command[3:-3], "--out", "DIR", "--quiet"]
    return {"command": " ".join(shown), "env": env, "steps": steps, "seeds": seeds,
            "workers": workers, "wall_s": wall,
            "peak_memory_mb": None if peak is None else peak / 2**20}


def _machine():
    import numba
    import numpy

    import avgreward

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    compiler = c_compiler()
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "numba": numba.__version__, "avgreward": avgreward.__version__,
            "c_compiler": None if compiler is None else _compiler_version(compiler),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def measure(quick=False, log=print, startup=False, only=None, samples=None):
    """Run the measurements; returns the results as a JSON-ready dict.

    Parameters
    ----------
    quick : bool
        Tiny budgets: checks that everything runs, timings are meaningless.
    log : callable
        Called with a line of progress text before each measurement.
    startup : bool
        Also the start-up section timed from outside (``results["startup_outside"]``,
        measured first, while the machine is as quiet as the benchmark finds it).
    only : str, optional
        One of :data:`SECTIONS`: that section alone, none of the others.
    samples : int, optional
        The start-up section's counted runs of each command (default 5, 1 with
        ``quick``).
    """
    if only is not None and only not in SECTIONS:
        raise ValueError(f"only must be one of {', '.join(SECTIONS)}, got {only!r}")
    if samples is not None and samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    q = 1 if quick else 0
    results = {"quick": quick, "machine": _machine()}
    if startup or only == "startup":
        results["startup_outside"] = _startup_outside(
            _STARTUP_SAMPLES[q] if samples is None else samples, quick, log=log)
    if only is None:
        _measure_sections(q, log, results)
    results["targets"] = _check_targets(results)
    return results


def _measure_sections(q, log, results):
    """The sections measured by default, into ``results``."""
    workers = os.cpu_count() or 1
    results.update(fused=[], plain_python=[])
    for name, env_id, agent in _cases():
        log(f"fused loop: {name}")
        fused = _fused(env_id, agent, _FUSED_STEPS[q], _FUSED_REPEATS[q])
        log(f"plain Python: {name}")
        python = _plain_python(env_id, agent, _PYTHON_STEPS[q])
        common = {"name": name, "env": env_id, "agent": agent.to_dict()}
        results["fused"].append({**common, **fused})
        results["plain_python"].append(
            {**common, **python, "fused_over_python": fused["steps_per_s"] / python["steps_per_s"]})
    log("live metrics: the swing-up with and without a CSV log")
    results["logging"] = _logging(_FUSED_STEPS[q], _FUSED_REPEATS[q])
    log("user-declared environment: RiverSwim (scripts/custom_env.py) and the loop MDP")
    results["user_declared"] = _user_declared(_DECLARED_STEPS[q], _DECLARED_REPEATS[q])
    log("policy gradients: REINFORCE, the estimator laboratory, Figure 13.1")
    results["policy_gradient"] = _policy_gradient(q, workers)
    log("value-based control: Sarsa and Q-learning, access control's 10 x 2M steps")
    results["value_based"] = _value_based(q, workers)
    log("Dask LocalCluster against the local runner")
    results["dask"] = _dask_cluster(q, workers)
    log("C reference: compile and run")
    results["c_reference"] = _c_reference(_FUSED_STEPS[q], _FUSED_REPEATS[q])
    fused = {f["name"]: f for f in results["fused"]}
    for case in results["c_reference"]["cases"]:
        c_rate = case["steps_per_s"]
        case["fused_over_c"] = (None if c_rate is None
                                else fused[case["name"]]["steps_per_s"] / c_rate)
    log(f"many seeds: {2 * workers} runs on 1 and {workers} workers")
    results["many_seeds"] = _many_seeds(_MANY_SEEDS_STEPS[q], workers)
    log("start-up: cold and warm")
    results["startup"] = _startup()
    seeds, steps = _EXPERIMENT[q]
    log(f"experiment: {seeds} seeds x {steps:,} steps")
    results["experiment"] = _experiment(seeds, steps)
    log("the main job: scripts/swingup_softmax.py end to end, and its parts")
    results["main_job"] = _main_job(q)
    if q:
        results["cli_memory"] = None  # ~30 s of training: not a check that the bench runs
    else:
        c = _CLI_MEMORY
        log(f"memory: avgreward run {c['env']} --steps {c['steps']} --seeds {c['seeds']} "
            f"--workers {c['workers']}")
        results["cli_memory"] = _cli_memory(c["env"], c["steps"], c["seeds"], c["workers"])


def _figures(results):
    """The figures the targets are about, by the names of :data:`TARGETS`.

    Those of the sections not measured are None, or left out with ``--only``.
    """
    so = results.get("startup_outside")  # only when asked for
    rows = {} if so is None else {r["name"]: r for r in so["rows"]}
    startup = {
        _IMPORT_ROW: rows.get("import avgreward", {}).get("over_floor_s"),
        _SMALL_RUN_ROW: rows.get("1,000-step run", {}).get("over_floor_s"),
        _OUTSIDE_JOB_ROW: rows.get("main job", {}).get("wall_s"),
    }
    if "fused" not in results:  # a section alone (--only)
        return startup
    return {**_default_figures(results), **startup}


def _rate_of(vb, name):
    """Steps/s of row ``name`` of the value-based section, None if it was not measured."""
    row = None if vb is None else vb["rates"].get(name)  # absent from older results
    return None if row is None else row["steps_per_s"]


def _default_figures(results):
    """The figures of the sections measured by default."""
    fused = {f["name"]: f for f in results["fused"]}
    python = {p["name"]: p for p in results["plain_python"]}
    experiment = results["experiment"]
    cli = results.get("cli_memory")  # None in --quick mode
    declared = results.get("user_declared")  # absent from older results
    pg = results.get("policy_gradient")  # likewise
    vb = results.get("value_based")  # likewise
    dk = results.get("dask")  # absent from older results, None without the dask extra
    mj = results.get("main_job")  # absent from older results
    return {
        f"{_NATURAL_ROW} steps/s": fused[_NATURAL_ROW]["steps_per_s"] if _NATURAL_ROW in fused
        else None,  # absent from older results
        _MAIN_JOB_ROW: None if mj is None else mj["wall_s"],
        "Dask / local runner, 1,000 x 20,000 steps": None if dk is None
        else dk["short"]["ratio"],
        "Dask / local runner, 8 x 30M steps": None if dk is None else dk["long"]["ratio"],
        "softmax swing-up steps/s": fused["softmax swing-up"]["steps_per_s"],
        "softmax swing-up fused / plain Python": python["softmax swing-up"]["fused_over_python"],
        "Gaussian swing-up, lambda 0 steps/s": fused["Gaussian swing-up, lambda 0"]["steps_per_s"],
        "Gaussian swing-up, lambda 0.5 steps/s":
            fused["Gaussian swing-up, lambda 0.5"]["steps_per_s"],
        "many seeds: all workers / 1 worker": results["many_seeds"]["scaling"],
        "warm start-up s": results["startup"]["warm"]["wall_s"],
        "cold start-up s": results["startup"]["cold"]["wall_s"],
        "30 x 1M experiment wall s": experiment["wall_s"],
        "30 x 1M experiment peak memory MB": experiment["peak_memory_mb"],
        "30 x 1M experiment results MB": experiment["results_mb"],
        "CLI run 2 x 200M peak memory MB": None if cli is None else cli["peak_memory_mb"],
        _DECLARED_RATIO: None if declared is None else declared["ratio"],
        "REINFORCE, short corridor steps/s": None if pg is None
        else pg["reinforce"]["steps_per_s"],
        "estimator lab: 1M gridworld episodes s": None if pg is None else pg["lab_s"],
        _IS_LAB_ROW: None if pg is None or "is_lab" not in pg
        else pg["is_lab"]["episodes_per_min"],
        "Figure 13.1: 3 x 100 runs x 1,000 episodes s": None if pg is None else pg["figure_s"],
        "differential Sarsa, access control steps/s": None if vb is None
        else vb["rates"]["differential Sarsa, access control"]["steps_per_s"],
        "differential Q-learning, access control steps/s": None if vb is None
        else vb["rates"]["differential Q-learning, access control"]["steps_per_s"],
        "differential TD off-policy, access control steps/s": _rate_of(
            vb, "differential TD off-policy, access control"),
        "average-cost TD, access control steps/s": _rate_of(vb, "average-cost TD, access control"),
        **{f"RVI Q-learning, f {ref}, access control steps/s": _rate_of(
            vb, f"RVI Q-learning, f {ref}, access control") for ref in _RVI_REFERENCES},
        **{f"{name}, contextual bandit steps/s": _rate_of(vb, f"{name}, contextual bandit")
           for name in _BANDIT_ROWS},
        "access control: 10 x 2M Sarsa steps, all cores s": None if vb is None
        else vb["experiment_s"],
    }


def _check_targets(results):
    checked = {}
    for name, value in _figures(results).items():
        threshold, kind = TARGETS[name]
        if value is None:
            met = None
        else:
            met = value >= threshold if kind == "min" else value <= threshold
        checked[name] = {"measured": value, "target": threshold, "kind": kind, "met": met}
    return checked


# ---------------------------------------------------------------------------
# Output


def _rate(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def format_table(results):
    """The results as a plain-text table (what :func:`main` prints)."""
    m = results["machine"]
    lines = [f"avgreward {m['avgreward']} on {m['cpu']} ({m['cores']} cores), "
             f"Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}"
             + ("  [--quick: timings meaningless]" if results["quick"] else ""), ""]
    if "fused" in results:  # not with --only
        lines += _default_table(results)
    if "startup_outside" in results:  # only when asked for
        lines += [*([""] if "fused" in results else []),
                  *_startup_outside_table(results["startup_outside"])]
    if not results["targets"]:
        return "\n".join(lines)
    width = max(40, *(len(name) for name in results["targets"]))
    lines += ["", f"{'target':{width}s} {'measured':>12s} {'target':>12s}  met"]
    for name, t in results["targets"].items():
        value = t["measured"]
        shown = "n/a" if value is None else (_rate(value) if value >= 1e5 else f"{value:.2f}")
        bound = (">= " if t["kind"] == "min" else "<= ") + (
            _rate(t["target"]) if t["target"] >= 1e5 else f"{t['target']:g}")
        met = {True: "yes", False: "NO", None: "n/a"}[t["met"]]
        lines.append(f"{name:{width}s} {shown:>12s} {bound:>12s}  {met}")
    return "\n".join(lines)


def _default_table(results):
    """The lines of the sections measured by default."""
    lines = []
    lines.append(f"{'fused loop (one core)':34s} {'steps/s':>10s} {'ns/step':>8s}   "
                 f"{'plain Python':>12s} {'ratio':>7s}")
    python = {p["name"]: p for p in results["plain_python"]}
    for f in results["fused"]:
        p = python[f["name"]]
        lines.append(f"{f['name']:34s} {_rate(f['steps_per_s']):>10s} {f['ns_per_step']:8.0f}   "
                     f"{_rate(p['steps_per_s']):>12s} {p['fused_over_python']:6.0f}x")
    g = results.get("logging")  # absent from results written before it was measured
    if g is not None:
        lines += ["", f"live metrics, CSV log every chunk ({g['name']}): "
                      f"{100 * (g['logged_over_plain'] - 1):+.1f} % time "
                      f"(median of {g['repeats']} x {g['steps']:,} steps, interleaved; "
                      "target at most +5 %)"]
    if "user_declared" in results:  # absent from results written before it was measured
        lines += ["", *_declared_table(results["user_declared"])]
    if "c_reference" in results:  # absent from results written before it was measured
        lines += ["", *_c_table(results["c_reference"])]
    pg = results.get("policy_gradient")
    if pg is not None:
        r = pg["reinforce"]
        lines += ["", f"{'REINFORCE, short corridor':34s} {_rate(r['steps_per_s']):>10s} "
                      f"{r['ns_per_step']:8.0f}",
                  f"estimator lab: {pg['lab_episodes']:,} gridworld episodes, "
                  f"{pg['lab_estimators']} estimators: {pg['lab_s']:.2f} s (one core)",
                  f"Figure 13.1: {pg['figure_runs']} runs x {pg['figure_episodes']:,} episodes "
                  f"through the runner: {pg['figure_s']:.2f} s ({pg['figure_workers']} workers)"]
        if "is_lab" in pg:  # absent from results written before it was measured
            is_lab = pg["is_lab"]
            lines.append(f"importance sampling lab: {is_lab['episodes']:,} short corridor "
                         f"episodes, {is_lab['estimators']} estimators: {is_lab['s']:.2f} s, "
                         f"{_rate(is_lab['episodes_per_min'])} episodes/min (one core)")
    vb = results.get("value_based")
    if vb is not None:
        lines.append("")
        for name, r in vb["rates"].items():
            lines.append(f"{name:34s} {_rate(r['steps_per_s']):>10s} {r['ns_per_step']:8.0f}")
        lines.append(f"access control, differential Sarsa, {vb['seeds']} x {vb['steps']:,} steps "
                     f"through the runner: {vb['experiment_s']:.2f} s ({vb['workers']} workers)")
    dk = results.get("dask")
    if dk is not None:
        lines += ["", f"Dask LocalCluster of {dk['workers']} workers against the local runner "
                      f"(cluster start-up {dk['cluster_start_s']:.2f} s, not counted)"]
        for case in ("short", "long", "tiny"):
            c = dk[case]
            lines.append(f"  {c['runs']:,} runs x {c['steps']:,} steps: local {c['local_s']:.2f} s,"
                         f" Dask {c['dask_s']:.2f} s (x{c['ratio']:.2f}; "
                         f"{c['overhead_ms_per_run']:+.2f} ms per run per worker)")
    s = results["many_seeds"]
    lines += ["", f"many seeds: {s['runs']} runs x {s['steps_per_run']:,} steps of the swing-up",
              f"  1 worker:  {s['one_worker']['wall_s']:6.2f} s  "
              f"{_rate(s['one_worker']['steps_per_s'])} steps/s",
              f"  {s['workers']} workers: {s['all_workers']['wall_s']:6.2f} s  "
              f"{_rate(s['all_workers']['steps_per_s'])} steps/s  (x{s['scaling']:.2f})"]
    st = results["startup"]
    for label in ("cold", "warm"):
        r = st[label]
        lines.append(f"start-up, {label}: {r['wall_s']:5.2f} s (import {r['import_s']:.2f} s, "
                     f"first {st['steps']:,}-step train {r['train_s']:.2f} s)")
    e = results["experiment"]
    memory = "n/a" if e["peak_memory_mb"] is None else f"{e['peak_memory_mb']:.0f} MB"
    lines.append(f"experiment {e['seeds']} seeds x {e['steps']:,} steps: {e['wall_s']:.1f} s wall, "
                 f"peak memory {memory}, results {e['results_mb']:.1f} MB")
    if "main_job" in results:  # absent from results written before it was measured
        lines += _main_job_table(results["main_job"])
    cli = results.get("cli_memory")
    if cli is None:
        lines.append("long run's memory: not measured (full mode only)")
    else:
        memory = "n/a" if cli["peak_memory_mb"] is None else f"{cli['peak_memory_mb']:.0f} MB"
        lines.append(f"{cli['command']}: peak memory {memory} (process tree), "
                     f"{cli['wall_s']:.1f} s wall")
    return lines


def _declared_table(d):
    """The user-declared environment's lines of the table: both rates and their ratio."""
    lines = [f"{'user-declared env (one core)':34s} {'steps/s':>10s} {'ns/step':>8s}"]
    if d["ratio"] is None:
        return lines + [f"  n/a: {d['reason']}"]
    for case in d["cases"]:
        lines.append(f"{case['name']:34s} {_rate(case['steps_per_s']):>10s} "
                     f"{case['ns_per_step']:8.0f}")
    lines += [f"{'ratio RiverSwim / loop MDP':34s} {d['ratio']:9.2f}x",
              f"  same agent, {d['steps']:,} steps x {d['repeats']} repeats each, alternated; "
              f"ratio: median of the pairs", f"  {d['note']}"]
    return lines


def _main_job_table(j):
    """The main job's lines of the table: end to end, and its parts one after another."""
    head = (f"main job ({j['script']}: {j['seeds']} seeds x {j['steps']:,} steps, 4 figures, "
            f"a {j['gif_steps']}-step GIF), warm")
    if j["wall_s"] is None:
        return [f"{head}: n/a ({j['reason']})"]
    parts = j["parts_s"]
    return [f"{head}: {j['wall_s']:.2f} s end to end (median of {j['repeats']}; "
            f"{j['reused_wall_s']:.2f} s reusing its runs)",
            "  its parts one after another: " + ", ".join(
                f"{name} {seconds:.2f} s" for name, seconds in parts.items())
            + f" (sum {sum(parts.values()):.2f} s; the script draws the GIF alongside "
              "the figures)"]


def _c_table(c):
    """The C reference's lines of the table: C steps/s and fused / C per case."""
    lines = [f"{'C reference (one core)':34s} {'steps/s':>10s} {'ns/step':>8s}   "
             f"{'fused / C':>12s}"]
    for case in c["cases"]:
        if case["steps_per_s"] is None:
            lines.append(f"{case['name']:34s} n/a ({case['reason']})")
        else:
            lines.append(f"{case['name']:34s} {_rate(case['steps_per_s']):>10s} "
                         f"{case['ns_per_step']:8.0f}   {case['fused_over_c']:11.2f}x")
    if c["flags"]:
        lines.append(f"  {c['compiler']} {' '.join(c['flags'])}; the C's traces are dense")
    return lines


def _samples(text):
    """``--samples``: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser):
    """Declare the benchmark's options on an ``argparse`` parser."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny budgets: check that the benchmark runs (timings meaningless)")
    parser.add_argument("--out", default=None,
                        help="the JSON file to write (default results/bench.json; with --only "
                             "SECTION, results/bench-SECTION.json)")
    parser.add_argument("--startup", action="store_true",
                        help="also the start-up section, timed from outside: a fresh process per "
                             "sample for import numpy (the floor), import avgreward, a 1,000-step "
                             "avgreward run and the main job, and one cold 1,000-step run")
    parser.add_argument("--only", choices=SECTIONS, default=None, metavar="SECTION",
                        help="measure this section alone, none of the others "
                             f"(one of: {', '.join(SECTIONS)})")
    parser.add_argument("--samples", type=_samples, default=None, metavar="N",
                        help="the start-up section's counted runs of each command (default "
                             f"{_STARTUP_SAMPLES[0]}, {_STARTUP_SAMPLES[1]} with --quick)")


def run(args) -> int:
    """Measure the fused loop's speed on this machine (table + JSON)."""
    only = getattr(args, "only", None)
    startup = getattr(args, "startup", False)
    samples = getattr(args, "samples", None)
    if samples is not None and not (startup or only == "startup"):
        raise ValueError("--samples is the start-up section's: give it with --startup or "
                         "--only startup")
    default = "results/bench.json" if only is None else f"results/bench-{only}.json"
    out = Path(default if args.out is None else args.out)
    if out.suffix.lower() != ".json":
        raise ValueError(f"--out must end in .json, got {args.out!r}")
    # Before minutes of measuring: a directory that cannot be made fails now.
    out.parent.mkdir(parents=True, exist_ok=True)
    results = measure(quick=args.quick, log=lambda text: print(f"... {text}", file=sys.stderr),
                      startup=startup, only=only, samples=samples)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, out)
    print(format_table(results))
    print(f"\nwritten to {out}")
    return 0


def main(argv=None) -> int:
    """``python scripts/bench.py [--quick] [--out FILE] [--startup | --only SECTION]``.

    ``[--samples N]`` too; returns the exit code.
    """
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
