"""RB-09 synthetic probe: the 14 transactions against a DWCP API, per-type latency percentiles, cleanup.

One *run* is the original script's 14 transactions: VM create x3 (``POST {prefix}/vm/create``),
consensus propose x3 (``POST {prefix}/consensus/propose``), peers x3 (``GET {prefix}/network/peers``),
data replication x3 (``PUT {prefix}/data/<key>`` then ``GET`` until the value is echoed) and
end-to-end x2 (VM create -> consensus propose -> peers). :func:`run_probe` performs ``runs`` of
them over real HTTP (``urllib``, a timeout on every request) and records each transaction's
status and latency; :func:`stats` gives per-type success rate and P50/P95/P99
(:func:`dwcpkit.sre.slo.quantiles` over the successful transactions' latencies).

Fixed here (reference/dwcp-operations.md RB-09): results are kept as data, not parsed back out
of log lines; replication latency is write-to-visible (the first ``GET`` that returns the value,
polled every ``poll_interval_s`` up to ``replication_timeout_s``), not a fixed 2 s sleep plus two
requests; and everything the probe creates is deleted afterwards (the original left 5 VMs per
run, 1,440 a day).

Dry run. With ``dry_run=True`` (every runbook's default) only the read-only transactions run
(``GET .../network/peers``); the mutating ones are returned as *planned* (:attr:`ProbeResult.planned`)
for the runbook to record as dry-run actions, and nothing is created, so nothing needs cleaning.

:class:`FakeApi` is a small in-process HTTP server on 127.0.0.1 implementing those endpoints
(plus ``DELETE`` of VMs and keys) and recording every request: the runbook's ``sample`` target
("local fake API") and the tests' server. It is not a model of DWCP's performance.

Example
-------
>>> with FakeApi() as api:
...     r = run_probe(api.url, dry_run=False)
...     left = len(api.vms) + len(api.data)
>>> r.transactions.height, int(r.transactions["ok"].sum()), left
(14, 14, 0)
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import slo

__all__ = [
    "TRANSACTIONS",
    "MUTATING",
    "DEFAULT_THRESHOLDS_MS",
    "FakeApi",
    "RecordedRequest",
    "Planned",
    "Artefact",
    "CleanupStep",
    "ProbeResult",
    "run_probe",
    "cleanup_steps",
    "cleanup_table",
    "planned_summary",
    "stats",
    "judge",
]

#: Transactions per run, in the original script's order and counts (14 in all).
TRANSACTIONS: dict[str, int] = {
    "vm_create": 3, "consensus_propose": 3, "network_peers": 3, "data_replication": 3, "end_to_end": 2,
}
#: Transaction types that change the system (skipped, only planned, in a dry run).
MUTATING: frozenset[str] = frozenset({"vm_create", "consensus_propose", "data_replication", "end_to_end"})
#: Per-type latency thresholds of the original report (ms; its script only checked the average).
DEFAULT_THRESHOLDS_MS: dict[str, float] = {
    "vm_create": 1000.0, "consensus_propose": 100.0, "network_peers": 50.0, "data_replication": 200.0,
    "end_to_end": 3000.0,
}
_ENDPOINT = {
    "vm_create": "POST {p}/vm/create",
    "consensus_propose": "POST {p}/consensus/propose",
    "network_peers": "GET {p}/network/peers",
    "data_replication": "PUT {p}/data/<key>, then GET until echoed",
    "end_to_end": "POST {p}/vm/create -> POST {p}/consensus/propose -> GET {p}/network/peers",
}


# ---------------------------------------------------------------------------------------------
# the local fake API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake API received."""

    method: str
    path: str
    body: Any


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (timeout) closes its socket: not worth a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FakeApi:
    """A local fake DWCP API on 127.0.0.1 (a free port) that records every request.

    Endpoints under ``prefix``: ``POST vm/create`` (201; 409 if the ``vm_id`` exists),
    ``DELETE vm/<id>`` (204 / 404), ``POST consensus/propose`` (200, ``{"index": n}``),
    ``GET network/peers`` (200, a list), ``PUT/GET/DELETE data/<key>``. A ``PUT`` value becomes
    visible to ``GET`` after ``replication_delay_s``. ``fail`` maps an endpoint name
    (``vm_create``, ``vm_delete``, ``consensus_propose``, ``network_peers``, ``data_put``,
    ``data_get``, ``data_delete``) to an HTTP status it answers instead; ``delay_s`` delays every
    answer. Use as a context manager, or :meth:`start` / :meth:`close`.

    >>> with FakeApi() as api:
    ...     api.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, *, prefix: str = "/api/v3", replication_delay_s: float = 0.0,
                 fail: Mapping[str, int] | None = None, delay_s: float = 0.0, peers: int = 6):
        self.prefix = "/" + prefix.strip("/")
        self.replication_delay_s = float(replication_delay_s)
        self.fail = dict(fail or {})
        self.delay_s = float(delay_s)
        self.peers = [f"node-{i}" for i in range(peers)]
        self.vms: dict[str, dict[str, Any]] = {}
        self.data: dict[str, tuple[str, float]] = {}
        self.proposals: list[Any] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeApi:
        """Start serving on 127.0.0.1 in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test and notebook output clean
                pass

            def _handle(self) -> None:
                api._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="dwcpkit-fake-api", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the server and free its port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeApi:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:<port>``); the API lives under :attr:`prefix`."""
        if self._server is None:
            raise ParameterError("the fake API is not started; use `with FakeApi() as api:` or api.start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def request_counts(self) -> pl.DataFrame:
        """Requests received so far: method, path (keys and ids replaced by ``<id>``), count."""
        with self._lock:
            reqs = list(self.requests)
        norm = Counter((r.method, re.sub(r"/(vm|data)/(?!create$)[^/]+$", r"/\1/<id>", r.path)) for r in reqs)
        rows = [{"method": m, "path": p, "count": n} for (m, p), n in sorted(norm.items())]
        return pl.DataFrame(rows, schema={"method": pl.String, "path": pl.String, "count": pl.Int64})

    # -- request handling ------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(RecordedRequest(h.command, path, body))
        if self.delay_s:
            time.sleep(self.delay_s)
        status, payload = self._route(h.command, path, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if not path.startswith(self.prefix + "/"):
            return 404, {"error": "not found"}
        rest = path[len(self.prefix) + 1:]
        with self._lock:
            if method == "POST" and rest == "vm/create":
                if "vm_create" in self.fail:
                    return self.fail["vm_create"], {"error": "injected failure"}
                vm_id = (body or {}).get("vm_id") if isinstance(body, dict) else None
                if not vm_id:
                    return 400, {"error": "vm_id required"}
                if vm_id in self.vms:
                    return 409, {"error": "exists"}
                self.vms[vm_id] = dict(body)
                return 201, {"vm_id": vm_id, "status": "created"}
            if method == "DELETE" and rest.startswith("vm/"):
                if "vm_delete" in self.fail:
                    return self.fail["vm_delete"], {"error": "injected failure"}
                return (204, None) if self.vms.pop(rest[3:], None) is not None else (404, {"error": "no such vm"})
            if method == "POST" and rest == "consensus/propose":
                if "consensus_propose" in self.fail:
                    return self.fail["consensus_propose"], {"error": "injected failure"}
                self.proposals.append(body)
                return 200, {"index": len(self.proposals), "committed": True}
            if method == "GET" and rest == "network/peers":
                if "network_peers" in self.fail:
                    return self.fail["network_peers"], {"error": "injected failure"}
                return 200, {"peers": self.peers}
            if rest.startswith("data/"):
                key = rest[5:]
                if method == "PUT":
                    if "data_put" in self.fail:
                        return self.fail["data_put"], {"error": "injected failure"}
                    value = body.get("value") if isinstance(body, dict) else body
                    self.data[key] = (str(value), time.monotonic() + self.replication_delay_s)
                    return 200, {"key": key}
                if method == "GET":
                    if "data_get" in self.fail:
                        return self.fail["data_get"], {"error": "injected failure"}
                    item = self.data.get(key)
                    if item is None or time.monotonic() < item[1]:
                        return 404, {"error": "not replicated yet"}
                    return 200, {"key": key, "value": item[0]}
                if method == "DELETE":
                    if "data_delete" in self.fail:
                        return self.fail["data_delete"], {"error": "injected failure"}
                    return (204, None) if self.data.pop(key, None) is not None else (404, {"error": "no such key"})
        return 404, {"error": "not found"}


# ---------------------------------------------------------------------------------------------
# the probe
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A mutating transaction a dry run did not perform."""

    run: int
    type: str
    n: int
    endpoint: str

    @property
    def title(self) -> str:
        """Action title."""
        return f"Synthetic {self.type} {self.n}/{TRANSACTIONS[self.type]} (run {self.run})"


