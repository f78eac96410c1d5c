"""An experiment's config file (TOML): written from ``experiment.json``, read and checked.

``avgreward config DIR`` writes what defines the experiment of ``DIR``
(:func:`config_toml`) and ``avgreward run --config FILE`` reads it back
(:func:`read_config_file`); running the file gives an ``experiment.json``
with the same settings, and so the same runs, bit for bit.  The file::

    env = "avgreward/LoopMDP-v0"      # required
    steps = 2000                      # required (or --steps)
    seeds = [0, 1, 2]                 # required (or --seeds / --seed-list); a count K: 0..K-1
    bin_size = 1                      # optional: at most 10,000 bins per run
    out = "results/loop"              # optional: the directory (or --out)

    [features]                        # optional: the environment's default features
    low = [...]                       #   (the keys of avgreward.features.features_to_dict)

    [[agents]]                        # optional: the environment's default agent;
    kind = "softmax"                  #   several [[agents]] make a sweep
    alpha_w = 0.1                     #   (the keys of the settings' to_dict())

Reading a file imports nothing it names: an environment ``module:id`` or a
custom learner ``module:attr`` is imported only when the experiment runs
(the user asked to run the file).  Every problem is a ``ValueError`` of one
line naming the file and the key.

Internal API of the command line (:mod:`avgreward.cli`).
"""

from __future__ import annotations

import sys
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path

from avgreward.toml_writer import dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # a dependency before Python 3.11 (setup.cfg)
    import tomli as tomllib

__all__: list[str] = []

#: The keys of a config file, in the order :func:`config_toml` writes them.
FILE_KEYS = ("env", "steps", "seeds", "bin_size", "out", "features", "agents")

# Runs per setting, as avgreward.runner.records.MAX_SEEDS (not imported: it loads numpy).
_MAX_SEEDS = 1_000_000
_MAX_STEPS = 2**53
_FEATURE_KEYS = ("low", "high", "tiles", "tilings", "wrap", "subsets", "memory")
_REQUIRED_FEATURE_KEYS = _FEATURE_KEYS[:5]


@dataclass(frozen=True)
class ConfigFile:
    """What a config file gives; None where it leaves a key out.

    Attributes
    ----------
    path : str
        The file, for messages.
    env : str
        As written (an alias such as ``loop`` is resolved by the command line).
    steps, bin_size : int or None
    seeds : list of int, int or None
        A list of seeds, or a count ``K`` (seeds ``0..K-1``).
    out : str or None
    features : TileCoder or None
    agents : list of settings, or None
    """

    path: str
    env: str
    steps: int | None = None
    seeds: list | int | None = None
    bin_size: int | None = None
    out: str | None = None
    features: object = None
    agents: list | None = None


def seed_list(values, what: str = "") -> list[int]:
    """``values`` checked as seeds: distinct whole numbers from 0 to 2**63 - 1, at least one.

    ``what`` names them at the start of the ``ValueError`` (``exp.toml: seeds``).
    """
    prefix = f"{what}: " if what else ""
    if not isinstance(values, list) or not values:
        raise ValueError(f"{prefix}expected a non-empty list of seeds, got {_short(values)}")
    if len(values) > _MAX_SEEDS:
        raise ValueError(f"{prefix}{len(values):,} seeds: at most {_MAX_SEEDS:,}")
    seen = set()
    for value in values:
        if not _is_int(value) or not 0 <= value < 2**63:
            raise ValueError(f"{prefix}{_short(value)} is not a seed (a whole number from 0 "
                             "to 2**63 - 1)")
        if value in seen:
            raise ValueError(f"{prefix}seed {value} is given twice")
        seen.add(value)
    return list(values)


def config_toml(config: dict, source: str | None = None) -> str:
    """The TOML text of an experiment's config (``experiment.json``'s contents).

    Only what defines the experiment: env, steps, seeds, bin size, features
    and every agent's settings; not the results, versions or dates.  An
    agent's setting that is None (its automatic default) is left out: a
    setting left out takes its default, which is None for each such setting.
    """
    data = {key: config[key] for key in ("env", "steps", "seeds", "bin_size")}
    data["features"] = config["features"]
    data["agents"] = [{k: v for k, v in agent.items() if v is not None}
                      for agent in config["agents"]]
    head = ["# An avgreward experiment" + (f": the config of {source}" if source else "") + ".",
            "# avgreward run --config FILE --out DIR runs it (DIR: a new directory reproduces",
            "# it; the same directory resumes it).", ""]
    return "\n".join(head) + dumps(data)


