"""The README's commands are the ones CI runs, and its main job runs as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    readme = (ROOT / "README.md").read_text()
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


def _python_block(section):
    readme = (ROOT / "README.md").read_text()
    part = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.+?)\n```", part, re.S).group(1)


def test_readme_examples_of_your_own_environment_and_learner_run(tmp_path):
    """Each in a file of its own and a fresh process, as a user would run them."""
    for name, section, check in (
        ("my_env.py", "Add your own environment",
         "assert result.mean_reward(50_000) > 0.5, result.mean_reward(50_000)"),
        ("my_learner.py", "Add your own learner",
         "assert abs(result.final_rbar - 0.3) < 0.01, result.final_rbar"),
    ):
        (tmp_path / name).write_text(_python_block(section) + "\n" + check + "\n")
        out = subprocess.run([sys.executable, name], capture_output=True, text=True,
                             timeout=600, cwd=tmp_path)
        assert out.returncode == 0, out.stderr


def test_the_exact_analysis_example_runs_as_written():
    namespace = {}
    exec(_python_block("Exact analysis of tabular tasks"), namespace)
    assert abs(namespace["right"].reward_rate - 0.4) < 1e-12
    assert abs(namespace["best"].reward_rate - 0.4) < 1e-12
