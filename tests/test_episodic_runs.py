"""Runs counted in episodes: longer budgets only for the runs that need them, the same episodes."""

import numpy as np
import pytest

import avgreward
from avgreward.agents import Reinforce
from avgreward.episodic_runs import run_episodes

CORRIDOR = "avgreward/ShortCorridor-v0"


@pytest.mark.slow
def test_every_run_gives_its_first_episodes_as_one_long_run_would(tmp_path):
    agents = [Reinforce(alpha_theta=2**-12, initial_preferences=(1.47, -1.47),
                        max_episode_steps=300),
              Reinforce(alpha_theta=2**-13, max_episode_steps=300)]
    # 5 steps an episode at first: episodes average 12 or more, so every run needs longer
    runs = run_episodes(tmp_path / "exp", CORRIDOR, agents, 3, 60, steps_per_episode=5,
                        workers=1, progress=False)
    assert runs.returns.shape == (2, 3, 60) and len(runs.directories) >= 2
    assert runs.directories[1].parent.parent == tmp_path / "exp" / "longer"
    assert (runs.steps > 300).all()
    for i, agent in enumerate(agents):
        for j, seed in enumerate(runs.seeds):
            long = avgreward.train(CORRIDOR, agent, 200_000, seed=seed)
            np.testing.assert_array_equal(runs.returns[i, j],
                                          long.info["episode_returns"][:60])
            np.testing.assert_array_equal(runs.lengths[i, j],
                                          long.info["episode_lengths"][:60])
            assert runs.cut[i, j] == np.sum(long.info["episode_lengths"][:60] == 300)
    np.testing.assert_array_equal(runs.returns, -runs.lengths)  # -1 a step
    # Rerunning reads what is there: nothing runs again, the same numbers.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "exp").rglob("*.npz")}
    again = run_episodes(tmp_path / "exp", CORRIDOR, agents, 3, 60, steps_per_episode=5,
                         workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "exp").rglob("*.npz")} == stamps
    np.testing.assert_array_equal(again.returns, runs.returns)


@pytest.mark.slow
def test_runs_that_never_finish_are_named(tmp_path):
    agent = Reinforce(alpha_theta=2**-12, max_episode_steps=1000)
    with pytest.raises(ValueError, match="seed 0: fewer than 500 episodes in 2,000 steps .max_steps."):
        run_episodes(tmp_path / "exp", CORRIDOR, agent, 1, 500, steps_per_episode=1,
                     workers=1, progress=False, max_steps=2_000)
    with pytest.raises(ValueError, match="episodes must be an integer"):
        run_episodes(tmp_path / "x", CORRIDOR, agent, 1, 0, workers=1)


def test_a_study_rerun_with_more_seeds_adds_them(tmp_path):
    agents = [Reinforce(alpha_theta=2**-12, max_episode_steps=300),
              Reinforce(alpha_theta=2**-13, initial_preferences=(1.47, -1.47),
                        max_episode_steps=300)]
    few = run_episodes(tmp_path / "exp", CORRIDOR, agents, 1, 40, steps_per_episode=12,
                       workers=1, progress=False)
    more = run_episodes(tmp_path / "exp", CORRIDOR, agents, 3, 40, steps_per_episode=12,
                        workers=1, progress=False)
    np.testing.assert_array_equal(more.returns[:, :1], few.returns)
    for i, agent in enumerate(agents):
        long = avgreward.train(CORRIDOR, agent, 100_000, seed=2)
        np.testing.assert_array_equal(more.returns[i, 2], long.info["episode_returns"][:40])


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": 0}, "seeds must be >= 1"),
    ({"seeds": []}, "seeds: the list is empty"),
    ({"agents": []}, "agents: no settings"),
    ({"max_steps": "1000"}, "max_steps must be an integer"),
    ({"env": "avgreward/LoopMDP-v0"}, "not an episodic environment"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    args = {"out": tmp_path / "x", "env": CORRIDOR, "agents": Reinforce(alpha_theta=0.1),
            "seeds": 1, "episodes": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_episodes(**args, workers=1, progress=False)
