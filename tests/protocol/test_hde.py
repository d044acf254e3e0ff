"""Tests of dwcpkit.protocol.hde: kernels vs references, round trips, headers, baselines,
dictionaries, the v3 compatibility codec, and a decoder fuzz (hypothesis)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwcpkit.errors import BaselineMismatchError, DecodeError, ParameterError
from dwcpkit.protocol import _hde_kernels as K
from dwcpkit.protocol import hde

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = (64, 128)  # page sizes that keep the pure-Python references fast


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

@st.composite
def image_pairs(draw, max_pages: int = 12):
    """(target, baseline, page_size): a baseline, and a target made of sparse writes to it,
    zeroed and rewritten pages, with lengths that need not be page or word multiples."""
    ps = draw(st.sampled_from(SMALL))
    nb = draw(st.integers(0, max_pages * ps))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    alphabet = draw(st.sampled_from([2, 4, 256]))
    base = rng.integers(0, alphabet, nb, dtype=np.uint8)
    if draw(st.booleans()):
        base[: nb // 2] = 0
    n = draw(st.one_of(st.just(nb), st.integers(0, max_pages * ps)))
    tgt = np.zeros(n, np.uint8)
    m = min(n, nb)
    tgt[:m] = base[:m]
    tgt[m:] = rng.integers(0, alphabet, n - m, dtype=np.uint8)
    for _ in range(draw(st.integers(0, 12))):
        if n == 0:
            break
        p = int(rng.integers(0, n))
        ln = int(rng.integers(1, 2 * ps))
        kind = int(rng.integers(0, 3))
        seg = tgt[p: p + ln]
        seg[:] = 0 if kind == 0 else rng.integers(0, alphabet if kind == 1 else 256, seg.size)
    return tgt.tobytes(), base.tobytes(), ps


def body_of(payload: bytes) -> tuple[bytes, bytes]:
    """(classes, data) of an uncompressed payload."""
    h = hde.read_header(payload)
    body = payload[hde.HEADER_SIZE:]
    npages = -(-h.target_len // h.page_size)
    return body[:npages], body[npages:]


def make_payload(classes: bytes, data: bytes, n: int, ps: int, baseline: hde.Baseline | None, checksum: int) -> bytes:
    body = bytes(classes) + bytes(data)
    h = hde.Header(
        kind=hde.DeltaKind.PAGES if baseline is not None else hde.DeltaKind.FULL, container="none",
        page_size=ps, target_len=n, baseline_id=baseline.id if baseline else 0,
        baseline_len=baseline.nbytes if baseline else 0, checksum=checksum, body_len=len(body),
        payload_len=len(body),
    )
    return h.pack() + body


def ref_tree_hash(data: bytes, ps: int) -> int:
    hashes = b"".join(K._ref_xxh64(data[i: i + ps]).to_bytes(8, "little") for i in range(0, len(data), ps))
    return K._ref_xxh64(hashes, seed=len(data))


def recrc(payload: bytes) -> bytes:
    """Recompute the header CRC so that a mutation reaches the checks behind it."""
    head = payload[:60]
    return head + struct.pack("<I", zlib.crc32(head)) + payload[64:]


# ------------------------------------------------------------------------------------------------
# hashes
# ------------------------------------------------------------------------------------------------

def test_xxh64_known_vectors():
    assert hde.xxh64(b"") == 0xEF46DB3751D8E999
    assert hde.xxh64(b"abc") == 0x44BC2CF5AD770999
    assert K._ref_xxh64(b"") == 0xEF46DB3751D8E999


@FUZZ
@given(st.binary(max_size=300), st.integers(0, 2**64 - 1))
def test_xxh64_kernel_matches_reference(data, seed):
    assert hde.xxh64(data, seed) == K._ref_xxh64(data, seed)


@FUZZ
@given(st.binary(max_size=700), st.sampled_from(SMALL))
def test_tree_hash_matches_reference_and_baseline_id(data, ps):
    assert hde.tree_hash(data, ps) == ref_tree_hash(data, ps)
    assert hde.Baseline(data, page_size=ps).id == ref_tree_hash(data, ps)


def test_unaligned_and_non_uint8_inputs_hash_like_their_bytes():
    raw = bytes(range(256)) * 40
    mv = memoryview(b"\x00" + raw)[1:]  # odd address
    assert hde.tree_hash(mv) == hde.tree_hash(raw)
    words = np.frombuffer(raw, dtype=np.uint32)
    assert hde.tree_hash(words) == hde.tree_hash(raw)


# ------------------------------------------------------------------------------------------------
# XBZRLE records
# ------------------------------------------------------------------------------------------------

def test_xbzrle_reference_format_examples():
    old = bytes(300)
    new = bytearray(old)
    new[5:8] = b"abc"
    new[208] = 1
    rec = K._ref_xbzrle_encode(bytes(new), old, 300)
    # zrun 5, nzrun 3 'abc', zrun 200 (ULEB128 0xC8 0x01), nzrun 1 0x01; trailing zero run omitted
    assert rec == bytes([5, 3]) + b"abc" + bytes([0xC8, 0x01, 1, 1])
    assert K._ref_xbzrle_decode(rec, old) == bytes(new)
    assert K._ref_xbzrle_encode(old, old, 300) == b""
    assert K._ref_xbzrle_encode(bytes([1] * 300), old, 299) is None  # overflow -> raw
    assert K._ref_xbzrle_decode(bytes([0, 0]), old) is None  # empty non-zero run
    assert K._ref_xbzrle_decode(bytes([0, 5]) + b"ab", old) is None  # run past the record


@FUZZ
@given(image_pairs())
def test_encode_kernel_matches_reference_stream(pair):
    tgt, base, ps = pair
    payload = hde.encode(tgt, base, page_size=ps)
    assert body_of(payload) == K._ref_encode_pages(tgt, base, ps)
    h = hde.read_header(payload)
    assert h.checksum == ref_tree_hash(tgt, ps)
    assert h.baseline_id == ref_tree_hash(base, ps) and h.baseline_len == len(base)


@FUZZ
@given(image_pairs(max_pages=6), st.data())
def test_decode_kernel_accepts_exactly_what_the_reference_accepts(pair, data):
    """Random page streams: the kernel decodes what the reference decodes, to the same bytes,
    and raises DecodeError on everything the reference rejects."""
    tgt, base, ps = pair
    n = len(tgt)
    npages = -(-n // ps)
    classes = bytes(data.draw(st.lists(st.integers(0, 4), min_size=npages, max_size=npages)))
    classes_valid, stream = K._ref_encode_pages(tgt, base, ps)
    mode = data.draw(st.sampled_from(["random", "mutated"]))
    if mode == "random":
        body = data.draw(st.binary(max_size=4 * ps))
    else:
        classes = classes_valid
        body = bytearray(stream)
        for _ in range(data.draw(st.integers(1, 4))):
            if body:
                i = data.draw(st.integers(0, len(body) - 1))
                body[i] = data.draw(st.integers(0, 255))
        body = bytes(body)
    expected = K._ref_decode_pages(classes, body, n, base, ps)
    b = hde.Baseline(base, page_size=ps)
    checksum = ref_tree_hash(expected, ps) if expected is not None else 0
    payload = make_payload(classes, body, n, ps, b, checksum)
    if expected is None:
        with pytest.raises(DecodeError):
            hde.decode(payload, b)
    else:
        assert hde.decode(payload, b).tobytes() == expected
    if n == len(base):  # the in-place path validates first, with its own kernel
        live = hde.LiveImage(base, page_size=ps)
        if expected is None:
            with pytest.raises(DecodeError):  # header check or "nothing was applied"
                live.apply(payload)
            assert live.data.tobytes() == base
        else:
            live.apply(payload)
            assert live.data.tobytes() == expected


# ------------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------------

@FUZZ
@given(image_pairs(), st.sampled_from(["none", "lz4", "zstd"]), st.booleans())
def test_round_trip_every_container(pair, container, with_baseline):
    tgt, base, ps = pair
    b = hde.Baseline(base, page_size=ps) if with_baseline else None
    payload = hde.encode(tgt, b, page_size=ps, container=container)
    h = hde.read_header(payload)
    assert h.kind == (hde.DeltaKind.PAGES if with_baseline else hde.DeltaKind.FULL)
    assert h.container == container and h.target_len == len(tgt)
    assert hde.decode(payload, b).tobytes() == tgt
    if with_baseline:  # raw bytes as baseline work too (hashed on the call)
        assert hde.decode(payload, base).tobytes() == tgt


def test_page_classes_and_overflow_to_raw():
    rng = np.random.default_rng(3)
    old = rng.integers(0, 256, 5 * 4096, dtype=np.uint8)
    new = old.copy()
    new[4096:8192] = 0                                        # zeroed page
    new[8192 + 10: 8192 + 20] ^= 0xFF                         # sparse write
    new[12288:16384] = rng.integers(0, 256, 4096)             # rewritten page
    payload = hde.encode(new, old)
    assert hde.page_classes(payload).tolist() == [1, 0, 2, 3, 1]
    assert hde.decode(payload, old).tobytes() == new.tobytes()
    # a delta that would not be smaller than the page goes raw: every other byte changed
    newer = old.copy()
    newer[::2] ^= 1
    assert hde.page_classes(hde.encode(newer, old)).tolist() == [3] * 5


def test_unchanged_and_empty_images():
    img = np.arange(3 * 4096 + 5, dtype=np.uint64).astype(np.uint8)
    p = hde.encode(img, img)
    assert set(hde.page_classes(p).tolist()) == {1}
    assert len(p) == hde.HEADER_SIZE + 4  # four class bytes, no data
    assert hde.decode(hde.encode(b""), None).size == 0
    assert hde.decode(hde.encode(b"", b"abc"), b"abc").size == 0


def test_decode_into_out_buffer_and_its_checks():
    old = np.zeros(8 * 4096, np.uint8)
    new = old.copy()
    new[100] = 1
    p = hde.encode(new, old)
    out = np.full(new.size, 7, np.uint8)
    assert hde.decode(p, old, out=out) is out and np.array_equal(out, new)
    with pytest.raises(ParameterError, match="bytes"):
        hde.decode(p, old, out=np.zeros(10, np.uint8))
    with pytest.raises(ParameterError, match="overlap"):
        hde.decode(p, old, out=old)
    with pytest.raises(ParameterError, match="uint8"):
        hde.decode(p, old, out=np.zeros(new.size, np.int16))


def test_live_image_applies_a_chain_of_deltas_in_place():
    rng = np.random.default_rng(11)
    cur = rng.integers(0, 256, 10 * 4096 + 100, dtype=np.uint8)
    live = hde.LiveImage(cur)
    for step in range(4):
        nxt = cur.copy()
        nxt[rng.integers(0, nxt.size, 30)] ^= 0x33
        nxt[4096 * step: 4096 * step + 4096] = 0
        live.apply(hde.encode(nxt, hde.Baseline(cur), container="lz4"))
        assert np.array_equal(live.data, nxt) and live.id == hde.tree_hash(nxt)
        cur = nxt
    full = rng.integers(0, 256, cur.size, dtype=np.uint8)
    live.apply(hde.encode(full))  # a FULL image of the same length applies too
    assert np.array_equal(live.data, full)
    assert live.snapshot().id == live.id


def test_live_image_refuses_before_writing_and_poisons_on_checksum_failure():
    rng = np.random.default_rng(12)
    old = rng.integers(0, 256, 6 * 4096, dtype=np.uint8)
    new = old.copy()
    new[[10, 5000, 9000]] ^= 1
    live = hde.LiveImage(old)
    stale = hde.encode(new, hde.Baseline(new))  # delta against another image
    with pytest.raises(BaselineMismatchError, match="nothing was applied"):
        live.apply(stale)
    p = hde.encode(new, old)
    broken = bytearray(p)
    broken[hde.HEADER_SIZE + 6] = 0xFF  # the first delta's length field: structure error
    with pytest.raises(DecodeError, match="nothing was applied"):
        live.apply(bytes(broken))
    assert np.array_equal(live.data, old) and live.id == hde.tree_hash(old)
    with pytest.raises(ParameterError, match="resize"):
        live.apply(hde.encode(new[:-1]))
    same_class = make_payload(bytes([1] * 6), b"", old.size, 4096, None, hde.tree_hash(old))
    with pytest.raises(DecodeError, match="outside the baseline"):
        live.apply(same_class)  # a FULL payload may not refer to the image
    literal = bytearray(p)
    literal[-1] ^= 0xFF  # a literal byte: only the checksum can tell
    with pytest.raises(DecodeError, match="unusable"):
        live.apply(bytes(literal))
    with pytest.raises(DecodeError, match="reset"):
        live.apply(p)
    live.reset(old)
    live.apply(p)
    assert np.array_equal(live.data, new)


def test_parameter_errors():
    with pytest.raises(ParameterError, match="power of two"):
        hde.encode(b"abc", page_size=1000)
    with pytest.raises(ParameterError, match="container"):
        hde.encode(b"abc", container="gzip")
    with pytest.raises(ParameterError, match="zstd level"):
        hde.encode(b"abc", container="zstd", level=99)
    with pytest.raises(ParameterError, match="lz4 level"):
        hde.encode(b"abc", container="lz4", level=-1)
    with pytest.raises(ParameterError, match="page_size"):
        hde.encode(b"abc", hde.Baseline(b"abc", page_size=64), page_size=128)
    with pytest.raises(ParameterError, match="bytes-like"):
        hde.encode(12345)
    with pytest.raises(ParameterError, match="only used by the 'zstd'"):
        hde.encode(b"abc", container="lz4", dictionary=b"\x37\xa4\x30\xec" + bytes(100))


# ------------------------------------------------------------------------------------------------
# header and bad input
# ------------------------------------------------------------------------------------------------

def test_header_layout():
    b = hde.Baseline(bytes(100))
    p = hde.encode(bytes(200), b, container="none")
    assert p[:4] == b"DWHD" and p[4] == 1 and p[5] == 1 and p[6] == 0 and p[7] == 12
    assert int.from_bytes(p[8:16], "little") == 200
    assert int.from_bytes(p[16:24], "little") == b.id
    assert int.from_bytes(p[24:32], "little") == 100
    assert int.from_bytes(p[32:40], "little") == hde.tree_hash(bytes(200))
    assert int.from_bytes(p[60:64], "little") == zlib.crc32(p[:60])
    h = hde.read_header(p)
    assert h.pack() == p[:64]


@pytest.mark.parametrize("mutate, match", [
    (lambda p: p[:10], "too short"),
    (lambda p: b"XXXX" + p[4:], "magic"),
    (lambda p: p[:20] + bytes([p[20] ^ 1]) + p[21:], "CRC"),
    (lambda p: recrc(p[:4] + b"\x02" + p[5:]), "version"),
    (lambda p: recrc(p[:5] + b"\x07" + p[6:]), "kind"),
    (lambda p: recrc(p[:6] + b"\x09" + p[7:]), "container"),
    (lambda p: recrc(p[:7] + b"\x03" + p[8:]), "page size"),
    (lambda p: p + b"\x00", "length mismatch"),
    (lambda p: p[:-1], "length mismatch"),
])
def test_malformed_headers_are_refused(mutate, match):
    p = hde.encode(b"hello world" * 500, container="lz4")
    with pytest.raises(DecodeError, match=match):
        hde.decode(mutate(p))


def test_body_corruption_is_caught_by_checksum_or_structure():
    rng = np.random.default_rng(5)
    old = rng.integers(0, 256, 16 * 4096, dtype=np.uint8)
    new = old.copy()
    new[::4096] += 1
    for container in ("none", "lz4", "zstd"):
        p = bytearray(hde.encode(new, old, container=container))
        p[-3] ^= 0x10  # a literal byte of the last delta (none), or compressed data
        with pytest.raises(DecodeError):
            hde.decode(bytes(p), old)
    # flipping a literal byte keeps the structure valid: only the checksum can see it
    p = bytearray(hde.encode(new, old))
    p[-1] ^= 0xFF
    with pytest.raises(DecodeError, match="checksum mismatch"):
        hde.decode(bytes(p), old)


def test_wrong_or_missing_baseline():
    rng = np.random.default_rng(6)
    old = rng.integers(0, 256, 4 * 4096, dtype=np.uint8)
    new = old.copy()
    new[10] ^= 1
    p = hde.encode(new, old)
    with pytest.raises(BaselineMismatchError, match="pass that baseline"):
        hde.decode(p)
    other = old.copy()
    other[5000] ^= 1
    with pytest.raises(BaselineMismatchError, match="0x"):
        hde.decode(p, other)
    with pytest.raises(BaselineMismatchError):
        hde.decode(p, old[:-1])
    assert issubclass(BaselineMismatchError, DecodeError)


def test_decode_against_a_baseline_hashed_with_another_page_size():
    old = np.arange(10_000, dtype=np.uint16).view(np.uint8)
    new = old.copy()
    new[3] = 0
    p = hde.encode(new, hde.Baseline(old, page_size=256), page_size=256)
    assert np.array_equal(hde.decode(p, hde.Baseline(old)), new)  # rehashed for 256-byte pages


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_raise_decode_error(blob):
    with pytest.raises(DecodeError):
        hde.decode(blob, b"")
    with pytest.raises(DecodeError):
        hde.decode(b"DWHD\x01" + blob, b"")


_FUZZ_OLD = np.random.default_rng(9).integers(0, 256, 6 * 256, dtype=np.uint8)
_FUZZ_NEW = _FUZZ_OLD.copy()
_FUZZ_NEW[[5, 300, 301, 302, 900]] ^= 0x5A
_FUZZ_NEW[512:768] = 0
_FUZZ_NEW[1024:1280] = np.arange(256)
_FUZZ_BASE = hde.Baseline(_FUZZ_OLD, page_size=256)
_FUZZ_PAYLOADS = {c: hde.encode(_FUZZ_NEW, _FUZZ_BASE, page_size=256, container=c) for c in ("none", "lz4", "zstd")}


@FUZZ
@given(st.sampled_from(sorted(_FUZZ_PAYLOADS)), st.data())
def test_fuzz_mutated_payloads_give_typed_error_or_exact_bytes(container, data):
    p = bytearray(_FUZZ_PAYLOADS[container])
    op = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
    i = data.draw(st.integers(0, len(p) - 1))
    if op == "flip":
        p[i] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "set":
        p[i] = data.draw(st.integers(0, 255))
    elif op == "truncate":
        del p[i:]
    elif op == "insert":
        p[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        del p[i: i + data.draw(st.integers(1, 8))]
    variants = [bytes(p)]
    if len(p) >= 64:
        variants.append(recrc(bytes(p)))  # reach the checks behind the header CRC
    for blob in variants:
        try:
            out = hde.decode(blob, _FUZZ_BASE)
        except DecodeError:
            continue
        assert out.tobytes() == _FUZZ_NEW.tobytes()


# ------------------------------------------------------------------------------------------------
# dictionaries
# ------------------------------------------------------------------------------------------------

def _small_pages(count: int, seed: int) -> list[bytes]:
    """Small, similar 512-byte pages: one record layout, different field values."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        fields = [f"vm-{rng.integers(0, 999):03d}", f"{rng.integers(0, 1 << 20)}", "running" if i % 3 else "paused"]
        rec = (
            '{"id": "%s", "state": "%s", "memory_mb": %s, "vcpus": 4, "host": "node-%02d.dc1", '
            '"labels": {"tier": "gold", "owner": "sre"}, "dirty_rate_pps": %s}'
            % (fields[0], fields[2], fields[1], i % 17, fields[1][:3])
        ).encode()
        out.append((rec * 4)[:512])
    return out


