"""The ``avgreward`` command: run experiments and sweeps, plot their results.

::

    avgreward run ENV [--agent softmax|gaussian] --steps N --seeds K [--set NAME=VALUE ...] --out DIR
    avgreward sweep ENV --grid NAME=V1,V2,... [--grid ...] --steps N --seeds K --out DIR
        (run and sweep: [--workers N | --dask-local N | --scheduler tcp://HOST:PORT],
        --seed-list S1,S2,... instead of --seeds K, --config FILE instead of ENV)
    avgreward config DIR > FILE.toml
    avgreward plot DIR [DIR ...] --out FILE.png|.svg|.pdf|... [--kind curves|sensitivity|policy|value]
    avgreward animate DIR --out FILE.gif [--setting I] [--seed S]
    avgreward export DIR --out FILE.csv|.parquet [--what bins|runs]
    avgreward evaluate DIR [--steps N] [--seed S] [--sampled] [--trust-env-module]
    avgreward bench [--quick] [--out FILE.json] [--startup | --only startup] [--samples N]

Every subcommand has ``--help``.  Errors are one line on stderr,
``avgreward COMMAND: error: ...``, never a traceback, and ``--quiet`` does
not hide them.

Exit codes
----------
=====  ======================================================================
0      Done: for ``run`` and ``sweep``, every run of the experiment finished.
1      Another process is running an experiment in that directory, or the
       Dask cluster cannot run it (unreachable scheduler, other versions).
2      Bad input, or a file or directory that cannot be read or written.
3      ``run``, ``sweep``: the experiment finished, but some of its runs
       failed (diverged, killed, out of memory).  The summary is printed
       first, then a one-line note on stderr; the errors are in
       ``DIR/runs/*.json``.
130    Interrupted (Ctrl-C); finished runs are kept, the same command resumes.
=====  ======================================================================

Subcommands live in :data:`SUBCOMMANDS`, a dict of name -> (add_arguments,
run): adding one is a function that declares its arguments on an
``argparse`` parser, a function that takes the parsed arguments and returns
the exit code, and one entry in the dict.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import itertools
import logging
import math
import operator
import os
import signal
import sys
import threading
from dataclasses import fields, is_dataclass

from avgreward import bench as _bench
from avgreward.extras import MissingExtraError, require

__all__ = ["main", "parse_value", "SUBCOMMANDS", "EXIT_OK", "EXIT_BUSY", "EXIT_USAGE",
           "EXIT_RUNS_FAILED", "EXIT_INTERRUPTED"]

#: Exit codes of :func:`main` (see the module docstring).
EXIT_OK, EXIT_BUSY, EXIT_USAGE, EXIT_RUNS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: The largest step count: steps must stay exact as float64 (plot axes, bin ends).
#: The runner's own limit (``avgreward.run_arrays._MAX_STEPS``), written out
#: here: importing that module imports numpy and numba, and this module must
#: import fast (see :func:`main`).
MAX_STEPS = 2**53

_EXIT_CODES = """\
exit codes:
  0    done; for run and sweep: every run of the experiment finished
  1    another process is running an experiment in that directory, or the
       Dask cluster cannot run it (unreachable scheduler, other versions)
  2    bad input, or a file or directory that cannot be read or written
       (one line on stderr)
  3    run, sweep: the experiment finished, but some runs failed (diverged,
       killed, out of memory): the summary, then a one-line note on stderr;
       their errors are in DIR/runs/*.json
  130  interrupted; finished runs are kept: the same command resumes"""


class UsageError(ValueError):
    """A bad argument: reported in one line with exit code 2."""


# ---------------------------------------------------------------------------
# Values


_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}


def _evaluate(node):
    value = _evaluate_node(node)
    if isinstance(value, int):
        # An integer beyond float64's range would overflow wherever the value
        # is used (float(value)): raise OverflowError here, at every node, so
        # that the arithmetic never works on huge integers either.
        float(value)
    return value


def _evaluate_node(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _evaluate(node.operand)
        return value if isinstance(node.op, ast.UAdd) else -value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            # Keep "10**10**10" from eating the machine: numbers, not big integers.
            if abs(right) > 1024:
                raise ValueError("exponent too large")
            left = float(left)
        return _OPERATORS[type(node.op)](left, right)
    raise ValueError("not arithmetic on numbers")


def parse_value(text: str) -> float | int | bool:
    """A setting's value from the command line: a number, arithmetic on numbers, or a bool.

    ``"2**-6"``, ``"0.5"``, ``"1e-3"``, ``"1/3"``, ``"1_000_000"`` and
    ``"true"`` / ``"false"`` (any case) are accepted.  The text is parsed
    with :mod:`ast` and only numbers, ``+ - * / **`` and parentheses are
    evaluated: never ``eval``.  Integers are kept as ``int`` but, like
    every value, must lie within float64's range (below about 1.8e308 in
    magnitude).

    Raises
    ------
    ValueError
        If the text is anything else, the arithmetic fails (division by
        zero), or the value or a part of it is out of float64's range.
    """
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    try:
        value = _evaluate(ast.parse(stripped, mode="eval").body)
    except OverflowError:
        raise ValueError(f"{_shorten(text)} is out of range: a value must lie within "
                         "float64's range (magnitude below about 1.8e308)") from None
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError,
            RecursionError, MemoryError):
        raise ValueError(
            f"cannot read {_shorten(text)} as a value: expected a number such as 0.5, 1e-3 "
            "or 2**-6, or true/false") from None
    if isinstance(value, complex) or not math.isfinite(value):
        raise ValueError(f"{_shorten(text)} is not a finite real number")
    return value


def _shorten(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut in the middle if long: a 400-digit value must not fill the screen."""
    if len(text) <= limit:
        return repr(text)
    return repr(f"{text[:limit // 2]}...{text[-limit // 2:]}") + f" ({len(text)} characters)"


def _integer(text: str) -> int:
    value = parse_value(text)
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"expected a whole number, got {_shorten(text)}")
    return int(value)


def _whole(kind):
    """An argparse type: a whole number (any sign), e.g. an index or a seed."""
    def convert(text):
        try:
            return _integer(text)
        except ValueError as err:
            # argparse would otherwise print "invalid value" and the whole text.
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = kind
    return convert


def _positive(kind, maximum=None, why=""):
    def convert(text):
        try:
            value = _integer(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{kind} must be at least 1, got {_shorten(text)}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(
                f"{kind} must be at most {maximum:,}{why}, got {_shorten(text)}")
        return value

    convert.__name__ = kind  # argparse names the type in its messages
    return convert


def _assignment(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


# ---------------------------------------------------------------------------
# Environments and agents


_ALIASES = {
    "pendulum": "avgreward/PendulumSwingUp-v0",
    "pendulum-continuous": "avgreward/PendulumSwingUpContinuous-v0",
    "loop": "avgreward/LoopMDP-v0",
    "gridworld": "avgreward/AliasedGridworld-v0",
    "access": "avgreward/AccessControl-v0",
}


def _env_id(name: str) -> str:
    """A registered id from an id, an id without ``avgreward/``, a short alias, or any
    gymnasium id (``CartPole-v1``)."""
    import gymnasium

    from avgreward import envs
    from avgreward.environments import check_env_id

    try:
        check_env_id(name.strip())
    except ValueError as err:
        raise UsageError(str(err)) from None
    wanted = name.strip().lower()
    if wanted in _ALIASES:
        return _ALIASES[wanted]
    for env_id in envs.ENV_IDS:
        short = env_id.split("/", 1)[1].lower()
        if wanted in (env_id.lower(), f"avgreward.envs:{env_id.lower()}", f"envs:{env_id.lower()}",
                      short, short.rsplit("-v", 1)[0]):
            return env_id
    if name.strip() in gymnasium.registry:
        return name.strip()
    module, sep, env_id = name.strip().partition(":")
    if sep and env_id:
        # "my_tasks:my/Task-v0": gymnasium imports the module that registers the id,
        # here and in every worker.
        import importlib

        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UsageError(f"env {name!r}: cannot import {module!r} ({err})") from None
        if env_id in gymnasium.registry:
            return name.strip()
    raise UsageError(
        f"unknown env {name!r}; choose one of {', '.join(_ALIASES)}, one of this package's "
        f"ids ({', '.join(envs.ENV_IDS)}) or a registered gymnasium id such as CartPole-v1")


def _setting_value(agent, name, text):
    known = {f.name: f for f in fields(agent)}
    if name not in known:
        raise UsageError(f"unknown setting {name!r} for the {agent.kind} agent; "
                         f"known: {', '.join(known)}")
    try:
        value = parse_value(text)
    except ValueError as err:
        raise UsageError(f"{name}: {err}") from None
    # A bool, or an optional one ("bool | None": None is the setting's automatic default).
    is_bool = known[name].type in (bool, "bool", "bool | None")
    if is_bool != isinstance(value, bool):
        raise UsageError(f"{name} must be {'true or false' if is_bool else 'a number'}, "
                         f"got {_shorten(text)}")
    return value


def _base_agent(args):
    from avgreward.training import default_agent

    env_id = _env_id(args.env)
    agent = default_agent(env_id, args.agent)
    changes = {}
    for name, text in args.set or []:
        if name in changes:
            raise UsageError(f"--set {name} is given twice")
        changes[name] = _setting_value(agent, name, text)
    return env_id, agent.replace(**changes), changes


def _base_agents(args):
    """The environment id, the agents (the default one, or the --config file's) with --set
    applied, and the settings --set changes.  Fills in ``args`` from a --config file."""
    if args.seed_list is not None:
        args.seeds = args.seed_list
    if args.config is None:
        required = [what for what, given in (("ENV", args.env), ("--steps", args.steps),
                                             ("--seeds or --seed-list", args.seeds),
                                             ("--out", args.out)) if given is None]
        if required:
            raise UsageError(f"the following arguments are required: {', '.join(required)} "
                             "(or give --config FILE)")
        env_id, agent, changes = _base_agent(args)
        return env_id, [agent], changes
    env_id, agents = _config_file_agents(args)
    changes = {}
    for name, text in args.set or []:
        if name in changes:
            raise UsageError(f"--set {name} is given twice")
        if not all(is_dataclass(a) for a in agents):
            raise UsageError("--set changes a built-in learner's settings, not a custom "
                             "learner's")
        changes[name] = text
    if changes:
        # Each agent of the file gets the --set values (read by its own settings' types).
        agents = [a.replace(**{name: _setting_value(a, name, text)
                               for name, text in changes.items()}) for a in agents]
    return env_id, agents, changes


def _config_file_agents(args):
    """The --config file's environment id and agents; its other values fill in ``args``
    where the command line leaves them out (the command line overrides the file)."""
    from avgreward.config_file import read_config_file
    from avgreward.training import default_agent

    for option, given in (("ENV", args.env), ("--agent", args.agent), ("--bounds", args.bounds),
                          ("--tilings", args.tilings), ("--tiles", args.tiles)):
        if given is not None:
            raise UsageError(f"{option} cannot be given with --config: the file's env, "
                             "[features] and [[agents]] give the experiment")
    file = read_config_file(args.config)
    for key, option in (("steps", "--steps"), ("seeds", "--seeds or --seed-list"),
                        ("out", "--out")):
        if getattr(args, key) is None:
            if getattr(file, key) is None:
                raise UsageError(f"{file.path}: missing key {key!r} (or give {option})")
            setattr(args, key, getattr(file, key))
    if args.bin_size is None:
        args.bin_size = file.bin_size
    args.file_features = file.features
    env_id = _env_id(file.env)
    return env_id, list(file.agents) if file.agents else [default_agent(env_id)]


def _bounds(text):
    """``--bounds=LOW:HIGH,LOW:HIGH,...``: one interval per observation dimension."""
    low, high = [], []
    for part in text.split(","):
        lo, sep, hi = part.partition(":")
        if not sep:
            raise argparse.ArgumentTypeError(
                f"expected LOW:HIGH per dimension, separated by commas, got {_shorten(text)}")
        try:
            low.append(float(parse_value(lo)))
            high.append(float(parse_value(hi)))
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return low, high


def _features(args, env_id):
    from avgreward.environments import is_own_env, default_features

    pendulum = env_id in (_ALIASES["pendulum"], _ALIASES["pendulum-continuous"])
    if (args.tilings is not None or args.tiles is not None) and not pendulum:
        raise UsageError("--tilings and --tiles apply to the pendulum's tile coder only")
    if args.bounds is not None and is_own_env(env_id):
        raise UsageError("--bounds applies to gymnasium environments that are not this "
                         "package's (they have their own features)")
    if pendulum and (args.tilings is not None or args.tiles is not None):
        from avgreward.features import pendulum_tile_coder

        return pendulum_tile_coder(tilings=args.tilings or 32, tiles=args.tiles or 8)
    if is_own_env(env_id):
        return None
    if args.bounds is not None:
        from avgreward.environments import env_info

        n_dims = env_info(env_id).obs_size
        if len(args.bounds[0]) != n_dims:
            raise UsageError(f"--bounds gives {len(args.bounds[0])} interval(s) but {env_id}'s "
                             f"observation has {n_dims} dimensions: one LOW:HIGH per dimension")
    try:
        return default_features(env_id, args.bounds)
    except ValueError as err:
        if args.bounds is None and "infinite bounds" in str(err):
            raise UsageError(f"{env_id}'s observation space has infinite bounds: give the "
                             "tile coder's with --bounds=LOW:HIGH,LOW:HIGH,... (one interval "
                             "per dimension)") from None
        raise


# ---------------------------------------------------------------------------
# Subcommands


def _add_common(parser):
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bars and no summary (errors, warnings and the note on "
                        "failed runs are still printed on stderr)")


def _add_experiment_arguments(parser):
    parser.add_argument("env", nargs="?", help="environment: pendulum, pendulum-continuous, "
                        "loop, gridworld, access, or a registered id such as avgreward/LoopMDP-v0 "
                        "or any gymnasium id such as avgreward/CartPoleFailurePenalty-v1 or "
                        "CartPole-v1 (stepped from Python); not with --config")
    parser.add_argument("--agent", choices=("softmax", "gaussian", "sarsa", "q-learning"),
                        help="learner (default: the environment's actor-critic: softmax for "
                        "discrete actions, gaussian for the continuous pendulum; sarsa and "
                        "q-learning: differential Sarsa and Q-learning, epsilon-greedy)")
    parser.add_argument("--steps",
                        type=_positive("steps", MAX_STEPS, " (2**53: step counts must stay "
                                       "exact as float64 on plot axes)"),
                        help="steps per run, e.g. 200000, 2e5 or 10**6 (at most 2**53; required "
                        "unless the --config file gives steps)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_positive("seeds"),
                       help="number of seeds K: runs with seeds 0..K-1 (a rerun with a larger "
                       "K adds the new seeds)")
    seeds.add_argument("--seed-list", type=_seed_list, metavar="S1,S2,...",
                       help="the seeds to run, e.g. 3,7,11: distinct whole numbers >= 0 "
                       "(instead of --seeds)")
    parser.add_argument("--config", metavar="FILE",
                        help="run the experiment a TOML file describes (avgreward config DIR "
                        "writes one; see the guide for its keys); --steps, --seeds or "
                        "--seed-list, --bin-size, --set and --out given beside it override "
                        "the file's values; ENV, --agent, --bounds, --tilings and --tiles "
                        "cannot be given with it")
    parser.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                        help="change one setting of the default agent (with --config: of "
                        "every agent of the file), e.g. alpha_w=2**-3 (repeat for several)")
    parser.add_argument("--out", help="the experiment's directory (required, unless the "
                        "--config file gives out); rerunning the same command resumes it")
    parser.add_argument("--workers", type=_positive("workers"),
                        help="worker processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on the Dask cluster of this scheduler, e.g. tcp://host:8786 "
                        "(pip install \"avgreward[dask]\"); files are written here, so the "
                        "workers need no shared file system")
    parser.add_argument("--dask-local", type=_positive("dask-local"), metavar="N",
                        help="run on a Dask LocalCluster of N worker processes on this machine")
    parser.add_argument("--bin-size", type=_positive("bin-size"),
                        help="store rewards as means of bins of this many steps "
                        "(default: at most 10,000 bins per run; 1 keeps every step)")
    parser.add_argument("--bounds", type=_bounds, metavar="LOW:HIGH,...",
                        help="gymnasium environments that are not this package's: the "
                        "observation's bounds for the tile coder, one LOW:HIGH per dimension "
                        "(needed where the observation space's are infinite), e.g. "
                        "--bounds=-2.4:2.4,-3:3,-0.21:0.21,-3.5:3.5 for CartPole-v1")
    parser.add_argument("--tilings", type=_positive("tilings"),
                        help="pendulum only: tilings of the tile coder (default 32)")
    parser.add_argument("--tiles", type=_positive("tiles"),
                        help="pendulum only: tiles per dimension (default 8)")
    parser.add_argument("--new", action="store_true",
                        help="if DIR already holds an experiment, write to DIR-2 (or the next "
                        "free DIR-k) instead of resuming or refusing")
    parser.add_argument("--log", choices=("csv", "tb"),
                        help="write each run's live metrics (steps, R-bar, recent reward rate, "
                        "episodes' returns, speed) as it goes: csv, DIR/logs/<run>.csv; tb, "
                        "TensorBoard events in DIR/logs/<run>/ (pip install "
                        "\"avgreward[tensorboard]\")")
    parser.add_argument("--log-every", type=_positive("log-every"), metavar="N",
                        help="with --log: metrics every N steps (default: steps/20, at least "
                        "1,000 and at most 65,536; with parallel actors, every N/actors "
                        "updates of each copy); the results do not depend on it. Not with "
                        "--scheduler or --dask-local")
    _add_common(parser)


def _add_run_arguments(parser):
    _add_experiment_arguments(parser)


def _add_sweep_arguments(parser):
    _add_experiment_arguments(parser)
    parser.add_argument("--grid", action="append", type=_assignment, required=True,
                        metavar="NAME=V1,V2,...",
                        help="values of one setting, e.g. alpha_theta=2**-6,2**-5,2**-4; "
                        "several --grid give every combination")


def _experiment(args, agents, env_id):
    from avgreward.experiment import run_experiment
    from avgreward.runner.directory import asking_for_new

    features = getattr(args, "file_features", None)
    if features is None:
        features = _features(args, env_id)
    if args.log_every is not None and args.log is None:
        raise UsageError("--log-every: give --log csv or --log tb too")
    given = [f"--{name}" for name in ("workers", "scheduler", "dask_local")
             if getattr(args, name) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of {' and '.join(given)}, not both".replace("_", "-"))
    with contextlib.ExitStack() as stack:
        stack.enter_context(asking_for_new("--new"))  # the errors in the CLI's words
        cluster = args.scheduler
        if args.dask_local is not None:
            from avgreward.runner.cluster import local_cluster

            cluster = stack.enter_context(local_cluster(args.dask_local))
        return run_experiment(args.out, env_id, agents, args.seeds, args.steps,
                              features=features, workers=args.workers,
                              bin_size=args.bin_size, progress=False if args.quiet else None,
                              new=args.new, cluster=cluster, log=args.log,
                              log_every=args.log_every)


def _performance(experiment, i):
    from avgreward.stats import mean_confidence_interval

    performance = experiment.final_performance(i, 0.1)
    n = performance.size
    if n == 0:
        return "no seed finished"
    mean, low, high = (float(v) for v in mean_confidence_interval(performance))
    interval = f"95% CI {low:.4g} to {high:.4g}, " if n > 1 else ""
    return f"{mean:.4g} ({interval}{n} seed{'s' if n > 1 else ''})"


def _failures(experiment, i):
    failed = [r for r in experiment.failed if r.agent_index == i]
    if not failed:
        return ""
    diverged = [r.steps_done for r in failed if r.failure == "divergence"]
    parts = []
    if diverged:
        at = (f"step {diverged[0]}" if min(diverged) == max(diverged)
              else f"steps {min(diverged)} to {max(diverged)}")
        parts.append(f"{len(diverged)} diverged at {at}")
    others = [r for r in failed if r.failure != "divergence"]
    if others:
        first = " ".join((others[0].error or "").split())[:120]
        parts.append(f"{len(others)} failed ({first})")
    return "; " + ", ".join(parts)


def _report(args, experiment) -> int:
    """Print the directory and the summary; the exit code: 0, or 3 if any run failed."""
    print(experiment.path)
    if not args.quiet:
        print(f"{experiment.env_id}, {experiment.steps:,} steps per run: "
              f"{experiment.summary()}")
        print("reward rate over the last 10% of steps, mean over seeds:")
        for i in range(len(experiment.agents)):
            print(f"  {experiment.label(i)}: {_performance(experiment, i)}"
                  f"{_failures(experiment, i)}")
    # A run that did not run at all once the runner returned is a failure too
    # (it should not happen): the results are incomplete either way.
    failed, missing = len(experiment.failed), len(experiment.missing)
    if not failed and not missing:
        return EXIT_OK
    total = len(experiment.agents) * len(experiment.seeds)
    parts = []
    if failed:
        parts.append(f"{failed} of {total} run{'s' if total > 1 else ''} failed; their errors "
                     f"are in {os.path.join(experiment.path, 'runs', '*.json')}")
    if missing:
        parts.append(f"{missing} of {total} did not run (run the same command again)")
    # Printed even with --quiet: it explains the exit code.
    print(f"avgreward {args.command}: the experiment finished, but {'; and '.join(parts)}",
          file=sys.stderr)
    return EXIT_RUNS_FAILED


def _run(args) -> int:
    """Run one agent's settings (or a --config file's agents) on K seeds, saved in a directory."""
    env_id, agents, _ = _base_agents(args)
    return _report(args, _experiment(args, agents, env_id))


def _sweep(args) -> int:
    """Run a grid of settings (every combination of the --grid values) on K seeds each."""
    env_id, bases, changes = _base_agents(args)
    names, texts = [], []
    for name, text in args.grid:
        if name in names:
            raise UsageError(f"--grid {name} is given twice")
        if name in changes:
            raise UsageError(f"{name} is given both by --set and by --grid")
        items = [t for t in text.split(",") if t.strip()]
        if not items:
            raise UsageError(f"--grid {name} has no values")
        names.append(name)
        texts.append(items)
    # A --config file's agents are each swept over the grid, in the file's order.
    agents = []
    for base in bases:
        if not is_dataclass(base):
            raise UsageError("--grid sweeps a built-in learner's settings, not a custom "
                             "learner's")
        values = [[_setting_value(base, name, t) for t in items]
                  for name, items in zip(names, texts)]
        agents += [base.replace(**dict(zip(names, combo))) for combo in itertools.product(*values)]
    return _report(args, _experiment(args, agents, env_id))


def _seed_list(text):
    """``--seed-list 3,7,11``: distinct whole numbers >= 0."""
    from avgreward.config_file import seed_list

    try:
        values = [_integer(t) for t in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected seeds separated by commas, e.g. 3,7,11: "
                                         f"{err}") from None
    try:
        return seed_list(values)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_config_arguments(parser):
    parser.add_argument("dir", metavar="DIR", help="an experiment directory")
    _add_common(parser)
    parser.epilog = ("Prints env, steps, seeds, bin size, features and every agent's settings "
                     "(not the results): avgreward run --config FILE --out NEW_DIR runs the same "
                     "experiment again, bit for bit.")


def _config(args) -> int:
    """Print an experiment's config as TOML (for avgreward run --config FILE)."""
    from pathlib import Path

    from avgreward.config_file import config_toml
    from avgreward.runner.records import read_config

    # read_config imports nothing the folder names (its env, a custom learner).
    sys.stdout.write(config_toml(read_config(Path(args.dir)), source=args.dir))
    return EXIT_OK


def _add_plot_arguments(parser):
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="experiment directories")
    parser.add_argument("--out", required=True,
                        help="the figure's file; its extension chooses the format: .png, "
                        ".svg, .pdf, .eps, .jpg, ... (any that matplotlib can write here); "
                        "missing directories are created")
    parser.add_argument("--kind", choices=("auto", "curves", "sensitivity", "policy", "value"),
                        default="auto",
                        help="curves: learning curves of every agent of every directory "
                        "(on an episodic task, with the episodes' return and length beside "
                        "the reward rate); sensitivity: final reward rate against a swept setting (one sweep "
                        "directory); policy / value: the pendulum policy or critic map of one "
                        "trained run (--setting, --seed); auto (default): sensitivity for a "
                        "single directory whose agents differ in one or two settings, curves "
                        "otherwise")
    parser.add_argument("--x", metavar="NAME",
                        help="sensitivity: the setting on the x axis (default: the swept actor "
                        "step size, else the setting with the most values); curves: steps "
                        "(default) or fraction (of each experiment's steps: experiments of "
                        "different lengths on one figure)")
    parser.add_argument("--exponential", action="store_true",
                        help="curves: exponential average of reward (step size 0.01) instead "
                        "of binned means")
    parser.add_argument("--title", help="the figure's title")
    parser.add_argument("--label", action="append", metavar="TEXT",
                        help="curves: the legend label of a curve, once per curve in order "
                        "(directories in the order given, each directory's settings in order)")
    parser.add_argument("--band", choices=("t", "bootstrap", "none"), default=None,
                        help="the interval over seeds: t, a Student-t interval of the mean "
                        "(default); bootstrap, a percentile bootstrap, which stays within the "
                        "runs' range; none")
    parser.add_argument("--xscale", choices=("linear", "log"), default="linear",
                        help="curves: the step axis (default: %(default)s)")
    parser.add_argument("--xlim", type=_limits("xlim"), metavar="LOW,HIGH",
                        help="the x axis' limits (either may be empty: ',5000')")
    parser.add_argument("--ylim", type=_limits("ylim"), metavar="LOW,HIGH",
                        help="the y axis' limits (either may be empty: '-0.5,'; the reward "
                        "rate's, beside episode curves)")
    parser.add_argument("--final-fraction", type=float, default=0.1, metavar="F",
                        help="sensitivity: a run's performance is its mean reward over the "
                        "last F of its steps (default: %(default)s; 1 = the whole run)")
    parser.add_argument("--optimum", default=None, metavar="auto|none|R",
                        help="curves and sensitivity: a dashed line at the best possible "
                        "reward rate R; auto (default): where it is known (0 for the "
                        "swing-up, the exact optimum of a tabular task)")
    parser.add_argument("--baseline", default="none", metavar="random|none|R",
                        help="curves: a dotted line at a baseline reward rate R; random: the "
                        "uniform random policy's exact rate (continuing tabular tasks); "
                        "none (default)")
    parser.add_argument("--no-clip", action="store_true",
                        help="curves: the band as computed, not clipped to the reward's known "
                        "range (by default a t band is clipped to it where it is known, an "
                        "episode length's to [1, the episode cap] and a return's to the "
                        "reward's range times the length, and the legend says so)")
    _add_run_choice(parser)
    _add_common(parser)
    parser.epilog = ("A directory with no finished run is an error; among several "
                     "directories, one with no finished run is left out of the figure with "
                     "a warning on stderr, and it is an error only if none has one.")


def _limits(name):
    def parse(text):
        parts = text.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            low, high = (float(p) if p.strip() else None for p in parts)
            if not all(v is None or math.isfinite(v) for v in (low, high)):
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--{name} must be LOW,HIGH (finite numbers, either may be empty), got {text!r}"
            ) from None
        if low is not None and high is not None and not low < high:
            raise argparse.ArgumentTypeError(f"--{name}: LOW must be less than HIGH, got {text!r}")
        return low, high
    return parse


def _rate_line(option, text, word):
    """A line's reward rate given as a number (``word`` and none are the other choices)."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} must be {word}, none or a number, got {text!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{option} must be finite, got {text!r}")
    return value


def _optimum(text, experiments):
    """The --optimum line's value: None, a number, or auto (known for one environment)."""
    if text == "none":
        return None
    if text == "auto":
        from avgreward.evaluation import optimal_reward_rate

        envs = {e.env_id for e in experiments}
        return optimal_reward_rate(envs.pop()) if len(envs) == 1 else None
    return _rate_line("--optimum", text, "auto")


def _baseline(text, experiments):
    """The --baseline line's value: None, a number, or the random policy's exact rate."""
    if text == "none":
        return None
    if text != "random":
        return _rate_line("--baseline", text, "random")
    from avgreward.evaluation import random_policy_rate

    envs = sorted({e.env_id for e in experiments})
    rate = random_policy_rate(envs[0]) if len(envs) == 1 else None
    if rate is None:
        raise UsageError("--baseline random: the uniform random policy's exact rate is "
                         "known only for one continuing tabular task, not "
                         f"{', '.join(envs)}; give it as a number")
    return rate


def _add_run_choice(parser):
    parser.add_argument("--setting", type=_whole("setting"), default=0, metavar="I",
                        help="policy / value / animate: index of the agent setting (default 0)")
    parser.add_argument("--seed", type=_whole("seed"), default=None, metavar="S",
                        help="policy / value / animate: the run's seed (default: the first "
                        "finished seed)")


def _trained_run(args, experiment):
    """The Result of run (--setting, --seed) of ``experiment``, rebuilt from disk."""
    if not 0 <= args.setting < len(experiment.agents):
        raise UsageError(f"--setting {args.setting}: the experiment has settings "
                         f"0..{len(experiment.agents) - 1}")
    seeds = experiment.finished_seeds(args.setting)
    if not seeds:
        raise UsageError(f"setting {args.setting} of {experiment.path} has no finished run "
                         f"({_failures(experiment, args.setting).lstrip('; ') or 'none ran'})")
    seed = seeds[0] if args.seed is None else args.seed
    if seed not in seeds:
        raise UsageError(f"--seed {seed}: finished seeds of setting {args.setting} are {seeds}")
    if experiment.env_id not in (_ALIASES["pendulum"], _ALIASES["pendulum-continuous"]):
        raise UsageError(f"policy and value maps and animations are drawn for the pendulum, "
                         f"not {experiment.env_id}")
    return experiment.result(args.setting, seed)


def _sweep_settings(experiment):
    """The settings a single-kind sweep varies (empty if it is not one)."""
    if len(experiment.agents) < 2 or len({a.kind for a in experiment.agents}) > 1:
        return []
    return experiment.varying()


def _has_finished_run(experiment) -> bool:
    return any(experiment.finished_seeds(i) for i in range(len(experiment.agents)))


def _plottable(experiments):
    """The experiments with a finished run; a warning for each other one, an error if none."""
    kept = [e for e in experiments if _has_finished_run(e)]
    if len(experiments) == 1 and not kept:
        experiment = experiments[0]
        raise UsageError(f"{experiment.path} has no finished run to plot: "
                         f"{experiment.summary()}")
    if not kept:
        raise UsageError("none of the directories has a finished run to plot: " + "; ".join(
            f"{e.path}: {e.summary()}" for e in experiments))
    for experiment in experiments:
        if experiment not in kept:
            print(f"avgreward plot: warning: {experiment.path} has no finished run "
                  f"({experiment.summary()}): left out of the figure", file=sys.stderr)
    return kept


def _curves_figure(plotting, experiments, args, band, optimum):
    """The reward-rate curves, with the episodes' return and length beside them if any."""
    kw = dict(title=args.title, labels=args.label, band=band, xscale=args.xscale,
              x=args.x or "steps", bounds=None if args.no_clip else "auto",
              baseline=_baseline(args.baseline, experiments))
    if args.baseline == "random":
        kw["baseline_label"] = f"uniform random policy ({kw['baseline']:.4g})"
    # Episodes with their end steps (parallel actors record none: no curves of them).
    if not any(run["end_step"] is not None and run["return"].size for e in experiments
               for i in range(len(e.agents)) for run in e.episodes(i)):
        return plotting.learning_curves(experiments, exponential=args.exponential,
                                        optimum=optimum, **kw)
    return plotting.curves_with_episodes(experiments, exponential=args.exponential,
                                         optimum=optimum, **kw)


def _plot(args) -> int:
    """Plot experiments: learning curves, or the parameter sensitivity of a sweep."""
    from avgreward import plotting
    from avgreward.experiment import load_experiment

    try:
        plotting.check_figure_path(args.out)
    except ValueError as err:
        raise UsageError(f"--out: {err}") from None
    experiments = _plottable([load_experiment(d) for d in args.dirs])
    if not 0.0 < args.final_fraction <= 1.0:
        raise UsageError(f"--final-fraction must lie in (0, 1], got {args.final_fraction!r}")
    optimum = _optimum(args.optimum or "auto", experiments)
    band = args.band or "t"
    kind = args.kind
    # By the directories given, not those kept: leaving one out must not turn
    # the curves asked for into a sensitivity plot.
    swept = _sweep_settings(experiments[0]) if len(args.dirs) == 1 else []
    if kind == "auto":
        kind = "sensitivity" if 1 <= len(swept) <= 2 and args.x not in (
            "steps", "fraction") else "curves"
    if kind in ("policy", "value"):
        for option, value in (("--band", args.band), ("--optimum", args.optimum),
                              ("--xlim", args.xlim), ("--ylim", args.ylim)):
            if value is not None:
                raise UsageError(f"{option} applies to curves and sensitivity, not {kind} maps")
    if args.xscale == "log" and args.xlim is not None and args.xlim[0] is not None \
            and args.xlim[0] <= 0:
        raise UsageError(f"--xlim: a log axis starts above 0, got {args.xlim[0]:g}")

    if kind != "curves":
        for option, given in (("--label", args.label), ("--xscale", args.xscale != "linear"),
                              ("--baseline", args.baseline != "none"),
                              ("--no-clip", args.no_clip)):
            if given:
                raise UsageError(f"{option} applies to --kind curves, not {kind}")
    if kind == "sensitivity":
        if len(args.dirs) != 1:
            raise UsageError("--kind sensitivity takes exactly one (sweep) directory")
        if not swept:
            raise UsageError(f"{args.dirs[0]} is not a sweep: its agents do not differ in "
                             "their settings")
        experiment = experiments[0]
        if args.x is not None:
            if args.x not in swept:
                raise UsageError(f"--x {args.x}: not a swept setting; swept: {', '.join(swept)}")
            x = args.x
        else:
            actor = [n for n in ("alpha_theta", "alpha_mu") if n in swept]
            x = actor[0] if actor else max(
                swept, key=lambda n: len({a.to_dict(complete=True)[n] for a in experiment.agents}))
        others = [n for n in swept if n != x]
        fig = plotting.sensitivity(experiment, x=x, lines=others[0] if others else None,
                                   title=args.title, fraction=args.final_fraction,
                                   band=band, optimum=optimum)
    elif kind in ("policy", "value"):
        if len(args.dirs) != 1:
            raise UsageError(f"--kind {kind} takes exactly one directory")
        result = _trained_run(args, experiments[0])
        draw = plotting.policy_map if kind == "policy" else plotting.value_map
        fig = draw(result, title=args.title)
    else:
        if args.x not in (None, "steps", "fraction"):
            raise UsageError(f"--x {args.x}: curves take steps or fraction")
        try:
            fig = _curves_figure(plotting, experiments, args, band, optimum)
        except ValueError as err:
            if args.label is None or "labels must have" not in str(err):
                raise
            left_out = len(args.dirs) - len(experiments)
            raise UsageError(f"--label: {err}" + (
                f" ({left_out} director{'y' if left_out == 1 else 'ies'} with no finished "
                "run left out)" if left_out else "")) from None
    ax = fig.axes[0]
    for limits, setter in ((args.xlim, ax.set_xlim), (args.ylim, ax.set_ylim)):
        if limits is not None:
            setter(*limits)
    path = plotting.save_figure(fig, args.out)
    print(path)
    return 0


def _add_animate_arguments(parser):
    parser.add_argument("dir", metavar="DIR", help="an experiment directory (pendulum)")
    parser.add_argument("--out", required=True, help="the .gif to write")
    parser.add_argument("--steps", type=_positive("steps"), default=600,
                        help="environment steps to show (default 600)")
    parser.add_argument("--greedy", action="store_true",
                        help="take the most likely action instead of sampling the policy")
    _add_run_choice(parser)
    _add_common(parser)


def _animate(args) -> int:
    """Animate a trained pendulum agent of an experiment as a GIF."""
    if not args.out.lower().endswith(".gif"):
        raise UsageError(f"--out must end in .gif, got {args.out!r}")
    from avgreward.animation import animate_policy
    from avgreward.experiment import load_experiment

    result = _trained_run(args, load_experiment(args.dir))
    print(animate_policy(result, args.out, steps=args.steps, greedy=args.greedy))
    return 0


#: name -> (add_arguments(parser), run(args) -> exit code); the run function's
#: docstring's first line is the subcommand's help.
def _add_export_arguments(parser):
    parser.add_argument("dir", metavar="DIR", help="an experiment directory")
    parser.add_argument("--out", required=True,
                        help="the table's file: .csv, .csv.gz or .parquet (parquet needs "
                        "pyarrow, in the analysis extra); missing directories are created")
    parser.add_argument("--what", choices=("bins", "runs", "episodes"), default="bins",
                        help="bins (default): one row per run and reward bin (settings, seed, "
                        "step, reward); runs: one row per run (final performance, failures, "
                        "wall time); episodes: one row per finished episode (settings, seed, "
                        "episode, end_step, return, length)")
    parser.add_argument("--final-fraction", type=float, default=0.1, metavar="F",
                        help="runs: final performance is the mean reward over the last F of "
                        "the steps (default 0.1)")
    _add_common(parser)


_TABLE_FORMATS = (".csv", ".csv.gz", ".parquet")


def _export(args) -> int:
    """Export an experiment as a tidy table (CSV or Parquet; needs pandas)."""
    from pathlib import Path

    from avgreward.experiment import load_experiment

    out = Path(args.out)
    name = out.name.lower()
    if not name.endswith(_TABLE_FORMATS):
        raise UsageError(f"--out must end in {', '.join(_TABLE_FORMATS)}, got {args.out!r}")
    if not 0.0 < args.final_fraction <= 1.0:
        raise UsageError(f"--final-fraction must lie in (0, 1], got {args.final_fraction!r}")
    frame = load_experiment(args.dir).to_frame(args.what, fraction=args.final_fraction)
    if name.endswith(".parquet"):
        require("pyarrow", "analysis", "Parquet files")
    out.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".parquet"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    if not args.quiet:
        print(f"{out}: {len(frame):,} rows x {frame.shape[1]} columns "
              f"({', '.join(map(str, frame.columns))})")
    return EXIT_OK


def _add_stats_arguments(parser):
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="experiment directories")
    parser.add_argument("--final-fraction", type=float, default=0.1, metavar="F",
                        help="a run's score is its mean reward over the last F of its steps "
                        "(default: %(default)s); on an episodic task, also its mean episode "
                        "return and length over the last F of its episodes")
    parser.add_argument("--optimum", type=float, default=None, metavar="R",
                        help="the best possible reward rate, for the optimality gap (default: "
                        "known for the swing-up (0) and tabular tasks (exact), else none)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="level of the intervals (default: %(default)s)")
    parser.add_argument("--resamples", type=_positive("resamples"), default=2000,
                        help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--seed", type=_whole("seed"), default=0,
                        help="the bootstrap's seed (default: %(default)s)")
    parser.add_argument("--evaluated", action="store_true",
                        help="score each run by its learned policy, frozen (as avgreward "
                        "evaluate: exact on tabular tasks, else simulated; kept in "
                        "DIR/evaluation.json) instead of the behaviour's reward while it "
                        "learned; --final-fraction does not apply")
    _add_evaluation_arguments(parser, "--eval-steps", "--eval-seed")
    _add_common(parser)


def _stats(args) -> int:
    """Aggregate statistics of final performance: IQM, mean, optimality gap, P(X > Y)."""
    from avgreward import stats
    from avgreward.evaluation import optimal_reward_rate
    from avgreward.experiment import load_experiment

    if not 0.0 < args.final_fraction <= 1.0:
        raise UsageError(f"--final-fraction must lie in (0, 1], got {args.final_fraction!r}")
    if not 0.0 < args.confidence < 1.0:
        raise UsageError(f"--confidence must lie in (0, 1), got {args.confidence!r}")
    if args.resamples < 100:
        raise UsageError(f"--resamples must be at least 100, got {args.resamples}")
    settings = []  # (label, scores, env)
    experiments = [load_experiment(d) for d in args.dirs]
    evaluations = {}  # directory -> its evaluation, with --evaluated
    if args.evaluated:
        _check_evaluation_arguments(args, experiments, "--eval-steps")
    else:
        for option, given in (("--eval-steps", args.steps is not None),
                              ("--eval-seed", args.eval_seed is not None),
                              ("--sampled", args.sampled),
                              ("--trust-env-module", args.trust_env_module)):
            if given:
                raise UsageError(f"{option} applies to --evaluated only")
    for n, experiment in enumerate(experiments):
        for i in range(len(experiment.agents)):
            label = experiment.label(i)
            if len(experiments) > 1:
                label = f"{args.dirs[n]}: {label}"
            settings.append((label, _stats_scores(args, experiment, i, evaluations),
                             experiment.env_id))
    optimum = args.optimum
    envs = {env for _, _, env in settings}
    if optimum is None and len(envs) == 1:
        optimum = optimal_reward_rate(next(iter(envs)))
    kw = dict(confidence=args.confidence, n_resamples=args.resamples, seed=args.seed)
    # One task: rliable's median is over the tasks' mean scores, here the mean itself.
    names = ["iqm", "mean"] + (["optimality_gap"] if optimum is not None else [])
    width = max(len(label) for label, _, _ in settings)
    print(f"{_stats_score_name(args, evaluations.values())}; "
          f"{args.confidence:.0%} stratified percentile bootstrap intervals, "
          f"{args.resamples} resamples" + (f"; optimum {optimum:g}" if optimum is not None
                                            else ""))
    print(f"{'setting':<{width}}  runs  " + "  ".join(f"{n:>28}" for n in names))
    for label, scores, _ in settings:
        if scores.size == 0:
            print(f"{label:<{width}}  {0:>4}  (every run failed)")
            continue
        metrics = stats.aggregate_metrics(scores, optimum, **kw)
        cells = [f"{metrics[n].estimate:>9.4g} [{metrics[n].low:>8.4g}, {metrics[n].high:>8.4g}]"
                 for n in names]
        print(f"{label:<{width}}  {scores.size:>4}  " + "  ".join(f"{c:>28}" for c in cells))
    ok = [(label, scores) for label, scores, _ in settings if scores.size]
    if 2 <= len(ok) <= 8:
        print("probability of improvement (that a run of the first scores above a run of "
              "the second):")
        for a, (label_a, x) in enumerate(ok):
            for label_b, y in ok[a + 1:]:
                p = stats.probability_of_improvement(x, y, **kw)
                print(f"  P({label_a} > {label_b}) = {p}")
    if any(e.has_episodes for e in experiments):
        _episode_stats(stats, experiments, args, kw)
    return EXIT_OK


def _add_evaluation_arguments(parser, steps="--steps", seed="--seed"):
    parser.add_argument(steps, dest="steps", default=None,
                        type=_positive("steps", MAX_STEPS, " (2**53)"), metavar="N",
                        help=f"steps of each run's evaluation, from the start state (default "
                        f"{_EVALUATION_STEPS:,}; at least {_EVALUATION_BATCHES}, the batches "
                        "of its interval)")
    parser.add_argument(seed, dest="eval_seed", type=_whole("seed"), default=None, metavar="S",
                        help="the evaluation's seed (default 0); the run of seed s is "
                        "evaluated with a seed derived from S and s, the same for every agent")
    parser.add_argument("--sampled", action="store_true",
                        help="sample the learned policy instead of acting greedily (the most "
                        "preferred action, epsilon 0, the Gaussian's mean)")
    parser.add_argument("--trust-env-module", action="store_true",
                        help="allow importing the module that an environment named "
                        "'module:id' by the directory names (otherwise refused: reading a "
                        "directory never runs code it names)")


#: ``avgreward evaluate``'s defaults, those of :meth:`Experiment.evaluate` (and so of
#: the ``evaluation.json`` that ``stats --evaluated`` reuses).
_EVALUATION_STEPS, _EVALUATION_BATCHES = 100_000, 20


def _check_evaluation_arguments(args, experiments, steps_option) -> None:
    """Refuse, in the CLI's words, what :meth:`Experiment.evaluate` would refuse."""
    from avgreward.environments import check_trusted

    if args.steps is not None and args.steps < _EVALUATION_BATCHES:
        raise UsageError(f"{steps_option} must be at least {_EVALUATION_BATCHES} (the batches "
                         f"of each run's interval), got {args.steps}")
    if args.eval_seed is not None and args.eval_seed < 0:
        raise UsageError(f"the evaluation's seed must be at least 0, got {args.eval_seed}")
    for experiment in experiments:
        check_trusted(experiment.env_id, args.trust_env_module, allow="--trust-env-module")


def _evaluation_of(args, experiment):
    return experiment.evaluate(
        steps=_EVALUATION_STEPS if args.steps is None else args.steps,
        seed=args.eval_seed or 0, greedy=not args.sampled, batches=_EVALUATION_BATCHES,
        trust=args.trust_env_module)


def _stats_scores(args, experiment, i, evaluations):
    """Agent ``i``'s score per finished run: evaluated (``--evaluated``; each directory's
    evaluation kept in ``evaluations``) or the behaviour's while it learned."""
    if not args.evaluated:
        return experiment.final_performance(i, args.final_fraction)
    if experiment.path not in evaluations:
        evaluations[experiment.path] = _evaluation_of(args, experiment)
    return evaluations[experiment.path].scores(i)


def _stats_score_name(args, evaluations) -> str:
    """The stats header's first words: which rate the table shows."""
    if not args.evaluated:
        return f"final performance: mean reward over the last {args.final_fraction:g} of the steps"
    exact = [all(r.exact_rate is not None for r in e.runs) for e in evaluations]
    steps = _EVALUATION_STEPS if args.steps is None else args.steps
    what = ("exact reward rate (tabular model)" if exact and all(exact) else
            f"reward rate over {steps:,} steps" if not any(exact) else
            f"exact reward rate on tabular tasks, else the rate over {steps:,} steps")
    return (f"evaluated performance: each run's learned policy, frozen "
            f"({'sampled' if args.sampled else 'greedy'}, evaluation seed {args.eval_seed or 0}): "
            f"its {what}, not the behaviour's while learning")


def _add_evaluate_arguments(parser):
    parser.add_argument("dir", metavar="DIR", help="an experiment directory")
    _add_evaluation_arguments(parser)
    _add_common(parser)
    parser.epilog = ("Evaluations are kept in DIR/evaluation.json under their settings: "
                     "asking again, or avgreward stats --evaluated, reads them instead of "
                     "running them again.")


def _evaluate_runs(args) -> int:
    """Evaluate every finished run's learned policy, frozen: its reward rate with intervals."""
    from avgreward.experiment import load_experiment
    from avgreward.stats import mean_confidence_interval

    experiment = load_experiment(args.dir)
    _check_evaluation_arguments(args, [experiment], "--steps")
    if not any(experiment.finished_seeds(i) for i in range(len(experiment.agents))):
        raise UsageError(f"{experiment.path} has no finished run to evaluate: "
                         f"{experiment.summary()}")
    ev = _evaluation_of(args, experiment)
    optimum = ev.optimum
    if not args.quiet:
        print(f"{experiment.path}: {ev.env_id}, each finished run's learned policy frozen "
              f"({'greedy' if ev.greedy else 'sampled'}), {ev.steps:,} steps from the "
              f"start state, evaluation seed {ev.seed}; means over seeds, 95% Student-t "
              "intervals" + (f"; optimum {optimum:.6g}" if optimum is not None else ""))

    def rate(mean, low, high, n):
        interval = f" [{low:.6g}, {high:.6g}]" if n > 1 else ""
        gap = f", gap {optimum - mean:.4g}" if optimum is not None else ""
        return f"{mean:.6g}{interval}{gap}"

    for a in ev.agents:
        if not a.runs:
            print(f"  {a.label}: no finished run{_failures(experiment, a.agent_index)}")
            continue
        parts = [f"evaluated {rate(a.reward_rate, a.low, a.high, a.runs)}"]
        if a.exact_rate is not None:
            parts.append(f"exact {rate(a.exact_rate, a.exact_low, a.exact_high, a.runs)}")
        behaviour = [float(v) for v in mean_confidence_interval(
            experiment.final_performance(a.agent_index, 0.1))]
        parts.append(f"behaviour while learning (last 10% of steps) {rate(*behaviour, a.runs)}")
        print(f"  {a.label} ({a.runs} seed{'s' if a.runs > 1 else ''}): " + "; ".join(parts)
              + _failures(experiment, a.agent_index))
    if ev.reused and not args.quiet:
        print(f"({ev.reused} of {len(ev.runs)} read from "
              f"{experiment.path / 'evaluation.json'})")
    return EXIT_OK


def _episode_stats(stats, experiments, args, kw):
    """The stats table of an episodic task's final episode return and length."""
    import numpy as np

    rows = []  # (label, returns, lengths), runs with no finished episode left out
    for n, experiment in enumerate(experiments):
        for i in range(len(experiment.agents)):
            label = experiment.label(i)
            if len(experiments) > 1:
                label = f"{args.dirs[n]}: {label}"
            returns, lengths = experiment.final_episodes(i, args.final_fraction)
            kept = np.isfinite(returns)
            rows.append((label, returns[kept], lengths[kept], returns.size))
    width = max(len(label) for label, *_ in rows)
    names = [f"{m} episode {key}" for key in ("return", "length") for m in ("mean", "iqm")]
    print(f"final episodes: a run's mean episode return and length over the last "
          f"{args.final_fraction:g} of its episodes (at least one); the same intervals")
    print(f"{'setting':<{width}}  runs  " + "  ".join(f"{n:>28}" for n in names))
    for label, returns, lengths, total in rows:
        if returns.size == 0:
            print(f"{label:<{width}}  {0:>4}  (no run finished an episode)")
            continue
        cells = []
        for scores in (returns, lengths):
            metrics = stats.aggregate_metrics(scores, None, **kw)
            cells += [f"{metrics[m].estimate:>9.4g} [{metrics[m].low:>8.4g}, "
                      f"{metrics[m].high:>8.4g}]" for m in ("mean", "iqm")]
        runs = f"{returns.size}" if returns.size == total else f"{returns.size}/{total}"
        print(f"{label:<{width}}  {runs:>4}  " + "  ".join(f"{c:>28}" for c in cells))


SUBCOMMANDS = {
    "run": (_add_run_arguments, _run),
    "sweep": (_add_sweep_arguments, _sweep),
    "config": (_add_config_arguments, _config),
    "plot": (_add_plot_arguments, _plot),
    "animate": (_add_animate_arguments, _animate),
    "export": (_add_export_arguments, _export),
    "stats": (_add_stats_arguments, _stats),
    "evaluate": (_add_evaluate_arguments, _evaluate_runs),
    "bench": (_bench.add_arguments, _bench.run),
}


# ---------------------------------------------------------------------------
# Parser and entry point


class _Parser(argparse.ArgumentParser):
    """Errors in one line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="avgreward",
        description="Average-reward actor-critic experiments: run, sweep and plot.",
        epilog="Each subcommand has --help. Results go to a directory (one .npz and one "
        ".json record per run); rerunning the same command resumes it.\n\n" + _EXIT_CODES,
        # Keep the exit-code table's layout.
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_arguments, run) in SUBCOMMANDS.items():
        summary = (run.__doc__ or "").strip().splitlines()[0] if run.__doc__ else None
        subparser = sub.add_parser(name, help=summary, description=summary)
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def _one_line(err) -> str:
    return " ".join(str(err).split())


def _os_error(err: OSError, args) -> str:
    """One line naming the path and the system's message, e.g. ``/x/.lock: Permission denied``."""
    message = err.strerror or _one_line(err) or type(err).__name__
    if err.filename is None:
        # Without a path the message alone ("No space left on device") does not
        # say where: name the command's output.
        out = getattr(args, "out", None)
        return f"{message} (--out {out})" if out else message
    where = _path_text(err.filename)
    if err.filename2 is not None:
        where += f" -> {_path_text(err.filename2)}"
    return f"{where}: {message}"


def _path_text(name) -> str:
    # OSError.filename may be a str, bytes, a path or a file descriptor.
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)


def main(argv: list[str] | None = None) -> int:
    """Run the ``avgreward`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Ctrl-C at any moment, from this function's first line (before the heavy
    imports: this module and the package import only the standard library)
    to its return, prints one line on stderr and returns 130.
    """
    try:
        args = None
        parser = _parser()
        args = parser.parse_args(argv)
        if getattr(args, "run", None) is None:
            parser.error(f"choose a command: {', '.join(SUBCOMMANDS)}")
        prog = f"avgreward {args.command}"
        # What the library warns about (a --new directory, a corrupt run named and
        # rerun, more workers than cores), one line each, as the command's own.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{prog}: warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        library_log = logging.getLogger("avgreward")
        library_log.addHandler(handler)
        try:
            return _run_command(args, prog)
        finally:
            library_log.removeHandler(handler)
    except KeyboardInterrupt:
        # args is None until the command line is parsed.
        return _interrupted(getattr(args, "command", None), as_command=argv is None)
    finally:
        if argv is None:
            # The process's own command (the console script, python -m
            # avgreward.cli): it only exits from here on, and a Ctrl-C in
            # between must not turn into a traceback and exit -2.
            _ignore_interrupts()
            # Nor need the interpreter's last collection walk every object the
            # command made (numba's, matplotlib's: 0.1-0.2 s of a small run).
            gc.freeze()


def _interrupted(command: str | None, as_command: bool) -> int:
    """Report Ctrl-C in one line on stderr; the exit code 130."""
    if as_command:
        _ignore_interrupts()  # a second Ctrl-C while this line is printed
    if command in ("run", "sweep"):
        message = (f"avgreward {command}: interrupted; finished runs are kept: run the same "
                   "command again to resume")
    else:
        message = f"avgreward{f' {command}' if command else ''}: interrupted"
    print(message, file=sys.stderr)
    return EXIT_INTERRUPTED


def _ignore_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_command(args, prog) -> int:
    """The subcommand's exit code; what it raises is reported in one line (Ctrl-C by :func:`main`)."""
    from avgreward.experiment import ClusterError, ExperimentBusyError

    try:
        return int(args.run(args) or 0)
    except ValueError as err:
        # Bad arguments, refused settings, unreadable experiment files; a run's
        # own errors never get here (they are recorded in its directory).
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (ExperimentBusyError, ClusterError) as err:
        # Before OSError: a lock that is taken must stay exit 1 whatever it derives from.
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BUSY
    except MissingExtraError as err:
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"{prog}: error: out of memory: the runs' arrays do not fit (use fewer "
              "features, or fewer --workers)", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        # The file system refused: a read-only or full disk, no permission, a
        # path through a file.  The user fixes these, so no traceback.
        print(f"{prog}: error: {_os_error(err, args)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
