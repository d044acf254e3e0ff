"""Scrapbook-compatible records that notebooks leave in their outputs, and reading them back.

A record is a ``display_data`` output with the mimetype ``application/scrapbook.scrap.json+json``
holding ``{"name", "data", "encoder": "json", "version": 1}`` — the format nteract's scrapbook
writes, so ``scrapbook.read_notebook(path).scraps`` reads dwcpkit's verdict too. dwcpkit reads it
back with :func:`read_records` without needing scrapbook.

Example
-------
>>> import nbformat
>>> nb = nbformat.v4.new_notebook()
>>> cell = nbformat.v4.new_code_cell("")
>>> cell.outputs = [nbformat.v4.new_output("display_data", data=scrap_bundle("x", 3))]
>>> nb.cells.append(cell)
>>> read_records(nb)["x"]
3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SCRAP_MIME", "scrap_bundle", "emit", "read_records", "read_verdict"]

SCRAP_MIME = "application/scrapbook.scrap.json+json"


def scrap_bundle(name: str, data: Any) -> dict[str, Any]:
    """The MIME bundle of one scrap called ``name`` holding JSON-serialisable ``data``."""
    return {SCRAP_MIME: {"name": name, "data": data, "encoder": "json", "version": 1}}


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where outputs are recorded), False in plain Python or a test."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def emit(name: str, data: Any) -> None:
    """Record ``data`` under ``name`` in the running notebook's outputs (no-op outside IPython)."""
    from IPython.display import display

    if not in_kernel():
        return
    display(scrap_bundle(name, data), metadata={"scrapbook": {"name": name, "data": True, "display": False}},
            raw=True)


def read_records(nb: Any) -> dict[str, Any]:
    """All scraps of an executed notebook (``nbformat`` node or dict), later ones winning."""
    out: dict[str, Any] = {}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            payload = output.get("data", {}).get(SCRAP_MIME)
            if isinstance(payload, dict) and "name" in payload:
                out[payload["name"]] = payload.get("data")
    return out


def read_verdict(notebook: str | Path) -> dict[str, Any] | None:
    """The verdict recorded in an executed notebook file (``None`` if it never reached ``verdict()``).

    For schedulers that run the notebook themselves (papermill, Airflow's PapermillOperator,
    jupyter-scheduler): ``read_verdict(out)["exit_code"]`` is what ``dwcpkit run`` would exit with.
    """
    import nbformat

    from dwcpkit.runbook.verdict import RECORD_NAME

    return read_records(nbformat.read(str(notebook), as_version=4)).get(RECORD_NAME)
