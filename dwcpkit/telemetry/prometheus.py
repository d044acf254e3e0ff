"""Prometheus HTTP API: parse query responses and query a server (standard library only).

:func:`frame_from_api` turns the JSON answer of ``/api/v1/query`` or ``/api/v1/query_range``
(result types ``vector``, ``matrix``, ``scalar`` and ``string``) into the canonical telemetry frame
(:mod:`dwcpkit.telemetry.schema`). :class:`PrometheusClient` asks a server for that JSON with
:mod:`urllib` and splits ranges longer than Prometheus' 11,000 points per series into chunks.

Warnings and infos
------------------
Prometheus may answer ``status: success`` with a ``warnings`` (and, from 2.50, ``infos``) list,
e.g. when a remote-read endpoint failed and the result may be partial. :func:`parse_response`
returns them beside the frame; :func:`frame_from_api` and the client log each warning on the
``dwcpkit.telemetry.prometheus`` logger at WARNING level, and the client keeps those of its last
call in :attr:`PrometheusClient.last_warnings`.

Times and steps
---------------
Everywhere a time is accepted it may be an aware :class:`~datetime.datetime`, epoch seconds
(``int``/``float``, or a numeric string) or an RFC 3339 string (``"2024-05-01T12:00:00Z"``);
a step may be seconds (number), a :class:`~datetime.timedelta` or a Prometheus duration
(``"15s"``, ``"1m"``, ``"1h30m"``). See :func:`parse_time` and :func:`parse_step`.

Example
-------
>>> body = {"status": "success", "data": {"resultType": "vector", "result": [
...     {"metric": {"__name__": "up", "job": "node"}, "value": [1700000000.5, "1"]}]}}
>>> frame_from_api(body).select("metric", "value", "job").row(0)
('up', 1.0, 'node')
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import ssl
import time as _time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from dwcpkit.errors import ParameterError, ParseError, PrometheusError
from dwcpkit.telemetry.schema import CORE_COLUMNS, TIMESTAMP_DTYPE, concat, empty_frame, normalize

__all__ = [
    "ApiResult",
    "PrometheusClient",
    "frame_from_api",
    "parse_response",
    "parse_step",
    "parse_time",
    "selector",
    "MAX_POINTS_PER_SERIES",
]

log = logging.getLogger(__name__)

#: Prometheus refuses a range query whose (end - start) / step exceeds this many points.
MAX_POINTS_PER_SERIES = 11_000
#: Safety bound on the number of chunk requests one ``query_range`` call may make.
_MAX_CHUNKS = 1_000
#: Requests whose GET URL would be longer than this are sent as a POST form instead.
_MAX_GET_URL = 4_000
_RESULT_TYPES = ("vector", "matrix", "scalar", "string")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000, "y": 365 * 86_400_000}
_ERROR_HINTS = {
    "bad_data": "check the PromQL expression and the start/end/step parameters",
    "timeout": "narrow the time range, raise the step, or raise the client timeout",
    "execution": "the query could not be evaluated; simplify it or narrow the time range",
    "canceled": "the server cancelled the query; retry, or narrow the time range",
    "unavailable": "the server is not ready yet (still replaying its WAL?); retry shortly",
    "not_found": "the API path was not found; check that the URL is the server root",
}


# --------------------------------------------------------------------------- times and steps


def parse_time(value: datetime | int | float | str, *, what: str = "time") -> int:
    """Milliseconds since the epoch (UTC) of ``value``.

    Parameters
    ----------
    value
        An aware ``datetime``, epoch seconds (``int``/``float`` or a numeric string) or an
        RFC 3339 / ISO 8601 string with ``Z`` or an offset.
    what
        Name used in error messages (``"start"``, ``"end"``...).

    Raises
    ------
    ParameterError
        For naive datetimes, strings without a UTC offset, unparseable strings, and numbers that
        look like milliseconds rather than seconds.

    Examples
    --------
    >>> parse_time("2024-01-01T00:00:00Z")
    1704067200000
    >>> parse_time(1704067200.5)
    1704067200500
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(
                f"{what}={value!r} is a naive datetime; telemetry time is UTC, pass "
                "datetime(..., tzinfo=timezone.utc) or an RFC 3339 string ending in Z"
            )
        return int(round(value.timestamp() * 1000))
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.integer, np.floating)):
        raise ParameterError(
            f"{what}={value!r} ({type(value).__name__}) is not a time; use an aware datetime, "
            "epoch seconds or an RFC 3339 string such as '2024-05-01T12:00:00Z'"
        )
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ParameterError(
                    f"{what}={value!r} is not a time; use epoch seconds or an RFC 3339 string "
                    "such as '2024-05-01T12:00:00Z'"
                ) from None
            if parsed.tzinfo is None:
                raise ParameterError(
                    f"{what}={value!r} has no UTC offset; append 'Z' (UTC) or an offset like '+02:00'"
                )
            return int(round(parsed.timestamp() * 1000))
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise ParameterError(f"{what}={value!r} is not a finite time")
    if abs(seconds) >= 1e11:
        raise ParameterError(
            f"{what}={value!r} looks like milliseconds (year > 5000 as seconds); times are epoch "
            "seconds: divide by 1000"
        )
    return int(round(seconds * 1000))


