"""Reading results never runs code a results folder names; malformed env ids are one line.

An experiment.json (or a saved result) names its environment; ``"module:id"``
would import ``module``.  Reading results (load, plot, stats, export, view)
must import nothing the folder names: only running, with the id given by the
user (the call, the command line) or ``trust=True``, may import it.
"""

import json
import sys

import pytest

import avgreward
import avgreward.animation
from avgreward.cli import main

pytest.importorskip("pandas")  # export's extra (CI installs it)

MARKER = "ran-from-the-folder"


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A finished experiment whose files name ``pwn_mod:x/Y-v0``, with pwn_mod.py on the path."""
    out = tmp_path / "exp"
    avgreward.run_experiment(out, "avgreward/LoopMDP-v0",
                             avgreward.default_agent("avgreward/LoopMDP-v0"), seeds=2,
                             steps=200, workers=1, progress=False)
    (tmp_path / "pwn_mod.py").write_text(
        f"import pathlib\npathlib.Path({str(tmp_path / MARKER)!r}).write_text('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("pwn_mod", None)

    def name(env):
        for file in [out / "experiment.json", *sorted((out / "runs").glob("*.json"))]:
            record = json.loads(file.read_text())
            record["env"] = env
            file.write_text(json.dumps(record))
        return out

    yield name
    sys.modules.pop("pwn_mod", None)


def _nothing_ran(tmp_path, module="pwn_mod"):
    assert module not in sys.modules
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("env", ["pwn_mod:x/Y-v0", "this:x/Y-v0"])
def test_reading_a_folder_imports_nothing_it_names(planted, tmp_path, env, capsys):
    module = env.split(":")[0]
    if module in sys.modules:
        pytest.skip(f"{module} was imported before this test")
    out = planted(env)
    experiment = avgreward.load_experiment(out)
    assert experiment.env_id == env and len(experiment.runs) == 2
    experiment.result(0, 0)
    experiment.to_frame()
    assert main(["plot", str(out), "--out", str(tmp_path / "curve.png")]) == 0
    assert main(["stats", str(out), "--resamples", "200"]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "t.csv")]) == 0
    capsys.readouterr()
    _nothing_ran(tmp_path, module)


def test_evaluating_a_saved_result_asks_before_importing_its_module(planted, tmp_path):
    result = avgreward.train("avgreward/LoopMDP-v0",
                             avgreward.default_agent("avgreward/LoopMDP-v0"), 200, seed=0)
    path = result.save(tmp_path / "saved")
    record = json.loads(path.with_suffix(".json").read_text())
    record["env_id"] = "pwn_mod:x/Y-v0"
    path.with_suffix(".json").write_text(json.dumps(record))
    loaded = avgreward.load_result(path)
    with pytest.raises(ValueError, match="would import the module 'pwn_mod'.*trust=True"):
        avgreward.evaluate(loaded, steps=100)
    _nothing_ran(tmp_path)
    # The user allows it: the module is imported (and the id, which it does not
    # register, is then refused).
    with pytest.raises(ValueError):
        avgreward.evaluate(loaded, steps=100, trust=True)
    assert (tmp_path / MARKER).exists()


def test_running_imports_the_module_the_user_names(planted, tmp_path):
    # train("module:id") is the user naming the module: it is imported to find the id.
    with pytest.raises(ValueError):
        avgreward.train("pwn_mod:x/Y-v0", avgreward.DifferentialSarsa(alpha=0.1, beta=0.1),
                        10, seed=0)
    assert (tmp_path / MARKER).exists()


@pytest.mark.parametrize("env", ["..:x", ":x", "a b", "mod:", "a:b:c", ".mod:x", "1mod:x", ""])
def test_a_malformed_env_id_is_one_line(env, tmp_path, capsys):
    with pytest.raises(ValueError, match="not a valid environment id.*'module:id'"):
        avgreward.train(env, avgreward.DifferentialSarsa(alpha=0.1, beta=0.1), 10, seed=0)
    code = main(["run", env, "--steps", "10", "--seeds", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert repr(env) in err and "module:id" in err
    assert not (tmp_path / "o").exists()


def test_a_malformed_env_id_in_experiment_json_is_named(planted):
    out = planted("..:x")
    with pytest.raises(ValueError, match=r"experiment.json is not a valid experiment.*'\.\.:x'"):
        avgreward.load_experiment(out)


def test_animating_a_folder_asks_before_importing_its_module(planted, tmp_path, capsys):
    out = planted("pwn_mod:x/Y-v0")
    # The CLI animates the pendulum only: refused in one line, nothing imported.
    code = main(["animate", str(out), "--out", str(tmp_path / "a.gif"), "--steps", "5"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    _nothing_ran(tmp_path)
    result = avgreward.load_experiment(out).result(0, 0)
    for roll in (avgreward.animation.rollout, avgreward.animation.iter_frames):
        with pytest.raises(ValueError, match="would import the module 'pwn_mod'.*trust=True"):
            next(iter(roll(result, 5))) if roll is avgreward.animation.iter_frames else roll(
                result, 5)
    with pytest.raises(ValueError, match="trust=True"):
        avgreward.animation.animate_policy(result, tmp_path / "a.gif", 5)
    _nothing_ran(tmp_path)
    with pytest.raises(ValueError, match="cannot make the environment"):
        avgreward.animation.rollout(result, 5, trust=True)
    assert (tmp_path / MARKER).exists()


def test_a_saved_custom_learner_is_not_imported_by_reading(tmp_path, monkeypatch):
    """A result of a user's learner names it by ``module:attr``: reading imports nothing."""
    import custom_td

    from avgreward.learners import Custom

    agent = Custom(custom_td.UNIFORM_TD, custom_td.params(9))
    saved = avgreward.train("avgreward/LoopMDP-v0", agent, 500, seed=0).save(tmp_path / "r")
    record = json.loads(saved.read_text())
    record["agent"]["learner"] = "pwn_mod:TD"
    saved.write_text(json.dumps(record))
    (tmp_path / "pwn_mod.py").write_text(
        f"import pathlib\npathlib.Path({str(tmp_path / MARKER)!r}).write_text('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("pwn_mod", None)
    loaded = avgreward.load_result(saved)
    assert loaded.agent.ref == "pwn_mod:TD" and not loaded.agent.resolved
    assert loaded.weights["v"].shape == (9,)
    with pytest.raises(ValueError, match="no policy the package can read"):
        avgreward.evaluate(loaded)
    _nothing_ran(tmp_path)
    # Running it is the user's call: then, and only then, the module is imported.
    with pytest.raises(ValueError, match="is a NoneType, not an avgreward.learners.Fused"):
        (tmp_path / "pwn_mod.py").write_text(
            f"import pathlib\npathlib.Path({str(tmp_path / MARKER)!r}).write_text('ran')\n"
            "TD = None\n")
        avgreward.train("avgreward/LoopMDP-v0", loaded.agent, 10, init=loaded)
    assert (tmp_path / MARKER).exists()
    sys.modules.pop("pwn_mod", None)


def test_evaluating_a_folder_asks_before_importing_its_module(planted, tmp_path, capsys):
    out = tmp_path / "exp"
    avgreward.load_experiment(out).evaluate(steps=100)  # kept in evaluation.json
    planted("pwn_mod:x/Y-v0")
    experiment = avgreward.load_experiment(out)
    # Refused before anything is read, even with every number already kept.
    with pytest.raises(ValueError, match="would import the module 'pwn_mod'.*trust=True"):
        experiment.evaluate(steps=100)
    for args in (["evaluate", str(out), "--steps", "100"],
                 ["stats", str(out), "--evaluated", "--eval-steps", "100"]):
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "would import the module 'pwn_mod'" in err and "--trust-env-module" in err
    _nothing_ran(tmp_path)
    # The user allows it: the module is imported (and the id, which it does not
    # register, is then refused in one line).
    code = main(["evaluate", str(out), "--steps", "200", "--trust-env-module"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert (tmp_path / MARKER).exists()
