"""Live metrics between chunks and the log writers: CSV, TensorBoard, the CLI's --log."""

import csv
import math

import numpy as np
import pytest

import avgreward
from avgreward.cli import main
from avgreward.logs import CSVLog, TensorBoardLog, open_log
from avgreward.metrics import METRIC_NAMES, Metrics
from avgreward.reference import reference_a2c, reference_train, reference_value_control

LOOP = "avgreward/LoopMDP-v0"
CORRIDOR = "avgreward/ShortCorridor-v0"


def _train(env, steps, **kw):
    return avgreward.train(env, avgreward.default_agent(env), steps, seed=3, **kw)


def test_metrics_follow_the_run_and_change_nothing():
    seen = []
    logged = _train(LOOP, 10_000, chunk_steps=1_000, log=seen.append)
    plain = _train(LOOP, 10_000)
    np.testing.assert_array_equal(logged.rewards, plain.rewards)
    np.testing.assert_array_equal(logged.rbar, plain.rbar)
    assert [m.step for m in seen] == list(range(1_000, 10_001, 1_000))
    assert all(isinstance(m, Metrics) and m.steps == 10_000 for m in seen)
    for k, m in enumerate(seen):
        chunk = plain.rewards[k * 1_000:(k + 1) * 1_000]
        assert m.reward_rate == pytest.approx(float(chunk.astype(np.float64).mean()), abs=1e-12)
        assert m.episodes == 0 and math.isnan(m.episode_return)
    assert seen[-1].rbar == plain.final_rbar


def _chunk_means(values, steps, chunk):
    return [float(np.mean(np.abs(values[t:t + chunk]))) for t in range(0, steps, chunk)]


@pytest.mark.parametrize("agent, reference", [
    (avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01),
     reference_train),
    (avgreward.DifferentialQLearning(alpha=0.1, eta=0.5), reference_value_control),
])
def test_the_td_error_metric_is_the_reference_mean_abs_delta_of_each_chunk(agent, reference):
    seen = []
    # 3000 = 3 x 777 + 669: a short last chunk.
    avgreward.train(LOOP, agent, 3_000, seed=3, chunk_steps=777, log=seen.append)
    deltas = reference(LOOP, agent, 3_000, seed=3)["deltas"]
    expected = _chunk_means(deltas, 3_000, 777)
    assert len(seen) == len(expected) == 4
    for m, mean in zip(seen, expected):
        assert m.mean_abs_td_error == pytest.approx(mean, rel=0, abs=1e-12)
    assert expected[0] > 0.0


def test_a_learner_without_a_td_error_logs_nan():
    seen = []
    agent = avgreward.Reinforce(alpha_theta=2**-12, max_episode_steps=200)
    _ = avgreward.train(CORRIDOR, agent, 2_000, seed=3, chunk_steps=1_000, log=seen.append)
    assert len(seen) == 2 and all(math.isnan(m.mean_abs_td_error) for m in seen)


def test_episodes_returns_and_lengths_of_each_chunk():
    seen = []
    result = _train(CORRIDOR, 6_000, chunk_steps=500, log=seen.append)
    returns = result.info["episode_returns"]
    lengths = result.info["episode_lengths"]
    assert seen[-1].episodes == returns.size > 10
    counted = 0
    for m in seen:
        new = m.episodes - counted
        if new:
            part = slice(counted, m.episodes)
            assert m.episode_return == pytest.approx(returns[part].mean())
            assert m.episode_length == pytest.approx(lengths[part].mean())
        else:
            assert math.isnan(m.episode_return)
        counted = m.episodes


def test_binned_and_parallel_runs_log_too():
    seen = []
    binned = _train(LOOP, 4_000, chunk_steps=1_000, bin_size=100, log=seen.append)
    assert [m.step for m in seen] == [1_000, 2_000, 3_000, 4_000]
    assert seen[0].reward_rate == pytest.approx(float(binned.rewards[:10].mean()), abs=1e-12)


