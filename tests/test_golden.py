"""The golden test: every (environment, learner) pair ``train`` accepts, bit for bit.

``tests/golden.json`` was written on the code before the drivers redesign
(issue 23) by ``python tests/golden_cases.py``: the sha256 of ``rewards``,
``rbar`` and every weight array after 2,000 steps from seed 0.  A redesign
may recompile; it may not change one bit, nor drop a case ``train`` accepted.
"""

import json

import pytest

import golden_cases

# Slow: trains every (environment, learner) pair, compiling each.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

_TABLE = json.loads(golden_cases.GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(_TABLE))
def test_golden(name):
    env_id, kind = name.split("|")
    agent = golden_cases._agents()[kind]
    assert golden_cases.run_case(env_id, agent) == _TABLE[name]
