"""The environments live in avgreward.envs; the old top-level ``envs`` is a deprecated alias.

Issue 22 item 11: avgreward imported the top-level name ``envs``, so a user's own
``envs`` package earlier on ``sys.path`` broke ``import avgreward``'s first run
(``ModuleNotFoundError: No module named 'envs._numba_cache'``).  Issue 23 item 6:
the environments moved into the package.
"""

import ast
import configparser
import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import pytest

import avgreward.envs
from avgreward.environments import env_module, resolve_env

ROOT = Path(__file__).resolve().parents[1]
WRAPPED_IDS = ("avgreward/CartPoleFailurePenalty-v1", "avgreward/MountainCarGoalBonus-v0")


def _python(code, cwd, pythonpath=()):
    """Run ``code`` in a fresh interpreter with ``pythonpath`` first on sys.path."""
    path = [str(p) for p in pythonpath] + [str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


# --- a user's own envs package (issue 22 item 11) ---------------------------------------------

USERS_ENVS = {
    "raises": "raise RuntimeError('the user envs package was imported')\n",
    "empty": "",
}

TRAIN_LOOP = """
import sys
import avgreward
import avgreward.envs

agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
result = avgreward.train("avgreward/LoopMDP-v0", agent, 500, seed=0)
assert result.rewards.shape == (500,), result.rewards.shape
# The package's numba cache guard looked at the package, not at the user's envs.
from avgreward.envs import _numba_cache
assert _numba_cache._package_dirs() == [__import__("pathlib").Path(avgreward.__file__).parent]
assert "envs" not in sys.modules, sys.modules["envs"]
print("trained")
"""


@pytest.mark.parametrize("kind", sorted(USERS_ENVS))
@pytest.mark.slow
def test_a_users_own_envs_package_first_on_sys_path_does_not_break_training(tmp_path, kind):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text(USERS_ENVS[kind])
    # First on sys.path twice over: the working directory ('' for -c) and PYTHONPATH.
    done = _python(TRAIN_LOOP, cwd=tmp_path, pythonpath=[tmp_path])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "trained"
    assert "ModuleNotFoundError" not in done.stderr


def test_a_users_own_envs_module_with_its_own_ids_is_a_module_like_any_other():
    # "envs:" before one of our ids: the old name of this package (ids in older
    # results), never imported for it; "envs:" before another id: the user's module.
    assert env_module("avgreward.envs:avgreward/LoopMDP-v0") is None
    assert env_module("envs:avgreward/LoopMDP-v0") is None
    assert env_module("envs:my/Task-v0") == "envs"
    assert env_module("avgreward/LoopMDP-v0") is None
    for prefix in ("", "avgreward.envs:", "envs:"):
        env_id, cls = resolve_env(f"{prefix}avgreward/LoopMDP-v0")
        assert env_id == "avgreward/LoopMDP-v0" and cls is avgreward.envs.LoopMDPEnv


@pytest.mark.slow
def test_training_an_old_envs_prefixed_id_does_not_import_the_alias(tmp_path):
    code = (
        "import sys, avgreward\n"
        "agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)\n"
        "result = avgreward.train('envs:avgreward/LoopMDP-v0', agent, 200, seed=0)\n"
        "assert result.env_id == 'avgreward/LoopMDP-v0', result.env_id\n"
        "assert 'envs' not in sys.modules\n"
    )
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _imports_of(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_avgreward_never_imports_the_top_level_envs():
    package = ROOT / "avgreward"
    found = [f"{path.relative_to(ROOT)}: import {name}"
             for path in sorted(package.rglob("*.py")) if "__pycache__" not in path.parts
             for name in _imports_of(path) if name.split(".")[0] == "envs"]
    assert not found, found


# --- the deprecated alias ---------------------------------------------------------------------


@pytest.fixture
def fresh_alias(monkeypatch):
    """``import envs`` runs the alias again (and sys.modules is restored afterwards)."""
    for name in [m for m in sys.modules if m == "envs" or m.startswith("envs.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [m for m in sys.modules if m == "envs" or m.startswith("envs.")]:
        monkeypatch.delitem(sys.modules, name)


def test_import_envs_warns_and_gives_the_names_of_avgreward_envs(fresh_alias):
    with pytest.warns(DeprecationWarning,
                      match=r"^envs is now avgreward\.envs; import avgreward\.envs$"):
        import envs
    assert envs.PendulumSwingUpEnv is avgreward.envs.PendulumSwingUpEnv
    assert list(envs.__all__) == list(avgreward.envs.__all__)
    for name in avgreward.envs.__all__:
        assert getattr(envs, name) is getattr(avgreward.envs, name), name
    assert envs._ENTRY_POINTS is avgreward.envs._ENTRY_POINTS
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        envs.nothing_here  # noqa: B018


def test_the_old_submodules_are_the_new_modules_themselves(fresh_alias):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import envs.declare
        import envs.model
        import envs.pendulum
        from envs import loop_mdp
        from envs._numba_cache import hash_function
        from envs.declare import DeclaredEnv, FusedEnv
    assert envs.pendulum is avgreward.envs.pendulum
    assert envs.declare is avgreward.envs.declare and envs.model is avgreward.envs.model
    assert loop_mdp is avgreward.envs.loop_mdp
    assert FusedEnv is avgreward.envs.FusedEnv and DeclaredEnv is avgreward.envs.DeclaredEnv
    assert hash_function is avgreward.envs._numba_cache.hash_function
    for info in __import__("pkgutil").iter_modules(avgreward.envs.__path__):
        old = importlib.import_module(f"envs.{info.name}")
        assert old is importlib.import_module(f"avgreward.envs.{info.name}"), info.name
        assert sys.modules[f"envs.{info.name}"] is old


@pytest.mark.slow
def test_the_warning_names_the_line_that_imports_envs(tmp_path):
    # Shown with Python's default filters (a DeprecationWarning in __main__), at the
    # import itself, also when a submodule is imported first.
    for statement in ("import envs", "import envs.pendulum", "from envs.declare import FusedEnv"):
        done = _python(f"{statement}\n", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert ("<string>:1: DeprecationWarning: envs is now avgreward.envs; "
                "import avgreward.envs") in done.stderr, (statement, done.stderr)


def test_the_old_module_prefix_still_makes_the_environments(tmp_path):
    code = (
        "import warnings\n"
        "import gymnasium\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    env = gymnasium.make('envs:avgreward/LoopMDP-v0')\n"
        "assert any(issubclass(w.category, DeprecationWarning) for w in caught), caught\n"
        "import avgreward.envs\n"
        "assert type(env.unwrapped) is avgreward.envs.LoopMDPEnv\n"
    )
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


# --- registration ------------------------------------------------------------------------------


def test_the_entry_points_are_in_avgreward_envs():
    for env_id in avgreward.envs.ENV_IDS:
        entry = gymnasium.spec(env_id).entry_point
        assert entry.startswith("avgreward.envs.") and ":" in entry, (env_id, entry)
        module, _, name = entry.partition(":")
        assert getattr(importlib.import_module(module), name).__module__ == module


@pytest.mark.slow
def test_every_id_is_made_after_importing_avgreward_envs_only(tmp_path):
    code = (
        "import sys\n"
        "import gymnasium\n"
        "import avgreward.envs\n"
        f"for env_id in (*avgreward.envs.ENV_IDS, *{WRAPPED_IDS!r}):\n"
        "    env = gymnasium.make(env_id)\n"
        "    env.reset(seed=0)\n"
        "    env.step(env.action_space.sample())\n"
        "    env.close()\n"
        "assert 'envs' not in sys.modules\n"
        "print(len(avgreward.envs.ENV_IDS))\n"
    )
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(avgreward.envs.ENV_IDS))


def test_the_module_prefix_imports_avgreward_envs(tmp_path):
    code = (
        "import sys, gymnasium\n"
        "env = gymnasium.make('avgreward.envs:avgreward/PendulumSwingUp-v0')\n"
        "env.reset(seed=0)\n"
        "assert 'avgreward.envs' in sys.modules and 'envs' not in sys.modules\n"
    )
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


# --- packaging -----------------------------------------------------------------------------------


def test_setup_cfg_ships_avgreward_envs_and_the_alias():
    from setuptools import find_packages

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    include = config["options.packages.find"]["include"].split()
    found = set(find_packages(str(ROOT), include=include))
    assert {"avgreward", "avgreward.envs", "avgreward.learners", "envs"} <= found
    data = config["options.package_data"]
    assert data["avgreward.envs"].strip() == "py.typed"
    assert data["envs"].strip() == "py.typed"
    for package in ("avgreward", "avgreward/envs", "envs"):
        assert (ROOT / package / "py.typed").is_file(), package
