"""Run a notebook as a runbook: validate, execute with papermill, leave a record, return an exit code.

Example
-------
>>> result = run("incident-triage", {"lookback_minutes": 60})   # doctest: +SKIP
>>> result.exit_code, result.folder                              # doctest: +SKIP
(30, PosixPath('runs/incident-triage/20261128T031500Z-1a2b3c'))
"""

from __future__ import annotations

import os
import secrets as _secrets
import logging
import signal
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dwcpkit.errors import ParameterError, RunbookError, exit_code_for
from dwcpkit.runbook.actions import RECORD_PREFIX
from dwcpkit.runbook.catalog import NotebookInfo, find
from dwcpkit.runbook.manifest import Manifest
from dwcpkit.runbook.params import Schema, read_schema, validate
from dwcpkit.runbook.record import read_records
from dwcpkit.runbook.verdict import RECORD_NAME

__all__ = ["RunResult", "prepare", "run", "run_folder", "describe_error", "refresh", "EXIT_KERNEL_DIED", "EXIT_KILLED"]

#: ipykernel warns on every start that loopback TCP is unencrypted; keep its errors only.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
EXIT_KERNEL_DIED = 138  # papermill's code for a dead kernel
EXIT_KILLED = 143  # 128 + SIGTERM


@dataclass
class RunResult:
    """What a run produced."""

    folder: Path
    exit_code: int
    status: str
    verdict: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    actions: dict[str, list] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


class _Killed(BaseException):
    """Raised in the main thread when the run receives SIGTERM (e.g. a scheduler's timeout)."""


def prepare(name: str, values: dict[str, Any] | None = None) -> tuple[NotebookInfo, Schema, dict[str, Any]]:
    """Find the notebook and validate ``values`` against its schema — no kernel, no heavy imports.

    Returns (notebook, schema, coerced overrides). Raises ParameterError (exit 2) on bad input.
    """
    info = find(name)
    schema = read_schema(info.path)
    return info, schema, validate(schema, dict(values or {}))


def run_folder(out: str | Path, name: str, params: dict[str, Any], *, now: datetime | None = None,
               run_id: str | None = None) -> Path:
    """The folder a run writes to.

    Without placeholders, ``out`` is a root: ``<out>/<name>/<UTC timestamp>-<id>``. With
    placeholders it is the run folder itself, rendered from ``{name}``, ``{date}`` (UTC
    YYYY-MM-DD), ``{time}`` (HHMMSSZ), ``{timestamp}`` (YYYYMMDDTHHMMSSZ), ``{id}`` (6 hex digits,
    unique per run) and ``{<parameter>}`` — the form schedulers want, e.g.
    ``/var/lib/dwcpkit/{name}/{date}/{region}``.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 11, 28, 3, 15, tzinfo=timezone.utc)
    >>> run_folder("out/{name}/{date}/{region}", "rollout-gate", {"region": "eu-west"}, now=t).as_posix()
    'out/rollout-gate/2026-11-28/eu-west'
    >>> run_folder("runs", "x", {}, now=t, run_id="abc123").as_posix()
    'runs/x/20261128T031500Z-abc123'
    """
    now = now or datetime.now(timezone.utc)
    run_id = run_id or _secrets.token_hex(3)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    text = str(out)
    if "{" not in text:
        return Path(out) / name / f"{stamp}-{run_id}"
    fields = {**{k: str(v) for k, v in params.items()}, "name": name, "date": now.strftime("%Y-%m-%d"),
              "time": now.strftime("%H%M%SZ"), "timestamp": stamp, "id": run_id}
    try:
        return Path(text.format_map(fields))
    except KeyError as exc:
        raise ParameterError(
            f"--out {text!r} uses {{{exc.args[0]}}}, which is neither a parameter of {name} nor one of "
            "{name}, {date}, {time}, {timestamp}, {id}"
        ) from None
    except (ValueError, IndexError) as exc:
        raise ParameterError(f"--out {text!r} is not a valid template: {exc}") from None


