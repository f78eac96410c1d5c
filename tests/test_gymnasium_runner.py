"""Gymnasium environments where our own ids go: wrappers kept, the runner, the CLI."""

import json
import logging
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.wrappers import TransformObservation, TransformReward

import avgreward
import avgreward.cli
from avgreward import SoftmaxActorCritic
from avgreward.experiment import load_experiment, run_experiment
from avgreward.training import ConstantRewardWarning, env_info, resolve_env
from avgreward.wrappers import FailurePenalty

PENDULUM = "avgreward/PendulumSwingUp-v0"
CARTPOLE_BOUNDS = ([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5])
CARTPOLE_AGENT = SoftmaxActorCritic(alpha_w=2**-1, alpha_theta=2**-2, alpha_rbar=2**-8)


def test_a_reward_wrapper_around_our_environment_is_applied_not_dropped():
    """The issue's example: TransformReward was silently dropped by the fused loop."""
    agent = SoftmaxActorCritic.pendulum_reference()
    scaled = avgreward.train(
        TransformReward(gymnasium.make(PENDULUM), lambda r: 1000 * r), agent, 2_000, 0)
    plain = avgreward.train(PENDULUM, agent, 2_000, 0)
    assert not np.array_equal(scaled.rewards, plain.rewards)
    # Same start, same first action (the stepwise path agrees with the fused loop
    # on a deterministic environment): the first reward is scaled, nothing else.
    assert scaled.rewards[0] == pytest.approx(1000 * plain.rewards[0], rel=1e-6)


@pytest.mark.parametrize("env_id, agent", [
    (PENDULUM, SoftmaxActorCritic.pendulum_reference()),
    ("avgreward/PendulumSwingUpContinuous-v0", avgreward.GaussianActorCritic.pendulum_default()),
])
def test_a_wrapper_that_changes_nothing_changes_nothing(env_id, agent):
    """Through its wrappers our environment keeps its features and its (unsquashed) actor."""
    wrapped = avgreward.train(TransformReward(gymnasium.make(env_id), lambda r: r), agent,
                              5_000, 0)
    plain = avgreward.train(env_id, agent, 5_000, 0)
    assert "terminations" in wrapped.info  # the Python-stepped path ...
    np.testing.assert_array_equal(wrapped.rewards, plain.rewards)  # ... the same numbers
    for name, weights in plain.weights.items():
        np.testing.assert_array_equal(wrapped.weights[name], weights)


def test_gymnasium_make_of_our_environment_still_runs_the_fused_loop():
    agent = SoftmaxActorCritic.pendulum_reference()
    made = avgreward.train(gymnasium.make(PENDULUM), agent, 2_000, 0)
    plain = avgreward.train(PENDULUM, agent, 2_000, 0)
    np.testing.assert_array_equal(made.rewards, plain.rewards)
    assert "terminations" not in made.info  # the fused loop's result


def test_other_wrappers_of_meaning_are_kept_too():
    agent = SoftmaxActorCritic.pendulum_reference()
    limited = avgreward.train(gymnasium.make(PENDULUM, max_episode_steps=100), agent, 1_000, 0)
    assert limited.info["truncations"].tolist() == list(range(99, 1_000, 100))
    shifted = avgreward.train(
        TransformObservation(gymnasium.make(PENDULUM), lambda o: o * 0.5,
                             gymnasium.make(PENDULUM).observation_space),
        agent, 1_000, 0)
    plain = avgreward.train(PENDULUM, agent, 1_000, 0)
    assert not np.array_equal(shifted.rewards, plain.rewards)


def test_a_wrapper_the_python_path_cannot_run_is_refused_by_name(tmp_path):
    env = TransformReward(gymnasium.make("avgreward/LoopMDP-v0"), lambda r: 2 * r)
    agent = avgreward.default_agent("avgreward/LoopMDP-v0")
    with pytest.raises(ValueError, match="LoopMDP-v0 wrapped in TransformReward"):
        avgreward.train(env, agent, 100, 0)
    with pytest.raises(ValueError, match="wrapped in TransformReward"):
        resolve_env(env)
    with pytest.raises(ValueError, match="wrapped in TransformReward"):
        run_experiment(tmp_path / "e", env, agent, 1, 100)


def test_env_info_of_our_and_gymnasium_ids():
    assert env_info("CartPole-v1") == avgreward.training.EnvInfo("CartPole-v1", False, 2, 4)
    assert env_info(PENDULUM) == avgreward.training.EnvInfo(PENDULUM, True, 3, 2)
    with pytest.raises(ValueError, match="not a 1-D Box"):
        env_info("FrozenLake-v1")
    with pytest.raises(ValueError, match="Nope-v3"):
        env_info("Nope-v3")