def parse_step(value: int | float | str | timedelta, *, what: str = "step") -> int:
    """Milliseconds of a step: seconds, a ``timedelta`` or a duration such as ``"15s"``/``"1m30s"``.

    Raises :class:`~dwcpkit.errors.ParameterError` for anything unparseable, zero or negative.

    >>> parse_step("1m"), parse_step(15), parse_step("1h30m"), parse_step("250ms")
    (60000, 15000, 5400000, 250)
    """
    ms: float
    if isinstance(value, timedelta):
        ms = value.total_seconds() * 1000
    elif isinstance(value, bool):
        ms = float("nan")
    elif isinstance(value, (int, float, np.integer, np.floating)):
        ms = float(value) * 1000
    elif isinstance(value, str):
        text = value.strip()
        try:
            ms = float(text) * 1000
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ParameterError(
                    f"{what}={value!r} is not a duration; use seconds (60) or a Prometheus "
                    "duration such as '15s', '1m', '1h30m'"
                ) from None
            ms = sum(float(n) * _UNIT_MS[u] for n, u in parts)
    else:
        raise ParameterError(f"{what}={value!r} ({type(value).__name__}) is not a duration; use seconds or '15s'")
    if not math.isfinite(ms) or ms < 1:
        raise ParameterError(f"{what}={value!r} must be a positive duration of at least 1 ms")
    return int(round(ms))


def _fmt_seconds(ms: int) -> str:
    """Exact decimal seconds of integer ``ms`` (what the API expects)."""
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    whole, frac = divmod(ms, 1000)
    return f"{sign}{whole}.{frac:03d}" if frac else f"{sign}{whole}"


def selector(metric: str) -> str:
    """PromQL selector ``{__name__="metric"}`` for an exact metric name.

    >>> selector("up")
    '{__name__="up"}'
    """
    if not isinstance(metric, str) or not _METRIC_NAME.match(metric):
        raise ParameterError(
            f"{metric!r} is not a Prometheus metric name (letters, digits, '_' and ':', "
            "not starting with a digit)"
        )
    return '{__name__="' + metric + '"}'


# --------------------------------------------------------------------------- response parsing


class ApiResult(NamedTuple):
    """A parsed API answer: the canonical ``frame``, the ``result_type``, and any
    ``warnings`` / ``infos`` the server attached."""

    frame: pl.DataFrame
    result_type: str
    warnings: tuple[str, ...]
    infos: tuple[str, ...]


