"""Every script in scripts/ runs on a tiny budget, says where it wrote, and writes its figures."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

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
