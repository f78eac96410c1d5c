"""The benchmark runs, and the machinery the fused loop's speed rests on is exact.

No timing is asserted: on shared CI machines timings are noise.  The speed
itself is measured by ``scripts/bench.py`` (user guide, docs/source/guide/performance.md).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

import avgreward
from avgreward import bench
from avgreward import actors, critic, features
from avgreward.draws import load_state, next_double, next_uint64, standard_normal, store_state
from avgreward._vec4 import add4, axpy4, scale4, sum_rows4

# Slow: the benchmark on a tiny budget, and the C reference compiled.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick",
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "softmax swing-up" in run.stdout and "target" in run.stdout
    results = json.loads(out.read_text())
    assert results["quick"] is True
    names = [f["name"] for f in results["fused"]]
    assert names == ["softmax swing-up", "Gaussian swing-up, lambda 0",
                     "Gaussian swing-up, lambda 0.5", "loop MDP", "aliased gridworld",
                     "natural actor-critic, loop MDP"]
    for fused, python in zip(results["fused"], results["plain_python"]):
        assert fused["steps_per_s"] > 0 and fused["ns_per_step"] > 0
        assert python["steps_per_s"] > 0 and python["fused_over_python"] > 0
    seeds = results["many_seeds"]
    assert seeds["runs"] == 2 * seeds["workers"] and seeds["scaling"] > 0
    for label in ("cold", "warm"):
        assert results["startup"][label]["wall_s"] > 0
    experiment = results["experiment"]
    assert experiment["wall_s"] > 0 and experiment["results_mb"] > 0
    # The long run's memory is measured in full mode only.
    assert results["cli_memory"] is None and "full mode only" in run.stdout
    assert results["targets"]["CLI run 2 x 200M peak memory MB"]["met"] is None
    assert set(results["targets"]) == set(bench.TARGETS)
    assert all(t["measured"] is not None or t["met"] is None for t in results["targets"].values())
    # The C reference, side by side: figures, or None with the reason.
    c = results["c_reference"]
    assert [case["name"] for case in c["cases"]] == names[:3]
    assert "fused / C" in run.stdout
    fused = {f["name"]: f for f in results["fused"]}
    for case in c["cases"]:
        assert case["steps"] == fused[case["name"]]["steps"]
        assert case["repeats"] == fused[case["name"]]["repeats"]
        if bench.c_compiler() is None:
            assert case["steps_per_s"] is None and case["fused_over_c"] is None
            assert case["reason"] and c["reason"] and "n/a (" in run.stdout
        else:
            assert case["reason"] is None, case["reason"]
            assert case["steps_per_s"] > 0 and case["fused_over_c"] > 0
            assert -np.pi <= case["mean_reward"] <= 0.0
    assert (results["machine"]["c_compiler"] is None) == (bench.c_compiler() is None)
    # The main job: the script end to end (retrained, runs reused) and its parts.
    job = results["main_job"]
    assert job["reason"] is None, job["reason"]
    assert job["wall_s"] > 0 and job["reused_wall_s"] > 0
    assert list(job["parts_s"]) == ["start-up and imports", "training", "learning curve",
                                    "exponential average", "policy map", "value map", "GIF"]
    assert all(seconds > 0 for seconds in job["parts_s"].values())
    assert results["targets"]["main job end to end, warm s"]["measured"] == job["wall_s"]
    assert "main job (scripts/swingup_softmax.py" in run.stdout


def test_cli_memory_measures_the_process_tree_of_avgreward_run():
    # A tiny run of the measured command: it must work, and be reported.
    out = bench._cli_memory("loop", 2_000, 2, 2)
    assert out["command"] == "avgreward run loop --steps 2000 --seeds 2 --workers 2 --out DIR --quiet"
    assert out["wall_s"] > 0
    assert out["peak_memory_mb"] is None or out["peak_memory_mb"] > 1
    command = bench.cli_memory_command("DIR")
    assert command[1:4] == ["-m", "avgreward.cli", "run"] and "200000000" in command


# --- the C reference does the package's work --------------------------------------------


@pytest.fixture(scope="module")
def c_reference(tmp_path_factory):
    if bench.c_compiler() is None:
        pytest.skip("no C compiler found ($CC, cc, gcc)")
    executable, flags, reason = bench.compile_c_reference(tmp_path_factory.mktemp("c"))
    assert executable is not None, reason
    return executable


def _c_lines(executable, mode, rows):
    """Feed ``rows`` to the C program's stdin mode; its output lines, split."""
    text = "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in rows)
    run = subprocess.run([str(executable), mode], input=text, capture_output=True, text=True,
                         check=True, timeout=60)
    lines = [line.split() for line in run.stdout.splitlines()]
    assert len(lines) == len(rows)
    return lines