def test_trained_dictionary_improves_ratio_on_small_similar_pages():
    train, held_out = _small_pages(300, 1), _small_pages(60, 2)
    d = hde.train_dictionary(train, dict_size=4096)
    assert d.dict_id() != 0
    with_dict = [hde.encode(p, container="zstd", level=3, dictionary=d) for p in held_out]
    without = [hde.encode(p, container="zstd", level=3) for p in held_out]
    assert sum(map(len, with_dict)) < 0.8 * sum(map(len, without))
    assert hde.read_header(with_dict[0]).dict_id == d.dict_id()
    assert all(hde.decode(q, dictionary=d).tobytes() == p for q, p in zip(with_dict, held_out))
    assert hde.decode(with_dict[0], dictionary=d.as_bytes()).tobytes() == held_out[0]
    with pytest.raises(DecodeError, match="dictionary id"):
        hde.decode(with_dict[0])
    other = hde.train_dictionary(_small_pages(300, 7), dict_size=2048)
    assert other.dict_id() != d.dict_id()
    with pytest.raises(DecodeError, match="dictionary"):
        hde.decode(with_dict[0], dictionary=other)


def test_train_dictionary_refuses_too_little_data():
    with pytest.raises(ParameterError, match="at least 10 samples"):
        hde.train_dictionary([b"abcdefgh"] * 3)
    with pytest.raises(ParameterError, match="dict_size"):
        hde.train_dictionary([b"abcdefgh"] * 30, dict_size=10)


