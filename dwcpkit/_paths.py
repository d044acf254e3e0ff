"""Where dwcpkit's notebooks and sample data live (the repository checkout)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "data_dir", "notebook_dirs"]


def project_root() -> Path:
    """The checkout holding ``runbooks/``, ``analyses/`` and ``data/``.

    ``DWCPKIT_HOME`` overrides it (for a non-editable install next to a copy of the notebooks).
    """
    env = os.environ.get("DWCPKIT_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The sample-data folder, ``<root>/data``."""
    return project_root() / "data"


def notebook_dirs() -> dict[str, Path]:
    """Notebook folders by kind: ``runbook`` and ``analysis``."""
    root = project_root()
    return {"runbook": root / "runbooks", "analysis": root / "analyses"}
