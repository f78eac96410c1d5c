"""What a run computed: :class:`Result`, and :class:`DivergenceError` with the partial one.

A result on disk (:meth:`Result.save`, :func:`load_result`) is two files side
by side, no pickle:

``<name>.npz``
    Every array: the rewards, R-bar trace, actions, weights, array-valued
    ``info`` entries, and the run's state for ``train(..., init=...)``
    (environment, features of S, the learner's arrays).
``<name>.json``
    The settings and scalars: environment, agent, seed, steps, feature map,
    R-bar, the generator's state, versions, and the sha256 of the ``.npz``,
    so that a damaged or mismatched pair is named, never read as data.

Both are written under temporary names and renamed, the ``.json`` last.
(:mod:`avgreward.persist`, where saving and loading lived, re-exports them.)
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avgreward.checkpoint import RunState, state_files, state_from_files
from avgreward.critic import linear_value
from avgreward.features import TileCoder, features_from_dict, features_to_dict
from avgreward.files import atomic_write, package_versions, sha256_hex
from avgreward.learners.driver import policy_at
from avgreward.learners.registry import agent_from_dict, driver_for


@dataclass
class Result:
    """What one run of :func:`train` computed.

    Attributes
    ----------
    env_id : str
        The environment's registered id.
    agent : agent settings
        The settings the run used (see :func:`avgreward.train`).
    seed : int
        The seed of the run's random generator.
    steps : int
        Steps completed (less than asked only in a diverged run's partial result).
    rewards : ndarray
        Without ``bin_size``: the reward of every step, float32, shape ``(steps,)``.
        With ``bin_size=B``: the float64 mean reward of each bin of ``B``
        consecutive steps, shape ``(ceil(steps / B),)``, the last bin
        possibly shorter; ``info["bin_size"]`` is ``B`` and
        ``info["bin_steps"]`` the step count at the end of each bin.
    rbar : ndarray of float64
        R-bar after steps ``rbar_steps``.
    rbar_steps : ndarray of int64
        Step counts (1-based) at which ``rbar`` was recorded: every ``rbar_every`` steps.
    final_rbar : float
        R-bar after the last completed step.
    weights : dict of str to ndarray
        The learned weights by name, as the agent's driver names them:
        ``"w"`` (critic) and ``"theta"`` (softmax: ``[n_features, n_actions]``)
        or ``"theta_mu"`` and ``"theta_sigma"`` (Gaussian actor-critic);
        ``"theta"`` and ``"w"`` where there is a critic or baseline
        (REINFORCE, episodic actor-critic); ``"w"``
        ``[n_features, n_actions]`` (value-based); every array of the bundle by
        field name (:class:`avgreward.learners.Custom`).
    features : TileCoder
        The feature map.
    actions : ndarray or None
        The action of every step if the run recorded them (per step, binned
        or not).
    wall_time : float
        Seconds spent in the run.
    info : dict
        Extra figures: ``"bin_size"`` and ``"bin_steps"`` for binned rewards;
        on an episodic environment, the episode ends (``"terminations"``,
        ``"truncations"``) and each finished episode's ``"episode_returns"``,
        ``"episode_lengths"`` and ``"episode_end_steps"`` (see
        :class:`avgreward.run_arrays.EpisodeEnds`);
        ``"continued_from"``: the steps the run had done before this call
        (``train(..., init=...)``); ``"cannot_continue"``: why a finished run
        has no ``run_state`` (an environment whose state cannot be saved,
        an experiment's run saved without it).
    run_state : RunState or None
        Where the run stopped, for ``train(..., init=result)`` (see
        :mod:`avgreward.checkpoint`); None where a run cannot be continued
        (parallel actors, a diverged run, a Python-stepped environment whose
        state cannot be saved: :mod:`avgreward.env_snapshot`).
    """

    env_id: str
    agent: object
    seed: int
    steps: int
    rewards: np.ndarray
    rbar: np.ndarray
    rbar_steps: np.ndarray
    final_rbar: float
    weights: dict
    features: TileCoder
    actions: np.ndarray | None = None
    wall_time: float = 0.0
    info: dict = field(default_factory=dict)
    run_state: RunState | None = field(default=None, repr=False)

    def _indices(self, observation) -> np.ndarray:
        return self.features.indices(np.atleast_1d(np.asarray(observation, dtype=np.float64)))

    def policy(self, observation) -> np.ndarray | tuple[float, float]:
        """The learned policy at ``observation``.

        Returns
        -------
        ndarray or tuple
            Softmax (the actor-critic's, REINFORCE's, the episodic
            actor-critic's): the action probabilities.  Gaussian: ``(mean, sigma)``; for
            a squashed actor (``squash``, a bounded gymnasium action) those of
            ``u``, the action being ``low + (high - low) (tanh(u) + 1) / 2``.
        """
        policy = driver_for(self.agent, "result.agent").policy(self.agent, self.weights)
        return policy_at(policy, self._indices(observation))

    def value(self, observation) -> float:
        """The critic's value ``w . x(observation)`` (differential for the continuing
        actor-critic; REINFORCE with baseline's v; ``max_a q(s, a)`` for the
        value-based learners; ValueError if there is no critic)."""
        if "w" not in self.weights:
            raise ValueError(f"this result's agent has no value function: {self.agent!r}")
        if self.weights["w"].ndim == 2:  # action values: the greedy one, max_a q(s, a)
            return float(self.weights["w"][self._indices(observation)].sum(axis=0).max())
        return float(linear_value(self.weights["w"], self._indices(observation)))

    def mean_reward(self, start: int = 0, stop: int | None = None) -> float:
        """Mean reward over steps ``start:stop`` (float64 accumulation).

        ``mean_reward(15_000)`` of a 20,000-step run is the mean over its
        last 5,000 steps (15,000 to 20,000).

        Parameters
        ----------
        start, stop : int, optional
            Steps as in a slice of the per-step rewards (negative counts
            from the end; ``stop=None`` is the last step).  The window must
            hold at least one step: ``start`` below :attr:`steps`.

        Returns
        -------
        float
            On binned rewards (``info["bin_size"]`` = B > 1) the mean of the
            bins in the window weighted by their lengths: the steps' mean up
            to rounding.

        Raises
        ------
        ValueError
            If the window holds no step (``start >= steps``, or ``stop`` at
            or before ``start``), naming the window and the run's length.
            On binned rewards, if ``start`` or ``stop`` is not a bin edge (a
            multiple of B, or ``steps``): the steps inside a bin are gone.
        """
        bin_size = self.info.get("bin_size", 1)
        first, last, _ = slice(start, stop).indices(self.steps)
        if last <= first:
            window = f"start={start!r}" + (f", stop={stop!r}" if stop is not None else "")
            why = (f"start must be below the number of steps ({self.steps:,})"
                   if first >= self.steps else "the window is empty")
            raise ValueError(
                f"mean_reward({window}): the run has {self.steps:,} steps, so this window "
                f"holds none (steps {first}:{last}); {why}")
        if bin_size == 1:
            return float(np.mean(self.rewards[start:stop], dtype=np.float64))
        if first % bin_size or (last % bin_size and last != self.steps):
            raise ValueError(
                f"mean_reward: start and stop must fall on bin edges (multiples of "
                f"bin_size={bin_size}, or steps={self.steps}) because this result holds "
                f"the means of bins of {bin_size} steps, got start={start!r}, stop={stop!r} "
                f"(steps {first}:{last})"
            )
        ends = bin_end_steps(self.steps, bin_size)
        lengths = np.diff(ends, prepend=0)
        window = slice(first // bin_size, -(-last // bin_size))
        return float(np.dot(self.rewards[window], lengths[window]) / lengths[window].sum())


    def save(self, path: str | os.PathLike) -> Path:
        """Save the result to ``path.npz`` (arrays) and ``path.json`` (settings), no pickle.

        :func:`avgreward.load_result` reads it back, ``run_state`` included, so
        a saved agent can be evaluated (:func:`avgreward.evaluate`) or trained
        further (``train(..., init=...)``) in another process, bit for bit.

        Parameters
        ----------
        path : str or path-like
            The files' common name; a ``.npz`` or ``.json`` suffix is dropped,
            missing directories are made.

        Returns
        -------
        pathlib.Path
            The ``.json`` written.

        Examples
        --------
        >>> import avgreward, tempfile, os
        >>> agent = avgreward.default_agent("avgreward/LoopMDP-v0")
        >>> result = avgreward.train("avgreward/LoopMDP-v0", agent, 1_000, seed=0)
        >>> path = result.save(os.path.join(tempfile.mkdtemp(), "loop"))
        >>> again = avgreward.load_result(path)
        >>> bool((again.weights["theta"] == result.weights["theta"]).all())
        True
        """
        return save_result(self, path)



class DivergenceError(RuntimeError):
    """A run's TD error or policy became non-finite.

    Attributes
    ----------
    step : int
        The 0-based step at which it happened; its updates were not applied.
    result : Result
        Everything computed before that step.
    """

    def __init__(self, message: str, step: int, result: Result):
        super().__init__(message)
        self.step = step
        self.result = result


def bin_end_steps(steps, bin_size):
    """Step count at the end of each bin of ``bin_size`` steps (the last may be shorter)."""
    n_bins = -(-steps // bin_size)
    return np.minimum(np.arange(1, n_bins + 1, dtype=np.int64) * bin_size, steps)


FORMAT = 1


def result_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(npz, json)`` of a result saved at ``path`` (with or without either suffix)."""
    path = Path(path)
    if path.suffix in (".npz", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def _jsonable(key, value):
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(f"info[{key!r}] = {value!r} is neither an array nor JSON data; a "
                         "result with it cannot be saved") from None
    return value


def save_result(result: Result, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path.npz`` and ``path.json``; returns the ``.json``'s path.

    Raises
    ------
    ValueError
        If the result's agent is not one of the package's settings classes
        (a learner of :func:`avgreward.loop.run_learner`), or an ``info``
        value is neither an array nor JSON data.
    """
    if not hasattr(result.agent, "to_dict"):
        raise ValueError(f"agent: only results of the package's agents can be saved, not of "
                         f"{result.agent!r}")
    arrays = {"rewards": result.rewards, "rbar": result.rbar, "rbar_steps": result.rbar_steps}
    if result.actions is not None:
        arrays["actions"] = result.actions
    arrays.update({f"weights/{k}": v for k, v in result.weights.items()})
    info = {}
    for key, value in result.info.items():
        if isinstance(value, np.ndarray):
            arrays[f"info/{key}"] = value
        else:
            info[key] = _jsonable(key, value.item() if isinstance(value, np.generic) else value)
    state = None
    if result.run_state is not None:
        more, state = state_files(result.run_state, result.weights)
        arrays.update(more)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    record = {
        "format": FORMAT, "env_id": result.env_id, "agent": result.agent.to_dict(complete=True),
        "seed": result.seed, "steps": result.steps, "final_rbar": result.final_rbar,
        "features": features_to_dict(result.features), "wall_time": result.wall_time,
        "info": info, "run_state": state, "versions": package_versions(),
        "sha256": sha256_hex(data),
    }
    npz, manifest = result_paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(npz, data)
    atomic_write(manifest, (json.dumps(record, indent=1) + "\n").encode())
    return manifest


def load_result(path: str | os.PathLike) -> Result:
    """The :class:`~avgreward.result.Result` saved at ``path`` by ``Result.save``.

    Parameters
    ----------
    path : str or path-like
        As given to ``save`` (the ``.npz`` or ``.json`` suffix may be given too).

    Returns
    -------
    Result
        Equal to the saved one, array for array; ``run_state`` too, so it can
        be continued with ``train(..., init=result)``.

    Raises
    ------
    FileNotFoundError
        If either file is missing.
    ValueError
        Naming the file, if it is damaged, of another result (its sha256
        differs), or of an unknown format.
    """
    npz, manifest = result_paths(path)
    for file in (manifest, npz):
        if not file.exists():
            raise FileNotFoundError(f"{file}: no such file (a result is a .json and a .npz "
                                    "written by Result.save)")
    try:
        record = json.loads(manifest.read_text())
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, found {type(record).__name__}")
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')!r}, this version reads {FORMAT}")
        data = npz.read_bytes()
        if sha256_hex(data) != record["sha256"]:
            raise ValueError(f"{npz.name} is not the file saved with it (its sha256 differs): "
                             "damaged or replaced")
        with np.load(io.BytesIO(data), allow_pickle=False) as files:
            arrays = {key: files[key] for key in files.files}
        agent = agent_from_dict(record["agent"])
        features = features_from_dict(record["features"])
        weights = {k[len("weights/"):]: v for k, v in arrays.items() if k.startswith("weights/")}
        info = dict(record["info"])
        info.update({k[len("info/"):]: v for k, v in arrays.items() if k.startswith("info/")})
        state = None
        if record["run_state"] is not None:
            state = state_from_files(record["run_state"], arrays, weights)
        return Result(
            env_id=record["env_id"], agent=agent, seed=int(record["seed"]),
            steps=int(record["steps"]), rewards=arrays["rewards"], rbar=arrays["rbar"],
            rbar_steps=arrays["rbar_steps"], final_rbar=float(record["final_rbar"]),
            weights=weights, features=features, actions=arrays.get("actions"),
            wall_time=float(record["wall_time"]), info=info, run_state=state)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"{manifest} (with {npz.name}): not a readable result: {detail}"
                         ) from None
