"""``manifest.json``: the record every ``dwcpkit run`` leaves, even when the run crashes or is killed.

Fields: ``runbook``, ``kind``, ``notebook``, ``parameters`` (secrets shown by env-var name only),
``status`` (running | ok | failed | killed | kernel_died | no_verdict), ``verdict`` (level, label,
summary, reasons), ``actions`` (``planned`` and ``executed`` lists), ``error`` (failing cell index,
exception name and message), ``started_at``/``ended_at`` (UTC ISO-8601), ``duration_s``, ``user``,
``host``, ``pid``, ``git_commit``, ``versions``, ``exit_code``, ``outputs`` (file names).

The manifest is written first when the run starts (status ``running``) and rewritten atomically
when anything changes, so a run killed with SIGKILL still leaves one that says it never finished.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from dwcpkit._paths import project_root

__all__ = ["Manifest", "read_manifest", "utcnow_iso", "git_commit", "package_versions"]

_VERSIONED = ("dwcpkit", "papermill", "nbclient", "ipykernel", "polars", "pandas", "numpy", "numba", "altair",
              "pyarrow")


def utcnow_iso() -> str:
    """Current UTC time, ISO-8601 with milliseconds and a Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_commit(path: Path | None = None) -> str | None:
    """Commit of the checkout holding the notebooks (``-dirty`` appended if modified), or None."""
    cwd = path or project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


class Manifest:
    """A run's manifest, kept on disk at ``folder / "manifest.json"``."""

    def __init__(self, folder: Path, *, runbook: str, kind: str, notebook: str, parameters: dict[str, Any]):
        self.path = Path(folder) / "manifest.json"
        self.data: dict[str, Any] = {
            "runbook": runbook,
            "kind": kind,
            "notebook": notebook,
            "parameters": parameters,
            "status": "running",
            "verdict": None,
            "actions": {"planned": [], "executed": []},
            "error": None,
            "started_at": utcnow_iso(),
            "ended_at": None,
            "duration_s": None,
            "user": _user(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "argv": sys.argv,
            "git_commit": git_commit(),
            "versions": package_versions(),
            "exit_code": None,
            "outputs": {},
        }
        self._t0 = datetime.now(timezone.utc)
        self.save()

    def update(self, **fields: Any) -> None:
        """Set fields and save."""
        self.data.update(fields)
        self.save()

    def finish(self, status: str, exit_code: int, **fields: Any) -> None:
        """Mark the run ended with ``status`` and ``exit_code``."""
        end = datetime.now(timezone.utc)
        self.data.update(fields)
        self.data.update(status=status, exit_code=exit_code, ended_at=utcnow_iso(),
                         duration_s=round((end - self._t0).total_seconds(), 3))
        self.save()

    def save(self) -> None:
        """Write atomically (temp file + rename)."""
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Load ``manifest.json`` from a run folder."""
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