def test_c_tiles_are_the_packages_tile_coder(c_reference):
    rng = np.random.default_rng(0)
    pi = np.pi
    random_points = np.column_stack([rng.uniform(-pi, pi, 300), rng.uniform(-7.0, 7.0, 300)])
    # Tile boundaries (where a rounding difference would show), the wrap, and
    # speeds beyond the clip range on both sides.
    k = np.arange(0, 257, 3)
    boundaries = np.column_stack([-pi + k * (2 * pi / 256), -2 * pi + k * (4 * pi / 256)])
    edges = np.array([[-pi, 0.0], [pi - 1e-12, 0.0], [-pi, -2 * pi], [pi - 1e-12, 2 * pi],
                      [0.0, 2 * pi + 1e-9], [0.0, -2 * pi - 1e-9], [1.0, 50.0], [-1.0, -50.0],
                      [pi, 0.0], [3 * pi + 0.1, 1.0], [-7.5, -1.0], [0.0, 0.0]])
    points = np.vstack([random_points, boundaries, edges])
    indices = np.array(_c_lines(c_reference, "tiles", points), dtype=np.int64)
    coder = features.pendulum_tile_coder()
    np.testing.assert_array_equal(indices, coder.indices_batch(points))
    for point, row in zip(edges, indices[-len(edges):]):
        np.testing.assert_array_equal(row, coder.indices(point))
    # The argument form agrees with the stdin form.
    run = subprocess.run([str(c_reference), "tiles", repr(pi - 1e-12), "-20"],
                         capture_output=True, text=True, check=True)
    assert [int(v) for v in run.stdout.split()] == list(coder.indices([pi - 1e-12, -20.0]))


