"""AMST frame codecs (round trips, corruption, truncation) and loopback multi-stream transfers."""

from __future__ import annotations

import math
import socket
import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DecodeError, ParameterError, TransferError
from dwcpkit.protocol import amst
from dwcpkit.protocol.amst import (
    FLAG_PAYLOAD_CRC,
    HEADER_SIZE,
    AmstConfig,
    Frame,
    FrameKind,
    Receiver,
    decode_frame,
    decode_header,
    decode_v1_frame,
    decode_v1_frames,
    decode_v3_frame,
    decode_v3_frames,
    encode_frame,
    encode_header,
    encode_v1_frame,
    encode_v3_frame,
    loopback_transfer,
    send,
)

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
PAYLOAD = st.binary(max_size=600)
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- CRC-32C kernels


def _table_crc(data: bytes, crc: int = 0) -> int:
    arr = np.frombuffer(data, dtype=np.uint8)
    return int(amst._crc32c_table_kernel(arr, np.uint32(crc), amst._CRC32C_T))


def test_crc32c_check_value_and_known_vectors():
    assert amst.crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert amst._crc32c_reference(b"123456789") == 0xE3069283
    assert _table_crc(b"123456789") == 0xE3069283
    assert amst.crc32c(b"") == 0
    assert amst.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
    assert amst.crc32c(b"\xff" * 32) == 0x62A8AB43  # RFC 3720 B.4: 32 bytes of ones


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 767, 768, 769, 6143, 6144, 6145, 100_003])
def test_crc32c_kernels_match_the_reference_at_lane_boundaries(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    ref = amst._crc32c_reference(data)
    assert amst.crc32c(data) == ref
    assert _table_crc(data) == ref
    view = memoryview(bytearray(b"\0" + data))[1:]  # unaligned, writable
    assert amst.crc32c(view) == ref


@FAST
@given(st.binary(max_size=3000), st.data())
def test_crc32c_continues_across_splits(data, draw):
    cut = draw.draw(st.integers(0, len(data)))
    whole = amst._crc32c_reference(data)
    assert amst.crc32c(data[cut:], amst.crc32c(data[:cut])) == whole
    assert _table_crc(data[cut:], _table_crc(data[:cut])) == whole


# --------------------------------------------------------------------------- v3 codec


@FAST
@given(U32, PAYLOAD)
def test_v3_round_trip(chunk_id, payload):
    buf = encode_v3_frame(chunk_id, payload)
    assert len(buf) == amst.V3_HEADER_SIZE + len(payload)
    assert buf[:8] == struct.pack(">II", chunk_id, len(payload))  # the original's exact layout
    assert decode_v3_frame(buf) == amst.V3Frame(chunk_id, payload)


@FAST
@given(st.lists(st.tuples(U32, PAYLOAD), max_size=6))
def test_v3_stream_round_trip(frames):
    buf = b"".join(encode_v3_frame(c, p) for c, p in frames)
    assert [(f.chunk_id, f.payload) for f in decode_v3_frames(buf)] == frames


@FAST
@given(U32, st.binary(min_size=1, max_size=200), st.data())
def test_v3_truncation_is_a_decode_error(chunk_id, payload, data):
    buf = encode_v3_frame(chunk_id, payload)
    cut = data.draw(st.integers(0, len(buf) - 1))
    with pytest.raises(DecodeError):
        decode_v3_frame(buf[:cut])


def test_v3_cannot_detect_payload_corruption():
    """The original format has no checksum: a flipped byte decodes silently (why dwcpkit's frame exists)."""
    buf = bytearray(encode_v3_frame(0, b"memory page"))
    buf[-1] ^= 0xFF
    assert decode_v3_frame(bytes(buf)).payload != b"memory page"


def test_v3_trailing_bytes_rejected_by_single_decode():
    with pytest.raises(DecodeError, match="exactly one"):
        decode_v3_frame(encode_v3_frame(1, b"a") + encode_v3_frame(2, b"b"))


# --------------------------------------------------------------------------- v1 codec


@st.composite
def v1_frames(draw):
    payload = draw(PAYLOAD)
    total = draw(st.integers(len(payload), 2**32 - 1))
    offset = draw(st.integers(0, total - len(payload)))
    return draw(U32), offset, payload, total


@FAST
@given(v1_frames())
def test_v1_round_trip(frame):
    chunk_id, offset, payload, total = frame
    buf = encode_v1_frame(chunk_id, offset, payload, total)
    assert buf[:16] == struct.pack(">IIII", chunk_id, offset, len(payload), total)
    assert decode_v1_frame(buf) == amst.V1Frame(chunk_id, offset, total, payload)


@FAST
@given(st.lists(v1_frames(), max_size=5))
def test_v1_stream_round_trip(frames):
    buf = b"".join(encode_v1_frame(*f) for f in frames)
    assert [(f.chunk_id, f.offset, f.payload, f.total_size) for f in decode_v1_frames(buf)] == frames


@FAST
@given(v1_frames(), st.data())
def test_v1_truncation_is_a_decode_error(frame, data):
    buf = encode_v1_frame(*frame)
    cut = data.draw(st.integers(0, len(buf) - 1))
    with pytest.raises(DecodeError):
        decode_v1_frame(buf[:cut])


def test_v1_frame_outside_its_total_is_a_decode_error():
    bad = struct.pack(">IIII", 0, 10, 4, 12) + b"abcd"
    with pytest.raises(DecodeError, match="exceeds total_size"):
        decode_v1_frame(bad)
    with pytest.raises(ParameterError):
        encode_v1_frame(0, 10, b"abcd", 12)


# --------------------------------------------------------------------------- dwcpkit frame

frames_st = st.builds(
    Frame,
    kind=st.sampled_from(list(FrameKind)),
    transfer_id=U64,
    stream_id=st.integers(0, 0xFFFF),
    offset=U64,
    payload=PAYLOAD,
    checksum=st.booleans(),
)


@FAST
@given(frames_st)
def test_frame_round_trip(frame):
    buf = encode_frame(frame)
    assert len(buf) == HEADER_SIZE + len(frame.payload)
    assert buf[:4] == amst.MAGIC and buf[4] == amst.VERSION
    assert decode_frame(buf) == frame
    h = decode_header(buf)
    assert (h.kind, h.transfer_id, h.stream_id, h.offset, h.length) == (
        frame.kind, frame.transfer_id, frame.stream_id, frame.offset, len(frame.payload))
    assert bool(h.flags & FLAG_PAYLOAD_CRC) == frame.checksum


@FAST
@given(frames_st.filter(lambda f: f.checksum), st.data())
def test_any_corrupted_byte_is_detected(frame, data):
    buf = bytearray(encode_frame(frame))
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError):
        decode_frame(bytes(buf))


