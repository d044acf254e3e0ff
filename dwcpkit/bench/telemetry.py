"""Benchmark: parsing a Prometheus text exposition, dwcpkit vs ``prometheus_client``.

One deterministic exposition (3 histogram families x instances x 4 methods, 15 lines per
histogram series, plus a counter family filling up to the requested line count, ~100 bytes a
line) is parsed by :func:`dwcpkit.telemetry.exposition.parse` and by
``prometheus_client.parser.text_string_to_metric_families`` (every sample materialised), side by
side in the same process, best of ``repeat`` runs each. Both must find the same number of
samples, or the benchmark fails.

Example
-------
>>> from dwcpkit.bench.telemetry import run, format_table
>>> rows = run(lines=2_000, repeat=1)
>>> [r["name"] for r in rows]
['dwcpkit.telemetry.exposition.parse', 'prometheus_client text_string_to_metric_families']
>>> "lines/s" in format_table(rows)
True
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dwcpkit.bench import render_table
from dwcpkit.errors import DataError, ParameterError
from dwcpkit.telemetry.exposition import _parse, format_float, parse
from dwcpkit.telemetry.names import LATENCY_BUCKETS

__all__ = ["make_exposition", "run", "format_table"]

_HISTOGRAMS = ("http_request_duration_seconds", "rpc_duration_seconds", "db_query_duration_seconds")
_METHODS = ("GET", "POST", "PUT", "DELETE")
_TS_MS = 1_700_000_000_000


def make_exposition(lines: int = 100_000) -> str:
    """A deterministic Prometheus text exposition of exactly ``lines`` lines (no timestamps).

    About 72 % of the lines are histogram samples (``*_bucket`` with the catalogue's latency
    buckets, ``*_sum``, ``*_count``), the rest a ``requests_total`` counter.

    >>> text = make_exposition(500)
    >>> text.count("\\n")
    500
    """
    if lines < 10:
        raise ParameterError(f"lines must be at least 10, got {lines}")
    les = [format_float(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    per_instance = len(_HISTOGRAMS) * len(_METHODS) * (len(les) + 2)
    instances = max(1, int(lines * 0.72) // per_instance)
    out: list[str] = []
    for h, fam in enumerate(_HISTOGRAMS):
        out.append(f"# HELP {fam} Request latency ({fam}).")
        out.append(f"# TYPE {fam} histogram")
        for i in range(instances):
            for m, method in enumerate(_METHODS):
                labels = f'instance="node-{i:04d}.dwcp.example:9100",method="{method}"'
                count = 0
                for b, le in enumerate(les):
                    count += (i * 7 + m * 3 + b * 5 + h) % 11
                    out.append(f'{fam}_bucket{{{labels},le="{le}"}} {count}')
                out.append(f"{fam}_sum{{{labels}}} {count * 0.137:.3f}")
                out.append(f"{fam}_count{{{labels}}} {count}")
    out.append("# HELP requests_total Requests handled.")
    out.append("# TYPE requests_total counter")
    k = 0
    while len(out) < lines:
        out.append(
            f'requests_total{{instance="node-{k % 997:04d}.dwcp.example:9100",code="{200 + k % 5 * 100}",'
            f'handler="/api/v{k % 7}/items"}} {k * 3 + 1}'
        )
        k += 1
    return "\n".join(out[:lines]) + "\n"


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return best, count


def run(lines: int = 100_000, repeat: int = 3, *, include_careful: bool = False) -> list[dict]:
    """Time both parsers on one ``lines``-line exposition; best of ``repeat`` runs each.

    Parameters
    ----------
    lines : int
        Lines in the exposition (comments included).
    repeat : int
        Runs per parser; the fastest counts.
    include_careful : bool
        Also time dwcpkit's careful per-line path (what malformed or unusual lines go through).

    Returns
    -------
    list of dict
        One row per parser: ``name``, ``seconds``, ``lines_per_s``, ``ratio_vs_prometheus_client``
        (lines/s relative to prometheus_client; > 1 is faster), plus ``samples``.

    Raises
    ------
    DataError
        The parsers disagree on the number of samples.
    """
    from prometheus_client.parser import text_string_to_metric_families

    if repeat < 1:
        raise ParameterError(f"repeat must be at least 1, got {repeat}")
    text = make_exposition(lines)

    def ours() -> int:
        return parse(text, default_timestamp_ms=_TS_MS).height

    def careful() -> int:
        return _parse(text, path=None, default_timestamp_ms=_TS_MS, careful=True).height

    def theirs() -> int:
        return sum(len(family.samples) for family in text_string_to_metric_families(text))

    timed = [("dwcpkit.telemetry.exposition.parse", ours)]
    if include_careful:
        timed.append(("dwcpkit careful per-line path", careful))
    timed.append(("prometheus_client text_string_to_metric_families", theirs))
    results = [(name, *_best(fn, repeat)) for name, fn in timed]
    counts = {name: n for name, _, n in results}
    if len(set(counts.values())) != 1:
        raise DataError(f"the parsers found different numbers of samples: {counts}")
    ref = results[-1][1]
    return [
        {
            "name": name,
            "seconds": seconds,
            "lines_per_s": lines / seconds,
            "ratio_vs_prometheus_client": ref / seconds,
            "samples": n,
        }
        for name, seconds, n in results
    ]


def format_table(rows: list[dict]) -> str:
    """Render :func:`run`'s rows as a plain-text table.

    >>> print(format_table([{"name": "x", "seconds": 0.5, "lines_per_s": 2e5,
    ...                      "ratio_vs_prometheus_client": 1.0, "samples": 9}]))
    parser  seconds  lines/s  x prometheus_client  samples
    x         0.500  200,000                 1.00        9
    """
    header = ("parser", "seconds", "lines/s", "x prometheus_client", "samples")
    body = [
        (
            r["name"],
            f"{r['seconds']:.3f}",
            f"{r['lines_per_s']:,.0f}",
            f"{r['ratio_vs_prometheus_client']:.2f}",
            f"{r['samples']}",
        )
        for r in rows
    ]
    return render_table(header, body)