@dataclass(frozen=True)
class Artefact:
    """Something the probe created and must delete: a VM or a data key."""

    kind: str  # "vm" | "data"
    id: str
    path: str  # the DELETE path

    @property
    def title(self) -> str:
        """Action title."""
        return f"Delete synthetic {'VM' if self.kind == 'vm' else 'data key'} {self.id}"


@dataclass(frozen=True)
class CleanupStep:
    """A DELETE the runbook records as an action."""

    artefact: Artefact
    method: str
    url: str
    run: Callable[[], str] = field(repr=False)

    @property
    def title(self) -> str:
        """Action title."""
        return self.artefact.title

    @property
    def detail(self) -> str:
        """``DELETE <path>`` (the path, not the full URL)."""
        return f"{self.method} {self.artefact.path}"


@dataclass
class ProbeResult:
    """What a probe did: one row per transaction, what it planned, created and cleaned."""

    transactions: pl.DataFrame   # run, seq, type, ok, status, latency_ms, error
    planned: list[Planned]
    created: list[Artefact]
    cleanup: pl.DataFrame        # artefact, status ("deleted" | "failed" | "not cleaned"), error
    dry_run: bool
    runs: int

    @property
    def left_behind(self) -> list[str]:
        """Artefacts created and not (successfully) deleted."""
        done = set(self.cleanup.filter(pl.col("status") == "deleted")["artefact"].to_list())
        return [a.title for a in self.created if a.title not in done]