@FAST
@given(frames_st, st.data())
def test_truncated_or_padded_frame_is_a_decode_error(frame, data):
    buf = encode_frame(frame)
    cut = data.draw(st.integers(0, len(buf) - 1))
    with pytest.raises(DecodeError, match="truncated"):
        decode_frame(buf[:cut])
    with pytest.raises(DecodeError, match="unexpected bytes"):
        decode_frame(buf + b"\0")


@FAST
@given(st.binary(max_size=120))
def test_random_bytes_never_crash_the_decoder(buf):
    try:
        decode_frame(buf)
    except DecodeError:
        pass


def test_header_errors_name_the_problem():
    good = encode_header(FrameKind.DATA, 1, 0, 0, 100, payload_crc=5)
    with pytest.raises(DecodeError, match="magic"):
        decode_header(b"XXXX" + good[4:])
    with pytest.raises(DecodeError, match="header checksum"):
        decode_header(good[:8] + bytes([good[8] ^ 1]) + good[9:])
    with pytest.raises(DecodeError, match="more than the 50 allowed"):
        decode_header(good, max_payload=50)
    # a well-checksummed header of an unknown version
    head = bytearray(good[:36])
    head[4] = 9
    with pytest.raises(DecodeError, match="version 9"):
        decode_header(bytes(head) + struct.pack(">I", amst.crc32c(head)))


def test_encode_rejects_out_of_range_fields():
    with pytest.raises(ParameterError):
        encode_header(FrameKind.DATA, 2**64, 0, 0, 0)
    with pytest.raises(ParameterError):
        encode_header(FrameKind.DATA, 1, 70000, 0, 0)
    with pytest.raises(ParameterError):
        encode_header(99, 1, 0, 0, 0)
    with pytest.raises(ParameterError):
        encode_v3_frame(-1, b"")


# --------------------------------------------------------------------------- transfers

QUICK = AmstConfig(timeout_s=0.5, deadline_s=5.0)