def test_a_constant_reward_is_warned_about_once():
    with pytest.warns(ConstantRewardWarning, match="every reward of CartPole-v1 was 1"):
        avgreward.train("CartPole-v1", CARTPOLE_AGENT, 500, 0, bounds=CARTPOLE_BOUNDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConstantRewardWarning)
        avgreward.train("avgreward/CartPoleFailurePenalty-v1", CARTPOLE_AGENT, 500, 0,
                        bounds=CARTPOLE_BOUNDS)


def test_failure_penalty_marks_the_falls_only():
    env = FailurePenalty(gymnasium.make("CartPole-v1", max_episode_steps=10), penalty=1.0)
    env.reset(seed=0)
    rewards, ends = [], []
    for _ in range(60):
        _, reward, terminated, truncated, _ = env.step(1)  # always push right: it falls
        rewards.append(reward)
        ends.append("fall" if terminated else "limit" if truncated else "")
        if terminated or truncated:
            env.reset()
    assert "fall" in ends
    for reward, end in zip(rewards, ends):
        assert reward == (0.0 if end == "fall" else 1.0)
    run = avgreward.train("avgreward/CartPoleFailurePenalty-v1", CARTPOLE_AGENT, 1_000, 0,
                          bounds=CARTPOLE_BOUNDS)
    falls = run.info["terminations"]
    assert falls.size > 0 and np.all(run.rewards[falls] == 0.0)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_runner_takes_gymnasium_ids_with_resume_and_the_same_numbers(tmp_path, caplog,
                                                                          workers):
    out = tmp_path / "cartpole"
    agents = [CARTPOLE_AGENT, CARTPOLE_AGENT.replace(alpha_theta=2**-3)]
    exp = run_experiment(out, "avgreward/CartPoleFailurePenalty-v1", agents, 2, 3_000,
                         bounds=CARTPOLE_BOUNDS, workers=workers, bin_size=1)
    assert len(exp.runs) == 4 and not exp.failed
    alone = avgreward.train("avgreward/CartPoleFailurePenalty-v1", agents[1], 3_000, 1,
                            bounds=CARTPOLE_BOUNDS)
    np.testing.assert_array_equal(exp.result(1, 1).rewards, alone.rewards)
    np.testing.assert_array_equal(exp.result(1, 1).weights["theta"], alone.weights["theta"])
    config = json.loads((out / "experiment.json").read_text())
    assert config["env"] == "avgreward/CartPoleFailurePenalty-v1"
    # Resume: nothing to run, nothing changed; the features are part of the settings.
    before = {p.name: p.read_bytes() for p in (out / "runs").iterdir()}
    run_experiment(out, "avgreward/CartPoleFailurePenalty-v1", agents, 2, 3_000,
                   bounds=CARTPOLE_BOUNDS, workers=workers, bin_size=1)
    assert {p.name: p.read_bytes() for p in (out / "runs").iterdir()} == before
    with pytest.raises(ValueError, match="features"):
        run_experiment(out, "avgreward/CartPoleFailurePenalty-v1", agents, 2, 3_000,
                       bounds=([-3, -3, -0.21, -3.5], [3, 3, 0.21, 3.5]), bin_size=1)
    assert load_experiment(out).finished_seeds(0) == [0, 1]

    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        run_experiment(tmp_path / "constant", "CartPole-v1", CARTPOLE_AGENT, 2, 500,
                       bounds=CARTPOLE_BOUNDS, workers=workers)
    assert caplog.text.count("every reward of CartPole-v1 was 1") == 1