def _secret_values(schema: Schema, params: dict[str, Any]) -> dict[str, str]:
    """env-var name -> secret value, for every Secret parameter whose variable is set."""
    out = {}
    for p in schema:
        env = params.get(p.name)
        if p.secret and env:
            value = os.environ.get(env, "")
            if len(value) >= 4:
                out[env] = value
    return out


def _redact_file(path: Path, secret_values: dict[str, str]) -> None:
    if not secret_values or not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    new = text
    for env, value in secret_values.items():
        new = new.replace(value, f"[REDACTED:{env}]")
    if new != text:
        path.write_text(new, encoding="utf-8")


def _public_params(schema: Schema, params: dict[str, Any]) -> dict[str, Any]:
    return {k: (f"${v} (secret, redacted)" if k in schema and schema[k].secret and v else v)
            for k, v in params.items()}


def _write_html(notebook: Path, html_path: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    with warnings.catch_warnings():
        # scrapbook records have no visual form; nbconvert warns about each one
        warnings.filterwarnings("ignore", message=".*is not able to be represented", category=UserWarning)
        body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


def _collect(nb_path: Path) -> tuple[dict | None, dict[str, list]]:
    import nbformat

    if not nb_path.exists():
        return None, {"planned": [], "executed": []}
    records = read_records(nbformat.read(nb_path, as_version=4))
    acts = [v for k, v in sorted(records.items()) if k.startswith(RECORD_PREFIX)]
    return records.get(RECORD_NAME), {
        "planned": [a for a in acts if a.get("status") == "planned"],
        "executed": [a for a in acts if a.get("status") in ("done", "failed")],
    }


def _kernel_manager():
    # Pin the kernel to this interpreter: an empty kernel_dirs list makes jupyter_client use
    # ipykernel's built-in spec, whose argv[0] it rewrites to sys.executable, so no globally
    # installed (or shadowing) kernelspec is involved (reference/stack-notes.md §2).
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def _stop_kernel(km) -> None:
    """Shut the kernel down and wait for it, if papermill's own cleanup has not (interrupts, errors)."""
    try:
        from jupyter_core.utils import run_sync

        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001 - best effort; the kernel also exits when its parent dies
        pass


def run(
    name: str,
    values: dict[str, Any] | None = None,
    *,
    out: str | Path = "runs",
    folder: str | Path | None = None,
    progress: bool = True,
    html: bool = True,
    cell_timeout: float | None = None,
) -> RunResult:
    """Validate ``values``, execute the notebook ``name`` headless and record the run.

    Writes ``<out>/<name>/<UTC timestamp>-<id>/`` (see :func:`run_folder`; ``folder`` overrides it) with ``<name>.ipynb`` (executed; partial if the run
    stopped early), ``report.html`` and ``manifest.json``. Never raises for a failing notebook: the
    outcome is in the returned :class:`RunResult` (``exit_code`` per DESIGN.md). Raises
    ParameterError before any kernel starts when ``values`` are invalid.
    """
    info, schema, overrides = prepare(name, values)
    params = {**schema.defaults(), **overrides}
    folder = Path(folder) if folder is not None else run_folder(out, info.name, params)
    if folder.exists() and any(folder.iterdir()):
        raise ParameterError(f"run folder {folder} already holds files; add {{id}} or {{time}} to --out")
    folder.mkdir(parents=True, exist_ok=True)
    out_nb = folder / f"{info.name}.ipynb"
    manifest = Manifest(folder, runbook=info.name, kind=info.kind, notebook=str(info.path),
                        parameters=_public_params(schema, params))
    manifest.update(outputs={"notebook": out_nb.name})
    secret_values = _secret_values(schema, params)

    def on_term(signum, frame):  # noqa: ARG001
        raise _Killed()

    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not in the main thread: a scheduler may still kill us, the manifest says "running"
        previous = None

    status, exit_code, error = "ok", 0, None
    km = _kernel_manager()
    # The kernel inherits this: notebooks save figures into the run folder (dwcpkit.charts.save_all).
    previous_run_dir = os.environ.get("DWCPKIT_RUN_DIR")
    os.environ["DWCPKIT_RUN_DIR"] = str(folder.resolve())
    try:
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        # papermill cannot read Literal[...]/Secret annotations and warns "Passed unknown parameter"
        # for them; the values were validated against dwcpkit's own schema above.
        logging.getLogger("papermill").setLevel(logging.ERROR)
        try:
            pm.execute_notebook(
                str(info.path), str(out_nb), parameters=overrides, kernel_name="python3",
                km=km, cwd=str(info.path.parent), progress_bar=progress,
                request_save_on_cell_execute=True, execution_timeout=cell_timeout,
                extra_arguments=KERNEL_ARGS,
            )
        except PapermillExecutionError as exc:
            code = exit_code_for(exc.ename)
            status = "source_error" if code == 3 else "failed"
            exit_code = code if code is not None else 1
            error = {"cell_index": exc.cell_index, "execution_count": exc.exec_count, "ename": exc.ename,
                     "evalue": exc.evalue, "source": exc.source}
    except _Killed:
        status, exit_code, error = "killed", EXIT_KILLED, {"ename": "SIGTERM", "evalue": "run was terminated"}
    except KeyboardInterrupt:
        status, exit_code, error = "killed", 130, {"ename": "KeyboardInterrupt", "evalue": "run was interrupted"}
    except Exception as exc:  # noqa: BLE001 - every outcome must reach the manifest
        ename = type(exc).__name__
        if ename == "DeadKernelError":
            status, exit_code = "kernel_died", EXIT_KERNEL_DIED
        else:
            status, exit_code = "failed", 1
        error = {"ename": ename, "evalue": str(exc)}
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        _stop_kernel(km)  # papermill normally has; after an interrupt or error it may not have
        if previous_run_dir is None:
            os.environ.pop("DWCPKIT_RUN_DIR", None)
        else:
            os.environ["DWCPKIT_RUN_DIR"] = previous_run_dir
        _redact_file(out_nb, secret_values)

    verdict, actions = _collect(out_nb)
    if status == "ok":
        if verdict is None:
            status, exit_code = "no_verdict", 1
            error = {"ename": "RunbookError", "evalue": "the notebook ended without calling verdict()"}
        else:
            exit_code = int(verdict.get("exit_code", 1))
    if html and out_nb.exists():
        try:
            _write_html(out_nb, folder / "report.html")
            _redact_file(folder / "report.html", secret_values)
            manifest.data["outputs"]["report"] = "report.html"
        except Exception as exc:  # noqa: BLE001 - a report failure must not hide the verdict
            manifest.data["outputs"]["report_error"] = f"{type(exc).__name__}: {exc}"
    manifest.finish(status, exit_code, verdict=verdict, actions=actions, error=error)
    _redact_file(manifest.path, secret_values)
    return RunResult(folder, exit_code, status, verdict, error, actions, manifest.data)


def describe_error(result: RunResult) -> str:
    """One line describing why a run failed."""
    err = result.error or {}
    where = ""
    if err.get("cell_index") is not None:
        where = f" in cell [{err.get('execution_count')}] (notebook cell {err['cell_index']})"
    return f"{err.get('ename', 'error')}{where}: {err.get('evalue', '')}".strip()



def refresh(name: str, *, timeout: float = 600) -> Path:
    """Re-execute a committed notebook in place with its default parameters (the sample data).

    For maintainers: committed notebooks carry their executed outputs so readers and nbval see
    real results. No timing metadata is recorded, so unchanged results give an unchanged file.
    Raises RunbookError naming the failing cell if the notebook does not run cleanly.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    info = find(name)
    nb = nbformat.read(info.path, as_version=4)
    client = NotebookClient(nb, km=_kernel_manager(), timeout=timeout, record_timing=False,
                            extra_arguments=KERNEL_ARGS,
                            resources={"metadata": {"path": str(info.path.parent)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        raise RunbookError(f"{info.path.name} failed while refreshing: {exc.ename}: {exc.evalue}") from None
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, info.path)
    return info.path