def _payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_64_mib_over_8_streams_is_byte_exact():
    payload = _payload(64 * 1024 * 1024)
    r = loopback_transfer(payload, streams=8)
    assert bytes(r.received.data) == payload
    assert r.sent.transfer_id == r.received.transfer_id
    assert r.sent.streams == r.received.streams == 8
    assert sum(s.bytes for s in r.sent.stream_stats) == len(payload)
    assert sum(s.frames for s in r.received.stream_stats) == len(payload) // amst.DEFAULT_CHUNK_BYTES
    assert all(s.rtt_s > 0 for s in r.sent.stream_stats)
    assert r.sent.throughput_bps > 0


@pytest.mark.parametrize(
    ("size", "streams", "chunk"),
    [(0, 4, 16384), (1, 4, 16384), (3 * 16384 + 5, 3, 16384), (100_000, 16, 16384), (1 << 20, 1, 512 * 1024)],
)
def test_odd_sizes_and_more_streams_than_chunks(size, streams, chunk):
    payload = _payload(size, seed=size)
    r = loopback_transfer(payload, streams=streams, chunk_bytes=chunk, config=QUICK)
    assert bytes(r.received.data) == payload
    assert len(r.received.stream_stats) == streams


def test_numpy_payload_and_no_checksum():
    arr = np.arange(50_000, dtype=np.float64)
    cfg = AmstConfig(checksum=False, timeout_s=2.0, deadline_s=10.0)
    r = loopback_transfer(arr, streams=4, chunk_bytes=16384, config=cfg)
    assert np.array_equal(np.frombuffer(r.received.data, dtype=np.float64), arr)


def test_concurrent_transfers_do_not_mix():
    """The original's chunk ids collided across transfers; transfer ids keep them apart."""
    payloads = [_payload(300_000, seed=s) for s in range(3)]
    with Receiver(config=AmstConfig(timeout_s=2.0, deadline_s=10.0)) as rx:
        errors: list[BaseException] = []
        ids: list[int] = []

        def go(p: bytes) -> None:
            try:
                ids.append(send(rx.address, p, streams=3, chunk_bytes=16384).transfer_id)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(p,)) for p in payloads]
        for t in threads:
            t.start()
        got = {}
        for _ in payloads:
            r = rx.receive(timeout_s=10)
            got[r.transfer_id] = bytes(r.data)
        for t in threads:
            t.join(5)
    assert not errors
    assert sorted(got.values()) == sorted(payloads)
    assert set(got) == set(ids)


def test_reused_transfer_id_is_refused():
    with Receiver(config=QUICK) as rx:
        t = threading.Thread(target=lambda: rx.receive(timeout_s=5))
        t.start()
        send(rx.address, b"first", transfer_id=42, streams=1, chunk_bytes=16384, config=QUICK)
        t.join(5)
        with pytest.raises(TransferError, match="already used"):
            send(rx.address, b"second", transfer_id=42, streams=1, chunk_bytes=16384, config=QUICK)
        with pytest.raises(TransferError, match="already used"):
            rx.receive(timeout_s=2)


def test_parameters_are_validated():
    with pytest.raises(ParameterError, match="loopback"):
        send(("192.0.2.1", 9), b"x")
    with pytest.raises(ParameterError, match="loopback"):
        Receiver(host="0.0.0.0")
    with pytest.raises(ParameterError, match="chunk_bytes"):
        send(("127.0.0.1", 9), b"x", chunk_bytes=1024)
    with pytest.raises(ParameterError, match="streams"):
        send(("127.0.0.1", 9), b"x", streams=513)
    with pytest.raises(ParameterError):
        AmstConfig(chunk_bytes=1024 * 1024)
    with pytest.raises(ParameterError):
        AmstConfig(timeout_s=0)


def test_nobody_listening_is_a_transfer_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(TransferError, match="cannot connect"):
        send(("127.0.0.1", port), b"x", config=QUICK)


# --------------------------------------------------------------------------- failure cases
# Raw peers speak the documented wire format by hand, then misbehave.

TID = 0xABCDEF


def _hello(sid: int, total: int, chunk: int = 16384, streams: int = 1, tid: int = TID) -> bytes:
    return encode_frame(Frame(FrameKind.HELLO, tid, sid, 0, struct.pack(">QIHH", total, chunk, streams, 0)))


def _data(sid: int, offset: int, payload: bytes, tid: int = TID) -> bytes:
    return encode_frame(Frame(FrameKind.DATA, tid, sid, offset, payload))