def test_the_command_line_runs_and_plots_a_gymnasium_id(tmp_path, capsys):
    out = tmp_path / "cp"
    bounds = "--bounds=-2.4:2.4,-3:3,-0.21:0.21,-3.5:3.5"
    code = avgreward.cli.main(["run", "CartPole-v1", "--steps", "1000", "--seeds", "2",
                               "--workers", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--bounds=LOW:HIGH" in err and len(err.strip().splitlines()) == 1
    code = avgreward.cli.main(["run", "CartPole-v1", "--steps", "1000", "--seeds", "2",
                               "--workers", "1", "--out", str(out), "--quiet", bounds])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == str(out)
    assert captured.err.strip() == ("avgreward run: warning: " + avgreward.training.
                                    constant_reward_message("CartPole-v1", 1.0))
    code = avgreward.cli.main(["plot", str(out), "--out", str(tmp_path / "cp.png")])
    assert code == 0 and (tmp_path / "cp.png").stat().st_size > 0
    code = avgreward.cli.main(["run", "pendulum", "--steps", "100", "--seeds", "1",
                               "--out", str(tmp_path / "p"), bounds])
    assert code == 2 and "--bounds applies to gymnasium" in capsys.readouterr().err


def test_binned_runs_count_episode_ends_per_bin():
    """Memory must not grow with steps on this path either."""
    run = avgreward.train("avgreward/CartPoleFailurePenalty-v1", CARTPOLE_AGENT, 3_000, 0,
                          bounds=CARTPOLE_BOUNDS)
    binned = avgreward.train("avgreward/CartPoleFailurePenalty-v1", CARTPOLE_AGENT, 3_000, 0,
                             bounds=CARTPOLE_BOUNDS, bin_size=100)
    for key in ("terminations", "truncations"):
        assert binned.info[key].shape == (30,)
        np.testing.assert_array_equal(binned.info[key],
                                      np.bincount(run.info[key] // 100, minlength=30))
    assert binned.info["terminations"].sum() > 0


def test_settings_train_refuses_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    squashed = avgreward.GaussianActorCritic.pendulum_default(squash=True)
    for workers in (1, 2):
        with pytest.raises(ValueError, match="agent 0: agent: squash=True is for the"):
            run_experiment(tmp_path / "e", "avgreward/PendulumSwingUpContinuous-v0", squashed,
                           2, 100, workers=workers)
    monkeypatch.setattr(avgreward.run_arrays, "_available_memory", lambda: 10**5)  # bytes
    with pytest.raises(ValueError, match="agent 0: the run's arrays would need .*fewer features"):
        run_experiment(tmp_path / "e", PENDULUM, SoftmaxActorCritic.pendulum_reference(), 2, 100)
    assert not (tmp_path / "e").exists()


def test_what_a_run_warns_is_recorded_and_said_once_named_by_the_run(tmp_path, caplog):
    runaway = avgreward.GaussianActorCritic(alpha_w=2**-1, alpha_mu=2**4, alpha_sigma=2**-10,
                                           alpha_rbar=2**-8, scale_mean_gradient=True,
                                           squash=False)
    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        exp = run_experiment(tmp_path / "e", "Pendulum-v1", runaway, 2, 8_000, workers=2)
    said = [r.getMessage() for r in caplog.records if "RuntimeWarning" in r.getMessage()]
    recorded = {r.seed: r.record["warnings"] for r in exp.runs}
    assert recorded[0] and "mean of the Gaussian" in recorded[0][0]
    # The two workers finish in either order: compare what was said, not when.
    assert sorted(said) == sorted(f"run a000-s{seed:04d}: {text}" for seed in (0, 1)
                                  for text in recorded[seed])


def test_the_command_line_wants_one_bound_per_dimension(tmp_path, capsys):
    code = avgreward.cli.main(["run", "CartPole-v1", "--bounds=-2.4:2.4", "--steps", "100",
                               "--seeds", "1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--bounds gives 1 interval(s)" in err and "4 dimensions" in err


_USER_MODULE = '''
import gymnasium, numpy as np
from gymnasium import spaces

class TaskEnv(gymnasium.Env):
    """Action 1 moves to x = 1, which pays 1 a step; action 0 to x = 0, which pays 0."""
    def __init__(self):
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.x = 0.0
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.0
        return np.array([self.x]), {}
    def step(self, action):
        self.x = 1.0 if action == 1 else 0.0
        return np.array([self.x]), self.x, False, False, {}

gymnasium.register("my/Task-v0", entry_point="my_tasks:TaskEnv")
'''


def test_a_users_own_environment_by_module_and_id(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_tasks.py").write_text(_USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    out = tmp_path / "exp"
    code = avgreward.cli.main(["run", "my_tasks:my/Task-v0", "--steps", "3000", "--seeds", "2",
                               "--workers", "1", "--out", str(out), "--quiet",
                               "--set", "alpha_w=0.1", "--set", "alpha_theta=0.1",
                               "--set", "alpha_rbar=0.01"])
    assert code == 0, capsys.readouterr().err
    exp = load_experiment(out)
    assert exp.env_id == "my_tasks:my/Task-v0" and exp.agents == [agent]
    assert np.all(exp.final_performance(0) > 0.95)  # it learned to stay at x = 1
    code = avgreward.cli.main(["run", "no_such_module:my/Task-v0", "--steps", "10", "--seeds",
                               "1", "--out", str(tmp_path / "x")])
    assert code == 2 and "cannot import 'no_such_module'" in capsys.readouterr().err
