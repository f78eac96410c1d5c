"""Every script's --help says each option's default.

The parsers are read in one interpreter, without running any script: each
script is run as ``__main__`` with ``ArgumentParser.parse_args`` replaced by a
function that hands the parser back, so nothing past the parsing happens.
An option that has a default (other than None, and other than an on/off flag)
must show it in its help, as argparse formats it: ``(default: %(default)s)``
in the help string, so that the text cannot go stale.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Slow: runs every script's --help in its own process.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py"))

_READ_PARSERS = r'''
import argparse, contextlib, io, json, runpy, sys

class _Parsed(BaseException):
    """Raised instead of parsing: carries the parser out of the script."""

def _hand_back(self, *args, **kwargs):
    raise _Parsed(self)

argparse.ArgumentParser.parse_args = _hand_back
found = {}
for path in sys.argv[1:]:
    sys.argv = [path]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(path, run_name="__main__")
    except _Parsed as parsed:
        parser = parsed.args[0]
    else:
        found[path] = None  # ran to its end without parsing arguments
        continue
    options = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        options.append({
            "option": "/".join(action.option_strings) or action.dest,
            "default": None if action.default in (None, argparse.SUPPRESS) else str(action.default),
            "flag": action.nargs == 0,
            "help": parser._get_formatter()._expand_help(action) if action.help else "",
        })
    found[path] = {"options": options, "help": parser.format_help()}
print(json.dumps(found))
'''

# Owned elsewhere for now; strict, so that the mark must go when the script says
# its defaults.
NOT_YET: dict = {}  # script -> why its --help does not show every default yet


@pytest.fixture(scope="module")
def parsers(tmp_path_factory):
    done = subprocess.run(
        [sys.executable, "-c", _READ_PARSERS, *(str(ROOT / "scripts" / s) for s in SCRIPTS)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path_factory.mktemp("help"),
    )
    assert done.returncode == 0, done.stderr
    return {Path(path).name: found for path, found in json.loads(done.stdout).items()}


@pytest.mark.parametrize("script", [
    pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[s])) if s in NOT_YET
    else s for s in SCRIPTS])
def test_the_scripts_help_shows_every_default(script, parsers):
    found = parsers[script]
    assert found is not None, f"{script} has no command-line parser (--help would run it)"
    assert "usage:" in found["help"]
    silent = [f"{o['option']} (default {o['default']}): {o['help']!r}"
              for o in found["options"]
              if o["default"] is not None and not o["flag"]
              and not ("default" in o["help"] and o["default"] in o["help"])]
    assert not silent, f"{script}: options whose --help does not show the default:\n" + (
        "\n".join(silent))