def _end(sid: int, frames: int, nbytes: int, tid: int = TID) -> bytes:
    return encode_frame(Frame(FrameKind.END, tid, sid, 0, struct.pack(">QQ", frames, nbytes)))


def _read_frame(sock: socket.socket) -> Frame:
    sock.settimeout(3.0)
    buf = b""
    while len(buf) < HEADER_SIZE:
        part = sock.recv(HEADER_SIZE - len(buf))
        if not part:
            raise ConnectionError("closed")
        buf += part
    n = decode_header(buf).length
    while len(buf) < HEADER_SIZE + n:
        part = sock.recv(HEADER_SIZE + n - len(buf))
        if not part:
            raise ConnectionError("closed")
        buf += part
    return decode_frame(buf)


def _connect(rx: Receiver) -> socket.socket:
    return socket.create_connection(rx.address, timeout=3.0)


def _expect_failure(rx: Receiver, exc: type, match: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(exc, match=match):
        rx.receive(timeout_s=5.0)
    assert time.monotonic() - t0 < 4.0
    # nothing half-assembled is ever delivered afterwards
    with pytest.raises(TransferError, match="no transfer completed"):
        rx.receive(timeout_s=0.2)


def test_corrupt_payload_fails_the_transfer_and_tells_the_sender():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768))
        assert _read_frame(s).kind == FrameKind.READY
        bad = bytearray(_data(0, 0, _payload(16384)))
        bad[-1] ^= 0x40
        s.sendall(bytes(bad))
        _expect_failure(rx, DecodeError, "payload checksum mismatch")
        abort = _read_frame(s)
        assert abort.kind == FrameKind.ABORT and b"checksum" in abort.payload


def test_corrupt_header_is_a_decode_error():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768))
        _read_frame(s)
        bad = bytearray(_data(0, 0, _payload(16384)))
        bad[17] ^= 1  # offset field
        s.sendall(bytes(bad))
        _expect_failure(rx, DecodeError, "header checksum")


def test_not_a_frame_at_all():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(encode_v3_frame(0, b"x" * 40))  # an original v3 peer
        _expect_failure(rx, DecodeError, "not a dwcpkit AMST frame")


@pytest.mark.parametrize("cut", [10, HEADER_SIZE + 100])
def test_truncated_frame_then_close(cut):
    with Receiver(config=QUICK) as rx:
        with _connect(rx) as s:
            s.sendall(_hello(0, 32768))
            _read_frame(s)
            s.sendall(_data(0, 0, _payload(16384))[:cut])
        _expect_failure(rx, TransferError, "closed the connection")


def test_hung_sender_times_out():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768))
        _read_frame(s)
        _expect_failure(rx, TransferError, "did not respond within 0.5 s")


def test_silent_connection_times_out():
    with Receiver(config=QUICK) as rx, _connect(rx):
        _expect_failure(rx, TransferError, "waiting for HELLO")


def test_stream_dies_mid_transfer():
    chunk = _payload(16384)
    with Receiver(config=QUICK) as rx:
        a, b = _connect(rx), _connect(rx)
        try:
            a.sendall(_hello(0, 4 * 16384, streams=2))
            b.sendall(_hello(1, 4 * 16384, streams=2))
            _read_frame(a)
            _read_frame(b)
            a.sendall(_data(0, 0, chunk) + _data(0, 16384, chunk) + _end(0, 2, 32768))
            b.sendall(_data(1, 32768, chunk))
            b.close()  # stream 1 dies with one chunk still due
            _expect_failure(rx, TransferError, "stream 1.*closed the connection")
            assert _read_frame(a).kind == FrameKind.ABORT  # stream 0 is told, not ACKed
        finally:
            a.close()
            b.close()


def test_stream_that_never_connects():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 16384, streams=2) + _data(0, 0, _payload(16384)) + _end(0, 1, 16384))
        _expect_failure(rx, TransferError, "1 of 2 streams never connected")


def test_end_counts_must_match():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768) + _data(0, 0, _payload(16384)) + _end(0, 2, 32768))
        _expect_failure(rx, DecodeError, "sent 2 frames")


def test_overlapping_chunks_are_rejected():
    p = _payload(16384)
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768) + _data(0, 0, p) + _data(0, 0, p) + _end(0, 2, 32768))
        _expect_failure(rx, DecodeError, "overlap")


def test_frame_outside_the_transfer_is_rejected():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768) + _data(0, 30000, _payload(16384)))
        _expect_failure(rx, DecodeError, "does not fit")


