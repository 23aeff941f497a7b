"""The notebooks in notebooks/ run from top to bottom, and are committed as they run.

Each notebook is executed in a fresh Jupyter kernel, from a copy in a
temporary folder (a run never rewrites the committed notebook nor leaves files
in the checkout), with a time limit per cell. The kernel imports nnscratch the
way a reader's does, installed or from PYTHONPATH; a first cell, added to the
copy only, checks that it is the very nnscratch these tests import.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nnscratch

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat: pip install '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient: pip install '.[test]'")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel: pip install '.[test]'")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds; a whole notebook takes well under a minute on a quiet 2-core machine
MAX_BYTES = 600_000  # a committed notebook, pictures included: keep the repository light


def test_the_notebooks_are_there():
    assert len(NOTEBOOKS) >= 2, "notebooks/ should hold the walkthrough notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    expected = os.path.realpath(nnscratch.__file__)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        "import os, nnscratch\n"
        f"assert os.path.realpath(nnscratch.__file__) == {expected!r}, nnscratch.__file__"))
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}")
    except nbclient.exceptions.CellTimeoutError as exc:
        pytest.fail(f"{path.name}: a cell ran longer than {CELL_TIMEOUT} s: {exc}")
    committed = nbformat.read(path, as_version=4)
    assert sum(map(_pictures, notebook.cells)) >= sum(map(_pictures, committed.cells)), \
        f"{path.name}: pictures went missing (did something switch matplotlib's backend?)"


def _pictures(cell) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{path.name}: run it and save it with its outputs"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), \
        f"{path.name}: its outputs come from cells run out of order; run it again from the top"
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name}: saved with an error: {errors[0].get('evalue')}"
    assert path.stat().st_size <= MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes; smaller pictures please"


def test_together_they_hold_code_and_pictures():
    cells = [cell for path in NOTEBOOKS for cell in nbformat.read(path, as_version=4).cells]
    assert sum(cell.cell_type == "code" for cell in cells) >= 15
    assert sum(_pictures(cell) for cell in cells) >= 4


def test_figures_keep_the_backend_jupyter_chooses():
    # ipykernel sets MPLBACKEND to draw inside the notebook: importing nnscratch's figures must keep it.
    code = "import matplotlib, nnscratch.apps.figures; print(matplotlib.get_backend())"
    def backend(**env):
        env = {**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, **env}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip().lower()
    assert backend(MPLBACKEND="svg") == "svg"
    assert backend() == "agg"  # files only, without a screen: the CLI, the web server, CI
