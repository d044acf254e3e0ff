"""numba kernels of :mod:`dwcpkit.protocol.hde`, each with a plain-Python reference.

Private module. The kernels work on flat ``uint8`` arrays and read 8-byte words through a
``uint64`` view of the same memory (page starts are multiples of 8 because page sizes are powers
of two >= 64); the Python side passes both views. Every kernel has a ``_ref_*`` twin written for clarity, not speed, that the tests
compare it against byte for byte.

Kernels
-------
``_xxh64``           XXH64 (Yann Collet's spec) of a slice that starts on a word boundary.
``_hash_pages``      XXH64 of every page (or of the whole buffer).
``_encode_pages``    classify every page (zero / same / delta / raw) and write the page stream.
``_decode_pages``    rebuild the image from the page stream, hashing every page it writes.
``_validate_pages``  check a page stream without writing (before an in-place apply).
``_xbzrle_encode``   one page's XBZRLE-class delta (QEMU's documented format, canonical runs).
``_xbzrle_apply``    apply one page's delta on top of the baseline page.

Page-stream layout (the body that a container then compresses)::

    classes   npages bytes, one PageClass per page
    data      for each page, in order: RAW -> the page bytes; DELTA -> u16 LE length + record;
              ZERO and SAME carry nothing

A DELTA record is XBZRLE's ``zrun nzrun bytes (zrun nzrun bytes)*``: ULEB128 zero-run length
(bytes equal to the baseline), ULEB128 non-zero-run length (>= 1), then the *new* bytes of
that run. A trailing zero run is not written. The encoder emits canonical (maximal) runs, so
its output equals QEMU's XBZRLE encoding of the same page.
"""

from __future__ import annotations

import numpy as np
from numba import njit

try:  # numba's count-trailing-zeros intrinsic (stable since numba 0.50)
    from numba.cpython.unsafe.numbers import trailing_zeros as _ctz
except ImportError:  # pragma: no cover - fallback if numba moves it
    _DEBRUIJN = np.array(
        [0, 1, 2, 53, 3, 7, 54, 27, 4, 38, 41, 8, 34, 55, 48, 28, 62, 5, 39, 46, 44, 42, 22, 9, 24,
         35, 59, 56, 49, 18, 29, 11, 63, 52, 6, 26, 37, 40, 33, 47, 61, 45, 43, 21, 23, 58, 17, 10,
         51, 25, 36, 32, 60, 20, 57, 16, 50, 31, 19, 15, 30, 14, 13, 12], dtype=np.uint8)

    @njit(cache=True, nogil=True)
    def _ctz(x):  # type: ignore[no-redef]
        return np.uint64(_DEBRUIJN[((x & (~x + np.uint64(1))) * np.uint64(0x022FDD63CC95386D)) >> np.uint64(58)])

# page classes (wire values)
ZERO = 0
SAME = 1
DELTA = 2
RAW = 3

# decode error codes (returned with the page index; the Python layer words the message)
ERR_OK = 0
ERR_CLASS = 1        # unknown page class byte
ERR_NO_BASE = 2      # SAME / DELTA page but the baseline does not cover it
ERR_TRUNC_RAW = 3    # raw page runs past the end of the data section
ERR_TRUNC_LEN = 4    # delta length field runs past the end
ERR_TRUNC_REC = 5    # delta record runs past the end
ERR_RECORD = 6       # malformed delta record (bad varint, zero-length run, overrun of the page)
ERR_TRAILING = 7     # bytes left over after the last page
ERR_DELTA_SIZE = 8   # delta record not smaller than the raw page (an encoder never writes that)

_P1 = np.uint64(11400714785074694791)
_P2 = np.uint64(14029467366897019727)
_P3 = np.uint64(1609587929392839161)
_P4 = np.uint64(9650029242287828579)
_P5 = np.uint64(2870177450012600261)
_LO = np.uint64(0x0101010101010101)
_HI = np.uint64(0x8080808080808080)
_M64 = (1 << 64) - 1
# Array indices are cast to uint64 in the kernels: with a signed index numba emits a
# negative-index wraparound branch per access, which blocks LLVM's vectorisation and memcpy
# idioms (measured 4-25x slower copies). Every index is bounds-checked by the logic instead.
_U = np.uint64


