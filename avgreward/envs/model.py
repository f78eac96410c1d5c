"""The exact model of a tabular environment, shared by tests and exact analysis."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TabularModel:
    """Exact finite model of a tabular task: continuing, or episodic with ``terminal`` states.

    Attributes
    ----------
    P : ndarray, shape (n_states, n_actions, n_states)
        Transition probabilities ``P[s, a, s']``; each ``P[s, a]`` sums to 1.
    R : ndarray, shape (n_states, n_actions)
        Expected reward ``R[s, a]`` of taking action ``a`` in state ``s``.
    start : ndarray, shape (n_states,)
        Start-state distribution.
    observations : ndarray, shape (n_states, obs_size)
        The observation the agent receives in each true state (as float64,
        in the form the environment's pure ``observe`` function writes).
    terminal : tuple of int, default ()
        An episodic task's terminal states: absorbing, rewarding nothing,
        the episode ends on entering one (see :func:`avgreward.exact.evaluate_episodic`).
    """

    P: np.ndarray
    R: np.ndarray
    start: np.ndarray
    observations: np.ndarray
    terminal: tuple = ()

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]
