"""The ``avgreward`` command line: run, sweep, plot; errors in one line, documented exit codes."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import avgreward.cli
import avgreward.experiment
from avgreward.cli import SUBCOMMANDS, main, parse_value
from avgreward.experiment import load_experiment

# On the loop MDP the second setting diverges within a few hundred steps
# (tests/test_experiment.py's DIVERGING), the first learns.
DIVERGING_SWEEP = ["sweep", "loop", "--steps", "2000", "--seeds", "2", "--grid",
                   "alpha_w=0.1,256", "--set", "alpha_theta=16", "--set", "alpha_rbar=1",
                   "--workers", "1"]
DIVERGING_RUN = ["run", "loop", "--steps", "2000", "--seeds", "2", "--set", "alpha_w=256",
                 "--set", "alpha_theta=16", "--set", "alpha_rbar=1", "--workers", "1"]
DIGITS = "9" * 400


def cli(args, capsys):
    """(exit code, stdout, stderr) of ``avgreward ARGS`` run in this process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse: --help and parse errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _assert_usage_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "Traceback" not in err
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("text, value", [
    ("2**-6", 2.0**-6), ("0.5", 0.5), ("1e-3", 1e-3), ("-2**3", -8.0), ("1/4", 0.25),
    ("1_000_000", 1_000_000), ("(1 + 1) * 3", 6), ("true", True), ("False", False),
])
def test_values_are_parsed_as_arithmetic_on_numbers(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "abc", "2**", "1/0", "10**10**10", "[1]", "'1'",
    "1j", "", "a=1", DIGITS, "-" + DIGITS, DIGITS + "/10**300", "1" * 5000, "1e400",
    "2**1023*2",
])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        parse_value(text)


def test_integers_are_kept_within_float64s_range():
    assert parse_value("9" * 300) == int("9" * 300)
    with pytest.raises(ValueError, match="out of range") as info:
        parse_value(DIGITS)
    assert len(str(info.value)) < 250  # the value is shortened, not printed whole


def test_steps_up_to_2_to_the_53_are_accepted():
    parser = avgreward.cli._parser()
    args = parser.parse_args(["run", "loop", "--steps", "2**53", "--seeds", "1", "--out", "X"])
    assert args.steps == 2**53


def test_every_subcommand_has_help(capsys):
    code, out, _ = cli(["--help"], capsys)
    assert code == 0
    for name in SUBCOMMANDS:
        assert name in out
        code, out_sub, _ = cli([name, "--help"], capsys)
        assert code == 0 and f"avgreward {name}" in out_sub
        if name != "bench":  # the benchmark prints its table; it has --quick instead
            assert "--quiet" in out_sub


def test_run_resume_and_changed_settings(tmp_path, capsys):
    out = tmp_path / "loop"
    args = ["run", "loop", "--steps", "2000", "--seeds", "3", "--workers", "1", "--out", out,
            "--set", "alpha_theta=2**-3"]
    code, stdout, err = cli(args, capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0] == str(out)
    assert "3 of 3 runs done, 0 failed" in stdout
    assert "reward rate over the last 10% of steps" in stdout and "95% CI" in stdout
    experiment = load_experiment(out)
    assert experiment.env_id == "avgreward/LoopMDP-v0" and experiment.steps == 2_000
    assert experiment.agents[0].alpha_theta == 2.0**-3 and experiment.agents[0].alpha_w == 0.1
    records = {p: p.read_bytes() for p in out.glob("runs/*")}

    # The same command resumes (nothing left to run); more seeds add runs.
    assert cli(args, capsys)[0] == 0
    assert {p: p.read_bytes() for p in out.glob("runs/*")} == records
    code, stdout, _ = cli([*args[:5], "5", *args[6:], "--quiet"], capsys)
    assert code == 0 and stdout == f"{out}\n"
    assert len(load_experiment(out).runs) == 5

    code, _, err = cli([*args, "--set", "tau=0.5"], capsys)
    _assert_usage_error(code, err, "other settings", "tau 1.0 -> 0.5", "--new")
    code, stdout, err = cli([*args, "--set", "tau=0.5", "--new", "--quiet"], capsys)
    assert code == 0 and stdout == f"{out}-2\n"
    assert f"{out}-2" in err  # says where the results went
    assert load_experiment(f"{out}-2").agents[0].tau == 0.5