def test_parallel_actors_log_environment_steps():
    seen = []
    agent = avgreward.default_agent(LOOP).replace(actors=2)
    result = avgreward.train(LOOP, agent, 2_000, seed=0, chunk_steps=500, log=seen.append)
    # Two actors: a chunk of 500 environment steps is 250 updates of two copies each;
    # the log counts environment steps, as every other learner's.
    assert [m.step for m in seen] == [m.total_step for m in seen] == list(
        range(500, 4_001, 500))
    assert seen[-1].step == result.info["env_steps"] and seen[0].steps == 4_000
    # rewards are the copies' mean per update: the chunk's mean is the rate per step
    assert seen[0].reward_rate == pytest.approx(float(result.rewards[:250].astype(np.float64).mean()), abs=1e-12)
    # The TD error's metric: the mean over a chunk's 250 updates and the copies.
    deltas = reference_a2c(LOOP, agent, 2_000, seed=0, actors=2)["deltas"]
    expected = [float(np.abs(deltas[t:t + 250]).mean()) for t in range(0, 2_000, 250)]
    for m, mean in zip(seen, expected, strict=True):
        assert m.mean_abs_td_error == pytest.approx(mean, rel=0, abs=1e-12)


def _metrics_of(env, agent, steps, seed, chunk_steps, init=None, **kw):
    seen = []
    result = avgreward.train(env, agent, steps, seed=None if init else seed, init=init,
                             chunk_steps=chunk_steps, log=seen.append, **kw)
    return result, seen


# What must agree between one run's log and a saved-and-continued run's (not the
# counts of this call or the clock).
_SAME = ("total_step", "rbar", "reward_rate", "episodes", "episode_return", "episode_length")


def _same_log(one, parts):
    rows = [{k: getattr(m, k) for k in _SAME} for m in one]
    joined = [{k: getattr(m, k) for k in _SAME} for m in parts]
    assert [r["total_step"] for r in rows] == [r["total_step"] for r in joined]
    for a, b in zip(rows, joined):
        for k in _SAME:
            assert a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])), k


@pytest.mark.parametrize("env", [LOOP, CORRIDOR])
def test_a_continued_run_logs_on_from_where_it_stopped(env):
    agent = avgreward.default_agent(env)
    _, one = _metrics_of(env, agent, 4_000, 3, 1_000)
    first, head = _metrics_of(env, agent, 2_000, 3, 1_000)
    _, tail = _metrics_of(env, agent, 2_000, 3, 1_000, init=first)
    assert [m.step for m in tail] == [1_000, 2_000]  # this call's steps, as before
    assert [m.total_step for m in one] == [1_000, 2_000, 3_000, 4_000]
    _same_log(one, head + tail)
    assert first.run_state.episodes_done == head[-1].episodes
    if env == CORRIDOR:
        assert 0 < head[-1].episodes < tail[0].episodes


def test_a_continued_python_stepped_run_logs_on_too(tmp_path):
    bounds = ([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5])
    agent = avgreward.default_agent("CartPole-v1")
    _, one = _metrics_of("CartPole-v1", agent, 1_000, 0, 250, bounds=bounds)
    first, head = _metrics_of("CartPole-v1", agent, 500, 0, 250, bounds=bounds)
    _, tail = _metrics_of("CartPole-v1", agent, 500, 0, 250,
                          init=avgreward.load_result(first.save(tmp_path / "first")))
    assert 0 < head[-1].episodes < tail[0].episodes  # the count went through the saved file
    _same_log(one, head + tail)


def test_a_continued_run_appends_to_its_csv_log(tmp_path):
    agent = avgreward.default_agent(LOOP)
    one, parts = tmp_path / "one.csv", tmp_path / "parts.csv"
    with CSVLog(one) as log:
        _train(LOOP, 3_000, chunk_steps=1_000, log=log)
    with CSVLog(parts, append=True) as log:  # no file yet: a new one
        first = avgreward.train(LOOP, agent, 2_000, seed=3, chunk_steps=1_000, log=log)
    with CSVLog(parts, append=True) as log:
        avgreward.train(LOOP, agent, 1_000, init=first, chunk_steps=1_000, log=log)

    def read(path, keys=("total_step", "rbar", "reward_rate")):
        with open(path) as f:
            return [[r[k] for k in keys] for r in csv.DictReader(f)]

    assert read(one) == read(parts) and len(read(one)) == 3
    with CSVLog(parts) as log:  # without append the file is replaced
        pass
    assert read(parts) == []
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="append: .*other.csv is not a log"):
        CSVLog(tmp_path / "other.csv", append=True)