class _Http:
    def __init__(self, base_url: str, timeout_s: float):
        self.base = base_url.rstrip("/")
        self.timeout = timeout_s

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int | None, Any, float, str | None]:
        """(status, parsed body, seconds, error). Never raises for HTTP or network errors."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
            exc.close()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, None, time.perf_counter() - t0, f"{type(reason).__name__}: {reason}"
        elapsed = time.perf_counter() - t0
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return status, parsed, elapsed, None


def _check_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not re.match(r"^https?://[^/\s]+", base_url):
        raise ParameterError(f"base_url={base_url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8080 "
                             "(the API prefix is api_prefix) or 'sample' in the runbook")
    return base_url.rstrip("/")


def run_probe(base_url: str, *, runs: int = 1, dry_run: bool = True, api_prefix: str = "/api/v3",
              timeout_s: float = 5.0, replication_timeout_s: float = 2.0, poll_interval_s: float = 0.05,
              pause_s: float = 0.0, run_id: str = "", cleanup: bool = True) -> ProbeResult:
    """Run the synthetic transactions ``runs`` times against ``base_url``.

    Parameters
    ----------
    base_url
        ``http(s)://host:port`` of the API; ``api_prefix`` is prepended to every path.
    runs
        Repetitions of the 14-transaction set (3 samples per type per run, 2 for end-to-end).
    dry_run
        Only the read-only transactions run; the others are returned in ``planned``.
    timeout_s
        Per-request timeout. A timed-out or refused request is a failed transaction.
    replication_timeout_s, poll_interval_s
        How long and how often a replication check ``GET``\\s until the value is visible.
    pause_s
        Pause between runs (the original: 1 s between transactions).
    run_id
        Suffix of created names (``synthetic-vm-<run_id>-...``); default: the UTC start time.
    cleanup
        Delete every created VM and key at the end (recorded in ``cleanup``). A runbook that
        records the deletions as actions passes ``False`` and uses :func:`cleanup_steps`.
    """
    base = _check_url(base_url)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ParameterError(f"runs={runs!r}; give a positive whole number of 14-transaction runs")
    for name, v in (("timeout_s", timeout_s), ("replication_timeout_s", replication_timeout_s),
                    ("poll_interval_s", poll_interval_s)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ParameterError(f"{name}={v!r}; give a positive number of seconds")
    if isinstance(pause_s, bool) or not isinstance(pause_s, (int, float)) or pause_s < 0:
        raise ParameterError(f"pause_s={pause_s!r}; give a non-negative number of seconds")
    prefix = "/" + api_prefix.strip("/") if api_prefix.strip("/") else ""
    rid = run_id or datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    http = _Http(base, timeout_s)
    rows: list[dict[str, Any]] = []
    planned: list[Planned] = []
    created: list[Artefact] = []

    def record(run: int, typ: str, ok: bool, status: int | None, secs: float | None, error: str | None) -> None:
        rows.append({"run": run, "seq": len(rows) + 1, "type": typ, "ok": ok, "status": status,
                     "latency_ms": None if secs is None else secs * 1000.0, "error": error})

    def vm_create(run: int, n: str) -> tuple[bool, int | None, float, str | None]:
        vm_id = f"synthetic-vm-{rid}-{run}-{n}"
        st, _, secs, err = http("POST", f"{prefix}/vm/create",
                                {"vm_id": vm_id, "cpu": 2, "memory": 4096, "storage": 20480})
        ok = st in (200, 201)
        if ok:
            created.append(Artefact("vm", vm_id, f"{prefix}/vm/{vm_id}"))
        return ok, st, secs, err or (None if ok else f"HTTP {st}")

    def propose(run: int, n: str) -> tuple[bool, int | None, float, str | None]:
        st, _, secs, err = http("POST", f"{prefix}/consensus/propose",
                                {"key": f"synthetic-probe-{rid}-{run}-{n}", "value": "noop"})
        ok = st == 200
        return ok, st, secs, err or (None if ok else f"HTTP {st}")

    def peers() -> tuple[bool, int | None, float, str | None]:
        st, _, secs, err = http("GET", f"{prefix}/network/peers")
        ok = st == 200
        return ok, st, secs, err or (None if ok else f"HTTP {st}")

    def replicate(run: int, n: str) -> tuple[bool, int | None, float, str | None]:
        key = f"synthetic-{rid}-{run}-{n}"
        value = secrets.token_hex(32)
        t0 = time.perf_counter()
        st, _, _, err = http("PUT", f"{prefix}/data/{key}", {"value": value})
        if st not in (200, 201, 204):
            return False, st, time.perf_counter() - t0, err or f"PUT HTTP {st}"
        created.append(Artefact("data", key, f"{prefix}/data/{key}"))
        deadline = t0 + replication_timeout_s
        while True:
            gst, body, _, gerr = http("GET", f"{prefix}/data/{key}")
            if gst == 200 and isinstance(body, dict) and body.get("value") == value:
                return True, gst, time.perf_counter() - t0, None
            if time.perf_counter() >= deadline:
                why = gerr or (f"GET HTTP {gst}" if gst != 200 else "value not echoed")
                return False, gst, time.perf_counter() - t0, f"not visible within {replication_timeout_s:g} s ({why})"
            time.sleep(poll_interval_s)

    for run in range(1, int(runs) + 1):
        if run > 1 and pause_s:
            time.sleep(pause_s)
        for typ, count in TRANSACTIONS.items():
            for i in range(1, count + 1):
                if dry_run and typ in MUTATING:
                    planned.append(Planned(run, typ, i, _ENDPOINT[typ].format(p=prefix)))
                    continue
                if typ == "vm_create":
                    res = vm_create(run, f"{i}")
                elif typ == "consensus_propose":
                    res = propose(run, f"{i}")
                elif typ == "network_peers":
                    res = peers()
                elif typ == "data_replication":
                    res = replicate(run, f"{i}")
                else:  # end_to_end: the three in sequence, stopping at the first failure
                    total, last = 0.0, (True, None, 0.0, None)
                    for step in (lambda: vm_create(run, f"e2e{i}"), lambda: propose(run, f"e2e{i}"), peers):
                        last = step()
                        total += last[2]
                        if not last[0]:
                            break
                    res = (last[0], last[1], total, last[3])
                record(run, typ, *res)
    tx = pl.DataFrame(rows, schema={"run": pl.Int64, "seq": pl.Int64, "type": pl.String, "ok": pl.Boolean,
                                    "status": pl.Int64, "latency_ms": pl.Float64, "error": pl.String})
    result = ProbeResult(tx, planned, created, _empty_cleanup(), dry_run, int(runs))
    if cleanup and created:
        rows_c = []
        for step in cleanup_steps(result, base):
            try:
                step.run()
                rows_c.append({"artefact": step.title, "status": "deleted", "error": None})
            except Exception as exc:  # noqa: BLE001 - record and carry on deleting the rest
                rows_c.append({"artefact": step.title, "status": "failed", "error": str(exc)})
        result.cleanup = pl.DataFrame(rows_c, schema=_CLEANUP_SCHEMA)
    return result


_CLEANUP_SCHEMA = {"artefact": pl.String, "status": pl.String, "error": pl.String}


def _empty_cleanup() -> pl.DataFrame:
    return pl.DataFrame(schema=_CLEANUP_SCHEMA)


def cleanup_steps(result: ProbeResult, base_url: str, *, timeout_s: float = 5.0) -> list[CleanupStep]:
    """One ``DELETE`` per created artefact; each ``run()`` raises on failure (404 counts as gone).

    >>> with FakeApi() as api:
    ...     r = run_probe(api.url, dry_run=False, cleanup=False)
    ...     steps = cleanup_steps(r, api.url)
    ...     _ = [s.run() for s in steps]
    ...     len(steps), len(api.vms), len(api.data)
    (8, 0, 0)
    """
    http = _Http(_check_url(base_url), timeout_s)
    steps = []
    for a in result.created:
        def run(a: Artefact = a) -> str:
            st, _, _, err = http("DELETE", a.path)
            if st in (200, 202, 204):
                return "deleted"
            if st == 404:
                return "already gone"
            raise RuntimeError(err or f"HTTP {st}")
        steps.append(CleanupStep(a, "DELETE", http.base + a.path, run))
    return steps


def cleanup_table(outcomes: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    """The cleanup record from ``(title, action status, error)`` triples of a runbook's actions.

    Action statuses map to ``deleted`` (done), ``failed`` and ``not cleaned`` (planned/skipped).

    >>> cleanup_table([("Delete synthetic VM a", "done", None)])["status"].to_list()
    ['deleted']
    """
    status = {"done": "deleted", "failed": "failed"}
    rows = [{"artefact": t, "status": status.get(s, "not cleaned"), "error": e} for t, s, e in outcomes]
    return pl.DataFrame(rows, schema=_CLEANUP_SCHEMA)


def planned_summary(result: ProbeResult) -> pl.DataFrame:
    """The dry run's planned (mutating) transactions per type: type, count, endpoint."""
    c = Counter(p.type for p in result.planned)
    ends = {p.type: p.endpoint for p in result.planned}
    rows = [{"type": t, "count": c[t], "endpoint": ends[t]} for t in TRANSACTIONS if c.get(t)]
    return pl.DataFrame(rows, schema={"type": pl.String, "count": pl.Int64, "endpoint": pl.String})