# ----------------------------------------------------------------------------------------------
# XXH64
# ----------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(cache=True, nogil=True)
def _round(acc, lane):
    acc = acc + lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


@njit(cache=True, nogil=True)
def _merge(acc, val):
    acc = acc ^ _round(np.uint64(0), val)
    return acc * _P1 + _P4


@njit(cache=True, nogil=True, inline="always")
def _xxh64(b8, b64, start, length, seed):
    """XXH64 of ``b8[start:start+length]``; ``start`` must be a multiple of 8."""
    p = start
    end = start + length
    if length >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        w = p >> 3
        nstripes = length >> 5
        for _ in range(nstripes):
            v1 = _round(v1, b64[_U(w)])
            v2 = _round(v2, b64[_U(w + 1)])
            v3 = _round(v3, b64[_U(w + 2)])
            v4 = _round(v4, b64[_U(w + 3)])
            w += 4
        p += nstripes << 5
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = seed + _P5
    h = h + np.uint64(length)
    while p + 8 <= end:
        h = h ^ _round(np.uint64(0), b64[_U(p >> 3)])
        h = _rotl(h, 27) * _P1 + _P4
        p += 8
    if p + 4 <= end:
        u = (np.uint64(b8[_U(p)]) | (np.uint64(b8[_U(p + 1)]) << np.uint64(8))
             | (np.uint64(b8[_U(p + 2)]) << np.uint64(16)) | (np.uint64(b8[_U(p + 3)]) << np.uint64(24)))
        h = h ^ (u * _P1)
        h = _rotl(h, 23) * _P2 + _P3
        p += 4
    while p < end:
        h = h ^ (np.uint64(b8[_U(p)]) * _P5)
        h = _rotl(h, 11) * _P1
        p += 1
    h = h ^ (h >> np.uint64(33))
    h = h * _P2
    h = h ^ (h >> np.uint64(29))
    h = h * _P3
    h = h ^ (h >> np.uint64(32))
    return h


def _words(b8: np.ndarray) -> np.ndarray:
    """The ``uint64`` view of the whole words of a ``uint8`` array (Python side, free)."""
    return b8[: (b8.size >> 3) << 3].view(np.uint64)


@njit(cache=True, nogil=True)
def _hash_pages(b8, b64, page_size, seed, out):
    """``out[i]`` = XXH64(page i, ``seed``); with ``page_size >= len(b8)`` and one output slot
    this is the XXH64 of the whole buffer (the tree hash's combining step uses that)."""
    n = b8.size
    for i in range(out.size):
        s = i * page_size
        out[_U(i)] = _xxh64(b8, b64, s, min(page_size, n - s), seed)


def _xxh64_all(b8: np.ndarray, seed: int = 0) -> int:
    """XXH64 of a whole (8-byte aligned) ``uint8`` array."""
    out = np.empty(1, np.uint64)
    _hash_pages(b8, _words(b8), max(int(b8.size), 1), np.uint64(seed), out)
    return int(out[0])


def _ref_xxh64(data: bytes, seed: int = 0) -> int:
    """Plain-Python XXH64 (reference for :func:`_xxh64`)."""
    p1, p2, p3, p4, p5 = (int(_P1), int(_P2), int(_P3), int(_P4), int(_P5))

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (64 - r))) & _M64

    def rnd(acc: int, lane: int) -> int:
        return (rotl((acc + lane * p2) & _M64, 31) * p1) & _M64

    def merge(acc: int, val: int) -> int:
        return ((acc ^ rnd(0, val)) * p1 + p4) & _M64

    n = len(data)
    p = 0
    if n >= 32:
        v = [(seed + p1 + p2) & _M64, (seed + p2) & _M64, seed & _M64, (seed - p1) & _M64]
        while p + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], int.from_bytes(data[p + 8 * k: p + 8 * k + 8], "little"))
            p += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & _M64
        for k in range(4):
            h = merge(h, v[k])
    else:
        h = (seed + p5) & _M64
    h = (h + n) & _M64
    while p + 8 <= n:
        h ^= rnd(0, int.from_bytes(data[p: p + 8], "little"))
        h = (rotl(h, 27) * p1 + p4) & _M64
        p += 8
    if p + 4 <= n:
        h ^= (int.from_bytes(data[p: p + 4], "little") * p1) & _M64
        h = (rotl(h, 23) * p2 + p3) & _M64
        p += 4
    while p < n:
        h ^= (data[p] * p5) & _M64
        h = (rotl(h, 11) * p1) & _M64
        p += 1
    h ^= h >> 33
    h = (h * p2) & _M64
    h ^= h >> 29
    h = (h * p3) & _M64
    h ^= h >> 32
    return h