def test_oversized_transfer_is_refused_before_allocating():
    cfg = AmstConfig(timeout_s=0.5, deadline_s=5.0, max_transfer_bytes=1 << 20)
    with Receiver(config=cfg) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 1 << 40))
        assert _read_frame(s).kind == FrameKind.ABORT
        _expect_failure(rx, TransferError, "max_transfer_bytes")


def test_sender_abort_is_reported():
    with Receiver(config=QUICK) as rx, _connect(rx) as s:
        s.sendall(_hello(0, 32768))
        _read_frame(s)
        s.sendall(encode_frame(Frame(FrameKind.ABORT, TID, 0, 0, b"disk on fire")))
        _expect_failure(rx, TransferError, "disk on fire")


def _fake_receiver(behaviour: str):
    """A listening socket whose peer handler misbehaves; returns (address, stop)."""
    ls = socket.create_server(("127.0.0.1", 0))
    ls.settimeout(3.0)
    stop = threading.Event()

    def run() -> None:
        try:
            conn, _ = ls.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(0.1)
            if behaviour == "ready_then_close":
                f = _read_frame(conn)
                conn.sendall(encode_frame(Frame(FrameKind.READY, f.transfer_id, f.stream_id)))
                conn.recv(1000)
                return
            for _ in range(100):  # "hang" / "drain": up to 10 s, or until stopped
                if stop.is_set():
                    return
                try:
                    if behaviour == "drain" and not conn.recv(1 << 20):
                        return
                    if behaviour == "hang":
                        stop.wait(0.1)
                except TimeoutError:
                    continue
                except OSError:
                    return

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def finish() -> None:
        stop.set()
        t.join(5)
        ls.close()

    return ls.getsockname(), finish


@pytest.mark.parametrize(("behaviour", "match"), [
    ("hang", "waiting for READY.*did not respond"),
    ("ready_then_close", "closed|reset|Broken pipe|connection failed"),
])
def test_sender_fails_fast_on_a_bad_receiver(behaviour, match):
    addr, finish = _fake_receiver(behaviour)
    try:
        t0 = time.monotonic()
        with pytest.raises(TransferError, match=match):
            send(addr, _payload(4 << 20), streams=1, chunk_bytes=16384, config=QUICK)
        assert time.monotonic() - t0 < 4.0
    finally:
        finish()


def test_sender_times_out_when_no_ack_comes():
    """A receiver that takes everything but never acknowledges: the sender does not hang."""
    ls = socket.create_server(("127.0.0.1", 0))
    ls.settimeout(3.0)

    def run() -> None:
        conn, _ = ls.accept()
        with conn:
            f = _read_frame(conn)
            conn.sendall(encode_frame(Frame(FrameKind.READY, f.transfer_id, f.stream_id)))
            conn.settimeout(2.0)
            try:
                while conn.recv(1 << 16):
                    pass
            except OSError:
                pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        with pytest.raises(TransferError, match="waiting for ACK"):
            send(ls.getsockname(), _payload(100_000), streams=1, chunk_bytes=16384, config=QUICK)
    finally:
        t.join(5)
        ls.close()


def test_closing_the_receiver_fails_pending_transfers():
    rx = Receiver(config=AmstConfig(timeout_s=3.0, deadline_s=5.0))
    s = _connect(rx)
    try:
        s.sendall(_hello(0, 32768))
        _read_frame(s)
        rx.close()
        with pytest.raises(TransferError, match="receiver was closed"):
            rx.receive(timeout_s=1.0)
    finally:
        s.close()
        rx.close()


def test_receiver_rtt_is_nan_and_sender_rtt_positive():
    r = loopback_transfer(b"q" * 40000, streams=2, chunk_bytes=16384, config=QUICK)
    assert all(math.isnan(s.rtt_s) for s in r.received.stream_stats)
    assert all(s.rtt_s > 0 for s in r.sent.stream_stats)


def test_bench_table_shape():
    from dwcpkit.bench import amst as bench

    rows = bench.run(quick=True, payload_bytes=256 * 1024, repeat=1)
    assert [r["streams"] for r in rows] == [1, 1, 4, 8, 16, 8]
    assert rows[0]["ratio_vs_plain"] == 1.0
    assert all(r["gb_per_s"] > 0 and r["bytes"] == 256 * 1024 for r in rows)
    table = bench.format_table(rows)
    assert len(table.splitlines()) == len(rows) + 2 and "AMST 16 streams" in table
    assert "crc32c first call" in table.splitlines()[-1]
