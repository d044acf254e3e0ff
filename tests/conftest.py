"""Shared test setup: keep Jupyter/IPython/numba state out of the user's home."""

import os
import tempfile
from pathlib import Path

import pytest

_STATE = Path(tempfile.mkdtemp(prefix="dwcpkit-test-state-"))
for var, sub in (("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                 ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("MPLCONFIGDIR", "mpl")):
    os.environ.setdefault(var, str(_STATE / sub))
os.environ.setdefault("NUMBA_CACHE_DIR", str(_STATE / "numba"))
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

# Fixture notebooks are inputs of the runbook-engine tests, not nbval tests themselves.
collect_ignore_glob = ["runbook/notebooks/*"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_NOTEBOOKS = Path(__file__).resolve().parent / "runbook" / "notebooks"


@pytest.fixture
def fixture_nb():
    """Path of a runbook-engine fixture notebook by stem."""
    return lambda stem: str(FIXTURE_NOTEBOOKS / f"{stem}.ipynb")