# ----------------------------------------------------------------------------------------------
# XBZRLE page delta
# ----------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _put_uleb(out, o, v):
    while v >= 0x80:
        out[_U(o)] = np.uint8((v & 0x7F) | 0x80)
        v >>= 7
        o += 1
    out[_U(o)] = np.uint8(v)
    return o + 1


@njit(cache=True, nogil=True, inline="always")
def _uleb_len(v):
    return 1 if v < 0x80 else (2 if v < 0x4000 else 3)


@njit(cache=True, nogil=True, inline="always")
def _xbzrle_encode(t8, t64, b8, b64, s, length, first, out, o0, limit):
    """Delta of page ``t8[s:s+length]`` against ``b8[s:s+length]`` into ``out[o0:]``.

    ``first`` is the offset of the first differing byte (the caller found it). Returns the
    record length, or -1 if it would exceed ``limit`` bytes (then nothing useful is in ``out``).
    """
    i = first
    zs = 0
    o = o0
    end_o = o0 + limit
    while True:
        # i is on a differing byte: the zero run before it is [zs, i); scan the non-zero run
        zrun = i - zs
        ns = i
        done = False
        while i < length and (i & 7) != 0:
            if t8[_U(s + i)] == b8[_U(s + i)]:
                done = True
                break
            i += 1
        if not done:
            while i + 8 <= length:
                w = (s + i) >> 3
                x = t64[_U(w)] ^ b64[_U(w)]
                z = (x - _LO) & ~x & _HI  # lowest flagged byte = first equal byte
                if z != 0:
                    i += np.int64(_ctz(z) >> np.uint64(3))
                    done = True
                    break
                i += 8
            if not done:
                while i < length and t8[_U(s + i)] != b8[_U(s + i)]:
                    i += 1
        nz = i - ns
        if o + _uleb_len(zrun) + _uleb_len(nz) + nz > end_o:
            return -1
        o = _put_uleb(out, o, zrun)
        o = _put_uleb(out, o, nz)
        for k in range(nz):
            out[_U(o + k)] = t8[_U(s + ns + k)]
        o += nz
        if i >= length:
            break
        # zero run
        zs = i
        while i < length and (i & 7) != 0 and t8[_U(s + i)] == b8[_U(s + i)]:
            i += 1
        if i < length and (i & 7) == 0:
            found = False
            while i + 8 <= length:
                w = (s + i) >> 3
                x = t64[_U(w)] ^ b64[_U(w)]
                if x != 0:
                    i += np.int64(_ctz(x) >> np.uint64(3))
                    found = True
                    break
                i += 8
            if not found:
                while i < length and t8[_U(s + i)] == b8[_U(s + i)]:
                    i += 1
        if i >= length:
            break
    return o - o0


@njit(cache=True, nogil=True, inline="always")
def _get_uleb(data, pos, end):
    """(value, new_pos); new_pos = -1 on a truncated or over-long varint (max 3 bytes)."""
    v = 0
    shift = 0
    for _ in range(3):
        if pos >= end:
            return 0, -1
        c = np.int64(data[_U(pos)])
        pos += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, pos
        shift += 7
    return 0, -1


