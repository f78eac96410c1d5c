"""``Experiment.evaluate``, ``avgreward evaluate DIR`` and ``avgreward stats --evaluated``.

The case of issue 22: on access control, differential Q-learning's
epsilon-greedy behaviour scores well below the optimum (2.7476) while the
greedy policy it learned is close to it; the stats of the learning curve
showed the behaviour's gap, the evaluation shows the policy's.
"""

import json
import logging

import numpy as np
import pytest

import avgreward
from avgreward import exact
from avgreward.cli import main
from avgreward.envs import access_control as ac
from avgreward.experiment import load_experiment, run_experiment
from avgreward.runner import evaluations
from avgreward.runner.evaluations import EVALUATION_FILE, evaluation_seed

ACCESS = "avgreward/AccessControl-v0"
OPTIMUM = 2.7476419505724823  # exact.relative_value_iteration of the model
STEPS = 20_000  # of each evaluation: its batch-means interval is about +-0.04


def cli(args, capsys):
    """(exit code, stdout, stderr) of ``avgreward ARGS`` run in this process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def access(tmp_path_factory):
    """Differential Q-learning with the book's settings (epsilon 0.1), 3 seeds x 200,000
    steps, and a second agent (sarsa) to check that seeds, not agents, choose the draws."""
    q = avgreward.default_agent(ACCESS, "q-learning")
    sarsa = avgreward.default_agent(ACCESS, "sarsa")
    return run_experiment(tmp_path_factory.mktemp("ev") / "access", ACCESS, [q, sarsa], 3,
                          200_000, workers=1, progress=False).path


def _files(path):
    return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _greedy_exact_rate(result):
    """The greedy policy's exact rate, from the model's features (ties: uniform)."""
    model = ac.access_control_model()
    q = exact.feature_matrix(model, ACCESS) @ result.weights["w"]
    best = (q == q.max(axis=1, keepdims=True)).astype(float)
    return exact.evaluate(model, best / best.sum(axis=1, keepdims=True)).reward_rate


def test_the_learned_policy_is_evaluated_not_the_behaviour(access):
    experiment = load_experiment(access)
    ev = experiment.evaluate(steps=STEPS, save=False)
    assert ev.optimum == pytest.approx(OPTIMUM, abs=1e-12) and ev.greedy
    q_runs = [r for r in ev.runs if r.agent_index == 0]
    assert [r.seed for r in q_runs] == [0, 1, 2] and len(ev.runs) == 6
    behaviour = experiment.final_performance(0)
    for run, learning in zip(q_runs, behaviour):
        # The exact rate is that of the greedy policy itself, computed independently.
        assert abs(run.exact_rate - _greedy_exact_rate(experiment.result(0, run.seed))) < 1e-12
        assert abs(run.reward_rate - run.exact_rate) < 0.05  # the simulation agrees
        assert run.low < run.reward_rate < run.high and run.high - run.low < 0.15
        assert run.exact_rate > learning + 0.04  # the greedy policy beats its behaviour
    agent = ev.agents[0]
    assert agent.runs == 3 and agent.exact_rate == pytest.approx(
        np.mean([r.exact_rate for r in q_runs]), abs=1e-12)
    # The numbers: the behaviour's gap is about 0.13, the policy's about 0.02.
    assert OPTIMUM - agent.exact_rate < 0.04 < 0.1 < OPTIMUM - behaviour.mean()
    np.testing.assert_array_equal(ev.scores(0), [r.exact_rate for r in q_runs])
    np.testing.assert_array_equal(ev.scores(0, exact=False), [r.reward_rate for r in q_runs])

    sampled = experiment.evaluate(steps=STEPS, greedy=False, save=False)
    # Sampled as learned (epsilon-greedy): the behaviour's rate again, far from the greedy one.
    assert all(abs(s.exact_rate - learning) < 0.05 and s.exact_rate < g.exact_rate - 0.04
               for s, g, learning in zip(sampled.runs, q_runs, behaviour))


def test_evaluations_are_reproducible_and_seeded_by_the_run_seed(access):
    first = load_experiment(access).evaluate(steps=STEPS, seed=7, save=False)
    again = load_experiment(access).evaluate(steps=STEPS, seed=7, save=False)
    assert first.runs == again.runs and first.agents == again.agents
    # Each run's evaluation is evaluate() with a seed of (seed, run seed) alone: the
    # same for both agents of a seed, and not the run's own seed.
    experiment = load_experiment(access)
    for run in first.runs:
        assert run.eval_seed == evaluation_seed(7, run.seed) != run.seed
        alone = avgreward.evaluate(experiment.result(run.agent_index, run.seed), STEPS,
                                   run.eval_seed, greedy=True)
        assert (alone.reward_rate, alone.low, alone.high, alone.exact_rate) == (
            run.reward_rate, run.low, run.high, run.exact_rate)
    assert len({r.eval_seed for r in first.runs}) == 3
    other = load_experiment(access).evaluate(steps=STEPS, seed=8, save=False)
    assert all(a.reward_rate != b.reward_rate for a, b in zip(first.runs, other.runs))


def test_evaluation_json_is_reused_and_a_corrupt_one_is_named_and_rewritten(
        access, tmp_path, caplog):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(access, out)
    before = _files(out)
    fresh = load_experiment(out).evaluate(steps=STEPS, save=False)
    assert not (out / EVALUATION_FILE).exists()
    saved = load_experiment(out).evaluate(steps=STEPS)
    assert saved.reused == 0 and saved.runs == fresh.runs
    file = out / EVALUATION_FILE
    # Nothing of the experiment changed: one file more.
    assert {p: b for p, b in _files(out).items() if p != file} == before
    reread = load_experiment(out).evaluate(steps=STEPS)
    assert reread.reused == 6 and reread.runs == fresh.runs  # floats round-trip exactly
    # Other settings are a block of their own; the first is kept.
    load_experiment(out).evaluate(steps=STEPS + 20)
    assert len(json.loads(file.read_text())["evaluations"]) == 2
    assert load_experiment(out).evaluate(steps=STEPS).reused == 6

    good = file.read_text()
    data = json.loads(good)
    block = next(iter(data["evaluations"].values()))
    block["runs"]["a000-s0001"]["reward_rate"] = 9.0  # a hand edit: sha256 no longer matches
    damaged = [json.dumps(data), good[: len(good) // 2], "[1, 2]", ""]
    for text in damaged:
        file.write_text(text)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="avgreward"):
            repaired = load_experiment(out).evaluate(steps=STEPS)
        assert repaired.reused == 0 and repaired.runs == fresh.runs  # never read as data
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and str(file) in warnings[0] and "corrupt" in warnings[0]
        assert load_experiment(out).evaluate(steps=STEPS).reused == 6  # rewritten, valid

    # A run whose arrays changed (sha256) is evaluated again, the others are reused.
    record_path = out / "runs" / "a001-s0002.json"
    record = json.loads(record_path.read_text())
    entry = json.loads(file.read_text())
    name = "steps=20000 seed=0 greedy batches=20"
    entry["evaluations"][name]["runs"]["a001-s0002"]["sha256"] = "0" * 64
    entry["sha256"] = evaluations._digest(entry["evaluations"])
    file.write_text(json.dumps(entry))
    assert load_experiment(out).evaluate(steps=STEPS).reused == 5
    assert json.loads(file.read_text())["evaluations"][name]["runs"]["a001-s0002"][
        "sha256"] == record["sha256"]


def test_a_directory_that_cannot_be_written_still_gets_its_numbers(access, monkeypatch,
                                                                   caplog):
    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(evaluations, "write_json", refuse)
    with caplog.at_level(logging.WARNING, logger="avgreward"):
        ev = load_experiment(access).evaluate(steps=STEPS + 40)
    assert len(ev.runs) == 6 and ev.reused == 0
    assert any("cannot write" in r.getMessage() and "Permission denied" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be"), ({"steps": 10}, "batches=20 is more than steps=10"),
    ({"seed": -1}, "seed must be"), ({"greedy": "yes"}, "greedy must be"),
    ({"batches": 0}, "batches must be"), ({"trust": 1}, "trust must be"),
    ({"save": None}, "save must be"),
])
def test_bad_arguments_are_named(access, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_experiment(access).evaluate(**kwargs)


def test_the_tables(access):
    pytest.importorskip("pandas")
    ev = load_experiment(access).evaluate(steps=STEPS, save=False)
    runs, agents = ev.to_frame(), ev.to_frame("agents")
    assert list(runs.columns) == ["agent_index", "label", "seed", "eval_seed", "reward_rate",
                                  "low", "high", "exact_rate"]
    assert len(runs) == 6 and runs.exact_rate.tolist() == [r.exact_rate for r in ev.runs]
    assert len(agents) == 2 and agents.exact_rate[0] == ev.agents[0].exact_rate
    with pytest.raises(ValueError, match="what must be"):
        ev.to_frame("bins")


def test_the_evaluate_command(access, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(access, out)
    before = _files(out / "runs")
    code, stdout, err = cli(["evaluate", out, "--steps", STEPS], capsys)
    assert code == 0, err
    head, q_line, sarsa_line = stdout.splitlines()
    assert "greedy" in head and "20,000 steps" in head and "optimum 2.74764" in head
    ev = load_experiment(out).evaluate(steps=STEPS)  # what the command saved
    q = ev.agents[0]
    assert q_line.startswith(f"  {q.label} (3 seeds): evaluated {q.reward_rate:.6g} "
                             f"[{q.low:.6g}, {q.high:.6g}], gap {OPTIMUM - q.reward_rate:.4g}")
    assert f"exact {q.exact_rate:.6g} [" in q_line
    behaviour = load_experiment(out).final_performance(0).mean()
    assert f"behaviour while learning (last 10% of steps) {behaviour:.6g}" in q_line
    assert _files(out / "runs") == before  # nothing finished was touched

    # Again: read from the file, the same lines.
    code, again, _ = cli(["evaluate", out, "--steps", STEPS], capsys)
    assert code == 0 and again.splitlines()[:3] == stdout.splitlines()
    assert again.splitlines()[3] == f"(6 of 6 read from {out / EVALUATION_FILE})"
    code, quiet, _ = cli(["evaluate", out, "--steps", STEPS, "--quiet"], capsys)
    assert code == 0 and quiet.splitlines() == [q_line, sarsa_line]
    code, sampled, _ = cli(["evaluate", out, "--steps", STEPS, "--sampled", "--seed", "3"],
                           capsys)
    assert code == 0 and "(sampled)" in sampled and "evaluation seed 3" in sampled


def test_stats_evaluated_shows_the_policys_gap(access, tmp_path, capsys):
    import shutil

    pytest.importorskip("scipy")
    out = tmp_path / "copy"
    shutil.copytree(access, out)
    code, learning, err = cli(["stats", out, "--resamples", "200"], capsys)
    assert code == 0, err
    assert learning.startswith("final performance: mean reward over the last 0.1")
    code, evaluated, err = cli(["stats", out, "--evaluated", "--eval-steps", STEPS,
                                "--resamples", "200"], capsys)
    assert code == 0, err
    head = evaluated.splitlines()[0]
    assert head.startswith("evaluated performance: each run's learned policy, frozen (greedy")
    assert "exact reward rate" in head and "not the behaviour's" in head
    ev = load_experiment(out).evaluate(steps=STEPS)
    assert ev.reused == 6  # stats saved what it evaluated

    def gap(text):
        row = next(line for line in text.splitlines() if line.startswith(ev.agents[0].label))
        return float(row.split("]")[-2].split("[")[0].split()[-1])  # the last metric

    assert gap(evaluated) == pytest.approx(OPTIMUM - ev.agents[0].exact_rate, abs=1e-3)
    assert gap(learning) > gap(evaluated) + 0.05


def test_command_errors_are_one_line(access, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(access, out)
    for args, words in [
        (["--steps", "5"], ["--steps must be at least 20"]),
        (["--steps", "0"], ["--steps", "at least 1"]),
        (["--steps", "1e3.5"], ["--steps"]),
        (["--seed", "-1"], ["seed must be at least 0"]),
    ]:
        _one_line_error(*cli(["evaluate", out, *args], capsys)[::2], *words)
    _one_line_error(*cli(["evaluate", tmp_path / "none"], capsys)[::2], "no experiment.json")
    code, _, err = cli(["stats", out, "--sampled"], capsys)
    _one_line_error(code, err, "--sampled applies to --evaluated only")
    assert not (out / EVALUATION_FILE).exists()
    # A directory with no finished run (its runs' records gone).
    for record in (out / "runs").glob("*.json"):
        record.unlink()
    code, _, err = cli(["evaluate", out], capsys)
    _one_line_error(code, err, "has no finished run to evaluate", "0 of 6 runs done")
