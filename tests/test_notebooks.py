"""Every notebook in notebooks/ runs top to bottom, and is committed without outputs.

Each notebook runs in a fresh Jupyter kernel (nbclient) with ``NNDL_QUICK=1`` (small data,
few epochs) and imports nndl from this checkout.  MNIST is found as everywhere else
(``$NNDL_DATA``, else ``data/mnist/``).  Notebooks are committed with their outputs
stripped, so diffs show only what was written and the files stay small:
``test_notebooks_are_committed_without_outputs`` checks that.
"""
import glob
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
NAMES = [os.path.basename(p) for p in NOTEBOOKS]
CHAPTERS = [f"ch{k}_" for k in range(1, 7)]


def test_there_is_a_notebook_per_chapter_and_one_for_the_examples():
    for prefix in CHAPTERS:
        assert any(name.startswith(prefix) for name in NAMES), f"no notebooks/{prefix}*.ipynb"
    assert any(name.startswith("examples_") for name in NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebooks_are_committed_without_outputs(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                f"{os.path.basename(path)} cell {i} has outputs: clear them before committing"
        assert "execution" not in cell.get("metadata", {}), f"cell {i} keeps execution timings"
    assert "widgets" not in nb["metadata"], "the notebook keeps widget state"


def _this_python_kernel():
    """A KernelManager class whose kernel runs this interpreter, whatever kernels Jupyter
    has installed (nbclient owns it, so it shuts the kernel down and closes its sockets)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager
    from traitlets import default

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"],
                              display_name="nndl tests", language="python", resource_dir="")

    class ThisPythonKernel(KernelManager):
        @default("kernel_spec_manager")
        def _this_python(self):
            return ThisPython(parent=self)

    return ThisPythonKernel


@pytest.mark.slow
@pytest.mark.notebooks
# jupyter_core announces a future change of its folders (platformdirs) when a kernel starts.
@pytest.mark.filterwarnings("ignore:Jupyter is migrating its paths:DeprecationWarning")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_with_nndl_quick(path):
    nbformat = pytest.importorskip("nbformat", reason="pip install '.[test]' for the notebook tests")
    nbclient = pytest.importorskip("nbclient", reason="pip install '.[test]' for the notebook tests")

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, NNDL_QUICK="1", MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    client = nbclient.NotebookClient(nb, kernel_manager_class=_this_python_kernel(),
                                     kernel_name="nndl-tests", timeout=600,
                                     resources={"metadata": {"path": NOTEBOOK_DIR}})
    client.execute(env=env)  # raises CellExecutionError, with the cell and traceback, on a failure

    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                assert "Warning" not in out["text"], f"cell {i} warns:\n{out['text']}"
