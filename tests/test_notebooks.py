"""The notebooks in notebooks/ run top to bottom in a fresh kernel, in their fast mode.

Each test executes an in-memory copy of one notebook (the committed file, with the outputs
of a full run, is left as it is) with ``SK_MMOE_FAST=1``, which shrinks rows, epochs, seeds
and grids, and fails on the first cell that raises.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = [
    "01_quick_start.ipynb",
    "02_tuning.ipynb",
    "03_synthetic_experiment.ipynb",
    "04_census_income.ipynb",
    "05_polarization.ipynb",
]
NEEDS_CENSUS = {"04_census_income.ipynb"}
CENSUS_FILES = [
    f"census-income.{part}{suffix}" for part in ("data", "test") for suffix in (".gz", "")
]
CELL_TIMEOUT_S = 240


def _census_data_home(environ):
    """The folder the census notebook reads: $SK_MMOE_DATA, else shared/data beside the repo."""
    return Path(environ.get("SK_MMOE_DATA", REPO.parent / "shared" / "data"))


def _kernel_manager():
    # With no kernel folders to search, jupyter_client falls back to ipykernel's native
    # spec, which starts this interpreter: the test never picks up a kernel installed
    # elsewhere on the machine.
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    assert manager.kernel_spec.argv[0] == sys.executable
    return manager


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_fast_mode(name, monkeypatch):
    if name in NEEDS_CENSUS:
        data_home = _census_data_home(os.environ)
        if not any((data_home / f).exists() for f in CENSUS_FILES):
            pytest.skip(f"no census-income file in {data_home} (set SK_MMOE_DATA to its folder)")
    monkeypatch.setenv("SK_MMOE_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(
        notebook,
        km=_kernel_manager(),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
