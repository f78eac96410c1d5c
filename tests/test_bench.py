"""The benchmark runs, and the machinery the fused loop's speed rests on is exact.

No timing is asserted: on shared CI machines timings are noise.  The speed
itself is measured by ``scripts/bench.py`` (README, Performance).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

import avgreward
from avgreward import bench
from avgreward import actors, critic, features
from avgreward._pcg64 import load_state, next_double, store_state
from avgreward._vec4 import add4, axpy4, scale4, sum_rows4

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
                     "Gaussian swing-up, lambda 0.5", "loop MDP", "aliased gridworld"]
    for fused, python in zip(results["fused"], results["plain_python"]):
        assert fused["steps_per_s"] > 0 and fused["ns_per_step"] > 0
        assert python["steps_per_s"] > 0 and python["fused_over_python"] > 0
    seeds = results["many_seeds"]
    assert seeds["runs"] == 2 * seeds["workers"] and seeds["scaling"] > 0
    for label in ("cold", "warm"):
        assert results["startup"][label]["wall_s"] > 0
    experiment = results["experiment"]
    assert experiment["wall_s"] > 0 and experiment["results_mb"] > 0
    assert set(results["targets"]) == set(bench.TARGETS)
    assert all(t["measured"] is not None or t["met"] is None for t in results["targets"].values())


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