# ------------------------------------------------------------------------------------------------
# baseline store
# ------------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _pair(**kw):
    clock = FakeClock()
    return clock, hde.BaselineStore(clock=clock, **kw), hde.BaselineStore(clock=clock, **kw)


def test_store_refresh_after_ten_deltas_and_receiver_mirrors():
    clock, tx, rx = _pair()
    img = np.zeros(32 * 4096, np.uint8)
    kinds = []
    for step in range(23):
        img[step * 4096 + 7] = step + 1
        p = tx.encode("vm-1_state", img)
        kinds.append(hde.read_header(p).kind.name)
        assert np.array_equal(rx.decode("vm-1_state", p), img)
        clock.t += 1
    assert kinds == ["FULL"] + ["PAGES"] * 10 + ["FULL"] + ["PAGES"] * 10 + ["FULL"]
    assert tx.stats["refresh_chain"] == 2 and tx.stats["delta"] == 20 and rx.stats["delta"] == 20
    # chain deltas are taken against the chain head, as in the original
    assert tx.get("vm-1_state").id == rx.get("vm-1_state").id


def test_store_refresh_after_interval_and_prune_after_max_age():
    clock, tx, rx = _pair()
    img = np.ones(4 * 4096, np.uint8)
    rx.decode("a", tx.encode("a", img))
    clock.t += 299.0
    assert hde.read_header(tx.encode("a", img)).kind == hde.DeltaKind.PAGES
    clock.t += 1.0
    assert hde.read_header(tx.encode("a", img)).kind == hde.DeltaKind.FULL
    assert tx.stats["refresh_age"] == 1
    clock.t += 900.5
    assert tx.prune() == ["a"] and "a" not in tx and len(tx) == 0
    assert rx.prune() == ["a"]


