"""Config files: ``avgreward config DIR`` -> TOML -> ``avgreward run --config`` reproduces the
experiment bit for bit; overrides, bad files in one line (exit 2), ``--seed-list``."""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import avgreward
from avgreward.config_file import config_toml, read_config_file, tomllib
from avgreward.experiment import load_experiment
from avgreward.learners import registry
from avgreward.runner.records import CONFIG_KEYS
from avgreward.toml_writer import dumps
from test_cli import _assert_usage_error as _usage_error, cli

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "source" / "guide" / "experiments-and-cli.md"
LOOP = "avgreward/LoopMDP-v0"


def _config(out):
    return json.loads((Path(out) / "experiment.json").read_text())


def _files(out):
    """Every file of an experiment's directory and its bytes (the lock file aside)."""
    return {p.relative_to(out): p.read_bytes() for p in sorted(Path(out).rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _run_arrays(out):
    runs = {}
    for npz in sorted((Path(out) / "runs").glob("*.npz")):
        with np.load(npz, allow_pickle=False) as data:
            runs[npz.name] = {name: data[name] for name in data.files}
    return runs


# ---------------------------------------------------------------------------
# The round trip


def test_config_then_run_config_reproduces_a_sweep_bit_for_bit(tmp_path, capsys):
    first = tmp_path / "first"
    code, _, err = cli(["sweep", "loop", "--steps", "700", "--seed-list", "3,7", "--workers",
                        "1", "--bin-size", "7", "--grid", "alpha_theta=0.1,2**-5", "--set",
                        "tau=0.5", "--out", first, "--quiet"], capsys)
    assert code == 0, err
    code, text, err = cli(["config", first], capsys)
    assert code == 0 and err == ""
    original = _config(first)
    # The text is the config, nothing else of experiment.json.
    data = tomllib.loads(text)
    assert sorted(data) == sorted([*CONFIG_KEYS, "seeds"])
    assert {k: data[k] for k in data} == {k: original[k] for k in data}
    exp_toml = tmp_path / "exp.toml"
    exp_toml.write_text(text)

    again = tmp_path / "again"
    code, _, err = cli(["run", "--config", exp_toml, "--out", again, "--workers", "1", "-q"],
                       capsys)
    assert code == 0, err
    reproduced = _config(again)
    for key in (*CONFIG_KEYS, "seeds"):
        assert reproduced[key] == original[key], key
    assert len(original["agents"]) == 2 and original["seeds"] == [3, 7]
    a, b = _run_arrays(first), _run_arrays(again)
    assert sorted(a) == sorted(b) == ["a000-s0003.npz", "a000-s0007.npz", "a001-s0003.npz",
                                      "a001-s0007.npz"]
    for name in a:
        assert sorted(a[name]) == sorted(b[name])
        for array in a[name]:
            np.testing.assert_array_equal(a[name][array], b[name][array], err_msg=name)
            assert a[name][array].dtype == b[name][array].dtype
    # The file again of the reproduction is the same text (but for the directory named).
    code, text_again, _ = cli(["config", again], capsys)
    assert text_again.replace(str(again), str(first)) == text

    # The same file on the same directory resumes it: nothing to run, nothing changed.
    before = _files(again)
    code, _, err = cli(["run", "--config", exp_toml, "--out", again, "--workers", "1", "-q"],
                       capsys)
    assert code == 0, err
    after = _files(again)
    assert {k: v for k, v in after.items() if k.name != "experiment.json"} == {
        k: v for k, v in before.items() if k.name != "experiment.json"}


def _every_kind():
    from avgreward import agents as a

    return [
        a.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=2.0**-5, alpha_rbar=1e-300, tau=0.3,
                             actors=2),
        a.GaussianActorCritic.pendulum_default(squash=True, sigma_min=0.05),
        a.GaussianActorCritic.pendulum_default(),  # squash None: left out, the default
        a.Reinforce(alpha_theta=0.1, initial_preferences=(1.0, -2.5), max_episode_steps=50),
        a.EpisodicActorCritic(alpha_w=0.2, alpha_theta=0.1, gamma=0.99, policy="gaussian",
                              alpha_sigma=0.01),
        a.DifferentialSarsa(alpha=0.1, beta=0.01, n=3),
        a.DifferentialQLearning(alpha=0.1, eta=0.5, epsilon=0.0),
        a.RVIQLearning(alpha=0.1, reference_state=(10.0, 3.0), reference_action=1),
        a.DiscountedSarsa(alpha=0.1, gamma=0.9, centering="simple", beta=0.1),
        a.DiscountedQLearning(alpha=0.1, gamma=0.9),
        # policy tables of floats of every length, exact through TOML
        a.DifferentialTD(alpha=0.1, eta=0.5, lambda_=0.25, target=[[1 / 3, 2 / 3]] * 9,
                         behaviour=[[0.1, 0.9]] + [[1 / 7, 6 / 7]] * 8),
        a.DifferentialTD(alpha=0.1, eta=0.5, target=[[0.5, 0.5]] * 9),  # on-policy
        a.AverageCostTD(alpha=0.1, beta=0.01, target=[[0.0, 1.0]] + [[0.3, 0.7]] * 8),
        a.NaturalActorCritic(alpha_w=0.1, alpha_theta=1e-3, alpha_rbar=0.01, tau=0.5),
        a.NaturalActorCritic(alpha_w=0.1, alpha_theta=1e-3, alpha_rbar=1.0, alpha_advantage=0.02),
        a.EpsilonGreedyLeastSquares(epsilon=0.05, ridge=2.0),
        a.LinUCB(delta=0.1),  # alpha None: the paper's width, left out
        a.LinUCB(alpha=0.5, ridge=0.5),
        a.SquareCB(gamma=12.5, delta=0.01),
        a.SquareCB(),
        a.SoftmaxBandit(alpha=0.2, alpha_rbar=0.05),
    ]


def test_every_learners_settings_and_tile_coders_round_trip(tmp_path):
    from avgreward.features import TileCoder, features_to_dict

    agents = _every_kind()
    assert {a.kind for a in agents} == set(registry._BY_KIND) - {"custom"}
    for features in (TileCoder(low=(-1.5, 0.0), high=(1.5, 1e-3), tiles=(4, 3), tilings=(2, 3),
                               wrap=(True, False), subsets=((0,), (0, 1))),
                     TileCoder(low=(0.0,), high=(1.0,), tiles=(5,), tilings=4, memory=64)):
        config = json.loads(json.dumps({
            "env": LOOP, "steps": 123, "seeds": [0, 2**63 - 1], "bin_size": 5,
            "features": features_to_dict(features), "agents": [a.to_dict() for a in agents],
            "format": 2, "created": "now", "versions": {"avgreward": "x"}}))
        path = tmp_path / "exp.toml"
        path.write_text(config_toml(config))
        file = read_config_file(path)
        assert file.features == features
        assert file.agents == agents
        # As run_experiment records them (JSON: tuples become lists).
        assert json.loads(json.dumps([a.to_dict() for a in file.agents])) == config["agents"]
        assert (file.env, file.steps, file.seeds, file.bin_size) == (LOOP, 123, [0, 2**63 - 1], 5)


def test_the_writer_round_trips_every_value_it_writes():
    data = {
        "floats": [0.1, 1 / 3, 1e-300, 5e-324, -0.0, 1e16, 1.7976931348623157e308, 2.0**-6,
                   math.inf, -math.inf, 123456789.125],
        "ints": [0, -1, 2**63 - 1, -(2**63)],
        "bools": [True, False],
        "text": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f é 漢 \U0001F600',
        "needs quoting": {"a.b": 1, "": 2, "x y": {"deep": [[1, 2], [], ["s"]]}},
        "empty": [],
        "mixed": [{"inline": True}, 1],
        "tables": [{"a": 1, "sub": {"b": [1.5]}, "more": [{"c": "d"}]}, {"a": 2}],
        "empty_table": {},
        "bare-key_1": "ok",
    }
    back = tomllib.loads(dumps(data))
    assert back == data
    assert math.copysign(1.0, back["floats"][4]) == -1.0  # -0.0 keeps its sign
    nan = tomllib.loads(dumps({"x": math.nan}))["x"]
    assert math.isnan(nan)


@pytest.mark.parametrize("data, words", [
    ({"x": None}, ["x: None"]),
    ({"a": {"b": [1, None]}}, ["a.b.1: None"]),
    ({"big": 2**63}, ["big", "64-bit"]),
    ({"small": [-(2**63) - 1]}, ["small.0", "64-bit"]),
    ({"s": {1, 2}}, ["s: cannot write a set"]),
    ({"t": {3: "x"}}, ["key 3 is not a string"]),
])
def test_the_writer_refuses_what_toml_cannot_hold(data, words):
    with pytest.raises(ValueError) as err:
        dumps(data)
    for word in words:
        assert word in str(err.value)


# ---------------------------------------------------------------------------
# Overrides


def test_options_beside_config_override_the_files_values(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text(
        'env = "loop"\nsteps = 400\nseeds = 2\nbin_size = 4\nout = "from-file"\n\n'
        '[[agents]]\nkind = "softmax"\nalpha_w = 0.1\nalpha_theta = 0.1\nalpha_rbar = 0.01\n'
        '\n[[agents]]\nkind = "softmax"\nalpha_w = 0.2\nalpha_theta = 0.1\nalpha_rbar = 0.01\n')
    # The file alone: its out, steps, seeds (a count), bin size; the default features.
    code, out, err = cli(["run", "--config", "exp.toml", "--workers", "1", "-q"], capsys)
    assert code == 0, err
    assert out.strip() == "from-file"
    config = _config(tmp_path / "from-file")
    assert (config["env"], config["steps"], config["seeds"], config["bin_size"]) == (
        LOOP, 400, [0, 1], 4)
    assert config["features"] == avgreward.features.features_to_dict(
        avgreward.default_features(LOOP))
    assert [a["alpha_w"] for a in config["agents"]] == [0.1, 0.2]

    code, out, err = cli(["run", "--config", "exp.toml", "--out", "cli", "--steps", "300",
                          "--seed-list", "5,1", "--bin-size", "3", "--set", "tau=0.5",
                          "--set", "alpha_theta=2**-4", "--workers", "1", "-q"], capsys)
    assert code == 0, err
    assert out.strip() == "cli"
    config = _config(tmp_path / "cli")
    assert (config["steps"], config["seeds"], config["bin_size"]) == (300, [5, 1], 3)
    assert [(a["alpha_w"], a["alpha_theta"], a["tau"]) for a in config["agents"]] == [
        (0.1, 2.0**-4, 0.5), (0.2, 2.0**-4, 0.5)]
    assert sorted(p.name for p in (tmp_path / "cli" / "runs").glob("*.json")) == [
        "a000-s0001.json", "a000-s0005.json", "a001-s0001.json", "a001-s0005.json"]

    code, _, err = cli(["run", "--help"], capsys)
    assert "override the file's values" in " ".join(_.split())


def test_sweep_config_sweeps_each_agent_of_the_file(tmp_path, capsys):
    (tmp_path / "exp.toml").write_text(
        'env = "loop"\nsteps = 300\nseeds = [4]\n\n'
        '[[agents]]\nkind = "softmax"\nalpha_w = 0.1\nalpha_theta = 0.1\nalpha_rbar = 0.01\n'
        '\n[[agents]]\nkind = "softmax"\nalpha_w = 0.1\nalpha_theta = 0.1\nalpha_rbar = 0.02\n')
    out = tmp_path / "sweep"
    code, _, err = cli(["sweep", "--config", tmp_path / "exp.toml", "--grid", "tau=0.5,2",
                        "--out", out, "--workers", "1", "-q"], capsys)
    assert code == 0, err
    assert [(a["alpha_rbar"], a["tau"]) for a in _config(out)["agents"]] == [
        (0.01, 0.5), (0.01, 2.0), (0.02, 0.5), (0.02, 2.0)]
    assert len(load_experiment(out).runs) == 4


# ---------------------------------------------------------------------------
# Bad input: one line naming the key, exit 2, nothing written


_AGENT = '[[agents]]\nkind = "softmax"\nalpha_w = 0.1\nalpha_theta = 0.1\nalpha_rbar = 0.01\n'
_BASE = 'env = "loop"\nsteps = 300\nseeds = 2\n'


@pytest.mark.parametrize("text, extra, words", [
    (_BASE + "stepz = 3\n", [], ["exp.toml: unknown key 'stepz'", "known: env, steps"]),
    ('steps = 300\nseeds = 2\n', [], ["exp.toml: missing key 'env'"]),
    ('env = "loop"\nseeds = 2\n', [], ["exp.toml: missing key 'steps'", "--steps"]),
    ('env = "loop"\nsteps = 300\n', [], ["exp.toml: missing key 'seeds'", "--seed-list"]),
    (_BASE, ["--out", None], ["exp.toml: missing key 'out'", "--out"]),
    ('env = 3\nsteps = 300\nseeds = 2\n', [], ["env must be an environment id", "3"]),
    ('env = "loop"\nsteps = 3e2\nseeds = 2\n', [], ["steps must be a whole number", "300.0"]),
    ('env = "loop"\nsteps = 0\nseeds = 2\n', [], ["steps must be a whole number", "got 0"]),
    ('env = "loop"\nsteps = "300"\nseeds = 2\n', [], ["steps must be", "'300'"]),
    ('env = "loop"\nsteps = 300\nseeds = [1, 1]\n', [], ["exp.toml: seeds: seed 1 is given twice"]),
    ('env = "loop"\nsteps = 300\nseeds = [1, -2]\n', [], ["seeds: -2 is not a seed"]),
    ('env = "loop"\nsteps = 300\nseeds = [1.0]\n', [], ["seeds: 1.0 is not a seed"]),
    ('env = "loop"\nsteps = 300\nseeds = 0\n', [], ["seeds, a count, must be from 1"]),
    ('env = "loop"\nsteps = 300\nseeds = "2"\n', [], ["seeds: expected a non-empty list"]),
    (_BASE + "bin_size = true\n", [], ["bin_size must be a whole number", "True"]),
    (_BASE + "bin_size = 301\n", [], ["bin_size (301) must be at most steps (300)"]),
    (_BASE + "out = 5\n", [], ["out must be a directory"]),
    (_BASE + "agents = 1\n", [], ["agents must be one or more [[agents]] tables"]),
    (_BASE + "[[agents]]\nalpha_w = 0.1\n", [], ["agents[0]: missing key 'kind'"]),
    (_BASE + '[[agents]]\nkind = "nope"\n', [], ["agents[0]: kind: unknown agent kind 'nope'"]),
    (_BASE + _AGENT + "alpha_q = 1.0\n", [], ["agents[0]: unknown setting 'alpha_q'",
                                              "known: alpha_w"]),
    (_BASE + _AGENT.replace("alpha_rbar = 0.01\n", ""), [],
     ["agents[0]: missing key 'alpha_rbar'"]),
    (_BASE + _AGENT + _AGENT.replace("0.01", '"fast"'), [],
     ["agents[1]: alpha_rbar must be", "'fast'"]),
    (_BASE + _AGENT.replace("0.01", "true"), [], ["agents[0]: alpha_rbar must be", "True"]),
    (_BASE + '[[agents]]\nkind = "gaussian"\nalpha_w = 0.1\nalpha_mu = 0.1\nalpha_sigma = 0.1\n'
     'alpha_rbar = 0.1\nsquash = 1\n', [], ["agents[0]: squash must be true or false"]),
    (_BASE + "[features]\nlow = [0.0]\n", [], ["exp.toml: features: missing key 'high'"]),
    (_BASE + "[features]\nlow = [0.0]\nhigh = [9.0]\ntiles = [9]\ntilings = 1\nwrap = [false]\n"
     "hash = 3\n", [], ["features: unknown key 'hash'"]),
    (_BASE + "[features]\nlow = [0.0]\nhigh = [9.0]\ntiles = [0]\ntilings = 1\nwrap = [false]\n",
     [], ["exp.toml: features:", "tiles"]),
    (_BASE + "[features]\nlow = [0.0, 0.0]\nhigh = [9.0, 1.0]\ntiles = [9, 2]\ntilings = 1\n"
     "wrap = [false, false]\n", [], ["features has 2 dimension(s)"]),
    ('env = "loop\n', [], ["exp.toml is not valid TOML", "line 1"]),
    ('env = "nope"\nsteps = 300\nseeds = 2\n', [], ["unknown env 'nope'"]),
    (_BASE, ["loop"], ["ENV cannot be given with --config"]),
    (_BASE, ["--agent", "softmax"], ["--agent cannot be given with --config"]),
    (_BASE, ["--tilings", "4"], ["--tilings cannot be given with --config"]),
    (_BASE, ["--set", "alpha_q=1"], ["unknown setting 'alpha_q'"]),
    (_BASE, ["--set", "tau=1", "--set", "tau=2"], ["--set tau is given twice"]),
])
def test_a_bad_config_file_is_one_line_naming_the_key_and_writes_nothing(
        tmp_path, capsys, monkeypatch, text, extra, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text(text)
    out = ["--out", "exp"]
    if extra[:2] == ["--out", None]:
        out, extra = [], extra[2:]
    code, _, err = cli(["run", "--config", "exp.toml", *out, *extra, "--workers", "1"], capsys)
    _usage_error(code, err, *words)
    assert not (tmp_path / "exp").exists()


def test_a_bad_config_aimed_at_a_finished_experiment_changes_nothing(tmp_path, capsys):
    out = tmp_path / "exp"
    code, _, err = cli(["run", "loop", "--steps", "300", "--seeds", "2", "--workers", "1",
                        "--out", out, "-q"], capsys)
    assert code == 0, err
    before = _files(out)
    code, text, _ = cli(["config", out], capsys)
    for bad, words in ((text.replace("steps = 300", "steps = 300.5"), ["steps must be"]),
                       (text.replace("steps = 300", "steps = 400"), ["other settings",
                                                                     "steps 300 -> 400"])):
        (tmp_path / "bad.toml").write_text(bad)
        code, _, err = cli(["run", "--config", tmp_path / "bad.toml", "--out", out,
                            "--workers", "1"], capsys)
        _usage_error(code, err, *words)
        assert _files(out) == before
    assert len(load_experiment(out).runs) == 2


def test_an_unreadable_config_file_or_directory_exits_2(tmp_path, capsys):
    code, _, err = cli(["run", "--config", tmp_path / "none.toml", "--out", tmp_path / "x"],
                       capsys)
    _usage_error(code, err, "none.toml", "No such file")
    (tmp_path / "latin.toml").write_bytes(b'env = "caf\xe9"\n')
    code, _, err = cli(["run", "--config", tmp_path / "latin.toml", "--out", tmp_path / "x"],
                       capsys)
    _usage_error(code, err, "latin.toml")
    code, out, err = cli(["config", tmp_path], capsys)
    _usage_error(code, err, "is not an experiment directory")
    assert out == ""
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------
# --seed-list


def test_seed_list_runs_exactly_those_seeds_and_adds_to_an_experiment(tmp_path, capsys):
    out = tmp_path / "exp"
    base = ["run", "loop", "--steps", "300", "--workers", "1", "--out", out, "-q"]
    code, _, err = cli([*base, "--seed-list", "3,7,11"], capsys)
    assert code == 0, err
    experiment = load_experiment(out)
    assert experiment.seeds == [3, 7, 11] and len(experiment.runs) == 3
    first = _files(out)
    # The same seeds from --seeds 1 (seed 0) and then a list: added, finished runs untouched.
    code, _, err = cli([*base, "--seed-list", "11,0"], capsys)
    assert code == 0, err
    experiment = load_experiment(out)
    assert experiment.seeds == [3, 7, 11, 0] and len(experiment.runs) == 4
    after = _files(out)
    assert all(after[k] == v for k, v in first.items() if k.name != "experiment.json")
    # A run with seed 7 of the list is the same run as seed 7 of --seeds 8.
    code, _, err = cli(["run", "loop", "--steps", "300", "--workers", "1", "--seeds", "8",
                        "--out", tmp_path / "eight", "-q"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(load_experiment(out).rewards(0)[1],
                                  load_experiment(tmp_path / "eight").rewards(0)[7])


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("option, words", [
    (["--seeds", "2", "--seed-list", "1,2"], ["--seed-list: not allowed with argument --seeds"]),
    (["--seed-list", "1,1"], ["--seed-list", "seed 1 is given twice"]),
    (["--seed-list", "1,-2"], ["--seed-list", "-2 is not a seed"]),
    (["--seed-list", "1,1.5"], ["--seed-list", "whole number", "'1.5'"]),
    (["--seed-list", "1,a"], ["--seed-list", "separated by commas", "'a'"]),
    (["--seed-list", "1,,2"], ["--seed-list", "separated by commas"]),
    (["--seed-list", ""], ["--seed-list", "separated by commas"]),
    ([], ["required", "--seeds or --seed-list"]),
])
def test_bad_seed_lists_exit_2_with_one_line(tmp_path, capsys, command, option, words):
    grid = ["--grid", "tau=1,2"] if command == "sweep" else []
    code, _, err = cli([command, "loop", "--steps", "100", *option, *grid, "--out",
                        tmp_path / "x"], capsys)
    _usage_error(code, err, *words)
    assert not (tmp_path / "x").exists()


def test_sweep_takes_a_seed_list(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, _, err = cli(["sweep", "loop", "--steps", "200", "--seed-list", "9,2", "--grid",
                        "tau=1,2", "--workers", "1", "--out", out, "-q"], capsys)
    assert code == 0, err
    assert _config(out)["seeds"] == [9, 2] and len(load_experiment(out).runs) == 4


# ---------------------------------------------------------------------------
# Reading a folder's config imports nothing it names


def test_config_of_a_folder_imports_nothing_it_names(tmp_path, capsys, monkeypatch):
    out = tmp_path / "exp"
    avgreward.run_experiment(out, LOOP, avgreward.default_agent(LOOP), seeds=1, steps=200,
                             workers=1, progress=False)
    marker = tmp_path / "ran"
    for module in ("pwn_env", "pwn_learner"):
        (tmp_path / f"{module}.py").write_text(
            f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
        sys.modules.pop(module, None)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = _config(out)
    config["env"] = "pwn_env:x/Y-v0"
    config["agents"].append({"kind": "custom", "learner": "pwn_learner:TD", "params": {"a": 1}})
    (out / "experiment.json").write_text(json.dumps(config))
    code, text, err = cli(["config", out], capsys)
    assert code == 0, err
    assert 'env = "pwn_env:x/Y-v0"' in text and 'learner = "pwn_learner:TD"' in text
    assert tomllib.loads(text)["agents"][1] == config["agents"][1]
    assert "pwn_env" not in sys.modules and "pwn_learner" not in sys.modules
    assert not marker.exists()


# ---------------------------------------------------------------------------
# The guide's example


def test_the_guides_example_config_runs_as_written(tmp_path, capsys, monkeypatch):
    blocks = re.findall(r"```toml\n(.+?)\n```", GUIDE.read_text(), re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text(blocks[0])
    code, out, err = cli(["run", "--config", "exp.toml", "--workers", "1", "-q"], capsys)
    assert code == 0, err
    assert out.strip() == "results/loop-sweep"
    experiment = load_experiment(tmp_path / "results" / "loop-sweep")
    assert experiment.seeds == [3, 7, 11] and experiment.steps == 2000
    assert [a.tau for a in experiment.agents] == [1.0, 0.5] and len(experiment.runs) == 6
    # And its config printed back is the same experiment.
    code, text, _ = cli(["config", tmp_path / "results" / "loop-sweep"], capsys)
    file = tomllib.loads(text)
    example = tomllib.loads(blocks[0])
    for key in ("env", "steps", "seeds", "bin_size", "features"):
        assert file[key] == example[key], key
    for written, back in zip(example["agents"], file["agents"]):
        assert written.items() <= back.items()


def test_a_custom_learners_experiment_round_trips(tmp_path, capsys):
    """Its record names the learner (``custom_td:UNIFORM_TD``) and holds the bundle's arrays."""
    import custom_td
    from avgreward.learners import Custom

    n = avgreward.default_features(LOOP).n_features
    agents = [Custom(custom_td.UNIFORM_TD, custom_td.params(n)),
              Custom(custom_td.UNIFORM_TD, custom_td.params(n, alpha=0.1))]
    first = avgreward.run_experiment(tmp_path / "first", LOOP, agents, seeds=[0, 4], steps=900,
                                     workers=1, progress=False)
    code, text, err = cli(["config", first.path], capsys)
    assert code == 0, err
    (tmp_path / "exp.toml").write_text(text)
    code, _, err = cli(["run", "--config", tmp_path / "exp.toml", "--out", tmp_path / "again",
                        "--workers", "1", "-q"], capsys)
    assert code == 0, err
    for key in (*CONFIG_KEYS, "seeds"):
        assert _config(tmp_path / "again")[key] == _config(first.path)[key], key
    a, b = _run_arrays(first.path), _run_arrays(tmp_path / "again")
    assert sorted(a) == sorted(b) and len(a) == 4
    for name in a:
        for array in a[name]:
            np.testing.assert_array_equal(a[name][array], b[name][array], err_msg=name)
    # Its settings are the bundle's, not a built-in learner's: --set and --grid refuse them.
    for command, option in (("run", ["--set", "alpha=0.2"]), ("sweep", ["--grid", "alpha=1,2"])):
        code, _, err = cli([command, "--config", tmp_path / "exp.toml", *option, "--out",
                            tmp_path / "x"], capsys)
        _usage_error(code, err, "not a custom learner's")
    assert not (tmp_path / "x").exists()