def read_config_file(path: str | Path) -> ConfigFile:
    """Read and check a config file; a one-line ``ValueError`` names the file and the key.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not TOML, has an unknown key, lacks ``env``, or a value has
        the wrong type or is refused by the settings it makes.
    """
    name = str(path)
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{name} is not valid TOML: {err}") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{name} is not UTF-8 text: {err}") from None
    unknown = [k for k in data if k not in FILE_KEYS]
    if unknown:
        raise ValueError(f"{name}: unknown key {unknown[0]!r} (known: {', '.join(FILE_KEYS)})")
    if "env" not in data:
        raise ValueError(f"{name}: missing key 'env' (an environment id such as "
                         "\"avgreward/LoopMDP-v0\")")
    env = data["env"]
    if not isinstance(env, str) or not env.strip():
        raise ValueError(f"{name}: env must be an environment id (a string), got {_short(env)}")
    steps = data.get("steps")
    if steps is not None and not (_is_int(steps) and 1 <= steps <= _MAX_STEPS):
        raise ValueError(f"{name}: steps must be a whole number from 1 to 2**53, got "
                         f"{_short(steps)}")
    bin_size = data.get("bin_size")
    if bin_size is not None and not (_is_int(bin_size) and bin_size >= 1):
        raise ValueError(f"{name}: bin_size must be a whole number of at least 1, got "
                         f"{_short(bin_size)}")
    seeds = data.get("seeds")
    if _is_int(seeds):
        if not 1 <= seeds <= _MAX_SEEDS:
            raise ValueError(f"{name}: seeds, a count, must be from 1 to {_MAX_SEEDS:,}, got "
                             f"{seeds}")
    elif seeds is not None:
        seeds = seed_list(seeds, f"{name}: seeds")
    out = data.get("out")
    if out is not None and (not isinstance(out, str) or not out.strip()):
        raise ValueError(f"{name}: out must be a directory (a string), got {_short(out)}")
    features = data.get("features")
    if features is not None:
        features = _features(features, f"{name}: features")
    agents = data.get("agents")
    if agents is not None:
        if not isinstance(agents, list) or not agents or not all(
                isinstance(a, dict) for a in agents):
            raise ValueError(f"{name}: agents must be one or more [[agents]] tables, got "
                             f"{_short(agents)}")
        agents = [_agent(a, f"{name}: agents[{i}]") for i, a in enumerate(agents)]
    return ConfigFile(path=name, env=env.strip(), steps=steps, seeds=seeds, bin_size=bin_size,
                      out=out, features=features, agents=agents)


def _features(table, where: str):
    from avgreward.features import features_from_dict

    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, got {_short(table)}")
    for key in table:
        if key not in _FEATURE_KEYS:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(_FEATURE_KEYS)})")
    for key in _REQUIRED_FEATURE_KEYS:
        if key not in table:
            raise ValueError(f"{where}: missing key {key!r}")
    try:
        return features_from_dict(table)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _agent(table: dict, where: str):
    """Agent settings from an ``[[agents]]`` table, each key checked against its kind's."""
    from avgreward.learners.registry import agent_from_dict, driver_for_kind

    kind = table.get("kind")
    if kind is None:
        raise ValueError(f"{where}: missing key 'kind' (softmax, gaussian, ...)")
    try:
        settings = driver_for_kind(kind).settings if isinstance(kind, str) else None
    except ValueError as err:
        raise ValueError(f"{where}: kind: {err}") from None
    if settings is None:
        raise ValueError(f"{where}: kind must be a string, got {_short(kind)}")
    if is_dataclass(settings):
        known = {f.name: f for f in fields(settings)}
        for key in table:
            if key != "kind" and key not in known:
                raise ValueError(f"{where}: unknown setting {key!r} of the {kind} agent "
                                 f"(known: {', '.join(known)})")
        for key, f in known.items():
            if key not in table and f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{where}: missing key {key!r} (a setting of the {kind} "
                                 "agent without a default)")
            if key in table and f.type in (bool, "bool", "bool | None") and not isinstance(
                    table[key], bool):
                raise ValueError(f"{where}: {key} must be true or false, got "
                                 f"{_short(table[key])}")
    try:
        return agent_from_dict(table)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