def test_store_receiver_without_baseline_refuses_delta():
    clock, tx, rx = _pair()
    img = np.ones(4 * 4096, np.uint8)
    tx.encode("k", img)  # the receiver never saw the full image
    p = tx.encode("k", img)
    with pytest.raises(BaselineMismatchError, match="no baseline"):
        rx.decode("k", p)
    # a receiver whose baseline is a different image refuses too, with the identities
    rx.decode("k", hde.encode(np.zeros(4 * 4096, np.uint8), container="zstd", level=3))
    with pytest.raises(BaselineMismatchError, match="baseline given"):
        rx.decode("k", p)


def test_store_small_images_bypass_and_memory_bounds():
    clock, tx, _ = _pair(max_baselines=2, max_bytes=3 * 4096)
    assert hde.read_header(tx.encode("tiny", b"x" * 100)).kind == hde.DeltaKind.FULL
    assert "tiny" not in tx and tx.stats["small"] == 1
    for key in ("a", "b", "c"):
        tx.encode(key, np.ones(4096, np.uint8))
        clock.t += 1
    assert len(tx) == 2 and "a" not in tx and tx.stats["evicted"] == 1
    tx.encode("big", np.ones(4 * 4096, np.uint8))
    assert "big" not in tx and tx.stats["not_stored"] == 1
    assert tx.nbytes <= 3 * 4096