@njit(cache=True, nogil=True, inline="always")
def _xbzrle_apply(data, pos, end, out, s, length):
    """Apply the record ``data[pos:end]`` to ``out[s:s+length]`` (holding the baseline page).

    Returns ``True`` if the record is well formed: zero-run/non-zero-run pairs, every
    non-zero run >= 1 byte, nothing past the page, no dangling zero run at the end.
    """
    i = 0
    if pos >= end:
        return False  # an empty record would mean "unchanged": that is a SAME page
    while pos < end:
        zrun, pos = _get_uleb(data, pos, end)
        if pos < 0:
            return False
        i += zrun
        nz, pos = _get_uleb(data, pos, end)
        if pos < 0 or nz == 0 or i + nz > length or pos + nz > end:
            return False
        for k in range(nz):
            out[_U(s + i + k)] = data[_U(pos + k)]
        pos += nz
        i += nz
    return True


def _ref_xbzrle_encode(new: bytes, old: bytes, limit: int) -> bytes | None:
    """Canonical XBZRLE record of ``new`` against ``old`` (byte by byte), or ``None`` if the
    record would be longer than ``limit`` bytes. An unchanged page gives ``b""``."""

    def uleb(v: int) -> bytes:
        out = bytearray()
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)

    n = len(new)
    out = bytearray()
    i = 0
    while i < n:
        zs = i
        while i < n and new[i] == old[i]:
            i += 1
        if i == n:
            break
        ns = i
        while i < n and new[i] != old[i]:
            i += 1
        out += uleb(ns - zs) + uleb(i - ns) + new[ns:i]
        if len(out) > limit:
            return None
    return bytes(out)


def _ref_xbzrle_decode(record: bytes, old: bytes) -> bytes | None:
    """Apply ``record`` to ``old``; ``None`` if the record is malformed (reference)."""
    page = bytearray(old)
    pos = 0
    i = 0
    n = len(record)
    if n == 0:
        return None

    def uleb(pos: int) -> tuple[int, int]:
        v = 0
        for k in range(3):
            if pos >= n:
                return 0, -1
            c = record[pos]
            pos += 1
            v |= (c & 0x7F) << (7 * k)
            if c < 0x80:
                return v, pos
        return 0, -1

    while pos < n:
        z, pos = uleb(pos)
        if pos < 0:
            return None
        i += z
        nz, pos = uleb(pos)
        if pos < 0 or nz == 0 or i + nz > len(page) or pos + nz > n:
            return None
        page[i: i + nz] = record[pos: pos + nz]
        pos += nz
        i += nz
    return bytes(page)


# ----------------------------------------------------------------------------------------------
# page streams
# ----------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _is_zero(t8, t64, s, length):
    w = s >> 3
    nw = length >> 3
    acc = np.uint64(0)
    # 8 words per step so the OR-reduction vectorises; exits at the first non-zero block
    j = 0
    while j + 8 <= nw:
        for k in range(8):
            acc |= t64[_U(w + j + k)]
        if acc != 0:
            return False
        j += 8
    while j < nw:
        acc |= t64[_U(w + j)]
        j += 1
    for k in range(s + (nw << 3), s + length):
        acc |= np.uint64(t8[_U(k)])
    return acc == 0


@njit(cache=True, nogil=True, inline="always")
def _first_diff(t8, t64, b8, b64, s, length):
    """Offset of the first byte where the pages differ, or ``length`` if they are equal."""
    w = s >> 3
    nw = length >> 3
    j = 0
    while j + 8 <= nw:  # 64 bytes per step, early exit on the first differing block
        acc = np.uint64(0)
        for k in range(8):
            acc |= t64[_U(w + j + k)] ^ b64[_U(w + j + k)]
        if acc != 0:
            break
        j += 8
    while j < nw:
        x = t64[_U(w + j)] ^ b64[_U(w + j)]
        if x != 0:
            return (j << 3) + np.int64(_ctz(x) >> np.uint64(3))
        j += 1
    for k in range(nw << 3, length):
        if t8[_U(s + k)] != b8[_U(s + k)]:
            return k
    return length


