"""Benchmark: HDE page-delta encode / decode vs numpy memcpy, zstd-1 and lz4, in one run.

The data is a deterministic synthetic VM image (:func:`make_image`, 256 MiB; 16 MiB in quick
mode) of 4 KiB pages: 35 % zero, 15 % copies of 64 template pages, 20 % random bytes, 20 %
text-like (Zipf-distributed words), 10 % struct-like (pointers, counters, small ints). A
second version dirties 10 % of the pages with 1 to 8 random writes of 8 to 256 bytes each
(:func:`dirty`), the setting of ``shared/reference/performance.md`` section 1.3.

Timed side by side, one core (no codec threads), median of ``repeat`` runs:

* ``numpy memcpy`` of the image and of the dirty set (``np.copyto`` into a touched buffer),
  the reference every other row is divided by (``x memcpy``; same byte count);
* ``baseline hashing`` (:class:`~dwcpkit.protocol.hde.Baseline`: XXH64 of every page, paid
  once per baseline);
* ``encode dirty set``: :func:`~dwcpkit.protocol.hde.encode` of only the dirty pages against
  their old versions (all pages change: XBZRLE records);
* ``encode full image``: the whole 10 %-dirty image against the old image (the scan that
  finds the 90 % unchanged pages), with no container and with zstd-1;
* ``encode full image, no baseline``: a FULL payload (zero / raw pages);
* ``decode`` of both deltas into a preallocated, touched output buffer (unchanged pages and
  the base of every delta page are copied from the baseline); the checksum of the decoded
  image is verified in every decode;
* ``apply in place``: :meth:`~dwcpkit.protocol.hde.LiveImage.apply` of the same deltas onto
  the receiver's copy of the old image (validate the stream, apply, rehash written pages,
  verify the checksum): no copy of unchanged or base pages, like QEMU's receiver (and like
  the decode anchor in performance.md, which did not time the base-page copy);
* ``zstd-1`` and ``lz4`` (frame, default level) compress and decompress of the same new
  image and of the same dirty pages (decompress allocates its output).

GB/s is 10^9 bytes of *input pages* per second (for decode: bytes of decoded image), over the
CPU time of the benchmarking thread (``time.thread_time``, user + system), so that other
processes on a shared machine do not distort the one-core figure; the wall-clock median and
best wall-clock run are printed beside it, with the machine's load average. The first-call JIT
cost is reported separately, in CPU seconds: in a full run, measured in two child processes
with an empty numba cache (cold compile) and then the cache they wrote (cached load); in quick
mode, the first calls in this process (whatever the cache state).

Example
-------
>>> from dwcpkit.bench.hde import run, format_table
>>> rows = run(quick=True, npages=256, repeat=1)
>>> rows[0]["name"]
'numpy memcpy, image'
>>> "x memcpy" in format_table(rows)
True
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from dwcpkit.bench import render_table
from dwcpkit.errors import DataError, ParameterError
from dwcpkit.protocol import hde

#: `dwcpkit warm` runs this benchmark in quick mode to fill the numba cache.
USES_NUMBA = True

__all__ = ["make_image", "dirty", "run", "format_table"]

PAGE = hde.PAGE_SIZE
_MIX = (0.35, 0.15, 0.20, 0.20, 0.10)  # zero, duplicate, random, text, struct


def _vocab(rng: np.random.Generator, size: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lens = rng.integers(2, 11, size)
    flat = rng.integers(ord("a"), ord("z") + 1, int(lens.sum()), dtype=np.uint8)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    return lens, flat, offs


def _text(rng: np.random.Generator, nbytes: int, vocab) -> np.ndarray:
    """Zipf-distributed words separated by spaces, ``nbytes`` long."""
    lens, flat, offs = vocab
    out = np.empty(nbytes, np.uint8)
    filled = 0
    while filled < nbytes:
        m = 100_000
        idx = (rng.zipf(1.3, m) - 1) % lens.size
        wl = lens[idx] + 1
        starts = np.concatenate([[0], np.cumsum(wl)[:-1]])
        wid = np.repeat(np.arange(m), wl)
        pos = np.arange(int(wl.sum())) - starts[wid]
        src = np.minimum(offs[idx][wid] + pos, flat.size - 1)
        chunk = np.where(pos == lens[idx][wid], np.uint8(32), flat[src])
        take = min(chunk.size, nbytes - filled)
        out[filled: filled + take] = chunk[:take]
        filled += take
    return out


def _struct(rng: np.random.Generator, k: int) -> np.ndarray:
    """Pages of 32-byte records: pointer, counter, small int, zero (little-endian u64)."""
    w = PAGE // 8
    col = np.arange(w) % 4
    ptr = np.uint64(0x00007F3A00000000) + rng.integers(0, 1 << 20, (k, w)).astype(np.uint64) * np.uint64(8)
    cnt = (np.cumsum(rng.integers(0, 4, (k, w)), axis=1) + rng.integers(0, 1 << 30, (k, 1))).astype(np.uint64)
    small = rng.integers(0, 256, (k, w)).astype(np.uint64)
    words = np.where(col == 0, ptr, np.where(col == 1, cnt, np.where(col == 2, small, np.uint64(0))))
    return words.astype("<u8").view(np.uint8).reshape(k, PAGE)


def make_image(npages: int, seed: int = 0) -> np.ndarray:
    """A deterministic synthetic VM image of ``npages`` 4 KiB pages (mix in the module docstring).

    >>> img = make_image(64, seed=1)
    >>> img.size, img.dtype.name, bool((make_image(64, seed=1) == img).all())
    (262144, 'uint8', True)
    """
    if not isinstance(npages, int) or npages < 1:
        raise ParameterError(f"npages must be a positive int, got {npages!r}")
    rng = np.random.default_rng(seed)
    img = np.zeros(npages * PAGE, np.uint8)
    pages = img.reshape(npages, PAGE)
    kind = np.searchsorted(np.cumsum(_MIX), rng.random(npages) * 0.999999)
    vocab = _vocab(rng)
    i = np.nonzero(kind == 2)[0]
    pages[i] = rng.integers(0, 256, (i.size, PAGE), dtype=np.uint8)
    i = np.nonzero(kind == 3)[0]
    pages[i] = _text(rng, i.size * PAGE, vocab).reshape(i.size, PAGE)
    i = np.nonzero(kind == 4)[0]
    pages[i] = _struct(rng, i.size)
    templates = np.concatenate([_text(rng, 32 * PAGE, vocab).reshape(32, PAGE), _struct(rng, 32)])
    i = np.nonzero(kind == 1)[0]
    pages[i] = templates[rng.integers(0, templates.shape[0], i.size)]
    return img


def dirty(image: np.ndarray, fraction: float = 0.10, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``image`` with ``fraction`` of its pages hit by 1-8 random writes of 8-256 bytes.

    Returns ``(new_image, sorted dirty page indices)``.

    >>> img = make_image(100)
    >>> new, idx = dirty(img)
    >>> idx.size, int((new != img).reshape(100, -1).any(axis=1).sum()) <= 10
    (10, True)
    """
    if not 0.0 <= fraction <= 1.0:
        raise ParameterError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    npages = image.size // PAGE
    new = image.copy()
    idx = np.sort(rng.choice(npages, int(npages * fraction), replace=False))
    nwrites = rng.integers(1, 9, idx.size)
    page_of = np.repeat(idx, nwrites)
    lens = rng.integers(8, 257, page_of.size)
    offs = (rng.random(page_of.size) * (PAGE - lens + 1)).astype(np.int64)
    content = rng.integers(0, 256, int(lens.sum()), dtype=np.uint8)
    c = 0
    for p, off, ln in zip(page_of.tolist(), offs.tolist(), lens.tolist()):
        s = p * PAGE + off
        new[s: s + ln] = content[c: c + ln]
        c += ln
    return new, idx