def test_store_parameter_validation():
    with pytest.raises(ParameterError, match="refresh_interval"):
        hde.BaselineStore(refresh_interval=0)
    with pytest.raises(ParameterError, match="max_deltas"):
        hde.BaselineStore(max_deltas=-1)
    with pytest.raises(ParameterError, match="container"):
        hde.BaselineStore(container="brotli")


# ------------------------------------------------------------------------------------------------
# original v3 header
# ------------------------------------------------------------------------------------------------

def test_v3_header_bytes_are_the_originals():
    h = hde.V3Header(is_delta=True, algorithm=3, mode=2, original_size=0x01020304, compressed_size=9)
    assert h.pack() == bytes([3, 1, 3, 2, 1, 2, 3, 4, 0, 0, 0, 9])


@FUZZ
@given(st.booleans(), st.integers(0, 4), st.integers(0, 2), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_v3_header_round_trip(is_delta, alg, mode, orig, comp):
    h = hde.V3Header(is_delta, alg, mode, orig, comp)
    assert hde.V3Header.unpack(h.pack()) == h


@pytest.mark.parametrize("alg, alg_id", [("none", 0), ("lz4", 1), ("zstd", 2), ("zstd-max", 3)])
def test_v3_codec_round_trip(alg, alg_id):
    data = b"dwcp v3 payload " * 300
    blob = hde.encode_v3(data, alg, "internet")
    h = hde.V3Header.unpack(blob)
    assert h.algorithm == alg_id and h.mode == 1
    assert h.original_size == len(data) and h.compressed_size == len(blob) - 12
    assert hde.decode_v3(blob) == data


def test_v3_codec_refusals():
    blob = hde.encode_v3(b"abc" * 100, "zstd")
    with pytest.raises(DecodeError, match="version"):
        hde.decode_v3(b"\x02" + blob[1:])
    with pytest.raises(DecodeError, match="baseline reference"):
        hde.decode_v3(blob[:1] + b"\x01" + blob[2:])
    with pytest.raises(DecodeError, match="body bytes"):
        hde.decode_v3(blob[:-1])
    with pytest.raises(DecodeError, match="12 bytes"):
        hde.decode_v3(blob[:5])
    with pytest.raises(DecodeError, match="corrupted"):
        hde.decode_v3(blob[:12] + bytes(len(blob) - 12))
    # id 4 (brotli) was written as zstd by the original: decode it as zstd
    assert hde.decode_v3(blob[:2] + b"\x04" + blob[3:]) == b"abc" * 100
    with pytest.raises(ParameterError, match="brotli"):
        hde.encode_v3(b"abc", "brotli")
    with pytest.raises(ParameterError, match="network mode"):
        hde.encode_v3(b"abc", "zstd", "moon")


# ------------------------------------------------------------------------------------------------
# benchmark table shape
# ------------------------------------------------------------------------------------------------

def test_bench_quick_table_shape():
    from dwcpkit.bench import hde as bench

    rows = bench.run(quick=True, npages=128, repeat=1)
    names = [r["name"] for r in rows]
    assert names[0] == "numpy memcpy, image"
    assert {"HDE encode, sparse dirty set", "HDE decode, sparse dirty set", "zstd-1 compress, image",
            "lz4 frame compress, image", "HDE encode, full image scan (10 % dirty)"} <= set(names)
    assert names[-2].startswith("JIT first calls") and names[-1].startswith("machine load")
    timed = [r for r in rows if "gb_s" in r]
    assert all(r["gb_s"] > 0 and r["x_memcpy"] > 0 for r in timed)
    table = bench.format_table(rows)
    assert "x memcpy" in table and len(table.splitlines()) == len(rows) + 1