def test_c_step_is_the_packages_pendulum(c_reference):
    from avgreward.envs.pendulum import MAX_SPEED, pendulum_step_torque

    rng = np.random.default_rng(1)
    pi = np.pi
    n = 300
    states = np.column_stack([rng.uniform(-pi, pi, n), rng.uniform(-MAX_SPEED, MAX_SPEED, n)])
    torques = np.concatenate([rng.choice([-1.0, 0.0, 1.0], n // 2), rng.uniform(-5, 5, n - n // 2)])
    # Across the wrap both ways, and fast enough to restart hanging down.
    extra = [[pi - 1e-3, 5.0, 1.0], [-pi, -5.0, -1.0], [-pi + 1e-3, -6.0, -3.0],
             [0.5, MAX_SPEED - 1e-3, 3.0], [-0.5, -MAX_SPEED + 1e-3, -3.0], [-pi, 0.0, 0.0]]
    rows = np.vstack([np.column_stack([states, torques]), extra])
    out = np.array(_c_lines(c_reference, "step", rows), dtype=np.float64)
    expected = np.empty_like(out)
    for i, (beta, betadot, torque) in enumerate(rows):
        nxt = np.empty(2)
        reward = pendulum_step_torque(np.array([beta, betadot]), torque, nxt)
        expected[i] = nxt[0], nxt[1], reward
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    wrapped = np.abs(expected[:, 0] - rows[:, 0]) > pi
    restarted = (expected[:, 0] == -pi) & (expected[:, 1] == 0.0) & (rows[:, 1] != 0.0)
    assert wrapped.any() and restarted.any()


@pytest.mark.parametrize("args, agent", [
    (["softmax", "200000", "1"], avgreward.SoftmaxActorCritic.pendulum_reference()),
    (["gaussian", "200000", "1", "0"], avgreward.GaussianActorCritic.pendulum_default()),
    (["gaussian", "50000", "1", "0.5"],
     avgreward.GaussianActorCritic.pendulum_default(lambda_w=0.5, lambda_theta=0.5)),
])
def test_c_runs_learn_the_swing_up_with_the_packages_settings(c_reference, args, agent):
    run = subprocess.run([str(c_reference), *args], capture_output=True, text=True, check=True,
                         timeout=60)
    out = json.loads(run.stdout)
    assert out["steps"] == out["steps_asked"] == int(args[1])
    assert out["seconds"] > 0 and out["steps_per_s"] > 0
    assert np.isfinite(out["mean_reward"]) and np.isfinite(out["rbar"])
    # Hanging down is -pi and a random policy about -1.6; both runs learn to
    # swing up and balance within these steps, as the package does.
    assert -0.5 < out["mean_reward"] <= 0.0 and -0.5 < out["rbar"] <= 0.0
    expected = {k: v for k, v in agent.to_dict().items() if k not in ("kind", "entropy")}
    assert out["settings"] == expected


def test_no_compiler_gives_none_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert bench.c_compiler() is None
    c = bench._c_reference(1000, 1)
    assert [case["steps_per_s"] for case in c["cases"]] == [None] * 3
    assert all("no C compiler" in case["reason"] for case in c["cases"])
    assert all("n/a (no C compiler" in line for line in bench._c_table(c)[1:])


def test_a_failed_compile_gives_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "false")  # found, fails at everything
    if bench.c_compiler() is None:
        pytest.skip("no `false` on PATH")
    executable, flags, reason = bench.compile_c_reference(tmp_path)
    assert executable is None and flags is None and reason.startswith("compile failed")


# --- in-line PCG64: numpy's stream, draw for draw ---------------------------------------


@njit
def _draws(words, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = next_double(words)
    return out


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 7])
def test_inline_pcg64_draws_numpys_numbers_and_hands_the_state_back(seed):
    rng = np.random.default_rng(seed)
    reference = np.random.default_rng(seed)
    rng.random(3), reference.random(3)
    words = load_state(rng)
    np.testing.assert_array_equal(_draws(words, 10_000), reference.random(10_000))
    store_state(rng, words)
    # The generator continues as if it had drawn them itself, for any distribution.
    assert rng.standard_normal() == reference.standard_normal()
    assert rng.integers(1000) == reference.integers(1000)


@njit
def _raw_and_normals(words, n):
    raw = np.empty(n, np.uint64)
    normal = np.empty(n)
    for i in range(n):
        raw[i] = next_uint64(words)
        normal[i] = standard_normal(words)
    return raw, normal


def test_inline_ziggurat_draws_numpys_normals():
    # numpy's ziggurat: ~1 % of draws take the rejection step and ~1 in 3,000
    # the tail beyond r = 3.654; 200,000 draws visit both many times.
    rng = np.random.default_rng(7)
    reference = np.random.default_rng(7)
    words = load_state(rng)
    raw, normal = _raw_and_normals(words, 200_000)
    expected_raw, expected_normal = [], []
    for _ in range(200_000):
        expected_raw.append(reference.bit_generator.random_raw())
        expected_normal.append(reference.standard_normal())
    np.testing.assert_array_equal(raw, np.array(expected_raw, dtype=np.uint64))
    np.testing.assert_array_equal(normal, expected_normal)
    assert np.sum(np.abs(normal) > 3.6541528853610087) > 20
    store_state(rng, words)
    assert rng.random() == reference.random()


def test_inline_pcg64_refuses_other_bit_generators():
    with pytest.raises(TypeError, match="PCG64"):
        load_state(np.random.Generator(np.random.MT19937(0)))


# --- 4-wide row operations: exactly the scalar arithmetic -------------------------------


@njit
def _vector_ops(a, b, idx, out):
    add4(a, 4, 1.5, -2.0, 0.25, 3.0)
    axpy4(a, 8, b, 0, 0.1, 0.2, 0.3, 0.4)
    zero = scale4(a, 12, 0.0, 0.0, 0.0, 0.0)
    nonzero = scale4(a, 0, 0.5, 0.5, 0.5, 0.0)
    for c in range(0, 8, 4):
        sum_rows4(b, 8, idx, c, out)
    return zero, nonzero


def _ordered(values):
    s = [0.0] * 4
    for j, v in enumerate(values):
        s[j % 4] = s[j % 4] + v
    return (s[0] + s[1]) + (s[2] + s[3])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 32, 33])
def test_vector_row_operations_equal_the_scalar_ones(k):
    rng = np.random.default_rng(k)
    a = rng.standard_normal(16)
    b = rng.standard_normal(40 * 8)
    idx = rng.integers(0, 40, k)
    out = np.zeros(8)
    expected = a.copy()
    expected[4:8] += np.array([1.5, -2.0, 0.25, 3.0])
    expected[8:12] += np.array([0.1, 0.2, 0.3, 0.4]) * b[0:4]
    expected[12:16] *= 0.0
    expected[0:4] *= np.array([0.5, 0.5, 0.5, 0.0])
    zero, nonzero = _vector_ops(a, b, idx, out)
    np.testing.assert_array_equal(a, expected)
    assert zero and not nonzero
    rows = b.reshape(40, 8)
    np.testing.assert_array_equal(out, [_ordered(rows[idx, c]) for c in range(8)])