@pytest.mark.slow
def test_sweep_runs_the_product_of_the_grids_and_plots(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, stdout, err = cli(["sweep", "loop", "--steps", "1000", "--seeds", "2", "--out", out,
                             "--grid", "alpha_theta=2**-3,2**-2,2**-1", "--grid",
                             "alpha_w=0.1,0.2", "--set", "alpha_rbar=0.05", "--workers", "2"],
                            capsys)
    assert code == 0, err
    experiment = load_experiment(out)
    settings = [(a.alpha_theta, a.alpha_w, a.alpha_rbar) for a in experiment.agents]
    assert settings == [(t, w, 0.05) for t in (0.125, 0.25, 0.5) for w in (0.1, 0.2)]
    assert len(experiment.runs) == 12
    assert stdout.count("alpha_theta=") == 6  # one summary line per setting

    for name, kind in (("auto.png", "auto"), ("curves.svg", "curves")):
        code, stdout, err = cli(["plot", out, "--out", tmp_path / name, "--kind", kind], capsys)
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "auto.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_plot_draws_every_directory_on_one_figure(tmp_path, capsys):
    for name, seeds in (("a", "2"), ("b", "3")):
        code, _, err = cli(["run", "gridworld", "--steps", "1000", "--seeds", seeds, "--workers",
                            "1", "--quiet", "--out", tmp_path / name], capsys)
        assert code == 0, err
    code, stdout, err = cli(["plot", tmp_path / "a", tmp_path / "b", "--out",
                             tmp_path / "both.png", "--title", "two"], capsys)
    assert code == 0, err
    assert stdout.strip() == str(tmp_path / "both.png") and (tmp_path / "both.png").exists()
    code, _, err = cli(["plot", tmp_path / "a", "--kind", "sensitivity", "--out",
                        tmp_path / "s.png"], capsys)
    _assert_usage_error(code, err, "not a sweep")


@pytest.mark.slow
def test_policy_and_value_maps_and_animation_of_a_trained_run(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "pendulum"
    code, _, err = cli(["run", "pendulum", "--steps", "3000", "--seeds", "2", "--workers", "1",
                        "--quiet", "--out", out], capsys)
    assert code == 0, err
    for kind in ("policy", "value"):
        code, stdout, err = cli(["plot", out, "--kind", kind, "--seed", "1", "--out",
                                 tmp_path / f"{kind}.png"], capsys)
        assert code == 0, err
        assert Image.open(tmp_path / f"{kind}.png").size[0] > 300
    code, stdout, err = cli(["animate", out, "--steps", "40", "--out", tmp_path / "a.gif"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "a.gif").n_frames > 5
    code, _, err = cli(["animate", out, "--seed", "9", "--out", tmp_path / "b.gif"], capsys)
    _assert_usage_error(code, err, "--seed 9", "[0, 1]")
    code, _, err = cli(["plot", out, "--kind", "policy", "--setting", "4", "--out",
                        tmp_path / "c.png"], capsys)
    _assert_usage_error(code, err, "--setting 4")
    code, _, err = cli(["animate", out, "--out", tmp_path / "a.png"], capsys)
    _assert_usage_error(code, err, ".gif")


@pytest.mark.parametrize("args, words", [
    (["run", "nope", "--steps", "100", "--seeds", "1", "--out", "X"], ["unknown env 'nope'"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--set", "alpha_q=1"],
     ["unknown setting 'alpha_q'"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--set", "alpha_w=0.1x"],
     ["cannot read '0.1x'"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--set", "alpha_w"],
     ["NAME=VALUE"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--set", "alpha_w=-1"],
     ["alpha_w must be"]),
    (["run", "loop", "--steps", "1.5", "--seeds", "1", "--out", "X"], ["whole number"]),
    (["run", "loop", "--steps", "100", "--seeds", "0", "--out", "X"], ["at least 1"]),
    (["run", "loop", "--steps", "100", "--seeds", "1"], ["--out"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--agent", "gaussian"],
     ["needs a softmax actor"]),
    (["run", "pendulum-continuous", "--steps", "100", "--seeds", "1", "--out", "X", "--set",
      "scale_mean_gradient=1"], ["true or false"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--tilings", "4"],
     ["pendulum"]),
    (["sweep", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--grid", "alpha_w=1,,z"],
     ["cannot read 'z'"]),
    (["sweep", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--grid", "alpha_w=1",
      "--set", "alpha_w=2"], ["both"]),
    (["sweep", "loop", "--steps", "100", "--seeds", "1", "--out", "X"], ["--grid"]),
    (["run", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--set",
      f"alpha_w={DIGITS}"], ["alpha_w", "out of range"]),
    (["run", "loop", "--steps", DIGITS, "--seeds", "1", "--out", "X"], ["--steps", "out of range"]),
    (["run", "loop", "--steps", "100", "--seeds", DIGITS, "--out", "X"], ["--seeds"]),
    (["run", "loop", "--steps", "2**70", "--seeds", "1", "--out", "X"], ["2**53", "'2**70'"]),
    (["run", "loop", "--steps", "9007199254740993", "--seeds", "1", "--out", "X"], ["2**53"]),
    (["run", "loop", "--steps", "1e300", "--seeds", "1", "--out", "X"], ["2**53"]),
    (["sweep", "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--grid",
      f"alpha_w=1,{DIGITS}"], ["alpha_w", "out of range"]),
    (["plot", "X", "--out", "figure.png", "--setting", DIGITS], ["--setting", "out of range"]),
    (["plot", "X", "--out", "figure.xyz"], [".png", ".svg", ".pdf", ".eps", ".jpg", "'figure.xyz'"]),
    (["plot", "X", "--out", "figure"], [".png"]),
    (["plot", "no-such-dir", "--out", "figure.png"], ["not an experiment directory"]),
    (["frobnicate"], ["invalid choice"]),
    ([], ["choose a command"]),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(args, capsys)
    _assert_usage_error(code, err, *words)
    assert not (tmp_path / "X").exists()


def test_exit_codes_are_documented(capsys):
    code, out, _ = cli(["--help"], capsys)
    assert code == 0 and "exit codes:" in out
    table = out[out.index("exit codes:"):]
    for line in ("  0 ", "  1 ", "  2 ", "  3 ", "  130 "):
        assert line in table
    assert "Exit codes" in avgreward.cli.__doc__ and "130" in avgreward.cli.__doc__


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("error, words", [
    (PermissionError(13, "Permission denied", "/x/.lock"), ["/x/.lock: Permission denied"]),
    (OSError(30, "Read-only file system", "/ro/exp/.lock"),
     ["/ro/exp/.lock: Read-only file system"]),
    (OSError(28, "No space left on device"), ["No space left on device", "--out X"]),
])
def test_file_system_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch, command, error,
                                                 words):
    # Tests run as root in CI, where a read-only directory is still writable:
    # the runner's error is simulated.  --quiet must not hide it.
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(avgreward.experiment, "run_experiment", refuse)
    monkeypatch.chdir(tmp_path)
    args = [command, "loop", "--steps", "100", "--seeds", "1", "--out", "X", "--quiet"]
    if command == "sweep":
        args += ["--grid", "alpha_w=0.1,0.2"]
    code, out, err = cli(args, capsys)
    _assert_usage_error(code, err, f"avgreward {command}: error: ", *words)
    assert out == ""


def test_an_output_directory_that_cannot_be_made_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    code, out, err = cli(["run", "loop", "--steps", "100", "--seeds", "1", "--workers", "1",
                          "--out", tmp_path / "file" / "exp"], capsys)
    _assert_usage_error(code, err, str(tmp_path / "file"))


@pytest.fixture
def read_only_directory(tmp_path):
    """A directory this process cannot write: a read-only tmpfs as root, else chmod 0o555."""
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    if os.geteuid() != 0:
        readonly.chmod(0o555)
        try:
            yield readonly, "Permission denied"
        finally:
            readonly.chmod(0o755)
        return
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(readonly)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"root cannot mount a read-only tmpfs here: {made.stderr.strip()}")
    try:
        yield readonly, "Read-only file system"
    finally:
        subprocess.run(["umount", "-l", str(readonly)], check=False)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_read_only_directory_exits_2(read_only_directory, capsys):
    readonly, message = read_only_directory
    code, _, err = cli(["run", "loop", "--steps", "100", "--seeds", "1", "--workers", "1",
                        "--out", readonly / "exp"], capsys)
    _assert_usage_error(code, err, str(readonly), message)


def test_failed_runs_exit_3_and_plots_need_a_finished_run(tmp_path, capsys, monkeypatch):
    out, bad = tmp_path / "sweep", tmp_path / "bad"
    note = (f"avgreward sweep: the experiment finished, but 2 of 4 runs failed; their errors "
            f"are in {out}/runs/*.json")
    code, stdout, err = cli([*DIVERGING_SWEEP, "--out", out], capsys)
    assert code == 3
    assert stdout.splitlines()[0] == str(out)
    assert "4 of 4 runs done, 2 failed (2 diverged)" in stdout
    assert "no seed finished; 2 diverged at step" in stdout
    assert err.strip().splitlines() == [note]
    experiment = load_experiment(out)
    assert [r.agent_index for r in experiment.failed] == [1, 1]
    assert all(r.failure == "divergence" and r.error for r in experiment.failed)
    # Resuming runs nothing (diverged runs stay diverged): the same code and note.
    code, stdout, err = cli([*DIVERGING_SWEEP, "--out", out, "--quiet"], capsys)
    assert (code, stdout, err.strip().splitlines()) == (3, f"{out}\n", [note])

    code, _, err = cli([*DIVERGING_RUN, "--out", bad, "--quiet"], capsys)
    assert code == 3 and "2 of 2 runs failed" in err

    # A directory with no finished run is an error, alone or among others
    # that have none; among others that have one, it is left out with a warning.
    code, _, err = cli(["plot", bad, "--out", tmp_path / "bad.png"], capsys)
    _assert_usage_error(code, err, str(bad), "no finished run", "2 failed")
    code, _, err = cli(["plot", bad, bad, "--out", tmp_path / "bad.png"], capsys)
    _assert_usage_error(code, err, "none of the directories")
    assert not (tmp_path / "bad.png").exists()
    code, stdout, err = cli(["plot", out, bad, "--out", tmp_path / "both.png"], capsys)
    assert code == 0 and stdout.strip() == str(tmp_path / "both.png")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and str(bad) in lines[0]
    assert "left out" in lines[0]
    code, _, err = cli(["plot", out, "--kind", "policy", "--setting", "1", "--out",
                        tmp_path / "p.png"], capsys)
    _assert_usage_error(code, err, "setting 1", "no finished run", "diverged")

    # Any format matplotlib writes; missing directories are made, or one line says why not.
    figure = tmp_path / "new" / "dir" / "curves.pdf"
    code, _, err = cli(["plot", out, "--kind", "curves", "--out", figure], capsys)
    assert code == 0, err
    assert figure.read_bytes()[:5] == b"%PDF-"
    code, _, err = cli(["plot", out, "--out", tmp_path / "sensitivity.jpg"], capsys)
    assert code == 0, err
    assert (tmp_path / "sensitivity.jpg").read_bytes()[:2] == b"\xff\xd8"
    (tmp_path / "file").write_text("not a directory")
    code, _, err = cli(["plot", out, "--out", tmp_path / "file" / "a.png"], capsys)
    _assert_usage_error(code, err, str(tmp_path / "file"), "Not a directory")

    # A run the runner did not run is a failure too.
    record = load_experiment(out).run(0, 1).path
    record.unlink()
    record.with_suffix(".json").unlink()
    monkeypatch.setattr(avgreward.experiment, "run_experiment",
                        lambda *args, **kwargs: load_experiment(out))
    code, stdout, err = cli([*DIVERGING_SWEEP, "--out", out, "--quiet"], capsys)
    assert code == 3 and stdout == f"{out}\n"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "2 of 4 runs failed" in lines[0]
    assert "1 of 4 did not run" in lines[0]


@pytest.mark.slow
def test_the_console_script_and_module_exit_2_without_traceback(tmp_path):
    script = shutil.which("avgreward") or str(Path(sys.executable).with_name("avgreward"))
    commands = [
        [script, "run", "nope", "--steps", "10", "--seeds", "1", "--out", "X"],
        [sys.executable, "-m", "avgreward.cli", "run", "loop", "--steps", "10", "--seeds", "1",
         "--out", "X", "--set", "alpha_w=2**"],
        [sys.executable, "-m", "avgreward.cli", "sweep", "loop", "--steps", "10", "--seeds", "1",
         "--out", "X", "--grid", "alpha_nope=1,2"],
    ]
    for command in commands:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert done.stdout == ""
    help_ = subprocess.run([script, "run", "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--set NAME=VALUE" in help_.stdout


@pytest.mark.slow
def test_the_console_script_runs_an_experiment(tmp_path):
    script = shutil.which("avgreward") or str(Path(sys.executable).with_name("avgreward"))
    done = subprocess.run([script, "run", "pendulum", "--steps", "2000", "--seeds", "2",
                           "--workers", "2", "--out", "exp"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "exp"
    assert done.stderr == ""  # no progress bar when not in a terminal
    config = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    assert config["env"] == "avgreward/PendulumSwingUp-v0"
    assert math.isclose(config["agents"][0]["alpha_theta"], 2.0**-2)


def test_default_agents_are_the_settings_that_learn():
    from avgreward import GaussianActorCritic, SoftmaxActorCritic
    from avgreward.training import default_agent

    assert default_agent("avgreward/PendulumSwingUp-v0") == SoftmaxActorCritic.pendulum_reference()
    assert default_agent("avgreward/PendulumSwingUpContinuous-v0", "gaussian") == (
        GaussianActorCritic.pendulum_default())
    assert default_agent("avgreward/LoopMDP-v0", "softmax") == SoftmaxActorCritic(
        alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    assert default_agent("avgreward/AliasedGridworld-v0") == SoftmaxActorCritic(
        alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)
    with pytest.raises(ValueError, match="needs a gaussian actor"):
        default_agent("avgreward/PendulumSwingUpContinuous-v0", "softmax")
    with pytest.raises(ValueError, match="kind must be"):
        default_agent("avgreward/LoopMDP-v0", "tabular")


def test_a_corrupt_run_is_named_then_repaired_by_the_same_command(tmp_path, capsys):
    """The issue's reproduction: truncate a finished run, run again, plot."""
    out = tmp_path / "a"
    command = ["run", "loop", "--steps", "3000", "--seeds", "3", "--workers", "1", "--out", out,
               "--quiet"]
    assert cli(command, capsys)[0] == 0
    npz = out / "runs" / "a000-s0001.npz"
    with open(npz, "r+b") as f:
        f.truncate(1000)

    code, _, err = cli(["plot", out, "--out", tmp_path / "before.png"], capsys)
    assert code == 0 and (tmp_path / "before.png").exists()
    [line] = err.strip().splitlines()
    assert line.startswith("avgreward plot: warning: ") and str(npz) in line

    code, _, err = cli(command, capsys)
    [line] = err.strip().splitlines()
    assert code == 0 and str(npz) in line and "running it again" in line
    assert load_experiment(out).finished_seeds(0) == [0, 1, 2]
    code, _, err = cli(["plot", out, "--out", tmp_path / "after.png"], capsys)
    assert (code, err) == (0, "")


@pytest.mark.parametrize("text, words", [
    ("null", ["experiment.json", "expected a JSON object"]),
    ('{"bin_size": 0}', ["experiment.json", "bin_size 0"]),
])
def test_a_corrupt_experiment_json_exits_2_naming_it(tmp_path, capsys, text, words):
    out = tmp_path / "a"
    command = ["run", "loop", "--steps", "500", "--seeds", "1", "--workers", "1", "--out", out,
               "--quiet"]
    assert cli(command, capsys)[0] == 0
    config = json.loads((out / "experiment.json").read_text())
    patch = json.loads(text)
    (out / "experiment.json").write_text(
        text if patch is None else json.dumps({**config, **patch}))
    for args in (command, ["plot", out, "--out", tmp_path / "x.png"]):
        code, _, err = cli(args, capsys)
        _assert_usage_error(code, err, str(out / "experiment.json"), *words)


@pytest.mark.parametrize("option, words", [
    (["--seeds", "2**40"], ["seeds must be a count from 1 to 1,000,000"]),
    (["--tilings", "2**40"], ["too many features", "at most 2**32"]),
    (["--tiles", "10**6"], ["too many features"]),
])
def test_counts_that_cannot_fit_in_memory_exit_2(tmp_path, capsys, option, words):
    args = ["run", "pendulum", "--steps", "100", "--seeds", "1", "--out", tmp_path / "x", *option]
    code, _, err = cli(args, capsys)
    _assert_usage_error(code, err, *words)
    assert not (tmp_path / "x").exists()


def test_bench_refuses_a_bad_output_before_measuring(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(avgreward.bench, "measure",
                        lambda **kwargs: pytest.fail("measured before checking --out"))
    code, _, err = cli(["bench", "--quick", "--out", tmp_path / "bench.txt"], capsys)
    _assert_usage_error(code, err, "--out must end in .json")
    (tmp_path / "file").write_text("")
    code, _, err = cli(["bench", "--quick", "--out", tmp_path / "file" / "b.json"], capsys)
    _assert_usage_error(code, err, str(tmp_path / "file"))


# ---------------------------------------------------------------------------
# Ctrl-C at every moment: one line on stderr, exit 130, no traceback


def _assert_interrupted(code, err, first_word="avgreward"):
    assert code == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(first_word) and "interrupted" in lines[0]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def _raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_the_console_script_and_its_module_import_no_heavy_module():
    # The entry point catches Ctrl-C from its first line: importing it (what
    # the console script does before calling it) must not import numpy, numba
    # or the kernels, where a Ctrl-C could not be caught.
    entry = _console_entry_point()
    code = (f"import sys; from {entry[0]} import {entry[1]}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'numba', 'gymnasium', 'envs', 'matplotlib') "
            "or m.startswith('avgreward.') and m not in "
            "('avgreward.cli', 'avgreward.bench', 'avgreward.extras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert avgreward.cli.MAX_STEPS == __import__("avgreward.run_arrays").run_arrays._MAX_STEPS


def test_ctrl_c_while_building_the_parser(monkeypatch, capsys):
    monkeypatch.setattr(avgreward.cli, "_parser", _raise_interrupt)
    code, _, err = cli(["run", "loop", "--steps", "10", "--seeds", "1", "--out", "X"], capsys)
    _assert_interrupted(code, err)


def test_ctrl_c_while_importing_the_heavy_modules(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def importing(name, *args, **kwargs):
        if name == "avgreward.experiment":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", importing)
    code, _, err = cli(["run", "loop", "--steps", "10", "--seeds", "1",
                        "--out", tmp_path / "exp"], capsys)
    _assert_interrupted(code, err, "avgreward run:")
    code, _, err = cli(["stats", str(tmp_path / "exp")], capsys)
    _assert_interrupted(code, err, "avgreward stats:")


def test_ctrl_c_while_loading_the_kernels(tmp_path, monkeypatch, capsys):
    import avgreward.loop

    monkeypatch.setattr(avgreward.loop, "kernels_for", _raise_interrupt)
    code, out, err = cli(["run", "loop", "--steps", "100", "--seeds", "1", "--workers", "1",
                          "--out", tmp_path / "exp"], capsys)
    _assert_interrupted(code, err, "avgreward run:")
    assert "resume" in err and out == ""


@pytest.mark.parametrize("where", ["summary", "log handler"])
def test_ctrl_c_after_the_last_run(tmp_path, monkeypatch, capsys, where):
    if where == "summary":
        monkeypatch.setattr(avgreward.experiment.Experiment, "summary", _raise_interrupt)
    else:
        import logging

        library_log = logging.getLogger("avgreward")
        real_remove = library_log.removeHandler

        def remove(handler):
            real_remove(handler)
            raise KeyboardInterrupt

        monkeypatch.setattr(library_log, "removeHandler", remove)
    out = tmp_path / "exp"
    code, _, err = cli(["run", "loop", "--steps", "100", "--seeds", "1", "--workers", "1",
                        "--out", out], capsys)
    _assert_interrupted(code, err, "avgreward run:")
    assert len(load_experiment(out).runs) == 1  # the run is kept


def test_ctrl_c_while_saving_a_plot(tmp_path, monkeypatch, capsys):
    import avgreward.plotting

    out = tmp_path / "exp"
    code, _, err = cli(["run", "loop", "--steps", "100", "--seeds", "1", "--workers", "1",
                        "--out", out, "--quiet"], capsys)
    assert code == 0, err
    monkeypatch.setattr(avgreward.plotting, "save_figure", _raise_interrupt)
    code, _, err = cli(["plot", out, "--out", tmp_path / "c.png"], capsys)
    _assert_interrupted(code, err, "avgreward plot:")


def _console_entry_point():
    """(module, function) of the ``avgreward`` console script, as setup.cfg declares it."""
    import configparser

    config = configparser.ConfigParser()
    config.read(Path(avgreward.cli.__file__).parents[1] / "setup.cfg")
    for line in config["options.entry_points"]["console_scripts"].strip().splitlines():
        name, _, target = (part.strip() for part in line.partition("="))
        if name == "avgreward":
            module, _, function = target.partition(":")
            return module, function
    raise AssertionError("no avgreward console script in setup.cfg")


# The console script as pip writes it, with one pause: where MOMENT says, the
# child prints "paused" and reads a line of stdin; the test sends a real SIGINT
# once it has read "paused" (no sleeps), then closes stdin.
_PAUSING_SCRIPT = """\
import builtins, sys

def pause():
    print("paused", flush=True)
    sys.stdin.readline()

moment = sys.argv.pop(1)
if moment == "import":
    real_import = builtins.__import__

    def importing(name, *args, **kwargs):
        if name == "avgreward.experiment":
            builtins.__import__ = real_import
            pause()
        return real_import(name, *args, **kwargs)

    builtins.__import__ = importing

from {module} import {function} as main

if moment == "report":
    import avgreward.cli

    real_report = avgreward.cli._report

    def report(*args):
        code = real_report(*args)
        pause()
        return code

    avgreward.cli._report = report
code = main()
if moment == "exit":
    pause()
sys.exit(code)
"""


@pytest.mark.parametrize("moment", ["import", "report", "exit"])
@pytest.mark.slow
def test_a_real_ctrl_c_of_the_console_script(tmp_path, moment):
    """SIGINT while importing the heavy modules, after the last run's summary, and
    once main has returned (ignored: the command's own exit code)."""
    import signal

    module, function = _console_entry_point()
    script = tmp_path / "avgreward_script.py"
    script.write_text(_PAUSING_SCRIPT.format(module=module, function=function))
    # A shell's background job starts with Ctrl-C ignored: give the child the
    # default disposition, where Python raises KeyboardInterrupt.
    process = subprocess.Popen(
        [sys.executable, str(script), moment, "run", "loop", "--steps", "100", "--seeds", "1",
         "--workers", "1", "--out", "exp"], cwd=tmp_path, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()
        while line and line != "paused\n":
            line = process.stdout.readline()
        assert line == "paused\n", process.communicate(timeout=60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(input="", timeout=120)  # closes stdin
    finally:
        if process.poll() is None:
            process.kill()
    if moment == "exit":
        assert process.returncode == 0 and err == "", err
    else:
        _assert_interrupted(process.returncode, err, "avgreward run:")
    if moment != "import":
        assert len(load_experiment(tmp_path / "exp").runs) == 1


def test_the_cli_asks_for_a_new_directory_in_its_own_words(tmp_path, capsys):
    """``avgreward run`` says ``--new`` where the Python API says ``new=True``."""
    out = tmp_path / "loop"
    args = ["run", "loop", "--steps", "1000", "--seeds", "1", "--workers", "1", "--out", out,
            "--quiet"]
    assert cli(args, capsys)[0] == 0
    records = {p: p.read_bytes() for p in out.glob("runs/*")}
    code, _, err = cli([*args[:3], "2000", *args[4:]], capsys)
    _assert_usage_error(code, err, "other settings", "steps 1000 -> 2000",
                        "ask for a new directory (--new)")
    assert "new=True" not in err
    assert {p: p.read_bytes() for p in out.glob("runs/*")} == records  # nothing lost

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    code, _, err = cli([*args[:-2], foreign, "--quiet"], capsys)
    _assert_usage_error(code, err, "without experiment.json", "ask for a new one: --new")
    assert "new=True" not in err
    assert (foreign / "notes.txt").read_text() == "mine"


def test_the_python_api_still_asks_for_new_true(tmp_path):
    from avgreward import SoftmaxActorCritic
    from avgreward.experiment import run_experiment

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    with pytest.raises(ValueError, match=r"ask for a new one: new=True\)") as error:
        run_experiment(foreign, "avgreward/LoopMDP-v0", agent, 1, 1_000, workers=1)
    assert "--new" not in str(error.value)
