"""The fast subset: ``pytest -m "not slow"`` leaves out the slow tests; the marker is registered.

Collects a few files only (no test runs), in a subprocess, with ``--strict-markers``:
an unregistered ``slow`` marker would be an error there.
"""

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW_FILES = ["tests/test_bench.py", "tests/test_docs.py", "tests/test_notebook.py"]


def _collected(*args):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--strict-markers", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: nothing collected
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_the_slow_marker_is_registered_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    markers = config["tool:pytest"]["markers"].split("\n")
    assert any(line.strip().startswith("slow:") for line in markers)


def test_not_slow_leaves_out_the_benchmark_docs_and_notebook_tests():
    files = [*SLOW_FILES, "tests/test_exact.py"]
    everything = _collected(*files)
    fast = _collected("-m", "not slow", *files)
    for name in SLOW_FILES:
        assert any(t.startswith(name) for t in everything), name  # collected by default
        assert not any(t.startswith(name) for t in fast), name
    exact = [t for t in everything if t.startswith("tests/test_exact.py")]
    assert exact and [t for t in fast if t.startswith("tests/test_exact.py")] == exact