def _check_thresholds(thresholds_ms: Mapping[str, float] | None) -> dict[str, float]:
    th = dict(DEFAULT_THRESHOLDS_MS)
    for k, v in (thresholds_ms or {}).items():
        if k not in TRANSACTIONS:
            raise ParameterError(f"threshold for unknown transaction type {k!r}; types: {', '.join(TRANSACTIONS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ParameterError(f"threshold {k}={v!r} ms; give a positive number")
        th[k] = float(v)
    return th


def stats(result: ProbeResult, thresholds_ms: Mapping[str, float] | None = None) -> pl.DataFrame:
    """Per transaction type: planned, run, ok, success %, P50/P95/P99 latency (ms), threshold, P95 pass.

    Percentiles are over the successful transactions (a failure is counted in the success rate,
    its latency is a timeout, not a service time); ``None`` where nothing succeeded or ran.
    """
    th = _check_thresholds(thresholds_ms)
    tx = result.transactions
    planned = Counter(p.type for p in result.planned)
    rows = []
    for typ in TRANSACTIONS:
        sel = tx.filter(pl.col("type") == typ)
        ok = sel.filter(pl.col("ok"))
        q = slo.quantiles(ok["latency_ms"], (0.5, 0.95, 0.99)) if ok.height else {}
        p95 = q.get(0.95)
        rows.append({"type": typ, "planned_only": planned.get(typ, 0), "run": sel.height, "ok": ok.height,
                     "success_pct": 100.0 * ok.height / sel.height if sel.height else None,
                     "p50_ms": q.get(0.5), "p95_ms": p95, "p99_ms": q.get(0.99), "threshold_ms": th[typ],
                     "p95_pass": None if p95 is None else p95 <= th[typ]})
    return pl.DataFrame(rows, schema={"type": pl.String, "planned_only": pl.Int64, "run": pl.Int64, "ok": pl.Int64,
                                      "success_pct": pl.Float64, "p50_ms": pl.Float64, "p95_ms": pl.Float64,
                                      "p99_ms": pl.Float64, "threshold_ms": pl.Float64, "p95_pass": pl.Boolean})


def judge(result: ProbeResult, table: pl.DataFrame, *, success_min_pct: float = 99.0) -> tuple[str, str, list[str]]:
    """``(level, label, reasons)``: FAILING (ACT) below ``success_min_pct``; SLOW (WARN) when a type's
    P95 is over its threshold; LEFT ARTEFACTS (WARN) when created things were not deleted; else
    HEALTHY (OK). Reasons hold counts, not latencies, so they read the same run to run."""
    tx = result.transactions
    if tx.height == 0:
        raise DataError("the probe ran no transaction: nothing to judge (check runs and dry_run)")
    n_ok = int(tx["ok"].sum())
    rate = 100.0 * n_ok / tx.height
    level, label = "OK", "HEALTHY"
    reasons = [f"{n_ok} of {tx.height} transactions succeeded ({rate:.1f} %, minimum {success_min_pct:g} %)"]
    if rate < success_min_pct:
        level, label = "ACT", "FAILING"
        bad = tx.filter(~pl.col("ok")).group_by("type").agg(pl.len(), pl.col("error").first()).sort("type")
        reasons += [f"{r['type']}: {r['len']} failed (e.g. {r['error']})" for r in bad.iter_rows(named=True)]
    slow = table.filter(pl.col("p95_pass") == False)  # noqa: E712 - null means not measured
    if slow.height:
        if level == "OK":
            level, label = "WARN", "SLOW"
        reasons += [f"{r['type']}: P95 over its {r['threshold_ms']:g} ms threshold" for r in slow.iter_rows(named=True)]
    else:
        measured = table.filter(pl.col("p95_pass").is_not_null())["type"].to_list()
        if measured:
            reasons.append(f"P95 within its threshold for {', '.join(measured)}")
    left = result.left_behind
    if left:
        if level == "OK":
            level, label = "WARN", "LEFT ARTEFACTS"
        reasons.append(f"{len(left)} created artefact(s) not deleted: {', '.join(left[:5])}"
                       + (" ..." if len(left) > 5 else ""))
    if result.planned:
        types = sorted({p.type for p in result.planned}, key=list(TRANSACTIONS).index)
        reasons.append(f"dry run: {len(result.planned)} mutating transactions planned, not run ({', '.join(types)})")
    return level, label, reasons