def _decode(body: dict | str | bytes, source: str) -> dict:
    if isinstance(body, Mapping):
        return dict(body)
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError(f"response is not UTF-8 text ({e}); expected Prometheus API JSON", path=source) from None
    if not isinstance(body, str):
        raise ParseError(
            f"cannot parse a {type(body).__name__}; pass the API response as a dict, str or bytes",
            path=source,
        )
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as e:
        snippet = body.strip()[:80].replace("\n", " ")
        raise ParseError(
            f"not JSON ({e.msg} at column {e.colno}); expected a Prometheus API response, got {snippet!r}",
            path=source,
            line=e.lineno,
        ) from None
    if not isinstance(doc, dict):
        raise ParseError(
            f"expected a JSON object with 'status' and 'data', got a JSON {type(doc).__name__}",
            path=source,
        )
    return doc


def _error_message(doc: Mapping, where: str) -> str:
    etype = str(doc.get("errorType") or "unknown")
    msg = str(doc.get("error") or "(no message)")
    hint = _ERROR_HINTS.get(etype, "check the query and the `source` parameter")
    return f"{where}: Prometheus answered error {etype}: {msg} ({hint})"


def _strings(value: Any, field: str, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(w, str) for w in value):
        return tuple(value)
    raise PrometheusError(f"{source}: unexpected '{field}' field {value!r}; expected a list of strings")


def _value(v: Any, source: str, where: str) -> float:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise PrometheusError(f"{source}: {where}: sample value {v!r} is not a number")


def _ms(t: Any, source: str, where: str) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise PrometheusError(f"{source}: {where}: timestamp {t!r} is not a number of seconds")
    return int(round(t * 1000))


def _pair(p: Any, source: str, where: str) -> tuple[int, float]:
    if not isinstance(p, (list, tuple)) or len(p) != 2:
        raise PrometheusError(f"{source}: {where}: expected a [timestamp, \"value\"] pair, got {p!r}")
    return _ms(p[0], source, where), _value(p[1], source, where)


def _points_fast(series_points: list[list]) -> tuple[np.ndarray, np.ndarray] | None:
    """Vectorised conversion of well-formed ``[seconds, "value"]`` pairs; None if any is not."""
    try:
        if not all(isinstance(p, list) and len(p) == 2 for pts in series_points for p in pts):
            return None
        secs = np.fromiter((p[0] for pts in series_points for p in pts), dtype=np.float64)
        texts = pl.Series([p[1] for pts in series_points for p in pts], dtype=pl.String, strict=True)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return None
    values = texts.cast(pl.Float64, strict=False)
    if values.null_count() or not np.isfinite(secs).all():
        return None
    return np.rint(secs * 1000).astype(np.int64), values.to_numpy()


def _points(series_points: list[list], source: str) -> tuple[np.ndarray | list, np.ndarray | list]:
    """Timestamps (ms) and values of every series' points, in order; precise errors on bad ones."""
    fast = _points_fast(series_points)
    if fast is not None:
        return fast
    stamps: list[int] = []
    values: list[float] = []
    for i, pts in enumerate(series_points):
        for p in pts:
            ts, v = _pair(p, source, f"series {i}")
            stamps.append(ts)
            values.append(v)
    return stamps, values


