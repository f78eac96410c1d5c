"""Every script in scripts/ runs on a tiny budget, says where it wrote, and writes its figures."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Slow: runs every script on a tiny budget, each in its own process.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

# script, tiny-budget flags, files it must write into --out
SCRIPTS = [
    ("swingup_softmax.py", ["--seeds", "2", "--steps", "2000", "--gif-steps", "30"],
     ["learning_curve.png", "exponential_average.png", "policy_map.png", "value_map.png",
      "swingup.gif"]),
    ("swingup_gaussian.py", ["--seeds", "2", "--steps", "2000", "--gif-steps", "30"],
     ["learning_curve.png", "exponential_average.png", "policy_map.png", "value_map.png",
      "swingup.gif"]),
    ("loop_mdp.py", ["--seeds", "2", "--steps", "2000"], ["loop_mdp.png"]),
    ("aliased_gridworld.py", ["--seeds", "2", "--steps", "2000"], ["gridworld.png"]),
    ("sensitivity.py", ["--seeds", "2", "--steps", "1000", "--actor", "-2", "0",
                        "--critic", "1"], ["sensitivity.png"]),
    ("pendulum_v1.py", ["--seeds", "2", "--steps", "2000"], ["pendulum_v1.png"]),
    ("parallel_actors.py", ["--seeds", "2", "--steps", "2000", "--actors", "1", "4"],
     ["parallel_actors.png"]),
    ("access_control.py", ["--seeds", "2", "--steps", "20000"], ["access_control.png"]),
    ("wan2021_control.py", ["--quick"], ["wan2021_control.png"]),
]


def _run(script, *args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.parametrize("script, flags, files", SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_script_runs_on_a_tiny_budget(script, flags, files, tmp_path):
    out = tmp_path / "out"
    done = _run(script, *flags, "--workers", "1", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"results in {re.escape(str(out))}/", done.stdout), done.stdout
    assert (out / "experiment.json").is_file()  # the runs are on disk, resumable
    for name in files:
        path = out / name
        assert path.stat().st_size > 5_000, name
        with Image.open(path) as image:
            assert min(image.size) >= 200
            if name.endswith(".gif"):
                assert image.n_frames > 5


def test_rerunning_a_script_reuses_its_runs(tmp_path):
    flags = ["--seeds", "1", "--steps", "500", "--workers", "1", "--out", str(tmp_path / "o")]
    first = _run("loop_mdp.py", *flags, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = sorted((tmp_path / "o" / "runs").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = _run("loop_mdp.py", *flags, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in runs] == stamps  # nothing was run again
    assert again.stdout == first.stdout


def test_every_script_explains_itself(tmp_path):
    # One interpreter for all the --help pages: each would otherwise pay the imports.
    code = (
        "import contextlib, io, runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = [path, '--help']\n"
        "    text = io.StringIO()\n"
        "    with contextlib.redirect_stdout(text):\n"
        "        try:\n"
        "            runpy.run_path(path, run_name='__main__')\n"
        "        except SystemExit as stop:\n"
        "            assert stop.code == 0, (path, stop.code)\n"
        "    assert '--seeds' in text.getvalue() and '--out' in text.getvalue(), path\n"
        "    assert 'python scripts/' in text.getvalue(), path\n"
        "print('ok')\n"
    )
    scripts = [str(ROOT / "scripts" / s[0]) for s in SCRIPTS]
    done = subprocess.run([sys.executable, "-c", code, *scripts], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- scripts/kl_directions.py: exact fits and max-entropy control, no results folder ------


def test_kl_directions_script_draws_both_fits_and_the_temperature_sweep(tmp_path):
    out = tmp_path / "out"
    done = _run("kl_directions.py", "--quick", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # The forward fit matches P's moments; the reverse one sits on the right mode, narrow.
    assert "P: mean 0.571, sd 2.341" in done.stdout
    assert re.search(r"Gaussian, forward KL: mu 0\.5\d\d, sigma 2\.3\d\d", done.stdout)
    assert re.search(r"Gaussian, reverse KL: mu 2\.4\d\d, sigma 0\.8\d\d", done.stdout)
    assert len(re.findall(r"^beta [\d.]+: exact rate", done.stdout, re.M)) == 3
    assert f"results in {out}/" in done.stdout
    for name in ("kl_directions.png", "max_entropy.png"):
        path = out / name
        assert f"figure: {path}" in done.stdout
        assert path.stat().st_size > 5_000
        with Image.open(path) as image:
            assert min(image.size) >= 200


def test_kl_directions_script_refuses_a_bad_temperature_in_one_line(tmp_path):
    done = _run("kl_directions.py", "--temperatures", "1", "0", "--out", str(tmp_path / "o"),
                cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        "--temperatures must all be > 0, got (1.0, 0.0)")
    assert not (tmp_path / "o").exists()  # refused before anything was written
    helped = _run("kl_directions.py", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "python scripts/kl_directions.py" in helped.stdout


# --- scripts/contextual_bandits.py: regret against the exact optimum, no results folder ----


def test_contextual_bandits_script_draws_regret_and_squarecbs_growth(tmp_path):
    out = tmp_path / "out"
    done = _run("contextual_bandits.py", "--quick", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "optimal rate r* = 0.640318 (exact)" in done.stdout
    assert len(re.findall(r"regret after 5,000 steps [\d.]+ \[", done.stdout)) == 4
    assert len(re.findall(r"^SquareCB, T = [\d,]+: gamma", done.stdout, re.M)) == 3
    assert f"results in {out}/" in done.stdout
    for name in ("regret.png", "squarecb_growth.png"):
        path = out / name
        assert f"figure: {path}" in done.stdout
        assert path.stat().st_size > 5_000
        with Image.open(path) as image:
            assert min(image.size) >= 200
    refused = _run("contextual_bandits.py", "--seeds", "1", "--out", str(tmp_path / "o"),
                   cwd=tmp_path)
    assert refused.returncode == 2 and "--seeds must be >= 2" in refused.stderr
    assert not (tmp_path / "o").exists()


# --- scripts/custom_env.py: an environment declared by the user ---------------------------

CUSTOM_ENV = ROOT / "scripts" / "custom_env.py"


@pytest.fixture(scope="module")
def custom_env():
    """scripts/custom_env.py imported by path, as a user (or the benchmark) would."""
    import importlib.util

    name = "custom_env"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CUSTOM_ENV)
    module = importlib.util.module_from_spec(spec)
    # In sys.modules before it runs, as `import` does: numba's cache of the
    # kernels compiled with its functions finds their module by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_custom_env_script_runs_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    done = _run("custom_env.py", "--seeds", "2", "--steps", "2000", "--out", str(out),
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "optimal (exact, best of 64 policies)" in done.stdout
    assert f"figure: {out / 'riverswim.png'}" in done.stdout
    path = out / "riverswim.png"
    assert path.stat().st_size > 5_000
    with Image.open(path) as image:
        assert min(image.size) >= 200


def test_custom_env_script_explains_itself(tmp_path):
    done = _run("custom_env.py", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for text in ("--seeds", "--steps", "--out", "python scripts/custom_env.py", "Osband"):
        assert text in done.stdout


def test_importing_the_script_declares_riverswim_without_running_it(custom_env, tmp_path):
    import gymnasium

    import avgreward
    from avgreward.environments import resolve_env

    assert gymnasium.spec("RiverSwim-v0").max_episode_steps is None
    assert custom_env.RiverSwimEnv.fused is custom_env.RIVERSWIM
    # Registered by whichever import came first (this one, or the benchmark's).
    env_id, cls = resolve_env("RiverSwim-v0")
    assert cls.fused.name == "RiverSwim" and cls.fused.random_step
    assert avgreward.default_features("RiverSwim-v0") == avgreward.one_hot(6)
    assert not list(tmp_path.iterdir())  # and wrote nothing


def test_riverswim_simulator_agrees_with_its_exact_model(custom_env):
    import gymnasium

    model = custom_env.riverswim_model()
    assert model.P.shape == (6, 2, 6) and model.R.shape == (6, 2)
    env = gymnasium.make("RiverSwim-v0")
    obs, _ = env.reset(seed=0)
    start = np.flatnonzero(model.start)
    assert len(start) == 1 and np.array_equal(obs, model.observations[start[0]])
    # Every (state, action) from a set state, many times: the empirical
    # transition frequencies must match P within 0.02 (4 standard errors at
    # n = 10,000 and p = 1/2, the widest), less than any model error worth
    # the name (the end states' 0.4 / 0.6 swapped, 0.05 for 0.1...).
    n = 10_000
    for s in range(6):
        for a in range(2):
            counts = np.zeros(6)
            for _ in range(n):
                env.unwrapped.state[0] = float(s)
                obs, reward, terminated, truncated, _ = env.step(a)
                s_next = int(obs[0])
                counts[s_next] += 1
                assert reward == model.R[s, a]  # state-action rewards: exact
                assert not terminated and not truncated
                assert np.array_equal(obs, model.observations[s_next])
            np.testing.assert_allclose(counts / n, model.P[s, a], rtol=0, atol=0.02,
                                       err_msg=f"state {s}, action {a}")
            # And no outcome the model says is impossible.
            assert np.all(counts[model.P[s, a] == 0] == 0), (s, a)
    env.close()


def test_riverswim_fused_loop_equals_the_plain_python_reference(custom_env):
    import avgreward
    from avgreward.reference import reference_train

    agent = avgreward.SoftmaxActorCritic(alpha_w=0.3, alpha_theta=0.5, alpha_rbar=0.01)
    # An odd chunk size makes the loop cross chunk boundaries mid-run.
    result = avgreward.train("RiverSwim-v0", agent, 600, seed=3, record_actions=True,
                             chunk_steps=77)
    ref = reference_train("RiverSwim-v0", agent, 600, seed=3)
    assert np.array_equal(result.rewards, ref["rewards"].astype(np.float32))  # bit for bit
    np.testing.assert_array_equal(result.actions, ref["actions"])
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.weights["theta"], ref["theta"], rtol=0, atol=1e-9)
    # Both rewards and both actions occur, or the equality would prove little.
    assert set(np.unique(result.rewards)) >= {0.0, np.float32(0.005)}
    assert set(np.unique(result.actions)) == {0, 1}


def _relative_value_iteration(model, sweeps=20_000):
    """The optimal gain by relative value iteration (independent of avgreward.exact)."""
    h = np.zeros(model.n_states)
    for _ in range(sweeps):
        q = model.R + model.P @ h
        new = q.max(axis=1)
        gain = new[0]
        new = new - gain
        if np.max(np.abs(new - h)) < 1e-13:
            break
        h = new
    return gain


def test_the_scripts_settings_learn_riverswim_close_to_the_exact_optimum(custom_env):
    import avgreward
    from avgreward import exact

    model = custom_env.riverswim_model()
    _, optimal, random_rate = custom_env.exact_rates(model)
    # The optimum is right everywhere, 0.4286; relative value iteration agrees.
    assert optimal == pytest.approx(_relative_value_iteration(model), abs=1e-9)
    assert optimal == pytest.approx(0.42862, abs=1e-4)
    tolerance = 0.05 * optimal
    # A learner that learns nothing earns the random policy's rate; one that
    # settles on staying left earns 0.005: both far outside the tolerance.
    assert random_rate < optimal - 10 * tolerance
    agent = custom_env.agent_of(custom_env.Args())
    steps = 100_000
    for seed in range(3):
        result = avgreward.train("RiverSwim-v0", agent, steps, seed=seed, bin_size=1000)
        learned = exact.evaluate(model, exact.policy_on_states(model, result.policy))
        assert learned.reward_rate > optimal - tolerance, seed
        # What it earned over its last 20,000 steps (sampling noise: sd ~ 0.01).
        assert result.rewards[-20:].mean() > optimal - 2 * tolerance, seed


def test_short_corridor_reinforce_script_runs_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    done = _run("short_corridor_reinforce.py", "--seeds", "3", "--episodes", "40",
                "--exponents", "-12", "-13", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "best -11.657 at p = 0.586" in done.stdout
    assert done.stdout.count("total reward per episode over the last 10% of episodes") == 2
    assert (out / "short_corridor_reinforce.png").stat().st_size > 10_000
    assert (out / "experiment.json").is_file()  # the runs are on disk, resumable
    again = _run("short_corridor_reinforce.py", "--seeds", "3", "--episodes", "40",
                 "--exponents", "-12", "-13", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    strip = re.compile(r" in \d+\.\d s")  # all but the time taken is the same
    assert strip.sub("", again.stdout) == strip.sub("", done.stdout)


def test_short_corridor_baseline_script_runs_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    done = _run("short_corridor_baseline.py", "--seeds", "3", "--episodes", "40",
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "REINFORCE with baseline" in done.stdout and "best possible -11.66" in done.stdout
    assert (out / "short_corridor_baseline.png").stat().st_size > 10_000
    assert (out / "experiment.json").is_file()


def test_estimator_lab_script_runs_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    done = _run("estimator_lab.py", "--episodes", "2000", "--batch-size", "50",
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("GAE(0.97) (learned)") == 2  # both tasks' tables
    with open(out / "estimator_lab.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 22 and {r["task"] for r in rows} == {"gridworld", "corridor"}
    assert json.loads((out / "estimator_lab.json").read_text())["args"]["episodes"] == 2000
    assert (out / "estimator_lab.png").stat().st_size > 10_000
    bad = _run("estimator_lab.py", "--episodes", "10", cwd=tmp_path)
    assert bad.returncode == 2 and "--episodes must be at least two batches" in bad.stderr


def test_network_policy_lab_script_runs_quick(tmp_path):
    out = tmp_path / "out"
    done = _run("network_policy_lab.py", "--quick", "--batch-size", "50", "--out", str(out),
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ReLU network 16-8-4 (172 parameters)" in done.stdout
    assert done.stdout.count("GAE(0.97) (learned)") == 2  # both tasks' tables
    with open(out / "network_policy_lab.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 22 and {r["task"] for r in rows} == {"gridworld", "corridor"}
    record = json.loads((out / "network_policy_lab.json").read_text())
    assert record["args"]["episodes"] == 20_000
    natural = record["tasks"]["gridworld"]["natural_gradient"]
    assert natural["fisher_rank"] == 12 and natural["max_abs_F_w_minus_grad"] < 1e-10
    assert (out / "network_policy_lab.png").stat().st_size > 10_000
    bad = _run("network_policy_lab.py", "--hidden", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--hidden must be at least 1" in bad.stderr
    assert not (tmp_path / "results").exists()  # refused before writing anything


def test_importance_sampling_lab_script_runs_quick(tmp_path):
    out = tmp_path / "out"
    done = _run("importance_sampling_lab.py", "--quick", "--mixes", "0,0.5,1",
                "--wis-batches", "1,2,10", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "grad J = [-4.6667, 4.6667]" in done.stdout
    with open(out / "importance_sampling_lab.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 6 and {r["m"] for r in rows} == {"0.0", "0.5", "1.0"}
    record = json.loads((out / "importance_sampling_lab.json").read_text())
    assert record["args"]["episodes"] == 20_000
    assert record["behaviours"][0]["kl"] == 0.0 < record["behaviours"][2]["kl"]
    assert record["weighted_by_batch_size"]["batch_sizes"] == [1, 2, 10]
    assert (out / "importance_sampling_lab.png").stat().st_size > 10_000
    bad = _run("importance_sampling_lab.py", "--mixes", "0,2", cwd=tmp_path)
    assert bad.returncode == 2 and "--mixes must hold values in [0.0, 1.0]" in bad.stderr
    assert not (tmp_path / "results").exists()  # refused before writing anything


def test_natural_actor_critic_script_runs_quick(tmp_path):
    out = tmp_path / "out"
    done = _run("natural_actor_critic.py", "--quick", "--seeds", "2", "--points", "4",
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("final exact rate") == 4  # two learners on two tasks
    with open(out / "natural_actor_critic.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 * 4
    record = json.loads((out / "natural_actor_critic.json").read_text())
    assert record["tasks"]["loop MDP"]["optimum"] == pytest.approx(0.4)
    assert len(record["tasks"]["aliased gridworld"]["cos_natural"]) == 4
    assert (out / "natural_actor_critic.png").stat().st_size > 10_000
    bad = _run("natural_actor_critic.py", "--seeds", "1", cwd=tmp_path)
    assert bad.returncode == 2 and "--seeds must be at least 2" in bad.stderr
    assert not (tmp_path / "results").exists()  # refused before writing anything


def test_value_vs_policy_script_runs_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    done = _run("value_vs_policy.py", "--seeds", "2", "--steps", "3000", "--workers", "1",
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("gridworld", "loop"):
        assert (out / name / "experiment.json").is_file()  # resumable runs
    assert done.stdout.count("exact reward rate") == 8
    assert (out / "value_vs_policy.png").stat().st_size > 10_000
    helped = _run("value_vs_policy.py", "--help", cwd=tmp_path)
    assert "--seeds" in helped.stdout and "python scripts/" in helped.stdout


def test_reward_centering_script_runs_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    done = _run("reward_centering.py", "--seeds", "2", "--steps", "20000", "--every", "5000",
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("exact rate of the greedy policy") == 9
    with np.load(out / "reward_centering.npz") as data:
        assert data["gamma=0.999 TD-based centering"].shape == (2, 4)
    assert (out / "reward_centering.png").stat().st_size > 10_000
    bad = _run("reward_centering.py", "--every", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--every" in bad.stderr


def test_wan2021_prediction_script_runs_quick_and_refuses_bad_input(tmp_path):
    out = tmp_path / "out"
    done = _run("wan2021_prediction.py", "--quick", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("RMS error of centered values") == 2
    assert f"figure: {out / 'wan2021_prediction.png'}" in done.stdout
    with np.load(out / "wan2021_prediction.npz") as data:
        assert json.loads(str(data["settings"]))["seeds"] == 3
        assert data["steps"][-1] == 2_000 and data["reward_rate"] == pytest.approx(0.3)
        for label in ("differential TD, off-policy", "average-cost TD, on-policy"):
            errors = data[f"{label}: value error"]
            assert errors.shape == (3, 20)
            assert errors[:, -1].mean() < errors[:, 0].mean()  # it learns
    assert (out / "wan2021_prediction.png").stat().st_size > 10_000
    bad = _run("wan2021_prediction.py", "--left", "1", cwd=tmp_path)
    assert bad.returncode == 2 and "--left must lie in (0, 1)" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("wan2021_prediction.py: error:")
