"""What a run computed: :class:`Result`, and :class:`DivergenceError` with the partial one."""


from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avgreward.checkpoint import RunState
from avgreward.critic import linear_value
from avgreward.features import TileCoder
from avgreward.learners.driver import policy_at
from avgreward.learners.registry import driver_for


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
        the stepwise path's episode ends (see :func:`avgreward.stepwise.train_stepwise`);
        ``"continued_from"``: the steps the run had done before this call
        (``train(..., init=...)``).
    run_state : RunState or None
        Where the run stopped, for ``train(..., init=result)`` (see
        :mod:`avgreward.checkpoint`); None where a run cannot be continued
        (parallel actors, a Python-stepped environment, a diverged run).
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
        ends = _bin_steps(self.steps, bin_size)
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
        from avgreward.persist import save_result

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


def _bin_steps(steps, bin_size):
    """Step count at the end of each bin of ``bin_size`` steps (the last may be shorter)."""
    n_bins = -(-steps // bin_size)
    return np.minimum(np.arange(1, n_bins + 1, dtype=np.int64) * bin_size, steps)