def test_every_sum_over_active_features_uses_the_same_order():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((50, 3))
    for k in (1, 3, 6, 32):
        idx = rng.choice(50, k, replace=False).astype(np.int64)
        assert critic.linear_value(theta[:, 0].copy(), idx) == _ordered(theta[idx, 0])
        for b in range(3):
            assert critic.column_value(theta, idx, b) == _ordered(theta[idx, b])


# --- the three-action fast path: the general kernel's numbers, bit for bit --------------


@njit
def _three_action_helpers(h, tau, u, action):
    p0, p1, p2 = actors.softmax3(h[0], h[1], h[2], tau)
    c0, c1, c2 = actors.softmax3_score(p0, p1, p2, action, tau)
    return np.array([p0, p1, p2]), actors.sample3(p0, p1, u), np.array([c0, c1, c2])


@njit
def _general_helpers(h, tau, u, action):
    probs = np.zeros(3)
    coef = np.zeros(3)
    actors.softmax_of_preferences(h, 0, tau, probs)
    actors.softmax_score(probs, action, tau, coef)
    return probs, actors.sample_discrete(probs, u), coef


def test_three_action_helpers_equal_the_array_ones():
    rng = np.random.default_rng(3)
    cases = [rng.normal(scale=s, size=3) for s in (1e-3, 1.0, 30.0, 800.0) for _ in range(50)]
    cases += [np.array(h, float) for h in ([0, 0, 0], [1, 1, 0], [0, 2, 2], [-1, 5, 5], [7, 7, 7])]
    for h in cases:
        for tau in (1.0, 0.3, 7.0):
            u, action = rng.random(), int(rng.integers(3))
            fast = _three_action_helpers(h, tau, u, action)
            general = _general_helpers(h, tau, u, action)
            np.testing.assert_array_equal(fast[0], general[0])
            assert fast[1] == general[1]
            np.testing.assert_array_equal(fast[2], general[2])


@pytest.mark.parametrize("changes, chunk", [({}, 1 << 18), ({"tau": 0.4}, 997)])
def test_three_action_path_equals_the_general_kernel(monkeypatch, changes, chunk):
    agent = avgreward.SoftmaxActorCritic.pendulum_reference(**changes)
    from avgreward.learners import actor_critic

    assert actor_critic._three_action_path(np.zeros((1, 3)), agent.lambda_w, agent.lambda_theta,
                                   agent.entropy)
    fast = avgreward.train("avgreward/PendulumSwingUp-v0", agent, 30_000, seed=4,
                           chunk_steps=chunk, record_actions=True)
    monkeypatch.setattr(actor_critic, "_three_action_path", lambda *args: False)
    general = avgreward.train("avgreward/PendulumSwingUp-v0", agent, 30_000, seed=4,
                              chunk_steps=chunk, record_actions=True)
    np.testing.assert_array_equal(fast.rewards, general.rewards)
    np.testing.assert_array_equal(fast.actions, general.actions)
    np.testing.assert_array_equal(fast.rbar, general.rbar)
    for name in ("w", "theta"):
        np.testing.assert_array_equal(fast.weights[name], general.weights[name])


# --- the hot kernels keep no reference counting -------------------------------------------


