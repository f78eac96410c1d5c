"""Which environment a run is: ours (the fused loop) or gymnasium's, and its features.

:func:`resolve_env` and :func:`env_info` tell this package's environments
(run in the fused loop, :mod:`avgreward.loop`) from any other gymnasium
environment (stepped from Python, :mod:`avgreward.stepwise`), and refuse
to unwrap a wrapper that changes what an environment computes.
:func:`default_features` gives each its default feature map.
"""


from __future__ import annotations

import importlib
import itertools
import math
import re
import sys
from dataclasses import dataclass

import gymnasium
import numpy as np

from avgreward import envs
from avgreward.features import TileCoder

# Wrappers gymnasium.make puts around every environment: they check the API and
# change nothing the fused loop computes.  Any other wrapper carries meaning.
_CHECKING_WRAPPERS = ("OrderEnforcing", "PassiveEnvChecker")


def _wrappers(env) -> list[str]:
    """Class names of the wrappers around ``env``, outermost first."""
    names = []
    while isinstance(env, gymnasium.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    return names


def own_env_id(cls):
    """The registered id of a gymnasium class that declares a fused environment, or None.

    ``cls`` runs in the fused loop if it has the attribute ``fused``
    (:class:`avgreward.envs.declare.FusedEnv`); its id is the registered id whose entry
    point is ``cls`` (this package's first), else the declaration's name.
    """
    if envs.fused_env_of(cls) is None:
        return None
    path = f"{cls.__module__}:{cls.__qualname__}"
    specs = sorted(gymnasium.registry.values(), key=lambda spec: spec.id not in envs.ENV_IDS)
    for spec in specs:
        if spec.entry_point is cls or spec.entry_point == path:
            return spec.id
    return envs.fused_env_of(cls).name


# "module:id": a dotted module name, a colon, an id (gymnasium's ids have no colon).
_MODULE_ID = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[^:\s]+")
_PLAIN_ID = re.compile(r"[^:\s]+")


def check_env_id(env_id: str) -> str:
    """``env_id`` if it is well formed, else a ``ValueError`` naming it and saying what is valid.

    Well formed: a registered id (``"avgreward/LoopMDP-v0"``, ``"CartPole-v1"``;
    no colon, no blank) or ``"module:id"`` with ``module`` a dotted module
    name (``"my_tasks:my/Task-v0"``: the module registers the id when imported).
    Only the form is checked; nothing is imported.
    """
    if not isinstance(env_id, str) or not (_PLAIN_ID.fullmatch(env_id)
                                           or _MODULE_ID.fullmatch(env_id)):
        raise ValueError(
            f"env {env_id!r} is not a valid environment id: give a registered id such as "
            "'avgreward/LoopMDP-v0' or 'CartPole-v1', or 'module:id' with a dotted module "
            "name that registers the id, such as 'my_tasks:my/Task-v0'")
    return env_id


def _own_module_prefix(module: str, bare: str) -> bool:
    """Whether ``module:bare`` names one of this package's ids through this package.

    ``"avgreward.envs:..."``, and ``"envs:avgreward/..."`` of the environments'
    top-level package before they moved into ``avgreward`` (ids in older
    results): never imported for that (the old name is only a deprecated alias),
    the bare id is registered by ``avgreward.envs``.  A user's own ``envs``
    module with ids of its own (``"envs:my/Task-v0"``) is a module like any other.
    """
    return module == "avgreward.envs" or (module == "envs" and bare.startswith("avgreward/"))


def _strip_own_module(env_id: str) -> str:
    """``env_id`` without this package's module prefix (see :func:`_own_module_prefix`)."""
    module, sep, bare = env_id.partition(":")
    return bare if sep and _own_module_prefix(module, bare) else env_id


def env_module(env_id: str) -> str | None:
    """The module that ``"module:id"`` would import (None for a bare id or this package's)."""
    module, sep, bare = check_env_id(env_id).partition(":")
    return module if sep and not _own_module_prefix(module, bare) else None


def check_trusted(env_id: str, trust, allow: str = "trust=True") -> None:
    """Refuse to import the module that an id from a file names, unless the user allowed it.

    A result or an experiment directory names its environment itself: its
    ``"module:id"`` is imported only if that module is imported already or
    ``trust`` is true; else a one-line ``ValueError`` says which module would
    be imported and how to allow it (``allow``: ``"trust=True"``, or the CLI's
    ``"--trust-env-module"``).
    """
    if not isinstance(trust, bool):
        raise ValueError(f"trust must be True or False, got {trust!r}")
    module = env_module(env_id)
    if module is not None and module not in sys.modules and not trust:
        raise ValueError(
            f"env {env_id!r} would import the module {module!r}, which the results name, "
            f"not you: give {allow} to import it, or import it yourself first")


def _registered(env_id, *, importing=True):
    """``(spec, class)`` of a registered id (``module:id`` imports the module), or ``(None, None)``.

    The class is None when the entry point is not a class (a function making
    the environment): only a class can declare a fused environment.  With
    ``importing=False`` nothing is imported: ``module:id`` and a string entry
    point are resolved only if their module is imported already (reading
    results must never run code that a results folder names).
    """
    module, sep, bare = check_env_id(env_id).partition(":")
    if sep:
        if not importing and module not in sys.modules:
            return None, None
        try:
            importlib.import_module(module)
        except ImportError:
            return None, None
        env_id = bare
    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error:
        return None, None
    entry = spec.entry_point
    if isinstance(entry, str):
        name, _, attr = entry.partition(":")
        if not importing and name not in sys.modules:
            return spec, None
        try:
            entry = getattr(importlib.import_module(name), attr, None)
        except ImportError:
            return spec, None
    return spec, entry if isinstance(entry, type) else None


def peek_own_class(env_id):
    """The fused environment class of ``env_id`` if known without importing anything, else None.

    For reading results (``experiment.json``, a saved result): this package's
    environments, and any other declared class whose module is imported
    already; a ``module:id`` whose module is not imported yet is never imported.
    """
    if not isinstance(env_id, str):
        return None
    try:
        spec, cls = _registered(_strip_own_module(env_id), importing=False)
    except ValueError:
        return None
    if cls is None or envs.fused_env_of(cls) is None or _spec_wrappers(spec):
        return None
    return cls


def _spec_wrappers(spec) -> list[str]:
    """What ``gymnasium.make`` would add (or pass) that the fused loop cannot honour."""
    found = []
    if spec.max_episode_steps is not None:
        found.append(f"TimeLimit (max_episode_steps={spec.max_episode_steps})")
    found += [w.name for w in getattr(spec, "additional_wrappers", ()) or ()]
    if spec.kwargs:
        # A declaration is the class's: arguments of the constructor cannot reach it.
        found.append(f"constructor arguments {spec.kwargs}")
    return found


def wrapper_chain(env) -> list[str]:
    """The wrappers around ``env`` that change what it computes, outermost first.

    Class names, a time limit with its length (``"TimeLimit(200)"``); the
    API checks every ``gymnasium.make`` adds are left out.  What a
    Python-stepped run can record as ``info["env_wrappers"]`` (JSON, kept by
    ``Result.save``) so that its rollout can tell whether
    ``gymnasium.make(result.env_id)`` gives the same.
    """
    import gymnasium
    from gymnasium.wrappers import TimeLimit

    chain = []
    while isinstance(env, gymnasium.Wrapper):
        name = type(env).__name__
        if isinstance(env, TimeLimit):
            chain.append(f"TimeLimit({env._max_episode_steps})")
        elif name not in _CHECKING_WRAPPERS:
            chain.append(name)
        env = env.env
    return chain


def meaningful_wrappers(env) -> list[str]:
    """The class names of the wrappers around ``env``, the merely checking ones left out."""
    return [name for name in _wrappers(env) if name not in _CHECKING_WRAPPERS]


def resolve_env(env):
    """The registered id and the environment class of ``env``.

    Parameters
    ----------
    env : str or gymnasium.Env
        A registered id of this package's environments (``"avgreward/LoopMDP-v0"``,
        with or without the ``"avgreward.envs:"`` module prefix), or an instance of one
        of them, bare or as ``gymnasium.make`` returns it.

    Returns
    -------
    (str, type)

    Raises
    ------
    ValueError
        If ``env`` is not one of this package's environments, or is an
        instance wrapped in a wrapper that changes what it computes (a reward
        transform, a time limit...): the error names the wrappers, since the
        fused loop would silently drop them.
    """
    if isinstance(env, str):
        env_id = _strip_own_module(env)
        spec, cls = _registered(env_id)
        if cls is None or envs.fused_env_of(cls) is None:
            raise ValueError(
                f"env {env!r} is not an environment of the fused loop (a registered id whose "
                "class declares fused = avgreward.envs.FusedEnv(...)); this package's are "
                f"{list(envs.ENV_IDS)}"
            )
        wrappers = _spec_wrappers(spec)
        if wrappers:
            raise ValueError(
                f"env {env!r} is registered with {', '.join(wrappers)}: the fused loop runs "
                "the declared dynamics only; run it through the Python-stepped path"
            )
        return env_id, cls
    cls = type(getattr(env, "unwrapped", None))
    env_id = own_env_id(cls)
    if env_id is None:
        raise ValueError(
            f"env must be an id in {list(envs.ENV_IDS)}, another registered id whose class "
            f"declares fused = avgreward.envs.FusedEnv(...), or an instance of one, got {env!r}"
        )
    wrappers = meaningful_wrappers(env)
    if wrappers:
        raise ValueError(
            f"env is {env_id} wrapped in {', '.join(wrappers)}: the fused loop runs the "
            "environment's own dynamics and would drop the wrappers; pass the environment "
            "id (or env.unwrapped) to train without them"
        )
    return env_id, cls


def own_base_id(env):
    """The id of our environment inside ``env`` (an id or an instance, wrapped or not), or None."""
    if isinstance(env, str):
        return resolve_env(env)[0] if is_own_env(env) else None
    return own_env_id(type(getattr(env, "unwrapped", None)))


def is_own_env(env) -> bool:
    """Whether :func:`train` runs ``env`` in the fused loop (declared, with no wrapper of meaning).

    This package's environments and any registered class that declares
    ``fused`` (:mod:`avgreward.envs.declare`), by id or instance.
    """
    if isinstance(env, str):
        env_id = _strip_own_module(env)
        if env_id in envs.ENV_IDS:
            return True
        spec, cls = _registered(env_id)
        return envs.fused_env_of(cls) is not None and not _spec_wrappers(spec)
    return (own_env_id(type(getattr(env, "unwrapped", None))) is not None
            and not meaningful_wrappers(env))


@dataclass(frozen=True)
class EnvInfo:
    """What the runner needs to know of an environment before running it.

    Attributes
    ----------
    env_id : str
    own : bool
        One of this package's environments (the fused loop), else a gymnasium
        environment stepped from Python (:mod:`avgreward.stepwise`).
    n_actions : int
        Discrete actions, or 0 for a one-dimensional continuous action.
    obs_size : int
    """

    env_id: str
    own: bool
    n_actions: int
    obs_size: int


def env_info(env_id: str) -> EnvInfo:
    """:class:`EnvInfo` of a registered id: one of ours or any gymnasium environment.

    Raises
    ------
    ValueError
        If ``env_id`` is not registered, cannot be made, or has spaces the
        actor-critic does not handle (a 1-D ``Box`` observation and a
        ``Discrete`` or 1-D ``Box`` action are needed).
    """
    if not isinstance(env_id, str):
        raise ValueError(f"env must be a registered environment id, got {env_id!r}")
    if is_own_env(env_id):
        env_id, cls = resolve_env(env_id)
        return EnvInfo(env_id, True, cls.fused.n_actions, cls.fused.obs_size)
    from gymnasium import spaces

    env, _ = make_env(env_id)
    try:
        obs_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise ValueError(f"env {env_id}: its observation space {obs_space} is not a 1-D Box, "
                         "which the tile coder needs")
    if isinstance(action_space, spaces.Discrete):
        n_actions = int(action_space.n)
    elif isinstance(action_space, spaces.Box) and action_space.shape in ((), (1,)):
        n_actions = 0
    else:
        raise ValueError(f"env {env_id}: its action space {action_space} is neither Discrete "
                         "nor a one-dimensional Box")
    return EnvInfo(env_id, False, n_actions, int(obs_space.shape[0]))


def default_features(env, bounds=None) -> TileCoder:
    """The feature map each environment is learned with unless the user gives one.

    Pendulum swing-up (both): the spec's reference tile coder, 32 tilings of
    8 x 8 over (angle, velocity), angle wrapped.  Loop MDP: one-hot of the
    state.  Aliased gridworld: one-hot of the 4-bit wall pattern (the agent
    cannot tell the aliased cells apart).  Any other declared environment
    (:class:`avgreward.envs.declare.FusedEnv`): its ``features()``, or else tile coding
    of its declared observation bounds.  Any other gymnasium environment (an
    id): :func:`default_tile_coder` over ``bounds = (low, high)`` or, if not
    given, the observation space's bounds (one grid up to 4 dimensions, each
    dimension and every pair beyond).
    """
    if not is_own_env(env):
        made, owned = make_env(env)
        try:
            if bounds is None and same_observations_as_ours(made):
                return default_features(own_base_id(made))
            return features_for(env if isinstance(env, str) else type(made.unwrapped).__name__,
                             made.observation_space, None, bounds)
        finally:
            if owned:
                made.close()
    if bounds is not None:
        raise ValueError("bounds only applies to environments that are not this package's")
    fused = resolve_env(env)[1].fused
    if fused.features is None:
        return default_tile_coder(fused.obs_low, fused.obs_high)
    features = fused.features()
    if not isinstance(features, TileCoder) or features.n_dims != fused.obs_size:
        raise ValueError(
            f"{fused.name}: its declared features() must return a TileCoder over its "
            f"{fused.obs_size} observation dimension(s), got {features!r}"
        )
    return features


def same_observations_as_ours(env) -> bool:
    """Whether ``env`` is our environment in wrappers that keep its observation space.

    Such a run (a reward transform, a time limit) keeps our environment's
    features, so that a wrapper that changes nothing changes nothing.
    """
    if isinstance(env, str) or own_base_id(env) is None:
        return False
    return env.observation_space == env.unwrapped.observation_space


# Default features: at most this many (one grid over all dimensions while it
# fits, which keeps CartPole's 4-D coder of 104,976 features; beyond, subsets).
_MAX_DEFAULT_FEATURES = 1 << 17
# Beyond this many active features per step the default is too slow to be a default.
_MAX_DEFAULT_ACTIVE = 1 << 12


def env_name_of(env):
    """``env``'s registered id, else the class name of its unwrapped environment."""
    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        return spec.id
    return type(getattr(env, "unwrapped", env)).__name__


def make_env(env):
    """``env`` itself if it is a ``gymnasium.Env``, else ``gymnasium.make(env)``.

    Returns ``(env, owned)``; ``owned`` says whether we made it (and close it).
    """
    if isinstance(env, gymnasium.Env):
        return env, False
    if isinstance(env, str):
        try:
            return gymnasium.make(env), True
        except (gymnasium.error.Error, ImportError, AttributeError) as error:
            raise ValueError(
                f"env {env!r} is neither one of this package's environments nor a "
                f"gymnasium id that can be made: {error}"
            ) from error
    raise ValueError(f"env must be a gymnasium id or a gymnasium.Env instance, got {env!r}")


def default_tile_coder(low, high) -> TileCoder:
    """The features of an environment that is not ours: tile coding of a box.

    8 tiles per dimension and the smallest power of two of tilings that is
    at least ``max(8, 4 * n_dims)`` (tiles3's rule of thumb; 8 tilings of
    8 x 8 for two dimensions, Sutton & Barto's choice for the mountain car),
    while that one grid over all dimensions has at most 2**17 features (up to
    4 dimensions: 104,976 features for 4).  More dimensions would need
    ``9**n_dims`` features per tiling (17 million for Acrobot's 6), so they
    are tiled in subsets instead (Sutton & Barto, section 9.5.4): each
    dimension alone and every pair, 8 tilings of 8 tiles each
    (10,152 features and 168 active ones for 6 dimensions), hashed into
    2**17 features beyond 20 dimensions (see ``memory`` in
    :class:`~avgreward.features.TileCoder`). No dimension is wrapped.

    Parameters
    ----------
    low, high : array_like of float, shape (n_dims,)
        Finite bounds of the observation, ``low < high``.

    Raises
    ------
    ValueError
        If the bounds are not finite and ordered, or the coder would have
        more than 4096 active features (beyond 31 dimensions: pass
        ``features``).
    """
    low = tuple(float(v) for v in np.asarray(low, dtype=np.float64).reshape(-1))
    high = tuple(float(v) for v in np.asarray(high, dtype=np.float64).reshape(-1))
    n_dims = len(low)
    tilings = 1 << max(3, math.ceil(math.log2(4 * n_dims)))
    if tilings * 9**n_dims <= _MAX_DEFAULT_FEATURES:
        return TileCoder(low=low, high=high, tiles=(8,) * n_dims, tilings=tilings)
    subsets = [(i,) for i in range(n_dims)] + list(itertools.combinations(range(n_dims), 2))
    if 8 * len(subsets) > _MAX_DEFAULT_ACTIVE:
        raise ValueError(
            f"features: the default tile coder of a {n_dims}-dimensional observation (each "
            f"dimension and every pair) would have {8 * len(subsets)} active features per "
            "step; pass features=TileCoder(...) over fewer dimensions or subsets"
        )
    # 8 tilings of a single dimension's 9 cells, and of a pair's 81.
    exact = 8 * (9 * n_dims + 81 * (len(subsets) - n_dims))
    return TileCoder(low=low, high=high, tiles=8, tilings=8, subsets=subsets,
                     memory=_MAX_DEFAULT_FEATURES if exact > _MAX_DEFAULT_FEATURES else None)


def _bounds(bounds, n_dims):
    try:
        low, high = bounds
        low = np.broadcast_to(np.asarray(low, dtype=np.float64), (n_dims,))
        high = np.broadcast_to(np.asarray(high, dtype=np.float64), (n_dims,))
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds must be (low, high), each a number or {n_dims} numbers (one per "
            f"observation dimension), got {bounds!r}"
        ) from None
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (low < high).all()):
        raise ValueError(
            f"bounds must be finite with low < high in every dimension, got {bounds!r}"
        )
    return low, high


def features_for(env_name, observation_space, features, bounds):
    """The run's tile coder: ``features`` checked, or the default one over ``bounds`` or the
    observation space's bounds (a ``ValueError`` names ``env_name`` if they are infinite)."""
    n_dims = observation_space.shape[0]
    if features is not None and bounds is not None:
        raise ValueError(
            "give features or bounds, not both (bounds only build the default features)"
        )
    if features is None:
        if bounds is not None:
            low, high = _bounds(bounds, n_dims)
        else:
            low = np.asarray(observation_space.low, dtype=np.float64)
            high = np.asarray(observation_space.high, dtype=np.float64)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ValueError(
                    f"env {env_name}'s observation space has infinite bounds ({low} to {high}): "
                    "pass features=TileCoder(...) or bounds=(low, high) for the tile coding"
                )
        features = default_tile_coder(low, high)
    elif not isinstance(features, TileCoder):
        raise ValueError(f"features must be a TileCoder (see avgreward.features), got {features!r}")
    if features.n_dims != n_dims:
        raise ValueError(
            f"features has {features.n_dims} dimension(s) but {env_name}'s observation has {n_dims}"
        )
    return features
