"""Benchmark: AMST loopback throughput with 1, 4, 8 and 16 streams vs one plain socket.

One random payload (256 MiB; 16 MiB in quick mode) is moved over 127.0.0.1 in the same run
by:

* the reference — one plain TCP socket, ``sendall`` of the whole buffer into a receiver that
  ``recv_into``\\ s a freshly allocated buffer, then answers one byte;
* :func:`dwcpkit.protocol.amst.loopback_transfer` with 1, 4, 8 and 16 streams (256 KiB
  chunks, CRC-32 of every header and payload, reassembly by offset, verification, ACK);
* AMST with 8 streams and payload checksums off, to show what the CRCs cost.

The CRC-32C kernel is compiled (or loaded from numba's cache) before the first timing; that
first-call cost is reported under the table.

Every timing runs from the sender's first ``connect`` to its receipt of the receiver's final
acknowledgement, includes allocating the receive buffer, and is the best of ``repeat`` runs.
Every received buffer is compared with the payload; a mismatch fails the benchmark. On one
host, sender and receiver share the CPU cores (two here), so more streams cannot add
bandwidth the way they do on a lossy WAN path (see :mod:`dwcpkit.protocol.link`): this
measures the protocol's overhead, not WAN behaviour.

Example
-------
>>> from dwcpkit.bench.amst import run, format_table
>>> rows = run(quick=True, payload_bytes=1 << 20, repeat=1)
>>> [r["name"] for r in rows][:2]
['plain socket sendall (reference)', 'AMST 1 stream']
>>> "x plain" in format_table(rows)
True
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from dwcpkit.bench import render_table
from dwcpkit.errors import DataError, ParameterError, TransferError
from dwcpkit.protocol import amst

#: `dwcpkit warm` runs this benchmark in quick mode to fill the numba cache.
USES_NUMBA = True

__all__ = ["STREAMS", "run", "format_table"]

STREAMS = (1, 4, 8, 16)
_TIMEOUT_S = 30.0


def _same(x: object, y: object) -> bool:
    """Byte equality of two buffers, compared 8 bytes at a time (memoryview == is per element)."""
    a = np.frombuffer(x, dtype=np.uint8)  # type: ignore[call-overload]
    b = np.frombuffer(y, dtype=np.uint8)  # type: ignore[call-overload]
    if a.size != b.size:
        return False
    k = a.size // 8 * 8
    return bool(np.array_equal(a[:k].view(np.uint64), b[:k].view(np.uint64)) and np.array_equal(a[k:], b[k:]))


def _plain_socket(payload: memoryview) -> tuple[float, bool]:
    """One plain socket: connect, sendall, receiver fills a new buffer and answers one byte."""
    n = len(payload)
    box: dict[str, object] = {}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(_TIMEOUT_S)

    def receive() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(_TIMEOUT_S)
                buf = np.empty(n, dtype=np.uint8)
                view = memoryview(buf)
                got = 0
                while got < n:  # each pass receives ≥ 1 byte or raises
                    k = conn.recv_into(view[got:])
                    if k == 0:
                        raise TransferError(f"reference sender closed after {got} of {n} bytes")
                    got += k
                conn.sendall(b"\x01")
                box["buf"] = buf
        except BaseException as exc:  # noqa: BLE001 - handed to the timing thread
            box["error"] = exc

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    try:
        t0 = time.perf_counter()
        with socket.create_connection(listener.getsockname(), timeout=_TIMEOUT_S) as s:
            s.sendall(payload)
            if s.recv(1) != b"\x01":
                raise TransferError("reference receiver did not acknowledge")
        seconds = time.perf_counter() - t0
    finally:
        t.join(_TIMEOUT_S)
        listener.close()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    ok = _same(box["buf"], payload)
    return seconds, ok


def _amst(payload: memoryview, streams: int, checksum: bool) -> tuple[float, bool]:
    cfg = amst.AmstConfig(checksum=checksum, timeout_s=_TIMEOUT_S, deadline_s=600.0,
                          max_transfer_bytes=max(len(payload), 1))
    r = amst.loopback_transfer(payload, streams=streams, config=cfg)
    return r.sent.seconds, _same(r.received.data, payload)


def run(quick: bool = False, *, payload_bytes: int | None = None, repeat: int | None = None,
        seed: int = 0) -> list[dict]:
    """Time the reference and AMST on one payload; best of ``repeat`` runs each.

    Parameters
    ----------
    quick : bool
        16 MiB, one run each (default: 256 MiB, best of 3).
    payload_bytes, repeat : int, optional
        Override the payload size and the number of runs.
    seed : int
        Seed of the random payload.

    Returns
    -------
    list of dict
        One row per configuration: ``name``, ``streams``, ``checksum``, ``bytes``,
        ``seconds``, ``gb_per_s`` (10⁹ bytes/s), ``ratio_vs_plain`` (throughput relative
        to the plain socket in this run; > 1 is faster) and ``crc32c_first_call_s`` (the
        checksum kernel's JIT compile or cache load, paid before any timing).

    Raises
    ------
    DataError
        A received buffer differs from the payload.
    """
    size = payload_bytes if payload_bytes is not None else (16 << 20 if quick else 256 << 20)
    runs = repeat if repeat is not None else (1 if quick else 3)
    if size < 1 or runs < 1:
        raise ParameterError(f"payload_bytes and repeat must be ≥ 1, got {size}, {runs}")
    t0 = time.perf_counter()
    amst.crc32c(b"warm up")  # numba compile or cache load, paid once, reported apart
    first_call_s = time.perf_counter() - t0
    payload = memoryview(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)).cast("B")
    configs: list[tuple[str, int, bool]] = [("plain socket sendall (reference)", 1, False)]
    configs += [(f"AMST {n} stream{'s' if n > 1 else ''}", n, True) for n in STREAMS]
    configs.append(("AMST 8 streams, no payload CRC", 8, False))
    best = {name: float("inf") for name, _, _ in configs}
    for _ in range(runs):  # interleaved, so load changes hit every configuration alike
        for name, n, checksum in configs:
            seconds, ok = _plain_socket(payload) if name.startswith("plain") else _amst(payload, n, checksum)
            if not ok:
                raise DataError(f"{name}: the received bytes differ from the payload")
            best[name] = min(best[name], seconds)
    ref = best[configs[0][0]]
    return [
        {
            "name": name,
            "streams": n,
            "checksum": checksum,
            "bytes": size,
            "seconds": best[name],
            "gb_per_s": size / best[name] / 1e9,
            "ratio_vs_plain": ref / best[name],
            "crc32c_first_call_s": first_call_s,
        }
        for name, n, checksum in configs
    ]


def format_table(rows: list[dict]) -> str:
    """Render :func:`run`'s rows as a plain-text table.

    >>> print(format_table([{"name": "x", "streams": 1, "checksum": True, "bytes": 2**20,
    ...                      "seconds": 0.001, "gb_per_s": 1.048576, "ratio_vs_plain": 1.0}]))
    transfer  streams  CRC  MiB  seconds  GB/s  x plain
    x               1  yes    1   0.0010  1.05     1.00
    """
    header = ("transfer", "streams", "CRC", "MiB", "seconds", "GB/s", "x plain")
    body = [
        (
            r["name"],
            str(r["streams"]),
            "yes" if r["checksum"] else "no",
            f"{r['bytes'] / 2**20:g}",
            f"{r['seconds']:.4f}",
            f"{r['gb_per_s']:.2f}",
            f"{r['ratio_vs_plain']:.2f}",
        )
        for r in rows
    ]
    lines = render_table(header, body).splitlines()
    if rows and "crc32c_first_call_s" in rows[0]:
        lines.append(f"(crc32c first call, JIT or cache load, not in the timings: {rows[0]['crc32c_first_call_s']:.2f} s)")
    return "\n".join(lines)
