"""avgreward: average-reward actor-critic methods, fused and jitted with numba.

The main entry points:

- :func:`train` runs one actor-critic on one of the package's continuing
  environments (registered by :mod:`envs`) and returns a :class:`Result`
  (``Result.save`` / :func:`load_result` keep it; ``train(..., init=result)``
  trains it further; :func:`evaluate` measures its frozen policy);
- :class:`SoftmaxActorCritic` and :class:`GaussianActorCritic` are the
  validated settings of the two learners;
- :func:`run_experiment` runs many (settings, seed) runs in parallel
  processes into a resumable results directory (:func:`load_experiment`);
- :class:`TileCoder` (and :func:`one_hot`, :func:`binary_pattern`) are the
  feature maps; :mod:`avgreward.exact` analyses tabular tasks exactly;
  :mod:`avgreward.plotting` draws learning curves, sensitivity plots and maps.
"""

__version__ = "0.1.0"

from avgreward.agents import (
    DifferentialQLearning,
    DifferentialSarsa,
    DiscountedQLearning,
    DiscountedSarsa,
    GaussianActorCritic,
    SoftmaxActorCritic,
    agent_from_dict,
)
from avgreward.features import TileCoder, binary_pattern, one_hot, pendulum_tile_coder
from avgreward.training import DivergenceError, Result, default_agent, default_features, train
from avgreward.persist import load_result
from avgreward.evaluation import PolicyEvaluation, evaluate
from avgreward.experiment import (
    Experiment,
    ExperimentBusyError,
    RunRecord,
    load_experiment,
    run_experiment,
)

__all__ = [
    "__version__",
    "train",
    "Result",
    "load_result",
    "evaluate",
    "PolicyEvaluation",
    "DivergenceError",
    "default_features",
    "default_agent",
    "run_experiment",
    "load_experiment",
    "Experiment",
    "RunRecord",
    "ExperimentBusyError",
    "SoftmaxActorCritic",
    "DifferentialSarsa",
    "DifferentialQLearning",
    "DiscountedSarsa",
    "DiscountedQLearning",
    "GaussianActorCritic",
    "agent_from_dict",
    "TileCoder",
    "one_hot",
    "binary_pattern",
    "pendulum_tile_coder",
]
