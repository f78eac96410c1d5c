"""The golden test: (environment, learner) pairs ``train`` accepts, bit for bit.

``tests/golden.json`` was written on the code before the drivers redesign
(issue 23) by ``python tests/golden_cases.py``: the sha256 of ``rewards``,
``rbar`` and every weight array after 2,000 steps from seed 0, for every pair
``train`` accepts.  A change may recompile; it may not change one bit.

The redesign is done, and each pair compiles a loop of its own (3-6 s cold):
all 118 cost the suite more than four minutes.  The test now runs a covering
subset of the table, :func:`covering`: every learner on at least one
environment and every environment with at least two learners, chosen among
the pairs the rest of the suite compiles anyway where there is a choice.  An
environment's dynamics and a learner's kernel are separate functions, so a
changed bit in either shows in its pairs; ``python tests/golden_cases.py``
still checks (rewrites) the whole table.
"""

import json

import pytest

import golden_cases

# Slow: trains every (environment, learner) pair, compiling each.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

_TABLE = json.loads(golden_cases.GOLDEN.read_text())


# Where there is a choice: the learners and environments most of the suite uses.
_KINDS = ("softmax", "q_learning", "sarsa", "gaussian", "reinforce", "episodic_ac")
_ENVS = ("avgreward/AccessControl-v0", "avgreward/LoopMDP-v0", "avgreward/ShortCorridor-v0",
         "avgreward/PendulumSwingUp-v0", "avgreward/AliasedGridworld-v0")


def _first(names, preferred, part):
    """``names`` ordered by the position of their ``part`` in ``preferred`` (others last)."""
    rank = {p: i for i, p in enumerate(preferred)}
    return sorted(names, key=lambda n: (rank.get(n.split("|")[part], len(rank)), n))


def covering(names):
    """A subset of ``names`` ("env|kind"): each kind once or more, each environment twice."""
    chosen = []
    for env in sorted({n.split("|")[0] for n in names}):
        chosen += _first([n for n in names if n.startswith(env + "|")], _KINDS, 1)[:2]
    covered = {n.split("|")[1] for n in chosen}
    for kind in sorted({n.split("|")[1] for n in names} - covered):
        chosen.append(_first([n for n in names if n.endswith("|" + kind)], _ENVS, 0)[0])
    return sorted(chosen)


def test_the_subset_covers_every_learner_and_environment():
    chosen = covering(sorted(_TABLE))
    assert {n.split("|")[1] for n in chosen} == {n.split("|")[1] for n in _TABLE}
    envs = [n.split("|")[0] for n in chosen]
    assert all(envs.count(e) >= min(2, sum(n.startswith(e + "|") for n in _TABLE))
               for e in set(envs))
    assert set(envs) == {n.split("|")[0] for n in _TABLE}


@pytest.mark.parametrize("name", covering(sorted(_TABLE)))
def test_golden(name):
    env_id, kind = name.split("|")
    agent = golden_cases._agents()[kind]
    assert golden_cases.run_case(env_id, agent) == _TABLE[name]