def parse_response(
    body: dict | str | bytes, *, source: str = "response", name: str = "value"
) -> ApiResult:
    """Parse a ``/api/v1/query`` or ``/api/v1/query_range`` answer.

    Parameters
    ----------
    body
        The response: decoded JSON (``dict``) or its text/bytes.
    source
        Where it came from (URL or file); quoted in error messages.
    name
        Metric name given to result series without ``__name__`` (expression results such as
        ``rate(x[5m])``) and to ``scalar`` / ``string`` results.

    Returns
    -------
    ApiResult
        ``frame`` (canonical), ``result_type``, ``warnings``, ``infos``.

    Raises
    ------
    PrometheusError
        For an error answer (quoting ``errorType`` and ``error``), an unexpected shape, native
        histogram samples (not representable in the canonical frame), or a label that collides
        with a core column (``timestamp``, ``metric``, ``value``).
    ParseError
        When ``body`` is not JSON.

    Examples
    --------
    >>> r = parse_response('{"status":"success","warnings":["partial"],'
    ...                    '"data":{"resultType":"scalar","result":[1700000000,"+Inf"]}}', name="x")
    >>> r.result_type, r.warnings, r.frame["value"].to_list()
    ('scalar', ('partial',), [inf])
    """
    doc = _decode(body, source)
    status = doc.get("status")
    if status == "error":
        raise PrometheusError(_error_message(doc, source))
    if status != "success":
        raise PrometheusError(
            f"{source}: not a Prometheus API response (status={status!r}); expected status "
            "'success' or 'error' — is the URL the Prometheus server root?"
        )
    warns = _strings(doc.get("warnings"), "warnings", source)
    infos = _strings(doc.get("infos"), "infos", source)
    data = doc.get("data")
    if not isinstance(data, Mapping) or "result" not in data:
        raise PrometheusError(f"{source}: response has no data.result; expected a query or query_range answer")
    rtype = data.get("resultType")
    result = data["result"]
    if rtype not in _RESULT_TYPES:
        raise PrometheusError(
            f"{source}: unsupported resultType {rtype!r}; expected one of {list(_RESULT_TYPES)}"
        )

    series_labels: list[Mapping[str, str]] = []
    series_points: list[list] = []
    if rtype in ("scalar", "string"):
        if rtype == "string" and isinstance(result, list) and len(result) == 2:
            try:
                float(result[1])
            except (TypeError, ValueError):
                raise PrometheusError(
                    f"{source}: string result {result[1]!r} is not numeric; a telemetry frame holds numbers"
                ) from None
        _pair(result, source, f"{rtype} result")
        series_labels.append({})
        series_points.append([result])
    else:
        if not isinstance(result, list):
            raise PrometheusError(f"{source}: {rtype} result is {type(result).__name__}, expected a list")
        for i, item in enumerate(result):
            where = f"series {i}"
            if not isinstance(item, Mapping) or not isinstance(item.get("metric", {}), Mapping):
                raise PrometheusError(f"{source}: {where}: expected an object with 'metric', got {item!r:.120}")
            if "histogram" in item or "histograms" in item:
                raise PrometheusError(
                    f"{source}: {where} holds native-histogram samples, which the canonical frame "
                    "cannot represent; query the classic *_bucket/_sum/_count series instead"
                )
            labels = item.get("metric", {})
            for k, lv in labels.items():
                if not isinstance(lv, str):
                    raise PrometheusError(f"{source}: {where}: label {k}={lv!r} is not a string")
                if k in CORE_COLUMNS:
                    raise PrometheusError(
                        f"{source}: {where}: label {k!r} collides with the frame column of that name; "
                        f"rename it in the query, e.g. label_replace(..., \"{k}_label\", \"$1\", \"{k}\", \"(.*)\")"
                    )
            series_labels.append(labels)
            if rtype == "vector":
                points = [item.get("value")]
            else:
                points = item.get("values")
                if not isinstance(points, list):
                    raise PrometheusError(f"{source}: {where}: matrix series without a 'values' list")
            series_points.append(points)

    label_names = sorted({k for lab in series_labels for k in lab if k != "__name__"})
    if not series_labels:
        return ApiResult(empty_frame(), rtype, warns, infos)
    series = pl.DataFrame(
        {
            "metric": [lab.get("__name__", name) for lab in series_labels],
            **{k: [lab.get(k) for lab in series_labels] for k in label_names},
        },
        schema={"metric": pl.String, **{k: pl.String for k in label_names}},
    )
    stamps, values = _points(series_points, source)
    idx = pl.Series("sid", np.repeat(np.arange(len(series_points), dtype=np.uint32),
                                     [len(p) for p in series_points]))
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(stamps, dtype=pl.Int64).cast(TIMESTAMP_DTYPE),
            "value": pl.Series(values, dtype=pl.Float64),
        }
    ).hstack(series.select(pl.all().gather(idx)))
    return ApiResult(normalize(frame, source=source), rtype, warns, infos)


