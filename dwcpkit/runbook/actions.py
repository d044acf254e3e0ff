"""Dry-run-by-default actions with an audit trail.

Anything a runbook would change on a live system goes through :func:`action`. With
``dry_run=True`` (every runbook's default) the action is only recorded as *planned*; with
``dry_run=False`` its function runs and the outcome (done / failed, with the error) is recorded.
Every action is recorded in the notebook outputs as it happens, so even a run that crashes
afterwards leaves its audit trail; ``dwcpkit run`` copies the trail into ``manifest.json``.

Example
-------
>>> a = action("Scale dwcp-v1 to 10 replicas", lambda: "scaled", dry_run=True)  # doctest: +ELLIPSIS
[...] DRY-RUN would: Scale dwcp-v1 to 10 replicas
>>> a.status
'planned'
>>> action("Scale", lambda: "scaled", dry_run=False).status  # doctest: +ELLIPSIS
[...] DONE: Scale
'done'
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from dwcpkit.errors import ParameterError
from dwcpkit.runbook import record
from dwcpkit.runbook.params import ENV_NAME

__all__ = ["ActionRecord", "action", "command", "secret", "RECORD_PREFIX"]

RECORD_PREFIX = "dwcpkit.action."
_counter = itertools.count(1)


@dataclass
class ActionRecord:
    """One action: what, whether it changes a system, and what happened."""

    seq: int
    title: str
    detail: str
    changes_system: bool
    dry_run: bool
    status: str  # planned | done | failed | skipped
    at: str | None  # UTC time it was executed; None while only planned (keeps dry runs deterministic)
    result: str | None = None
    error: str | None = None

    def __str__(self) -> str:
        tag = {"planned": "DRY-RUN would", "done": "DONE", "failed": "FAILED", "skipped": "SKIPPED"}[self.status]
        text = f"[{self.seq}] {tag}: {self.title}"
        if self.detail:
            text += f" — {self.detail}"
        if self.error:
            text += f" ({self.error})"
        return text


def action(
    title: str,
    run: Callable[[], Any] | None = None,
    *,
    dry_run: bool,
    detail: str = "",
    changes_system: bool = True,
) -> ActionRecord:
    """Record ``title`` and, only when ``dry_run`` is False, execute ``run()``.

    ``run=None`` records a manual step for the operator. Exceptions from ``run`` are caught and
    recorded as ``failed`` (the runbook decides what to do next); the record is returned.
    """
    rec = ActionRecord(next(_counter), title, detail, changes_system, bool(dry_run), "planned", None)
    if run is None:
        rec.status = "planned" if dry_run else "skipped"
        if not dry_run:
            rec.result = "manual step: no function to execute"
    elif not dry_run:
        rec.at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            result = run()
            rec.status, rec.result = "done", None if result is None else str(result)
        except Exception as exc:  # noqa: BLE001 - the audit trail must record any failure
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
    print(rec)
    record.emit(f"{RECORD_PREFIX}{rec.seq:03d}", asdict(rec))
    return rec


def command(title: str, argv: list[str], *, dry_run: bool, timeout: float = 60.0) -> ActionRecord:
    """An action that runs the command ``argv`` (no shell) with a timeout; fails on non-zero exit.

    >>> command("List", ["true"], dry_run=True).detail   # doctest: +ELLIPSIS
    [...] DRY-RUN would: List — true
    'true'
    """
    import shlex
    import subprocess

    def run() -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:500]}")
        return proc.stdout.strip()[:2000]

    return action(title, run, dry_run=dry_run, detail=shlex.join(argv))


def secret(env_name: str) -> str:
    """Value of the secret held in environment variable ``env_name`` (a ``Secret`` parameter).

    ``dwcpkit run`` redacts this value from the executed notebook, the HTML report and the
    manifest. Raises ParameterError when the variable is not set.
    """
    if not env_name or not ENV_NAME.match(env_name):
        raise ParameterError(f"{env_name!r} is not an environment-variable name")
    value = os.environ.get(env_name)
    if value is None:
        raise ParameterError(f"environment variable {env_name} is not set; export it before running the runbook")
    return value