@njit(cache=True, nogil=True)
def _encode_pages(t8, t64, b8, b64, page_size, base_hashes, zero_hash, classes, data, hashes):
    """Classify and encode every page of ``t8`` against ``b8`` (empty array: no baseline).

    Writes ``classes[i]``, ``hashes[i]`` (XXH64 of target page i) and the data section into
    ``data`` (capacity ``len(t8) + npages + 16``). Returns the data length.
    """
    n = t8.size
    nb = b8.size
    zero_hash = np.uint64(zero_hash)
    o = 0
    for i in range(classes.size):
        s = i * page_size
        length = min(page_size, n - s)
        c = RAW
        d = 0
        if s + length <= nb:
            d = _first_diff(t8, t64, b8, b64, s, length)
            if d == length:
                c = SAME
        if c != SAME and _is_zero(t8, t64, s, length):
            c = ZERO
        if c == RAW and s + length <= nb and length > 3:
            r = _xbzrle_encode(t8, t64, b8, b64, s, length, d, data, o + 2, length - 3)
            if r >= 0:
                c = DELTA
                data[_U(o)] = np.uint8(r & 0xFF)
                data[_U(o + 1)] = np.uint8(r >> 8)
                o += 2 + r
        if c == RAW:
            for k in range(length):
                data[_U(o + k)] = t8[_U(s + k)]
            o += length
        classes[_U(i)] = c
        if c == SAME and min(page_size, nb - s) == length:
            hashes[_U(i)] = base_hashes[_U(i)]
        elif c == ZERO and length == page_size:
            hashes[_U(i)] = zero_hash
        else:
            hashes[_U(i)] = _xxh64(t8, t64, s, length, np.uint64(0))
    return o


# _decode_pages modes
DECODE = 0    # out is a fresh buffer: SAME / DELTA pages start from a copy of the baseline page
IN_PLACE = 1  # out *is* the baseline: SAME pages stay, DELTA records are applied where they are


@njit(cache=True, nogil=True)
def _validate_pages(classes, data, n, nb, page_size):
    """Check a page stream without writing anything; ``(error code, page index)``.

    Accepts exactly what :func:`_decode_pages` accepts (the in-place apply runs this first so
    that a malformed stream leaves the image untouched).
    """
    end = data.size
    pos = 0
    for i in range(classes.size):
        c = classes[_U(i)]
        s = i * page_size
        length = min(page_size, n - s)
        if c == ZERO:
            continue
        if c == SAME:
            if s + length > nb:
                return ERR_NO_BASE, i
        elif c == DELTA:
            if s + length > nb:
                return ERR_NO_BASE, i
            if pos + 2 > end:
                return ERR_TRUNC_LEN, i
            rlen = np.int64(data[_U(pos)]) | (np.int64(data[_U(pos + 1)]) << 8)
            pos += 2
            if pos + rlen > end:
                return ERR_TRUNC_REC, i
            if rlen + 2 >= length:
                return ERR_DELTA_SIZE, i
            rend = pos + rlen
            j = 0
            while pos < rend:
                zrun, pos = _get_uleb(data, pos, rend)
                if pos < 0:
                    return ERR_RECORD, i
                j += zrun
                nz, pos = _get_uleb(data, pos, rend)
                if pos < 0 or nz == 0 or j + nz > length or pos + nz > rend:
                    return ERR_RECORD, i
                pos += nz
                j += nz
        elif c == RAW:
            if pos + length > end:
                return ERR_TRUNC_RAW, i
            pos += length
        else:
            return ERR_CLASS, i
    if pos != end:
        return ERR_TRAILING, classes.size
    return ERR_OK, classes.size


