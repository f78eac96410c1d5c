"""Every learner's :class:`~avgreward.learners.driver.Driver`, looked up by its settings.

The built-in drivers are registered here, once; :class:`~avgreward.learners.custom.Custom`
brings a user's learner through the same door.  ``train``, the runner,
``Result`` and ``evaluate`` call :func:`driver_for` (an agent's settings) or
:func:`driver_for_kind` (a record's ``"kind"``) and never list learners.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avgreward.learners.actor_critic import GAUSSIAN_DRIVER, SOFTMAX_DRIVER
from avgreward.learners.contextual import (
    EPSILON_GREEDY_LS_DRIVER,
    LIN_UCB_DRIVER,
    SOFTMAX_BANDIT_DRIVER,
    SQUARE_CB_DRIVER,
)
from avgreward.learners.custom import CUSTOM_DRIVER
from avgreward.learners.driver import Driver
from avgreward.learners.episodic import EPISODIC_ACTOR_CRITIC_DRIVER, REINFORCE_DRIVER
from avgreward.learners.natural_actor_critic import NATURAL_DRIVER
from avgreward.learners.prediction import AVERAGE_COST_TD_DRIVER, DIFFERENTIAL_TD_DRIVER
from avgreward.learners.rvi import RVI_Q_DRIVER
from avgreward.learners.value import (
    DIFFERENTIAL_Q_DRIVER,
    DIFFERENTIAL_SARSA_DRIVER,
    DISCOUNTED_Q_DRIVER,
    DISCOUNTED_SARSA_DRIVER,
)

__all__ = ["driver_for", "driver_for_kind", "drivers", "agent_from_dict", "is_agent"]

_BY_SETTINGS: dict[type, Driver] = {}
_BY_KIND: dict[str, Driver] = {}


def _register(driver: Driver) -> None:
    kind = driver.settings.kind
    if kind in _BY_KIND:
        raise ValueError(f"a driver for kind {kind!r} is registered already")
    _BY_SETTINGS[driver.settings] = driver
    _BY_KIND[kind] = driver


for _driver in (SOFTMAX_DRIVER, GAUSSIAN_DRIVER, REINFORCE_DRIVER, EPISODIC_ACTOR_CRITIC_DRIVER,
                DIFFERENTIAL_SARSA_DRIVER, DIFFERENTIAL_Q_DRIVER, DISCOUNTED_SARSA_DRIVER,
                DISCOUNTED_Q_DRIVER, RVI_Q_DRIVER, DIFFERENTIAL_TD_DRIVER, AVERAGE_COST_TD_DRIVER,
                NATURAL_DRIVER, EPSILON_GREEDY_LS_DRIVER, LIN_UCB_DRIVER, SQUARE_CB_DRIVER,
                SOFTMAX_BANDIT_DRIVER, CUSTOM_DRIVER):
    _register(_driver)


def drivers() -> tuple[Driver, ...]:
    """The registered drivers, in registration order."""
    return tuple(_BY_KIND.values())


def _names() -> str:
    names = [d.settings.__name__ for d in _BY_KIND.values()]
    return ", ".join(names[:-1]) + " or " + names[-1]


def is_agent(agent) -> bool:
    """Whether ``agent`` is settings some driver serves."""
    return type(agent) in _BY_SETTINGS


def driver_for(agent, name: str = "agent") -> Driver:
    """The driver of ``agent``'s settings, or a ValueError naming ``name`` and the choices."""
    driver = _BY_SETTINGS.get(type(agent))
    if driver is None:
        raise ValueError(f"{name} must be {_names()} settings (avgreward.learners.Custom for "
                         f"a learner of your own), got {agent!r}")
    return driver


def driver_for_kind(kind: str) -> Driver:
    """The driver that records name ``kind`` (a settings class's ``kind``)."""
    driver = _BY_KIND.get(kind)
    if driver is None:
        raise ValueError(f"unknown agent kind {kind!r}; expected one of {sorted(_BY_KIND)}")
    return driver


def agent_from_dict(d: Mapping[str, Any]):
    """Rebuild agent settings from their ``to_dict()`` output (imports nothing).

    A custom learner's record gives a :class:`~avgreward.learners.custom.Custom`
    that names its learner by ``module:attr`` and imports it only when run.
    """
    d = dict(d)
    kind = d.pop("kind", None)
    settings = driver_for_kind(kind).settings
    if hasattr(settings, "from_dict"):
        return settings.from_dict(d)
    return settings(**d)
