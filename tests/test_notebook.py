"""examples/tutorial.ipynb runs from top to bottom, as a reader would run it.

It needs the ``docs`` extra (nbclient, nbformat, ipykernel) and the ``analysis``
extra (pandas, for its last step). Without them the test is skipped, so that a
plain ``pip install ".[test]"`` still passes; CI installs both extras (the
README's test command), so there it always runs.
"""

import json
import sys
from pathlib import Path

import pytest

# Slow: executes the tutorial notebook.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"


def test_the_tutorial_is_kept_without_outputs():
    """Committed clean: outputs would go stale (and bloat every diff)."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, "".join(cell["source"])


def test_the_tutorial_runs_from_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the docs extra: pip install '.[docs]'")
    nbclient = pytest.importorskip("nbclient", reason="the docs extra: pip install '.[docs]'")
    pytest.importorskip("ipykernel", reason="the docs extra: pip install '.[docs]'")
    pytest.importorskip("pandas", reason="the analysis extra: pip install '.[analysis]'")

    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # A kernel of this very interpreter (the one whose avgreward is under test),
    # whatever kernels the machine's Jupyter knows.
    kernels = tmp_path / "kernels"
    write_kernel_spec(str(kernels / "this-python"))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    manager = KernelManager(kernel_name="this-python", kernel_spec_manager=specs)
    assert manager.kernel_spec.argv[0] == sys.executable

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # In a directory of its own, as if the notebook were there: its results go to
    # tutorial_results/ in the working directory.
    work = tmp_path / "work"
    work.mkdir()
    client = nbclient.NotebookClient(notebook, km=manager, timeout=600,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback

    printed = "".join(out.get("text", "") for cell in notebook.cells
                      for out in cell.get("outputs", []) if out["output_type"] == "stream")
    assert "6 of 6 runs done, 0 failed" in printed
    assert "left loop 0.2 right loop 0.4" in printed
    images = sum("image/png" in out.get("data", {}) for cell in notebook.cells
                 for out in cell.get("outputs", []))
    assert images >= 3  # the learning curve, the policy map, the sweep's curves
    results = work / "tutorial_results"
    assert (results / "sweep" / "experiment.json").is_file()
    assert (results / "sweep.csv").stat().st_size > 1000
    assert (results / "learning_curve.png").stat().st_size > 10_000