def _timed(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
           ) -> tuple[float, float, float]:
    """(median CPU seconds of this thread, median wall seconds, best wall seconds)."""
    cpu, wall = [], []
    for _ in range(repeat):
        if setup is not None:
            setup()
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return float(np.median(cpu)), float(np.median(wall)), float(min(wall))


_PROBE = r"""
import json, time
import numpy as np
t0 = time.thread_time()
from dwcpkit.protocol import hde
t1 = time.thread_time()
old = np.zeros(4 * 4096, np.uint8); new = old.copy(); new[100:140] = 7
w = time.perf_counter()
t = time.thread_time(); b = hde.Baseline(old); t2 = time.thread_time() - t
t = time.thread_time(); p = hde.encode(new, b); t3 = time.thread_time() - t
t = time.thread_time(); hde.decode(p, b); t4 = time.thread_time() - t
t = time.thread_time(); hde.LiveImage(old).apply(p); t5 = time.thread_time() - t
print(json.dumps({"import": t1 - t0, "hash": t2, "encode": t3, "decode": t4, "apply": t5,
                  "wall": time.perf_counter() - w}))
"""


def _jit_probe(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    res = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise DataError(f"JIT probe failed: {res.stderr.strip()[-500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(quick: bool = False, *, npages: int | None = None, repeat: int | None = None, seed: int = 0) -> list[dict]:
    """Build the synthetic image, time every row, verify every decode; one dict per row.

    Parameters
    ----------
    quick : bool
        16 MiB image, 3 repeats, in-process JIT timing (no child processes).
    npages : int, optional
        Image size in 4 KiB pages (default 65,536 = 256 MiB; 4,096 in quick mode).
    repeat : int, optional
        Timed runs per row (median reported; default 7, quick 3).
    seed : int
        Seed of the synthetic image and of the dirty writes.

    Returns
    -------
    list of dict
        Keys: ``name``, ``bytes`` (input bytes per run), ``seconds`` (median), ``gb_s``,
        ``best_gb_s``, ``x_memcpy`` (median GB/s over memcpy's for the same byte count),
        ``ratio`` (input / output bytes, compressors and encoders only) and ``note``.
        JIT rows carry ``seconds`` only.

    Raises
    ------
    DataError
        A decode or decompress did not reproduce its input.
    """
    npages = npages or (4096 if quick else 65536)
    repeat = repeat or (3 if quick else 7)
    if repeat < 1:
        raise ParameterError(f"repeat must be at least 1, got {repeat}")
    rows: list[dict] = []

    # first-call JIT cost (CPU seconds of the thread that compiles)
    jit_rows: list[dict] = []
    if quick:
        small = np.zeros(4 * PAGE, np.uint8)
        parts = []
        for fn in (lambda: hde.Baseline(small), lambda: hde.encode(small, hde.Baseline(small)),
                   lambda: hde.decode(hde.encode(small, hde.Baseline(small)), hde.Baseline(small)),
                   lambda: hde.LiveImage(small).apply(hde.encode(small, hde.Baseline(small)))):
            t = time.thread_time()
            fn()
            parts.append(time.thread_time() - t)
        jit_rows.append({"name": "JIT first calls in this process", "seconds": sum(parts),
                         "note": "hash {:.2f} s, encode {:.2f} s, decode {:.2f} s, apply {:.2f} s; "
                                 "CPU time; cold or cached".format(*parts)})
    else:
        with tempfile.TemporaryDirectory(prefix="dwcpkit-jit-") as d:
            cold = _jit_probe(d)
            warm = _jit_probe(d)
        for label, r in (("cold compile, empty cache", cold), ("cached load", warm)):
            jit_rows.append({"name": f"JIT first calls, {label}",
                             "seconds": r["hash"] + r["encode"] + r["decode"] + r["apply"],
                             "note": f"CPU s: hash {r['hash']:.2f}, encode {r['encode']:.2f}, decode {r['decode']:.2f}, "
                                     f"apply {r['apply']:.2f} (wall {r['wall']:.2f} s; child process)"})
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    old = make_image(npages, seed)
    new, idx = dirty(old, 0.10, seed + 1)
    old_d = np.ascontiguousarray(old.reshape(-1, PAGE)[idx]).reshape(-1)
    new_d = np.ascontiguousarray(new.reshape(-1, PAGE)[idx]).reshape(-1)
    out = np.ones_like(new)
    out_d = np.ones_like(new_d)

    memcpy: dict[int, float] = {}

    def add(name: str, nbytes: int, fn: Callable[[], object], *, out_bytes: int | None = None, note: str = "",
            setup: Callable[[], object] | None = None) -> None:
        cpu, wall, best = _timed(fn, repeat, setup)
        gb = nbytes / cpu / 1e9
        rows.append({
            "name": name, "bytes": nbytes, "seconds": cpu, "gb_s": gb, "wall_gb_s": nbytes / wall / 1e9,
            "best_gb_s": nbytes / best / 1e9, "x_memcpy": gb / memcpy[nbytes] if nbytes in memcpy else 1.0,
            "ratio": nbytes / out_bytes if out_bytes else None, "note": note,
        })

    for label, src, dst in (("image", new, out), ("dirty set", new_d, out_d)):
        add(f"numpy memcpy, {label}", src.size, lambda: np.copyto(dst, src), note="np.copyto, touched destination")
        memcpy[src.size] = rows[-1]["gb_s"]

    base_full = hde.Baseline(old, copy=False)
    base_d = hde.Baseline(old_d, copy=False)
    add("baseline hashing (XXH64 per page), image", old.size, lambda: hde.Baseline(old, copy=False),
        note="once per baseline")

    p_d = hde.encode(new_d, base_d)
    add("HDE encode, sparse dirty set", new_d.size, lambda: hde.encode(new_d, base_d), out_bytes=len(p_d),
        note=f"{idx.size} pages, all DELTA/RAW")
    p_f = hde.encode(new, base_full)
    cls = np.bincount(hde.page_classes(p_f), minlength=4)
    add("HDE encode, full image scan (10 % dirty)", new.size, lambda: hde.encode(new, base_full), out_bytes=len(p_f),
        note=f"zero/same/delta/raw {cls[0]}/{cls[1]}/{cls[2]}/{cls[3]}")
    p_fz = hde.encode(new, base_full, container="zstd", level=1)
    add("HDE encode + zstd-1, full image scan", new.size,
        lambda: hde.encode(new, base_full, container="zstd", level=1), out_bytes=len(p_fz))
    p_full = hde.encode(new)
    add("HDE encode, full image, no baseline", new.size, lambda: hde.encode(new), out_bytes=len(p_full),
        note="FULL payload: zero pages dropped, rest raw")

    hde.decode(p_d, base_d, out=out_d)
    if not np.array_equal(out_d, new_d):
        raise DataError("HDE decode of the dirty set did not reproduce it")
    add("HDE decode, sparse dirty set", new_d.size, lambda: hde.decode(p_d, base_d, out=out_d),
        note="into a preallocated buffer; checksum verified")
    hde.decode(p_f, base_full, out=out)
    if not np.array_equal(out, new):
        raise DataError("HDE decode of the full image did not reproduce it")
    add("HDE decode, full image (10 % dirty)", new.size, lambda: hde.decode(p_f, base_full, out=out),
        note="copies unchanged pages from the baseline")

    for label, o, nw, payload in (("sparse dirty set", old_d, new_d, p_d), ("full image (10 % dirty)", old, new, p_f)):
        live = hde.LiveImage(o)
        live.apply(payload)
        if not np.array_equal(live.data, nw):
            raise DataError(f"in-place apply of the {label} did not reproduce it")
        add(f"HDE apply in place (LiveImage), {label}", nw.size, lambda: live.apply(payload),
            setup=lambda: live.reset(o), note="validate, apply, rehash written pages, verify checksum")

    import lz4.frame
    import zstandard

    cz = zstandard.ZstdCompressor(level=1, threads=0, write_checksum=False)
    dz = zstandard.ZstdDecompressor()
    for label, src in (("image", new), ("dirty set", new_d)):
        z = cz.compress(src)
        add(f"zstd-1 compress, {label}", src.size, lambda: cz.compress(src), out_bytes=len(z))
        if dz.decompress(z) != src.tobytes():
            raise DataError("zstd round trip failed")
        add(f"zstd-1 decompress, {label}", src.size, lambda: dz.decompress(z), note="allocates output")
        l4 = lz4.frame.compress(src, store_size=True)
        add(f"lz4 frame compress, {label}", src.size, lambda: lz4.frame.compress(src, store_size=True),
            out_bytes=len(l4))
        add(f"lz4 frame decompress, {label}", src.size, lambda: lz4.frame.decompress(l4), note="allocates output")

    rows.extend(jit_rows)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows.append({"name": "machine load average (1 min), start / end", "seconds": None,
                 "note": f"{load_start:.1f} / {load_end:.1f} on {os.cpu_count()} CPUs"})
    return rows


def format_table(rows: list[dict]) -> str:
    """Render :func:`run`'s rows as a plain-text table.

    >>> print(format_table([{"name": "x", "bytes": 10**9, "seconds": 0.5, "gb_s": 2.0, "wall_gb_s": 1.9,
    ...                      "best_gb_s": 2.5, "x_memcpy": 0.2, "ratio": 7.3, "note": ""}]))
    row    MiB  GB/s (cpu)  x memcpy  wall GB/s  best wall  ratio  seconds  note
    x    953.7       2.000      0.20      1.900      2.500   7.30    0.500
    """
    header = ("row", "MiB", "GB/s (cpu)", "x memcpy", "wall GB/s", "best wall", "ratio", "seconds", "note")
    body = []
    for r in rows:
        if "gb_s" in r:
            body.append((r["name"], f"{r['bytes'] / 2**20:.1f}", f"{r['gb_s']:.3f}", f"{r['x_memcpy']:.2f}",
                         f"{r['wall_gb_s']:.3f}", f"{r['best_gb_s']:.3f}",
                         f"{r['ratio']:.2f}" if r.get("ratio") else "", f"{r['seconds']:.3f}", r.get("note", "")))
        else:
            sec = "" if r.get("seconds") is None else f"{r['seconds']:.3f}"
            body.append((r["name"], "", "", "", "", "", "", sec, r.get("note", "")))
    return render_table(header, body, "l" + "r" * (len(header) - 2) + "l")
