"""The README's commands are the ones CI runs, and every Python example in it runs as written.

Every ```python block of README.md is run, in README order, in one fresh
process whose working directory is a temporary one:

- the blocks of one ``## `` section (its ``### `` subsections included) share one
  namespace, in order, as a reader typing them into one session would (the
  "Tidy tables" block goes on from the experiment the block before it ran);
  each section starts from an empty namespace, so a section cannot lean on
  another's imports;
- a few sections also get checks of what the README says the example gives
  (``CHECKS``), run in the section's namespace after its last block, and
  files the README says were written before (``PREPARE``: the scripts' results
  directories, written by running the scripts, on a tiny budget);
- a block that cannot run in a test is marked in README.md, on the line just
  before its opening fence, with ``<!-- readme-test: skip (the reason) -->``:
  it is reported as a skipped test with that reason (``pytest -ra``).

Each block is one test (``test_readme_python_block[LINE-section]``), so a
failure names the block, its README line and its traceback.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _commands():
    readme = README.read_text()
    return re.findall(r"```bash\n(.+?)\n```", readme)


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    commands = _commands()
    assert len(commands) >= 2
    main, tests = commands[0], commands[1]
    assert "pip install ." in main and "scripts/" in main
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, ".ci/run must run exactly the README's test command"


def test_main_job_runs_on_a_tiny_budget(tmp_path):
    main = _commands()[0]
    script = re.search(r"python (scripts/\S+\.py)", main).group(1)
    out = subprocess.run(
        [sys.executable, str(ROOT / script), "--seeds", "2", "--steps", "3000",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "reward rate" in out.stdout
    assert (tmp_path / "learning_curve.png").stat().st_size > 10_000


# --- every Python block ------------------------------------------------------------------

# What the README says a section's example gives, checked after its last block.
CHECKS = {
    "Use": "assert -0.05 < result.mean_reward(15_000) < 0.0, result.mean_reward(15_000)",
    "Any gymnasium environment":  # the README says 68; a random policy: about 0
        "assert (goals >= 90_000).sum() >= 50, (goals >= 90_000).sum()",
    "Experiments and the command line":
        "assert exp.summary() == '50 of 50 runs done, 0 failed', exp.summary()\n"
        "assert exp.label(0) == 'alpha_theta=2^-5', exp.label(0)\n"
        "assert len(frame) == 50 * 10_000 and len(runs) == 50\n",
    "Exact analysis of tabular tasks":
        "assert abs(right.reward_rate - 0.4) < 1e-12\n"
        "assert abs(best.reward_rate - 0.4) < 1e-12\n",
    "Add your own environment":
        "assert result.mean_reward(50_000) > 0.5, result.mean_reward(50_000)",
    "Add your own learner": "assert abs(result.final_rbar - 0.3) < 0.01, result.final_rbar",
}

# Results a section reads that the README says a script wrote: the scripts are run
# (on a tiny budget, into their default directories) before the blocks run.
PREPARE = {
    "Plots": [
        ["swingup_softmax.py", "--seeds", "2", "--steps", "2000", "--gif-steps", "10"],
        ["swingup_gaussian.py", "--seeds", "2", "--steps", "2000", "--gif-steps", "10"],
        ["sensitivity.py", "--seeds", "2", "--steps", "1000", "--actor", "-2", "0",
         "--critic", "0", "1"],
    ],
}

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*readme-test:(.*?)-->", re.S)
_SKIP = re.compile(r"\s*skip\s*\((.+)\)\s*", re.S)


def _python_blocks(readme):
    """Every ```python block: (line, section, source, skip reason or None), in order."""
    blocks = []
    for fence in _FENCE.finditer(readme):
        before = readme[: fence.start()]
        line = before.count("\n") + 1
        sections = re.findall(r"^## (.+)$", before, re.M)
        section = sections[-1].strip() if sections else "(top)"
        skip = None
        marker = re.search(r"<!--\s*readme-test:(.*?)-->\s*\Z", before, re.S)
        parsed = marker and _SKIP.fullmatch(marker.group(1))
        if parsed:  # (a malformed marker fails the marker test, and the block runs)
            skip = parsed.group(1).strip()
        blocks.append((line, section, fence.group(1), skip))
    return blocks


def _block_id(block):
    line, section = block[:2]
    return f"{line}-{re.sub(r'[^A-Za-z0-9]+', '-', section).strip('-').lower()}"


BLOCKS = _python_blocks(README.read_text())

# Runs the blocks given in a JSON file, in order, one namespace per section; writes
# each block's outcome (and its section's checks') to another JSON file.
_DRIVER = r'''
import json, sys, time, traceback
from pathlib import Path

spec = json.loads(Path(sys.argv[1]).read_text())
outcome = {}
namespaces = {}
failed = {}  # section -> README line of its block that failed
for block in spec["blocks"]:
    name, section = block["file"], block["section"]
    space = namespaces.setdefault(section, {"__name__": "__main__", "__builtins__": __builtins__})
    space["__file__"] = str(Path(name).resolve())
    started = time.perf_counter()
    print(f"--- README line {block['line']} ({section})", flush=True)
    if section in failed:
        error = f"not run: the block at README line {failed[section]} of this section failed"
    else:
        try:
            exec(compile(Path(name).read_text(), name, "exec"), space)
            if block["check"]:
                exec(compile(block["check"], f"<checks of {section}>", "exec"), space)
            error = None
        except BaseException:
            error = traceback.format_exc()
            failed[section] = block["line"]
    outcome[name] = {"error": error, "seconds": round(time.perf_counter() - started, 2)}
    Path(sys.argv[2]).write_text(json.dumps(outcome))
'''


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Run every block not skipped; {block file: {"error", "seconds"}}, and the output."""
    cwd = tmp_path_factory.mktemp("readme")
    to_run = [b for b in BLOCKS if b[3] is None]
    sections = {b[1] for b in to_run}
    for section, commands in PREPARE.items():
        if section not in sections:
            continue
        for script, *flags in commands:
            done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *flags],
                                  capture_output=True, text=True, timeout=600, cwd=cwd)
            assert done.returncode == 0, f"preparing {section!r}: {script}: {done.stderr}"
    last = {b[1]: b for b in to_run}  # each section's last block gets its checks
    spec = []
    for block in to_run:
        line, section, source, _ = block
        name = f"readme_line_{line}.py"
        (cwd / name).write_text(source)
        check = CHECKS.get(section, "") if last[section] is block else ""
        spec.append({"file": name, "line": line, "section": section, "check": check})
    (cwd / "blocks.json").write_text(json.dumps({"blocks": spec}))
    (cwd / "driver.py").write_text(_DRIVER)
    done = subprocess.run(
        [sys.executable, "driver.py", "blocks.json", "outcome.json"],
        capture_output=True, text=True, timeout=900, cwd=cwd,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    outcome_file = cwd / "outcome.json"
    outcome = json.loads(outcome_file.read_text()) if outcome_file.exists() else {}
    return {"outcome": outcome, "returncode": done.returncode,
            "output": done.stdout[-5000:] + done.stderr[-5000:]}


@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(b) for b in BLOCKS])
def test_readme_python_block(block, readme_run):
    line, section, _, skip = block
    if skip is not None:
        pytest.skip(f"README line {line} ({section}): {skip}")
    outcome = readme_run["outcome"].get(f"readme_line_{line}.py")
    assert outcome is not None, (f"README line {line} ({section}) did not run: the process "
                                 f"exited with {readme_run['returncode']}\n{readme_run['output']}")
    assert outcome["error"] is None, f"README line {line} ({section}):\n{outcome['error']}"


def test_every_readme_marker_is_well_formed_and_few_blocks_are_skipped():
    """A marker that does not parse, or is not just before a Python block, is an error."""
    readme = README.read_text()
    markers = list(_MARKER.finditer(readme))
    for marker in markers:
        assert _SKIP.fullmatch(marker.group(1)), f"malformed marker: {marker.group(0)!r}"
        assert readme[marker.end():].lstrip().startswith("```python"), (
            f"marker not just before a python block: {marker.group(0)!r}")
    skipped = [b for b in BLOCKS if b[3] is not None]
    assert len(skipped) == len(markers)
    assert BLOCKS, "README has no python block"
    assert len(skipped) <= len(BLOCKS) // 4, "most of the README's examples must run"
