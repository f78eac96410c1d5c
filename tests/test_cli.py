"""The ``avgreward`` command line: run, sweep, plot; bad arguments exit 2 in one line."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avgreward.cli import SUBCOMMANDS, main, parse_value
from avgreward.experiment import load_experiment


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
    "1j", "", "a=1",
])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        parse_value(text)


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
    (["plot", "X", "--out", "figure.jpg"], [".png"]),
    (["plot", "no-such-dir", "--out", "figure.png"], ["not an experiment directory"]),
    (["frobnicate"], ["invalid choice"]),
    ([], ["choose a command"]),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(args, capsys)
    _assert_usage_error(code, err, *words)
    assert not (tmp_path / "X").exists()


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