def test_a_csv_log_has_one_row_per_chunk(tmp_path):
    path = tmp_path / "logs" / "run.csv"
    with CSVLog(path) as log:
        result = _train(CORRIDOR, 3_000, chunk_steps=1_000, log=log)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METRIC_NAMES and "mean_abs_td_error" in rows[0]
    assert all(math.isfinite(float(r["mean_abs_td_error"])) for r in rows)
    assert [int(r["step"]) for r in rows] == [1_000, 2_000, 3_000]
    assert float(rows[-1]["rbar"]) == result.final_rbar  # repr: exact
    assert int(rows[-1]["episodes"]) == result.info["episode_returns"].size


def test_a_bad_log_is_named():
    with pytest.raises(ValueError, match="log must be callable"):
        _train(LOOP, 100, log="csv")
    with pytest.raises(ValueError, match="log must be one of csv, tb"):
        open_log("json", "x")


def test_a_tensorboard_log_writes_scalars(tmp_path):
    pytest.importorskip("tensorboardX", reason="the tensorboard extra")
    with TensorBoardLog(tmp_path / "tb") as log:
        result = _train(LOOP, 3_000, chunk_steps=1_000, log=log)
    (events_file,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    rbar = _scalars(events_file, "rbar")
    assert [step for step, _ in rbar] == [1_000, 2_000, 3_000]
    assert [step for step, _ in _scalars(events_file, "mean_abs_td_error")] == [1_000, 2_000,
                                                                                3_000]
    assert rbar[-1][1] == pytest.approx(result.final_rbar, rel=1e-6)  # float32 in events
    # Continued into the same directory: its steps go on from the saved run's.
    with TensorBoardLog(tmp_path / "tb") as log:
        avgreward.train(LOOP, result.agent, 2_000, init=result, chunk_steps=1_000, log=log)
    steps = sorted(step for path in (tmp_path / "tb").glob("events.out.tfevents.*")
                   for step, _ in _scalars(path, "rbar"))
    assert steps == [1_000, 2_000, 3_000, 4_000, 5_000]


def _scalars(path, tag):
    """``(step, value)`` of each ``tag`` scalar in a TensorBoard event file."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    data, at, found = path.read_bytes(), 0, []
    while at < len(data):  # TFRecord: length, its CRC, the Event, its CRC
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = Event.FromString(data[at + 12:at + 12 + length])
        at += 12 + length + 4
        found += [(event.step, v.simple_value) for v in event.summary.value if v.tag == tag]
    return found


def test_the_cli_logs_every_run_to_a_csv_file(tmp_path):
    out = tmp_path / "exp"
    assert main(["run", "loop", "--steps", "3000", "--seeds", "2", "--log-every", "1000",
                 "--log", "csv", "-q", "--out", str(out)]) == 0
    files = sorted((out / "logs").glob("*.csv"))
    assert [f.name for f in files] == ["a000-s0000.csv", "a000-s0001.csv"]
    with open(files[1]) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1_000, 2_000, 3_000]
    experiment = avgreward.load_experiment(out)
    assert float(rows[-1]["rbar"]) == experiment.result(0, 1).final_rbar


@pytest.mark.parametrize("extra, message", [
    (["--log-every", "100"], "--log-every: give --log csv or --log tb too"),
    (["--log", "csv", "--dask-local", "1"], "log: not with a Dask cluster"),
])
def test_bad_log_options_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    code = main(["run", "loop", "--steps", "300", "--seeds", "1", "-q",
                 "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_a_python_stepped_episodic_run_logs_its_episodes():
    seen = []
    bounds = ([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5])
    result = avgreward.train("CartPole-v1", avgreward.default_agent("CartPole-v1"), 2_000,
                             seed=0, chunk_steps=500, bounds=bounds, log=seen.append)
    returns = result.info["episode_returns"]
    assert [m.step for m in seen] == [500, 1_000, 1_500, 2_000]
    assert seen[-1].episodes == returns.size > 5
    total = sum(m.episode_return * (m.episodes - before) for m, before in
                zip(seen, [0] + [m.episodes for m in seen[:-1]]) if m.episodes > before)
    assert total == pytest.approx(returns.sum())
    assert all(math.isfinite(m.mean_abs_td_error) and m.mean_abs_td_error > 0 for m in seen)