@pytest.mark.parametrize("kernel, args", [
    (features.tile_indices,
     (np.zeros(2), *features.pendulum_tile_coder().kernel_args(), np.zeros(32, np.int64))),
    (critic.row_sums, (np.zeros(40), 4, np.arange(3), np.zeros(4))),
    (critic.column_sum, (np.zeros(40), 4, np.arange(3), 0)),
    (critic.linear_value, (np.zeros(10), np.arange(3))),
    (actors.softmax_probabilities, (np.zeros((10, 3)), np.arange(3), 1.0, np.zeros(3))),
    (actors.gaussian_parameters, (np.zeros((10, 2)), np.arange(3), 0.1)),
    (critic.add_rows, (np.zeros(40), 4, np.arange(3), np.zeros(4))),
    (critic.decay_traces, (np.zeros(40), 4, np.zeros(4), np.zeros(10, np.int64), 0,
                           np.full(10, -1))),
    (critic.accumulate_rows, (np.zeros(40), 4, np.arange(3), np.zeros(4),
                              np.zeros(10, np.int64), 0, np.full(10, -1))),
    (critic.apply_traces, (np.zeros(40), np.zeros(40), 4, np.zeros(4), np.zeros(10, np.int64), 0)),
    (actors.softmax_of_preferences, (np.zeros(4), 1, 1.0, np.zeros(3))),
    (actors.softmax_score, (np.full(3, 1 / 3), 1, 1.0, np.zeros(3))),
    (actors.sample_discrete, (np.full(3, 1 / 3), 0.5)),
    (actors.softmax3, (0.1, 0.2, 0.3, 1.0)),
    (actors.sample3, (0.3, 0.3, 0.5)),
    (actors.softmax3_score, (0.2, 0.3, 0.5, 1, 1.0)),
    (critic.add_row_block, (np.zeros(40), 4, np.arange(3), 0, 1.0, 2.0, 3.0, 4.0)),
])
def test_per_step_kernels_keep_no_reference_counting(kernel, args):
    # Reference counts are atomic operations that would drain the store buffer on
    # every step.  Numba prunes them only when a function has no exception paths,
    # hence error_model="numpy" on these kernels.  (Compiled afresh: numba cannot
    # show the machine code of a cached function.)
    fresh = njit(error_model="numpy")(kernel.py_func)
    fresh(*args)
    body = fresh.inspect_asm(fresh.signatures[0]).split(".Lfunc_end0")[0]
    assert "NRT_incref" not in body and "NRT_decref" not in body


def test_sparse_traces_continue_exactly_across_chunks():
    # The live-trace list is rebuilt from the traces at each call: cutting a
    # long-trace run into small chunks must not change a bit.
    agent = avgreward.SoftmaxActorCritic.pendulum_reference(lambda_w=0.9, lambda_theta=0.95)
    whole = avgreward.train("avgreward/PendulumSwingUp-v0", agent, 4000, seed=2)
    chunked = avgreward.train("avgreward/PendulumSwingUp-v0", agent, 4000, seed=2,
                              chunk_steps=13)
    np.testing.assert_array_equal(whole.rewards, chunked.rewards)
    np.testing.assert_array_equal(whole.weights["w"], chunked.weights["w"])
    np.testing.assert_array_equal(whole.weights["theta"], chunked.weights["theta"])


# --- a user-declared environment against a built-in one ---------------------------------


def test_user_declared_rows_measure_riverswim_and_the_loop_mdp_side_by_side():
    out = bench._user_declared(5_000, 2)
    assert out["reason"] is None, out["reason"]
    names = [case["name"] for case in out["cases"]]
    assert names == ["RiverSwim (user-declared)", "loop MDP (built-in)"]
    assert [case["env"] for case in out["cases"]] == ["RiverSwim-v0", "avgreward/LoopMDP-v0"]
    assert all(case["steps_per_s"] > 0 and case["ns_per_step"] > 0 for case in out["cases"])
    assert out["ratio"] > 0 and "one more uniform random number" in out["note"]
    table = "\n".join(bench._declared_table(out))
    assert "RiverSwim (user-declared)" in table and "ratio RiverSwim / loop MDP" in table


def test_main_job_row_is_skipped_with_a_note_without_the_script(tmp_path):
    out = bench._main_job(1, script=tmp_path / "swingup_softmax.py")
    assert out["wall_s"] is None and out["parts_s"] is None and "not found" in out["reason"]
    assert "n/a (" in "\n".join(bench._main_job_table(out))
    assert bench.TARGETS["main job end to end, warm s"] == (2.5, "max")


def test_user_declared_rows_are_skipped_with_a_note_without_the_script(tmp_path):
    out = bench._user_declared(1_000, 1, script=tmp_path / "custom_env.py")
    assert out["ratio"] is None and "not found" in out["reason"]
    assert all(case["steps_per_s"] is None for case in out["cases"])
    assert "n/a: " in "\n".join(bench._declared_table(out))
    name = "user-declared / built-in (RiverSwim / loop MDP)"
    assert bench.TARGETS[name] == (0.8, "min")


# --- the start-up section, timed from outside ---------------------------------------------


