"""The docs site (docs/source: the user guide and the API reference, Sphinx + numpydoc +
myst-parser) builds with warnings as errors.

The build is the one the docs' conf.py gives:

    python -m sphinx -W --keep-going -b html docs/source docs/_build/html

It needs the ``docs`` extra (Sphinx, numpydoc, myst-parser). Without it the test
is skipped, so that a plain ``pip install ".[test]"`` still passes; CI installs
the extra (the README's test command), so there it always runs.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

# Slow: builds the API reference with Sphinx.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "docs" / "source"

# The modules with a page of their own, each documented through its __all__.
MODULES = ["avgreward.agents", "avgreward.experiment", "avgreward.features", "avgreward.exact",
           "avgreward.divergences", "avgreward.plotting", "avgreward.stats", "avgreward.animation",
           "avgreward.wrappers", "avgreward.network_policy",
           "avgreward.importance_sampling"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    for module in ("sphinx", "numpydoc", "myst_parser"):
        pytest.importorskip(module, reason="the docs extra: pip install '.[docs]'")
    out = tmp_path_factory.mktemp("docs")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(SOURCE), str(out / "html")],
        capture_output=True, text=True, timeout=600, cwd=out,
    )
    # -q: only warnings (errors here) reach stderr, each naming its file and line.
    assert done.returncode == 0, done.stderr
    return out / "html"


def _inventory(html):
    from sphinx.util.inventory import InventoryFile

    with open(html / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    return {name for kind, objects in inventory.items() if kind.startswith("py:")
            for name in objects}


def _resolve(name):
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def test_the_api_reference_builds_without_a_warning(built):
    guide = [f"guide/{page.stem}" for page in sorted((SOURCE / "guide").glob("*.md"))]
    assert "guide/quickstart" in guide and "guide/architecture" in guide
    for page in ("index", *guide, "cli", "api/index", "api/avgreward", "api/exact",
                 "api/runner"):
        assert (built / f"{page}.html").is_file(), page
    # The guide's figures (in docs/, outside the sources) are copied into the site.
    assert (built / "_images" / "swingup_softmax.png").is_file()
    # The command line's help pages, generated from the installed command.
    assert "usage: avgreward run" in (built / "cli.html").read_text()


def test_every_public_name_is_in_the_reference(built):
    """What ``avgreward`` and each module's ``__all__`` export has an entry somewhere.

    A name without a docstring would be left out silently by autodoc; a new
    public name must be added to docs/source/api/avgreward.rst or its module's page.
    """
    import avgreward

    documented = _inventory(built)
    by_short_name = {}
    for name in documented:
        by_short_name.setdefault(name.rpartition(".")[2], []).append(name)
    missing = []
    exported = [("avgreward", n) for n in avgreward.__all__ if n != "__version__"]
    exported += [(m, n) for m in MODULES for n in importlib.import_module(m).__all__]
    for module, name in exported:
        obj = getattr(importlib.import_module(module), name)
        if not any(_resolve(entry) is obj for entry in by_short_name.get(name, [])):
            missing.append(f"{module}.{name}")
    assert not missing, f"not in the API reference: {', '.join(missing)}"
