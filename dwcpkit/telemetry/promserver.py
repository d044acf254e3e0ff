"""Serve a telemetry frame from a real Prometheus: backfill it with ``promtool``, run ``prometheus`` locally.

For replaying an incident in Prometheus' own UI and PromQL, and for testing anything that talks to
Prometheus against the real thing. Needs the ``prometheus`` and ``promtool`` binaries (Debian:
``apt-get install prometheus``; tested with 2.42).

:func:`backfill` writes a canonical frame as OpenMetrics (integer-second timestamps where whole,
each series time-sorted, ``# EOF`` at the end) and turns it into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics``. :class:`PrometheusServer` runs ``prometheus`` on
that storage on ``127.0.0.1`` and a free port, with no scrape jobs and a 10-year retention (with
the default 15 days, Prometheus deletes backfilled blocks that are older than that relative to the
newest block), and waits for ``/-/ready`` before handing out its URL. Leaving the ``with`` block
stops it (SIGTERM, then SIGKILL after ``stop_timeout``).

Example
-------
>>> from dwcpkit.telemetry.promserver import PrometheusServer
>>> from dwcpkit.telemetry.sources import load
>>> frame = load("sample", start="2026-11-01T19:00:00Z", end="2026-11-01T20:30:00Z")
>>> with PrometheusServer.from_frame(frame) as prom:            # doctest: +SKIP
...     again = load(prom.url, metrics=["dwcp_v3_component_health"],
...                  start="2026-11-01T19:00:00Z", end="2026-11-01T20:30:00Z")
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import polars as pl

from dwcpkit.errors import ParameterError, PrometheusError
from dwcpkit.telemetry import exposition
from dwcpkit.telemetry.schema import normalize

__all__ = ["Binaries", "BackfillResult", "find_binaries", "backfill", "PrometheusServer"]

_INSTALL_HINT = (
    "install Prometheus (Debian/Ubuntu: `apt-get install prometheus`, which brings `promtool`; the CI does "
    "this in .ci/install-system-deps), or put both binaries on PATH"
)
#: Newest timestamp accepted by :func:`backfill`: now plus this much (catches milliseconds taken for seconds).
_FUTURE_SLACK_MS = 366 * 86_400_000


class Binaries(NamedTuple):
    """Paths of the ``prometheus`` and ``promtool`` executables."""

    prometheus: str
    promtool: str


class BackfillResult(NamedTuple):
    """What :func:`backfill` wrote: the TSDB directory, its blocks, the sample count and the seconds taken."""

    tsdb_dir: Path
    blocks: tuple[str, ...]
    samples: int
    seconds: float


def find_binaries(prometheus: str | None = None, promtool: str | None = None) -> Binaries:
    """Locate ``prometheus`` and ``promtool`` (given paths first, then ``PATH``).

    Raises
    ------
    PrometheusError
        When either is missing; the message says how to install them.

    Examples
    --------
    >>> find_binaries()                               # doctest: +SKIP
    Binaries(prometheus='/usr/bin/prometheus', promtool='/usr/bin/promtool')
    """
    found = []
    for name, given in (("prometheus", prometheus), ("promtool", promtool)):
        path = shutil.which(given or name)
        if path is None:
            where = f"{given!r} is not an executable" if given else f"`{name}` is not on PATH"
            raise PrometheusError(f"cannot run a local Prometheus: {where}; {_INSTALL_HINT}")
        found.append(path)
    return Binaries(*found)


def _tail(text: str, lines: int = 8) -> str:
    out = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(out[-lines:]) or "(no output)"


def _block_hours(span_ms: int) -> int:
    """``--max-block-duration`` in hours: the data's span rounded up to 2 h, plus 2 h.

    promtool cuts blocks at multiples of this duration (since the epoch), so the data lands in one or
    two blocks instead of one per 2 h, and promtool re-reads the input once per block: one block per
    2 h makes two days of samples take ~10 times longer.
    """
    hours = -(-span_ms // 3_600_000)
    return int(hours + hours % 2 + 2)


def backfill(
    frame: pl.DataFrame,
    tsdb_dir: str | os.PathLike[str],
    *,
    promtool: str | None = None,
    timeout: float = 300.0,
) -> BackfillResult:
    """Write ``frame`` into TSDB blocks in ``tsdb_dir`` with ``promtool tsdb create-blocks-from openmetrics``.

    Parameters
    ----------
    frame : polars.DataFrame
        A canonical telemetry frame (:mod:`dwcpkit.telemetry.schema`). Family types come from
        :data:`dwcpkit.telemetry.names.CATALOG` (else inferred, see
        :func:`dwcpkit.telemetry.exposition.write`).
    tsdb_dir : path
        Storage directory of the Prometheus that will serve the data (created if missing). Blocks
        are added next to whatever is there.
    promtool : str, optional
        The ``promtool`` executable (default: from ``PATH``).
    timeout : float
        Seconds allowed for promtool.

    Returns
    -------
    BackfillResult

    Raises
    ------
    PrometheusError
        promtool is missing, failed or timed out (its output is in the message).
    ParameterError
        The frame is empty or has timestamps before 1970 or more than a year in the future
        (promtool would accept them silently and produce useless blocks).
    SchemaError
        ``frame`` is not a canonical frame.

    Examples
    --------
    >>> from dwcpkit.telemetry.sources import load
    >>> frame = load("sample", start="2026-11-01T19:00:00Z", end="2026-11-01T20:00:00Z")
    >>> backfill(frame, "/tmp/dwcp-tsdb").samples                    # doctest: +SKIP
    15616
    """
    tool = shutil.which(promtool or "promtool")
    if tool is None:
        where = f"{promtool!r} is not an executable" if promtool else "`promtool` is not on PATH"
        raise PrometheusError(f"cannot backfill: {where}; {_INSTALL_HINT}")
    frame = normalize(frame, source="backfill()")
    if frame.height == 0:
        raise ParameterError("backfill(): the frame has no samples; load some telemetry first")
    ms = frame["timestamp"].dt.epoch("ms")
    lo, hi = int(ms.min()), int(ms.max())
    now = int(time.time() * 1000)
    if lo < 0 or hi > now + _FUTURE_SLACK_MS:
        raise ParameterError(
            f"backfill(): timestamps span {frame['timestamp'].min()} .. {frame['timestamp'].max()}; expected times "
            "between 1970 and a year from now (were milliseconds read as seconds?)"
        )
    out = Path(tsdb_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out.iterdir()}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dwcpkit-backfill-") as tmp:
        om = exposition.write_file(frame, Path(tmp) / "backfill.om", openmetrics=True)
        cmd = [tool, "tsdb", "create-blocks-from", "openmetrics",
               f"--max-block-duration={_block_hours(hi - lo)}h", str(om), str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PrometheusError(
                f"promtool did not finish backfilling {frame.height} samples within {timeout:g} s; "
                "backfill a shorter window or raise the timeout"
            ) from None
        except OSError as e:
            raise PrometheusError(f"cannot run {tool}: {e}; {_INSTALL_HINT}") from None
    if proc.returncode != 0:
        raise PrometheusError(
            f"promtool tsdb create-blocks-from openmetrics failed (exit {proc.returncode}): "
            f"{_tail(proc.stderr + proc.stdout)}"
        )
    blocks = tuple(sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in before))
    return BackfillResult(out, blocks, frame.height, time.monotonic() - started)


def _abandon(proc: subprocess.Popen, dirs: list[Path]) -> None:
    """Last-resort stop of a server whose owner forgot it (garbage collection or interpreter exit)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    dirs.clear()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PrometheusServer:
    """A ``prometheus`` process serving a TSDB directory on ``127.0.0.1``; a context manager.

    Parameters
    ----------
    tsdb_dir : path
        Storage directory (e.g. filled by :func:`backfill`). Prometheus adds its WAL and lock there.
    port : int, optional
        Port to listen on (default: a free one).
    retention : str
        ``--storage.tsdb.retention.time``. Keep it long: retention is measured from the newest
        block, and a short one deletes backfilled history at start-up.
    rule_files : sequence of path
        Rule files to load (evaluated from now on, never over the backfilled past).
    extra_args : sequence of str
        More ``prometheus`` flags, e.g. ``["--query.max-samples=1000"]``.
    ready_timeout : float
        Seconds to wait for ``/-/ready`` when starting.
    stop_timeout : float
        Seconds to wait after SIGTERM before SIGKILL.
    prometheus : str, optional
        The ``prometheus`` executable (default: from ``PATH``).

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>`` once started.
    log_path : pathlib.Path
        The server's output, in a temporary work directory removed by :meth:`stop` (as is the TSDB of
        a server made by :meth:`from_frame` without ``workdir``).

    Examples
    --------
    >>> with PrometheusServer("/tmp/dwcp-tsdb") as prom:           # doctest: +SKIP
    ...     print(prom.url)
    http://127.0.0.1:40123
    """

    def __init__(
        self,
        tsdb_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        retention: str = "10y",
        rule_files: Sequence[str | os.PathLike[str]] = (),
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        prometheus: str | None = None,
    ) -> None:
        if ready_timeout <= 0 or stop_timeout <= 0:
            raise ParameterError("ready_timeout and stop_timeout must be positive numbers of seconds")
        self.tsdb_dir = Path(tsdb_dir)
        self.port = port
        self.retention = retention
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.extra_args = list(extra_args)
        self.ready_timeout = float(ready_timeout)
        self.stop_timeout = float(stop_timeout)
        self._prometheus = prometheus
        self._proc: subprocess.Popen | None = None
        self._owned_dirs: list[Path] = []
        self._workdir: Path | None = None
        self.host = "127.0.0.1"
        self.url = ""
        self.log_path: Path | None = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, *, workdir: str | os.PathLike[str] | None = None,
                   **kwargs) -> PrometheusServer:
        """Backfill ``frame`` into a fresh TSDB (in ``workdir``, default a temporary directory that is
        removed when the server stops) and return a server for it (not started yet).

        >>> from dwcpkit.telemetry.sources import load
        >>> frame = load("sample", start="2026-11-01T19:00:00Z", end="2026-11-01T20:00:00Z")
        >>> with PrometheusServer.from_frame(frame) as prom:          # doctest: +SKIP
        ...     prom.url
        """
        owned = workdir is None
        base = Path(tempfile.mkdtemp(prefix="dwcpkit-prom-")) if owned else Path(workdir)
        try:
            backfill(frame, base / "data", promtool=kwargs.pop("promtool", None))
        except BaseException:
            if owned:
                shutil.rmtree(base, ignore_errors=True)
            raise
        server = cls(base / "data", **kwargs)
        if owned:
            server._owned_dirs.append(base)
        return server

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _config(self) -> Path:
        assert self._workdir is not None
        lines = ["# dwcpkit: a Prometheus serving backfilled data. No scrape jobs (not even itself):",
                 "# new samples would move the retention horizon.",
                 "global:", "  scrape_interval: 1m", "  evaluation_interval: 1m"]
        if self.rule_files:
            lines.append("rule_files:")
            lines.extend(f"  - {_yaml_str(str(p))}" for p in self.rule_files)
        path = self._workdir / "prometheus.yml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_path.read_text(encoding="utf-8", errors="replace")) if self.log_path else ""
        except OSError:
            return "(no log)"

    def _ready(self) -> bool:
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(self.url + "/-/ready", timeout=1.0) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self) -> PrometheusServer:
        """Start the server and wait until ``/-/ready`` answers 200.

        Raises
        ------
        PrometheusError
            The binary is missing, the process exited (its log tail is in the message), or it was not
            ready within ``ready_timeout`` seconds (it is stopped again).
        """
        if self.running:
            return self
        binary = shutil.which(self._prometheus or "prometheus")
        if binary is None:
            where = f"{self._prometheus!r} is not an executable" if self._prometheus else "`prometheus` is not on PATH"
            raise PrometheusError(f"cannot run a local Prometheus: {where}; {_INSTALL_HINT}")
        if not self.tsdb_dir.is_dir():
            raise PrometheusError(f"{self.tsdb_dir}: no such TSDB directory; backfill data into it first")
        self._workdir = Path(tempfile.mkdtemp(prefix="dwcpkit-promrun-"))
        self._owned_dirs.append(self._workdir)
        config = self._config()
        self.log_path = self._workdir / "prometheus.log"
        attempts = 1 if self.port else 3  # a free port can be taken between probing and binding
        for attempt in range(attempts):
            port = self.port or _free_port(self.host)
            self.url = f"http://{self.host}:{port}"
            cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={self.tsdb_dir}",
                   f"--storage.tsdb.retention.time={self.retention}", f"--web.listen-address={self.host}:{port}",
                   *self.extra_args]
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              cwd=self._workdir)
            weakref.finalize(self, _abandon, self._proc, self._owned_dirs)
            deadline = time.monotonic() + self.ready_timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                if self._ready():
                    return self
                time.sleep(0.05)
            code = self._proc.poll()
            tail = self._log_tail()
            if code is None:
                self.stop()
                raise PrometheusError(
                    f"Prometheus at {self.url} was not ready within {self.ready_timeout:g} s; log: {tail}"
                )
            self._proc = None
            if "address already in use" in tail and attempt + 1 < attempts:
                continue
            self._cleanup()
            raise PrometheusError(f"Prometheus exited with code {code} while starting; log: {tail}")
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``stop_timeout``) and remove owned directories."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.stop_timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        for d in self._owned_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._owned_dirs.clear()
        self._workdir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"PrometheusServer({str(self.tsdb_dir)!r}, url={self.url!r}, {state})"
