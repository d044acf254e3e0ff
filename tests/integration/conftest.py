"""A real Prometheus for the integration tests: the sample telemetry backfilled with promtool and served on 127.0.0.1.

The session fixture backfills a window of ``data/telemetry.parquet`` (13 hours around the runbooks'
evaluation time, 2026-11-01T20:00Z, and three of the sample's injected incidents) and starts
``prometheus`` on a free port with a 10-year retention and no scrape jobs. Without the binaries the
tests are skipped, except under ``CI=true``, where that is a failure (``.ci/install-system-deps``
installs them).
"""

import os
import shutil
import time

import pytest

from dwcpkit.telemetry.promserver import PrometheusServer, backfill
from dwcpkit.telemetry.sources import load

#: Backfilled window: 1 h before the replay window (the anomaly scores look back an hour) to past the
#: runbooks' evaluation time.
DATA_START, DATA_END = "2026-11-01T08:00:00Z", "2026-11-01T21:00:00Z"
#: Where alerts are replayed and queried.
REPLAY_START, REPLAY_END = "2026-11-01T09:00:00Z", "2026-11-01T21:00:00Z"


def _need_prometheus() -> None:
    """Skip (or, under CI=true, fail) when prometheus/promtool are not installed."""
    missing = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    if missing:
        reason = (f"{' and '.join(missing)} not on PATH: install Debian's `prometheus` package "
                  "(.ci/install-system-deps does)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def need_prometheus():
    """Use in tests that need the binaries but not the shared server."""
    _need_prometheus()


@pytest.fixture(scope="session")
def window():
    """The data and replay windows (ISO strings)."""
    return {"data": (DATA_START, DATA_END), "replay": (REPLAY_START, REPLAY_END)}


@pytest.fixture(scope="session")
def sample_window():
    """The backfilled part of the sample data (canonical frame)."""
    return load("sample", start=DATA_START, end=DATA_END)


@pytest.fixture(scope="session")
def tsdb(tmp_path_factory, sample_window):
    """A TSDB directory holding ``sample_window`` (promtool blocks)."""
    _need_prometheus()
    path = tmp_path_factory.mktemp("prom") / "data"
    started = time.monotonic()
    result = backfill(sample_window, path)
    print(f"\nbackfilled {result.samples} samples into {len(result.blocks)} block(s) in "
          f"{time.monotonic() - started:.1f} s")
    return path


@pytest.fixture(scope="session")
def prometheus(tsdb):
    """A running Prometheus serving ``tsdb``; stopped (SIGTERM, then SIGKILL) after the session."""
    server = PrometheusServer(tsdb, ready_timeout=60)
    with server:
        yield server
    assert not server.running
