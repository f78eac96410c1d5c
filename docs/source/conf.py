"""Sphinx configuration: avgreward's API reference, from its numpydoc docstrings.

Build (warnings are errors, as in CI's ``tests/test_docs.py``)::

    pip install ".[docs]"
    python -m sphinx -W --keep-going -b html docs/source docs/_build/html

The package is imported as installed (``pip install .`` or ``pip install -e .``),
so the reference describes the code the tests run.
"""

import contextlib
import io
import os
import shlex

from docutils import nodes
from docutils.parsers.rst import Directive, directives

# Imports only: nothing here opens a window or compiles a kernel.
os.environ.setdefault("MPLBACKEND", "Agg")

import avgreward  # noqa: E402

project = "avgreward"
author = "avgreward contributors"
copyright = "avgreward contributors"
version = release = avgreward.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",  # the user guide, docs/source/guide/*.md
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = []
html_theme = "alabaster"
html_static_path = []
html_title = f"avgreward {release}"

# autodoc: members in source order, signatures with their type hints.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": False}
# Type aliases shown by name in signatures, not expanded into their unions.
autodoc_type_aliases = {
    "ArrayLike": "numpy.typing.ArrayLike",
    "AgentSettings": "avgreward.agents.AgentSettings",
}
# Tables on the pages themselves; no stub files written into the sources.
autosummary_generate = False

# numpydoc renders the Parameters/Returns/Attributes sections. Class members
# are documented by autodoc's :members: (not numpydoc's member tables, which
# would document them twice), and numpydoc's own style validation (GL01,
# SS05, ... checks) is not run: the build fails on what Sphinx reports.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# The guide's pages: their sections get GitHub's anchors, so pages (and the README,
# on GitHub) can link them alike (a link to a section that is gone fails the build).
myst_heading_anchors = 3

# Cross-references that do not resolve are not errors (``nitpicky`` off):
# docstrings name numpy, gymnasium and matplotlib types, which are not linked
# here (no intersphinx: the build runs offline).
nitpicky = False


def _command_help(argv):
    """The text ``avgreward ARGV --help`` prints, at a fixed width."""
    from avgreward.cli import main

    text = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
            main([*argv, "--help"])
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return text.getvalue().rstrip()


class CommandHelp(Directive):
    """``.. command-help:: avgreward run``: the command's ``--help``, as a literal block.

    With ``:subcommands:``, each subcommand's ``--help`` follows under a heading
    of its own, for every subcommand the command has (none can be forgotten).
    """

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"subcommands": directives.flag}

    def run(self):
        argv = shlex.split(self.arguments[0])
        if argv[:1] != ["avgreward"]:
            raise self.error(f"command-help: not an avgreward command: {self.arguments[0]!r}")
        found = [self._block(argv)]
        if "subcommands" in self.options:
            from avgreward.cli import SUBCOMMANDS

            for name in SUBCOMMANDS:
                found.append(nodes.rubric(text=f"avgreward {name}"))
                found.append(self._block([*argv, name]))
        return found

    def _block(self, argv):
        text = _command_help(argv[1:])
        if not text:
            raise self.error(f"command-help: {shlex.join(argv)!r} printed no help")
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return block


def setup(app):
    app.add_directive("command-help", CommandHelp)
