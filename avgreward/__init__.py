"""avgreward: average-reward actor-critic methods, fused and jitted with numba.

The main entry points:

- :func:`train` runs one actor-critic on one of the package's continuing
  environments (registered by :mod:`avgreward.envs`) and returns a :class:`Result`
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

import importlib
from typing import TYPE_CHECKING

# The public names are imported on first use (PEP 562), not here: importing
# numpy, numba and the kernels takes a noticeable part of a second, and the
# ``avgreward`` command must be able to handle Ctrl-C from its first line,
# before any of that (its entry point imports this package first).
# ``avgreward.train`` and ``from avgreward import train`` work as before.
_LAZY = {
    "DifferentialQLearning": "avgreward.agents",
    "DifferentialSarsa": "avgreward.agents",
    "RVIQLearning": "avgreward.agents",
    "DiscountedQLearning": "avgreward.agents",
    "DiscountedSarsa": "avgreward.agents",
    "DifferentialTD": "avgreward.agents",
    "AverageCostTD": "avgreward.agents",
    "GaussianActorCritic": "avgreward.agents",
    "SoftmaxActorCritic": "avgreward.agents",
    "Reinforce": "avgreward.agents",
    "EpisodicActorCritic": "avgreward.agents",
    "NaturalActorCritic": "avgreward.agents",
    "DifferentialQPlanning": "avgreward.planning",
    "DifferentialTDPlanning": "avgreward.planning",
    "plan": "avgreward.planning",
    "Custom": "avgreward.learners",
    "FusedLearner": "avgreward.learners",
    "FusedEnv": "avgreward.envs",
    "DeclaredEnv": "avgreward.envs",
    "RunOptions": "avgreward.options",
    "agent_from_dict": "avgreward.learners.registry",
    "TileCoder": "avgreward.features",
    "binary_pattern": "avgreward.features",
    "one_hot": "avgreward.features",
    "pendulum_tile_coder": "avgreward.features",
    "DivergenceError": "avgreward.training",
    "Result": "avgreward.training",
    "default_agent": "avgreward.training",
    "default_features": "avgreward.training",
    "train": "avgreward.training",
    "run_learner": "avgreward.training",
    "load_result": "avgreward.result",
    "PolicyEvaluation": "avgreward.evaluation",
    "evaluate": "avgreward.evaluation",
    "Experiment": "avgreward.experiment",
    "ExperimentBusyError": "avgreward.experiment",
    "RunRecord": "avgreward.experiment",
    "load_experiment": "avgreward.experiment",
    "run_experiment": "avgreward.experiment",
}

if TYPE_CHECKING:  # what type checkers and IDEs see
    from avgreward.agents import (
        AverageCostTD,
        DifferentialQLearning,
        DifferentialSarsa,
        DifferentialTD,
        RVIQLearning,
        DiscountedQLearning,
        DiscountedSarsa,
        EpisodicActorCritic,
        GaussianActorCritic,
        NaturalActorCritic,
        Reinforce,
        SoftmaxActorCritic,
    )
    from avgreward.evaluation import PolicyEvaluation, evaluate
    from avgreward.experiment import (
        Experiment,
        ExperimentBusyError,
        RunRecord,
        load_experiment,
        run_experiment,
    )
    from avgreward.features import TileCoder, binary_pattern, one_hot, pendulum_tile_coder
    from avgreward.learners import Custom
    from avgreward.learners.registry import agent_from_dict
    from avgreward.options import RunOptions
    from avgreward.planning import DifferentialQPlanning, DifferentialTDPlanning, plan
    from avgreward.result import load_result
    from avgreward.training import (
        DivergenceError,
        Result,
        default_agent,
        default_features,
        run_learner,
        train,
    )


def __getattr__(name):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    if not name.startswith("__"):
        # A submodule the eager imports used to make an attribute
        # (``import avgreward; avgreward.features.one_hot``).
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
    "RVIQLearning",
    "DiscountedSarsa",
    "DiscountedQLearning",
    "DifferentialTD",
    "AverageCostTD",
    "GaussianActorCritic",
    "Reinforce",
    "EpisodicActorCritic",
    "NaturalActorCritic",
    "plan",
    "DifferentialQPlanning",
    "DifferentialTDPlanning",
    "Custom",
    "FusedLearner",
    "FusedEnv",
    "DeclaredEnv",
    "RunOptions",
    "run_learner",
    "agent_from_dict",
    "TileCoder",
    "one_hot",
    "binary_pattern",
    "pendulum_tile_coder",
]