@njit(cache=True, nogil=True)
def _decode_pages(classes, data, out, o64, b8, b64, page_size, base_hashes, zero_hash, hashes, mode):
    """Rebuild ``out`` from the page stream; returns ``(error code, page index)``.

    Every page written is hashed into ``hashes`` (SAME pages reuse the baseline's cached page
    hash), so the caller can verify the image checksum without another pass over ``out``.
    ``mode`` is DECODE or IN_PLACE (see above).
    """
    n = out.size
    nb = b8.size
    end = data.size
    zero_hash = np.uint64(zero_hash)
    pos = 0
    for i in range(classes.size):
        c = classes[_U(i)]
        s = i * page_size
        length = min(page_size, n - s)
        w = s >> 3
        nw = length >> 3
        if c == ZERO:
            for k in range(nw):
                o64[_U(w + k)] = np.uint64(0)
            for k in range(s + (nw << 3), s + length):
                out[_U(k)] = np.uint8(0)
        elif c == SAME or c == DELTA:
            if s + length > nb:
                return ERR_NO_BASE, i
            if mode == DECODE:
                for k in range(nw):
                    o64[_U(w + k)] = b64[_U(w + k)]
                for k in range(s + (nw << 3), s + length):
                    out[_U(k)] = b8[_U(k)]
            if c == DELTA:
                if pos + 2 > end:
                    return ERR_TRUNC_LEN, i
                rlen = np.int64(data[_U(pos)]) | (np.int64(data[_U(pos + 1)]) << 8)
                pos += 2
                if pos + rlen > end:
                    return ERR_TRUNC_REC, i
                if rlen + 2 >= length:
                    return ERR_DELTA_SIZE, i
                if not _xbzrle_apply(data, pos, pos + rlen, out, s, length):
                    return ERR_RECORD, i
                pos += rlen
        elif c == RAW:
            if pos + length > end:
                return ERR_TRUNC_RAW, i
            for k in range(length):
                out[_U(s + k)] = data[_U(pos + k)]
            pos += length
        else:
            return ERR_CLASS, i
        if c == SAME and min(page_size, nb - s) == length:
            hashes[_U(i)] = base_hashes[_U(i)]
        elif c == ZERO and length == page_size:
            hashes[_U(i)] = zero_hash
        else:
            hashes[_U(i)] = _xxh64(out, o64, s, length, np.uint64(0))
    if pos != end:
        return ERR_TRAILING, classes.size
    return ERR_OK, classes.size


def _ref_encode_pages(target: bytes, baseline: bytes, page_size: int) -> tuple[bytes, bytes]:
    """(classes, data) of the page stream, written for clarity (reference for the kernel)."""
    n = len(target)
    npages = -(-n // page_size)
    classes = bytearray()
    data = bytearray()
    for i in range(npages):
        s = i * page_size
        page = target[s: s + page_size]
        length = len(page)
        if s + length <= len(baseline):
            old = baseline[s: s + length]
            if page == old:
                classes.append(SAME)
                continue
            if not any(page):
                classes.append(ZERO)
                continue
            rec = _ref_xbzrle_encode(page, old, length - 3) if length > 3 else None
            if rec is not None:
                classes.append(DELTA)
                data += len(rec).to_bytes(2, "little") + rec
            else:
                classes.append(RAW)
                data += page
        elif not any(page):
            classes.append(ZERO)
        else:
            classes.append(RAW)
            data += page
    return bytes(classes), bytes(data)


def _ref_decode_pages(classes: bytes, data: bytes, n: int, baseline: bytes, page_size: int) -> bytes | None:
    """Rebuild the image from a page stream; ``None`` if it is malformed (reference)."""
    out = bytearray()
    pos = 0
    for i, c in enumerate(classes):
        s = i * page_size
        length = min(page_size, n - s)
        if c == ZERO:
            out += bytes(length)
        elif c in (SAME, DELTA):
            if s + length > len(baseline):
                return None
            old = baseline[s: s + length]
            if c == SAME:
                out += old
                continue
            if pos + 2 > len(data):
                return None
            rlen = int.from_bytes(data[pos: pos + 2], "little")
            pos += 2
            if pos + rlen > len(data) or rlen + 2 >= length:
                return None
            page = _ref_xbzrle_decode(data[pos: pos + rlen], old)
            if page is None:
                return None
            out += page
            pos += rlen
        elif c == RAW:
            if pos + length > len(data):
                return None
            out += data[pos: pos + length]
            pos += length
        else:
            return None
    if pos != len(data):
        return None
    return bytes(out)