def frame_from_api(
    body: dict | str | bytes, *, source: str = "response", name: str = "value"
) -> pl.DataFrame:
    """Canonical frame of a Prometheus ``query`` / ``query_range`` API answer.

    Same as :func:`parse_response` but returns only the frame; warnings in the answer are
    logged on the ``dwcpkit.telemetry.prometheus`` logger (use :func:`parse_response` to get
    them as values). Timestamps become milliseconds; ``"NaN"``, ``"+Inf"``, ``"-Inf"`` become
    floats; series without ``__name__`` are named ``name``.

    Examples
    --------
    >>> body = {"status": "success", "data": {"resultType": "matrix", "result": [
    ...     {"metric": {"job": "a"}, "values": [[60, "1"], [120, "NaN"]]}]}}
    >>> f = frame_from_api(body, name="rate_x")
    >>> f["metric"].to_list(), f["timestamp"].dt.epoch("ms").to_list()
    (['rate_x', 'rate_x'], [60000, 120000])
    """
    result = parse_response(body, source=source, name=name)
    for w in result.warnings:
        log.warning("%s: Prometheus warning: %s", source, w)
    return result.frame


# --------------------------------------------------------------------------- client


def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or bool(host and host.startswith("127."))


class PrometheusClient:
    """A minimal Prometheus HTTP API client (``urllib`` only).

    Parameters
    ----------
    base_url
        Server root, e.g. ``"http://127.0.0.1:9090"`` (a path prefix such as
        ``https://host/prometheus`` is fine; a trailing ``/api/v1`` is dropped).
    timeout
        Seconds allowed per HTTP request (connect + answer); also sent to the server as the
        query ``timeout``.
    headers
        Extra request headers (e.g. ``{"Authorization": "Bearer ..."}``). They are sent but never
        appear in error messages or ``repr``.
    max_points
        Points per series per request; longer ranges are split into chunks of at most this many
        evaluation steps and concatenated. Defaults to Prometheus' limit, 11,000.

    Attributes
    ----------
    last_warnings
        Warnings the server attached to the last ``query`` / ``query_range`` answer(s).

    Requests are GET, or a POST form when the URL would be longer than 4,000 characters.
    Environment proxies (``HTTP_PROXY``...) are honoured except for loopback hosts.

    Examples
    --------
    >>> client = PrometheusClient("http://127.0.0.1:9090", timeout=5)
    >>> client.base_url
    'http://127.0.0.1:9090'
    >>> # client.query_range('rate(dwcp_v3_component_errors_total[5m])', "2024-05-01T00:00:00Z",
    >>> #                    "2024-05-01T06:00:00Z", "1m")   # -> canonical frame
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        max_points: int = MAX_POINTS_PER_SERIES,
    ) -> None:
        if not isinstance(base_url, str):
            raise PrometheusError(f"Prometheus base URL must be a string, got {type(base_url).__name__}")
        url = base_url.strip().rstrip("/")
        if url.endswith("/api/v1"):
            url = url[: -len("/api/v1")]
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PrometheusError(
                f"{base_url!r} is not a Prometheus base URL; use http://host:port (e.g. http://127.0.0.1:9090)"
            )
        if parts.query or parts.fragment:
            raise PrometheusError(f"{base_url!r}: the base URL must not have a query string or fragment")
        if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise ParameterError(f"timeout={timeout!r} must be a positive number of seconds")
        if not (isinstance(max_points, int) and max_points >= 2):
            raise ParameterError(f"max_points={max_points!r} must be an integer >= 2")
        self.base_url = url
        self.timeout = float(timeout)
        self.max_points = max_points
        self._headers = {"Accept": "application/json", "User-Agent": "dwcpkit"}
        self._headers.update(dict(headers or {}))
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
        self._opener = urllib.request.build_opener(*handlers)
        self.last_warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"PrometheusClient({self.base_url!r}, timeout={self.timeout})"

    # ----------------------------------------------------------------- transport

    def _explain(self, url: str, exc: BaseException) -> PrometheusError:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        check = f"is Prometheus running at {self.base_url}? check the `source` parameter"
        if isinstance(reason, (TimeoutError, socket.timeout)):
            what = f"no answer within {self.timeout:g} s"
            check = (f"is Prometheus at {self.base_url} overloaded or the query too heavy? raise the "
                     "timeout, narrow the range or raise the step")
        elif isinstance(reason, ConnectionRefusedError):
            what = "connection refused (nothing is listening there)"
        elif isinstance(reason, socket.gaierror):
            what = f"cannot resolve host {urllib.parse.urlsplit(url).hostname!r} ({reason.strerror or reason})"
            check = f"is the host name in {self.base_url} right? check the `source` parameter"
        elif isinstance(reason, ssl.SSLError):
            what = f"TLS error ({reason})"
            check = f"does {self.base_url} speak {'https' if url.startswith('https') else 'http'}?"
        elif isinstance(reason, (ConnectionError, OSError)):
            what = f"connection failed ({type(reason).__name__}: {reason})"
        else:
            what = f"{type(reason).__name__}: {reason}"
        return PrometheusError(f"cannot query {url}: {what}; {check}")

    def _http_error(self, url: str, code: int, reason: str, payload: bytes) -> PrometheusError:
        try:
            doc = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            doc = None
        if isinstance(doc, dict) and doc.get("status") == "error":
            return PrometheusError(_error_message(doc, f"{url} (HTTP {code})"))
        hint = {
            401: "authentication required; pass credentials via headers",
            403: "access denied; check the credentials passed via headers",
            404: f"no such endpoint; the source must be the Prometheus server root (e.g. {self.base_url.split('/')[0]}//host:9090)",
        }.get(code, f"check that {self.base_url} is a Prometheus server and that it is healthy")
        text = payload.decode("utf-8", "replace").strip()[:200].replace("\n", " ")
        return PrometheusError(f"{url} answered HTTP {code} {reason}: {text or '(empty body)'}; {hint}")

    def _request(self, path: str, params: Mapping[str, str] | None = None) -> tuple[int, bytes, str]:
        """Send one request; return (status, body, url). Raises PrometheusError on failure."""
        url = self.base_url + path
        query = urllib.parse.urlencode(params or {})
        if query and len(url) + 1 + len(query) <= _MAX_GET_URL:
            req = urllib.request.Request(url + "?" + query, headers=self._headers, method="GET")
        elif query:
            headers = {**self._headers, "Content-Type": "application/x-www-form-urlencoded"}
            req = urllib.request.Request(url, data=query.encode("ascii"), headers=headers, method="POST")
        else:
            req = urllib.request.Request(url, headers=self._headers, method="GET")
        deadline = _time.monotonic() + self.timeout
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                chunks = []
                while True:
                    if _time.monotonic() > deadline:
                        raise TimeoutError("timed out")
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                return resp.status, b"".join(chunks), url
        except urllib.error.HTTPError as e:
            try:
                payload = e.read()
            except (OSError, ValueError):
                payload = b""
            raise self._http_error(url, e.code, str(e.reason), payload) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise self._explain(url, e) from None
        except Exception as e:  # http.client.HTTPException and friends
            raise PrometheusError(
                f"cannot query {url}: {type(e).__name__}: {e}; is {self.base_url} a Prometheus server?"
            ) from None

    def _api(self, path: str, params: dict[str, str], name: str) -> ApiResult:
        params = {**params, "timeout": f"{self.timeout:g}s"}
        _, payload, url = self._request(path, params)
        result = parse_response(payload, source=url, name=name)
        for w in result.warnings:
            log.warning("%s: Prometheus warning: %s", url, w)
        return result

    # ----------------------------------------------------------------- public API

    def ready(self) -> bool:
        """``True`` when ``GET /-/ready`` answers 200; ``False`` when not ready or unreachable.

        It never raises for network problems; call :meth:`query` to get the error explained.

        >>> PrometheusClient("http://127.0.0.1:9", timeout=0.5).ready()
        False
        """
        try:
            status, _, _ = self._request("/-/ready")
        except PrometheusError:
            return False
        return status == 200

    def query(
        self, expr: str, time: datetime | int | float | str | None = None, *, name: str = "value"
    ) -> pl.DataFrame:
        """Evaluate ``expr`` at one instant (``/api/v1/query``); ``time=None`` means now.

        ``name`` names result series that have no ``__name__``. Returns a canonical frame.

        >>> # PrometheusClient("http://127.0.0.1:9090").query("up")
        """
        if not isinstance(expr, str) or not expr.strip():
            raise ParameterError(f"expr={expr!r} must be a non-empty PromQL expression")
        params = {"query": expr}
        if time is not None:
            params["time"] = _fmt_seconds(parse_time(time, what="time"))
        result = self._api("/api/v1/query", params, name)
        self.last_warnings = result.warnings
        return result.frame

    def query_range(
        self,
        expr: str,
        start: datetime | int | float | str,
        end: datetime | int | float | str,
        step: int | float | str | timedelta,
        *,
        name: str = "value",
    ) -> pl.DataFrame:
        """Evaluate ``expr`` every ``step`` from ``start`` to ``end`` (``/api/v1/query_range``).

        Ranges of more than :attr:`max_points` steps are split into consecutive chunks on the same
        evaluation grid (``start + k * step``), fetched one after another and concatenated, with
        duplicate points at chunk boundaries dropped (and any point outside [start, end]).

        Examples
        --------
        >>> # PrometheusClient("http://127.0.0.1:9090").query_range(
        >>> #     "up", "2024-05-01T00:00:00Z", "2024-05-03T00:00:00Z", "15s")  # 4 chunks
        """
        if not isinstance(expr, str) or not expr.strip():
            raise ParameterError(f"expr={expr!r} must be a non-empty PromQL expression")
        start_ms = parse_time(start, what="start")
        end_ms = parse_time(end, what="end")
        step_ms = parse_step(step)
        if end_ms < start_ms:
            raise ParameterError(f"end ({_fmt_seconds(end_ms)} s) is before start ({_fmt_seconds(start_ms)} s)")
        points = (end_ms - start_ms) // step_ms + 1
        n_chunks = -(-points // self.max_points)
        if n_chunks > _MAX_CHUNKS:
            raise ParameterError(
                f"range of {points} steps would take {n_chunks} requests of {self.max_points} points; "
                f"raise the step (now {step_ms / 1000:g} s) or narrow the range"
            )
        span = (self.max_points - 1) * step_ms
        frames: list[pl.DataFrame] = []
        warns: list[str] = []
        lo = start_ms
        for _ in range(n_chunks):
            hi = min(lo + span, end_ms)
            result = self._api(
                "/api/v1/query_range",
                {"query": expr, "start": _fmt_seconds(lo), "end": _fmt_seconds(hi),
                 "step": _fmt_seconds(step_ms)},
                name,
            )
            if result.result_type != "matrix":
                raise PrometheusError(
                    f"{self.base_url}: query_range answered resultType {result.result_type!r}, expected 'matrix'"
                )
            frames.append(result.frame)
            warns.extend(w for w in result.warnings if w not in warns)
            lo = hi + step_ms
            if lo > end_ms:
                break
        self.last_warnings = tuple(warns)
        frame = frames[0] if len(frames) == 1 else concat(frames)
        ts = pl.col("timestamp").dt.epoch("ms")
        frame = frame.filter((ts >= start_ms) & (ts <= end_ms))
        if len(frames) == 1:
            return frame
        keys = [c for c in frame.columns if c != "value"]
        return frame.unique(subset=keys, keep="first", maintain_order=True)

    def series_range(
        self,
        metric: str,
        start: datetime | int | float | str,
        end: datetime | int | float | str,
        step: int | float | str | timedelta = "60s",
    ) -> pl.DataFrame:
        """All series of one exact metric name over a range: ``query_range({__name__="metric"})``.

        >>> # PrometheusClient("http://127.0.0.1:9090").series_range(
        >>> #     "dwcp_v3_active_streams", "2024-05-01T00:00:00Z", "2024-05-01T01:00:00Z", "1m")
        """
        return self.query_range(selector(metric), start, end, step, name=metric)