def test_startup_commands_are_the_promised_command_lines(tmp_path):
    commands = bench.startup_commands()
    assert list(commands) == ["import numpy", "import avgreward", "1,000-step run", "main job"]
    assert commands["import numpy"].argv(tmp_path) == [sys.executable, "-c", "import numpy"]
    assert commands["import avgreward"].argv(tmp_path) == [sys.executable, "-c",
                                                           "import avgreward"]
    run = commands["1,000-step run"].argv(tmp_path)
    assert run[:4] == [sys.executable, "-m", "avgreward.cli", "run"]
    assert run[run.index("--steps") + 1] == "1000" and run[run.index("--seeds") + 1] == "1"
    # Each sample's --out is in the sample's new directory; the main job at its default budget.
    assert Path(run[run.index("--out") + 1]).parent == tmp_path
    job = commands["main job"].argv(tmp_path)
    assert job[1] == str(bench.MAIN_JOB_SCRIPT) and job[2:] == ["--out", str(tmp_path / "job")]
    assert "--seeds" in bench.startup_commands(quick=True)["main job"].argv(tmp_path)
    missing = bench.startup_commands(script=tmp_path / "swingup_softmax.py")["main job"]
    assert missing.argv is None and "not found" in missing.reason


def test_startup_section_runs_and_prints_its_rows(tmp_path, monkeypatch, capsys):
    # Stand-ins for the real commands (seconds each; timings are not asserted):
    # each writes its name, its new directory and NUMBA_CACHE_DIR to a log.
    log = tmp_path / "log.jsonl"
    code = ("import json, os, sys; open(sys.argv[1], 'a').write(json.dumps("
            "[sys.argv[2], sys.argv[3], os.environ.get('NUMBA_CACHE_DIR')]) + '\\n')")

    def stub(name, shown):
        return bench.StartupCommand(shown, lambda directory: [sys.executable, "-c", code,
                                                             str(log), name, str(directory)])

    real = bench.startup_commands()
    commands = {name: stub(name, c.shown) for name, c in real.items()}
    commands["main job"] = bench.StartupCommand(real["main job"].shown, reason="not here")
    monkeypatch.setattr(bench, "startup_commands", lambda quick=False: commands)
    out = tmp_path / "startup.json"
    assert bench.main(["--only", "startup", "--samples", "2", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert "fused" not in results and "main_job" not in results  # the section alone
    s = results["startup_outside"]
    assert s["samples"] == 2 and s["floor"] == "import numpy"
    assert s["processors"]["cpu_count"] >= 1
    # scipy changes numba's start (it imports scipy.linalg): said beside the figures
    has_scipy = importlib.util.find_spec("scipy") is not None
    assert s["scipy_installed"] is has_scipy
    assert ("scipy installed: numba imports scipy.linalg" in table) is has_scipy
    assert ("scipy not installed" in table) is not has_scipy
    rows = {r["name"]: r for r in s["rows"]}
    assert list(rows) == ["import numpy", "import avgreward", "1,000-step run", "main job"]
    for name in ("import numpy", "import avgreward", "1,000-step run"):
        r = rows[name]
        assert len(r["walls_s"]) == 2 and r["min_s"] <= r["wall_s"] <= r["max_s"]
        assert (r["over_floor_s"] is None) == (name == "import numpy")
    assert rows["main job"]["wall_s"] is None and rows["main job"]["reason"] == "not here"
    assert s["cold"]["name"] == "1,000-step run" and s["cold"]["wall_s"] > 0
    # A warm-up run and 2 samples of each, then the cold run with a numba cache of its
    # own; every run in a new directory.
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [name for name, _, _ in calls] == 3 * ["import numpy", "import avgreward",
                                                  "1,000-step run"] + ["1,000-step run"]
    assert len({directory for _, directory, _ in calls}) == len(calls)
    cache = calls[-1][2]
    assert cache and cache != os.environ.get("NUMBA_CACHE_DIR")
    assert all(c == os.environ.get("NUMBA_CACHE_DIR") for _, _, c in calls[:-1])
    for promised in ("import numpy (the floor)", "import avgreward", "1,000-step run, warm",
                     "1,000-step run, cold (one run)", "main job, warm", "n/a (not here)",
                     "nproc", "load average", "- floor", "/ floor", "median of 2",
                     real["1,000-step run"].shown, real["main job"].shown):
        assert promised in table, promised
    assert set(results["targets"]) == {"start-up: import avgreward above import numpy s",
                                       "start-up: 1,000-step run, warm, above import numpy s",
                                       "start-up: main job, warm, new --out, wall s"}
    assert results["targets"]["start-up: main job, warm, new --out, wall s"]["met"] is None
