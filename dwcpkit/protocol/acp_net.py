"""Deterministic message-level network simulator shared by the ACP consensus simulators.

Everything the Raft and PBFT simulators (:mod:`dwcpkit.protocol.acp_raft`,
:mod:`dwcpkit.protocol.acp_pbft`) need below the protocol: a discrete-event loop in
simulated milliseconds, FIFO links with seeded log-normal latencies, HMAC-SHA256 message
authentication, and fault injection (crash, partition, delay, loss).

Determinism
-----------
A message's one-way latency is a pure function of ``(seed, src, dst, k)`` where ``k`` counts
the messages sent so far on the link ``src -> dst`` (a counter-based generator: splitmix64,
then Box-Muller, then ``floor + median * exp(sigma * z)``). Links are FIFO (a message is
never delivered before an earlier one on the same link), as over TCP. Ties in the event
heap break by insertion order. The same seed and schedule therefore give the same run, and
:mod:`dwcpkit.protocol.acp_fast` can reproduce a fault-free run bit for bit.

Authentication
--------------
Each node holds a secret key derived from the seed; a message carries
``HMAC-SHA256(key[sender], canonical_bytes((kind, sender, body)))`` (RFC 2104; tested equal
to :func:`hmac.digest`). A receiver checks it against the
*claimed* sender's key through the :class:`Keyring`. In the simulation the keyring plays
the part of a signature scheme (a verifier can check any node's MAC, a node can only
produce its own), which is what lets PBFT relay certificates in view changes; a deployment
using plain HMAC would need pairwise keys and authenticators (Castro & Liskov, OSDI 1999,
"PBFT with MACs") instead. Byzantine code in the simulators only ever signs with its own
key, so a forged message (claimed sender != key holder) fails verification.

Example
-------
>>> net = SimNet(2, seed=1, latency=LatencyModel(median_ms=10.0, sigma=0.0))
>>> class Echo:
...     crashed = False
...     got = []
...     def on_message(self, src, msg): self.got.append((net.now, src, msg))
...     def on_timer(self, tag): pass
>>> a, b = Echo(), Echo()
>>> net.attach(0, a); net.attach(1, b)
>>> net.send(0, 1, "hello")
>>> net.run(until_ms=100.0)   # events processed
1
>>> b.got
[(10.0, 0, 'hello')]
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import marshal
import math
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any, NamedTuple, Protocol

import numpy as np
from numba import njit, uint64

from dwcpkit.errors import ParameterError

__all__ = [
    "LatencyModel",
    "Crash",
    "Partition",
    "Delay",
    "Loss",
    "Forge",
    "Fault",
    "Decision",
    "history_conflicts",
    "Msg",
    "Keyring",
    "SimNet",
    "link_delay",
]

_M64 = (1 << 64) - 1
_TWO_PI = 6.283185307179586
_INV_2_53 = 1.1102230246251565e-16
_BLOCK = 1024


# --------------------------------------------------------------------------- latencies


def _mix(x: int) -> int:
    """splitmix64 finaliser on Python ints (reference for :func:`_mix_nb`)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _link_key(seed: int, src: int, dst: int) -> int:
    return _mix(_mix(seed & _M64) ^ (((src & 0xFFFFFFFF) << 32) | (dst & 0xFFFFFFFF)))


def _delay_py(link_key: int, k: int, median: float, sigma: float, floor: float) -> float:
    """Pure-Python reference of the keyed latency (same bits as :func:`_delay_nb`)."""
    h1 = _mix(link_key ^ k)
    h2 = _mix(h1)
    u1 = ((h1 >> 11) + 0.5) * _INV_2_53
    u2 = (h2 >> 11) * _INV_2_53
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)
    return floor + median * math.exp(sigma * z)


@njit("uint64(uint64)", cache=True, nogil=True)
def _mix_nb(x):  # pragma: no cover - compiled
    x = x + uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> uint64(27))) * uint64(0x94D049BB133111EB)
    return x ^ (x >> uint64(31))


@njit("float64(uint64, int64, float64, float64, float64)", cache=True, nogil=True)
def _delay_nb(link_key, k, median, sigma, floor):  # pragma: no cover - compiled
    h1 = _mix_nb(link_key ^ uint64(k))
    h2 = _mix_nb(h1)
    u1 = (float(h1 >> uint64(11)) + 0.5) * 1.1102230246251565e-16
    u2 = float(h2 >> uint64(11)) * 1.1102230246251565e-16
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)
    return floor + median * math.exp(sigma * z)


@njit("float64[:](uint64, int64, int64, float64, float64, float64)", cache=True, nogil=True)
def _delay_block_nb(link_key, start, count, median, sigma, floor):  # pragma: no cover
    out = np.empty(count, dtype=np.float64)
    for i in range(count):
        out[i] = _delay_nb(link_key, start + i, median, sigma, floor)
    return out


@dataclass(frozen=True)
class LatencyModel:
    """One-way link latency: ``floor_ms + median_ms * exp(sigma * z)``, z ~ N(0, 1).

    ``median_ms`` may be a scalar or a square matrix (``median_ms[src][dst]``, one row and
    column per network node, clients included) for geo-distributed placements.

    >>> LatencyModel.preset("wan").median_ms
    50.0
    """

    median_ms: float | tuple[tuple[float, ...], ...] = 50.0
    sigma: float = 0.3
    floor_ms: float = 0.0

    PRESETS = {
        "datacenter": (0.25, 0.3, 0.0),
        "hybrid": (10.0, 0.3, 0.0),
        "wan": (50.0, 0.3, 0.0),
        "internet": (50.0, 0.3, 0.0),
    }

    @classmethod
    def preset(cls, name: str) -> "LatencyModel":
        """A named model: ``datacenter`` (0.25 ms), ``hybrid`` (10 ms), ``wan``/``internet`` (50 ms)."""
        try:
            m, s, f = cls.PRESETS[name]
        except KeyError:
            raise ParameterError(
                f"unknown latency preset {name!r}; choose one of {sorted(cls.PRESETS)} "
                "or build LatencyModel(median_ms=..., sigma=...)"
            ) from None
        return cls(m, s, f)

    def median_for(self, src: int, dst: int) -> float:
        m = self.median_ms
        if isinstance(m, (int, float)):
            return float(m)
        return float(m[src][dst])

    def validate(self, n_nodes: int) -> None:
        if self.sigma < 0 or self.floor_ms < 0:
            raise ParameterError(f"latency sigma and floor must be >= 0, got {self.sigma}, {self.floor_ms}")
        m = self.median_ms
        if isinstance(m, (int, float)):
            if m <= 0:
                raise ParameterError(f"latency median_ms must be > 0, got {m}")
            return
        if len(m) < n_nodes or any(len(row) < n_nodes for row in m):
            raise ParameterError(
                f"latency median_ms matrix must be at least {n_nodes}x{n_nodes} "
                "(replicas, then clients); pass a scalar for a uniform network"
            )


def link_delay(seed: int, src: int, dst: int, k: int, latency: LatencyModel) -> float:
    """Latency (ms) of the ``k``-th message on link ``src -> dst`` (pure-Python reference).

    >>> round(link_delay(1, 0, 1, 0, LatencyModel(10.0, 0.0)), 6)
    10.0
    """
    return _delay_py(_link_key(seed, src, dst), k, latency.median_for(src, dst), latency.sigma, latency.floor_ms)


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Crash:
    """Node ``node`` stops at ``at_ms`` and, if ``until_ms`` is given, restarts then.

    A crashed node neither sends nor receives; on restart it keeps its persistent state
    (Raft: term, vote and log; PBFT: its message log) and loses timers and volatile state.
    """

    node: int
    at_ms: float
    until_ms: float | None = None


@dataclass(frozen=True)
class Partition:
    """Between ``at_ms`` and ``until_ms`` nodes in different ``groups`` cannot talk.

    Nodes listed in no group (typically the clients) reach everyone.
    """

    groups: tuple[frozenset[int], ...]
    at_ms: float
    until_ms: float

    @staticmethod
    def of(*groups: Any, at_ms: float, until_ms: float) -> "Partition":
        """``Partition.of({0, 1}, {2, 3, 4}, at_ms=100, until_ms=900)``."""
        return Partition(tuple(frozenset(g) for g in groups), at_ms, until_ms)


@dataclass(frozen=True)
class Delay:
    """Messages from or to ``nodes`` take ``latency * factor + extra_ms`` in the window."""

    nodes: frozenset[int]
    at_ms: float
    until_ms: float
    extra_ms: float = 0.0
    factor: float = 1.0


@dataclass(frozen=True)
class Loss:
    """Each message (from or to ``nodes``, or any if ``nodes`` is None) is lost with probability ``p``."""

    p: float
    at_ms: float
    until_ms: float
    nodes: frozenset[int] | None = None


@dataclass(frozen=True)
class Forge:
    """An intruder (an extra network node with its own key) injects forged messages.

    Every ``every_ms`` between ``at_ms`` and ``until_ms`` it sends each replica messages that
    claim to come from another replica (forged votes, a forged leader/primary message with
    a huge term/view and fake entries). With authentication on they fail the MAC check and
    are dropped; with ``auth=False`` they are accepted, which is how the tests show what the
    MAC buys.
    """

    at_ms: float
    until_ms: float
    every_ms: float = 20.0


Fault = Crash | Partition | Delay | Loss | Forge


class Decision(NamedTuple):
    """A client-observed decision: request ``rid`` of ``client`` committed at ``slot``
    (Raft log index / PBFT sequence number); sent at ``start_ms``, confirmed at ``end_ms``."""

    client: int
    rid: int
    slot: int
    start_ms: float
    end_ms: float


def history_conflicts(histories: dict[int, dict[int, Any]]) -> list[str]:
    """Slots at which two replicas' committed histories differ (empty list = safe).

    ``histories[replica][slot]`` is what ``replica`` committed/executed at ``slot``.

    >>> history_conflicts({0: {1: "a", 2: "b"}, 1: {1: "a"}})
    []
    >>> history_conflicts({0: {1: "a"}, 1: {1: "x"}})
    ["slot 1: replica 0 committed 'a' but replica 1 committed 'x'"]
    """
    first: dict[int, tuple[int, Any]] = {}
    out: list[str] = []
    for rep in sorted(histories):
        for slot, val in histories[rep].items():
            seen = first.get(slot)
            if seen is None:
                first[slot] = (rep, val)
            elif seen[1] != val:
                out.append(f"slot {slot}: replica {seen[0]} committed {seen[1]!r} but replica {rep} committed {val!r}")
    return out


def fault_end(f: Fault) -> float:
    """When the fault heals (``inf`` for a crash without restart)."""
    end = getattr(f, "until_ms", None)
    return math.inf if end is None else float(end)


# --------------------------------------------------------------------------- messages


class Msg(NamedTuple):
    """An authenticated protocol message: ``mac = HMAC-SHA256(key[sender], canon((kind, sender, body)))``."""

    kind: str
    sender: int
    body: tuple
    mac: bytes


def _plain(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    if isinstance(x, (list, frozenset, set)):
        return (type(x).__name__, tuple(sorted((_plain(v) for v in x), key=repr)) if not isinstance(x, list)
                else tuple(_plain(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted(((_plain(k), _plain(v)) for k, v in x.items()), key=repr)))
    return x


def _canon(x: tuple) -> bytes:
    """Canonical bytes of a message: ``marshal`` format 2 (no object-identity references,
    so equal values give equal bytes); nested tuples subclasses are flattened first;
    ``repr`` for values marshal cannot encode."""
    try:
        return marshal.dumps(x, 2)
    except ValueError:
        try:
            return marshal.dumps(_plain(x), 2)
        except ValueError:
            return repr(x).encode()


class Keyring:
    """Per-node HMAC-SHA256 keys derived from a seed; signs and verifies :class:`Msg`.

    >>> kr = Keyring(3, seed=7)
    >>> m = kr.sign(1, "PREPARE", (0, 1, b"d"))
    >>> kr.verify(m)
    True
    >>> kr.verify(m._replace(sender=2))          # claims another sender: rejected
    False
    >>> kr.verify(kr.forge(0, 1, "PREPARE", (0, 1, b"d")))  # node 0 posing as node 1
    False
    """

    def __init__(self, n_keys: int, seed: int = 0, *, enabled: bool = True):
        self.enabled = enabled
        self._keys = [
            hashlib.sha256(b"dwcpkit-acp-key|%d|%d" % (seed, i)).digest() for i in range(n_keys)
        ]
        # HMAC-SHA256 (RFC 2104) with the padded-key inner/outer states precomputed once per key.
        self._states = [
            (hashlib.sha256(bytes(b ^ 0x36 for b in k.ljust(64, b"\0"))),
             hashlib.sha256(bytes(b ^ 0x5C for b in k.ljust(64, b"\0"))))
            for k in self._keys
        ]
        self.verified = 0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._keys)

    def _mac(self, key_index: int, kind: str, sender: int, body: tuple) -> bytes:
        inner, outer = self._states[key_index]
        i = inner.copy()
        i.update(_canon((kind, sender, body)))
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    def sign(self, sender: int, kind: str, body: tuple) -> Msg:
        """Sign as ``sender`` (the caller must be ``sender``: simulators only sign as themselves)."""
        if not self.enabled:
            return Msg(kind, sender, body, b"")
        return Msg(kind, sender, body, self._mac(sender, kind, sender, body))

    def forge(self, actual: int, claimed: int, kind: str, body: tuple) -> Msg:
        """What a Byzantine node ``actual`` can produce when posing as ``claimed``: its own MAC."""
        if not self.enabled:
            return Msg(kind, claimed, body, b"")
        return Msg(kind, claimed, body, self._mac(actual, kind, claimed, body))

    def verify(self, msg: Any) -> bool:
        """True iff ``msg`` is a :class:`Msg` whose MAC matches its claimed sender's key."""
        if not self.enabled:
            return isinstance(msg, Msg)
        if not isinstance(msg, Msg) or not isinstance(msg.sender, int) or not 0 <= msg.sender < len(self._keys):
            self.rejected += 1
            return False
        ok = hmac.compare_digest(msg.mac, self._mac(msg.sender, msg.kind, msg.sender, msg.body))
        if ok:
            self.verified += 1
        else:
            self.rejected += 1
        return ok


# --------------------------------------------------------------------------- event loop


class Node(Protocol):
    crashed: bool

    def on_message(self, src: int, msg: Any) -> None: ...

    def on_timer(self, tag: Any) -> None: ...


_TIMER = -1
_CONTROL = -2


class SimNet:
    """Discrete-event network of ``n_nodes`` nodes with FIFO, seeded, keyed-latency links.

    Nodes are attached with :meth:`attach` and implement ``on_message(src, msg)``,
    ``on_timer(tag)`` and (optionally) ``on_crash()`` / ``on_recover()``; they have a
    ``crashed`` attribute the network maintains. Time is in simulated milliseconds.
    """

    def __init__(self, n_nodes: int, *, seed: int = 0, latency: LatencyModel | None = None,
                 faults: tuple[Fault, ...] | list[Fault] = ()):
        if n_nodes < 1:
            raise ParameterError(f"a network needs at least one node, got {n_nodes}")
        self.n = n_nodes
        self.seed = int(seed)
        self.latency = latency or LatencyModel()
        self.latency.validate(n_nodes)
        self.now = 0.0
        self.halt = False
        self.nodes: list[Any] = [None] * n_nodes
        self._heap: list[tuple] = []
        self._ctr = itertools.count()
        self._cnt = [[0] * n_nodes for _ in range(n_nodes)]
        self._last = [[0.0] * n_nodes for _ in range(n_nodes)]
        self._keys = [[_link_key(self.seed, s, d) for d in range(n_nodes)] for s in range(n_nodes)]
        self._blocks: list[list[list[float] | None]] = [[None] * n_nodes for _ in range(n_nodes)]
        self.sent = 0
        self.delivered = 0
        self.dropped = 0
        self._partitions: list[Partition] = []
        self._delays: list[Delay] = []
        self._losses: list[Loss] = []
        for f in faults:
            self._add_fault(f)
        self._faulty = bool(self._partitions or self._delays or self._losses)

    # -- setup
    def attach(self, node_id: int, node: Any) -> None:
        if not 0 <= node_id < self.n:
            raise ParameterError(f"node id {node_id} outside 0..{self.n - 1}")
        self.nodes[node_id] = node

    def _add_fault(self, f: Fault) -> None:
        end = getattr(f, "until_ms", None)
        if end is not None and end < f.at_ms:
            raise ParameterError(f"fault {f!r} heals before it starts (until_ms < at_ms)")
        if isinstance(f, Crash):
            if not 0 <= f.node < self.n:
                raise ParameterError(f"Crash node {f.node} outside 0..{self.n - 1}")
            heappush(self._heap, (float(f.at_ms), next(self._ctr), f.node, _CONTROL, "crash"))
            if f.until_ms is not None:
                heappush(self._heap, (float(f.until_ms), next(self._ctr), f.node, _CONTROL, "recover"))
        elif isinstance(f, Partition):
            self._partitions.append(f)
        elif isinstance(f, Delay):
            if f.factor < 0 or f.extra_ms < 0:
                raise ParameterError(f"Delay factor and extra_ms must be >= 0, got {f!r}")
            self._delays.append(f)
        elif isinstance(f, Loss):
            if not 0.0 <= f.p <= 1.0:
                raise ParameterError(f"Loss probability must be in [0, 1], got {f.p}")
            self._losses.append(f)
        elif isinstance(f, Forge):
            if f.every_ms <= 0:
                raise ParameterError(f"Forge every_ms must be > 0, got {f.every_ms}")
        else:
            raise ParameterError(f"unknown fault {f!r}; use Crash, Partition, Delay or Loss")

    # -- primitives
    def _delay(self, src: int, dst: int, k: int) -> float:
        row = self._blocks[src]
        blk = row[dst]
        if blk is None:
            blk = row[dst] = []
        if k >= len(blk):
            start = len(blk)
            lat = self.latency
            blk.extend(_delay_block_nb(np.uint64(self._keys[src][dst]), start, max(_BLOCK, k - start + 1),
                                       lat.median_for(src, dst), lat.sigma, lat.floor_ms).tolist())
        return blk[k]

    def _blocked(self, src: int, dst: int, now: float, k: int) -> bool:
        for p in self._partitions:
            if p.at_ms <= now < p.until_ms:
                gs = gd = None
                for i, g in enumerate(p.groups):
                    if src in g:
                        gs = i
                    if dst in g:
                        gd = i
                if gs is not None and gd is not None and gs != gd:
                    return True
        for lo in self._losses:
            if lo.at_ms <= now < lo.until_ms and (lo.nodes is None or src in lo.nodes or dst in lo.nodes):
                u = (_mix(self._keys[src][dst] ^ (k | (1 << 62))) >> 11) * _INV_2_53
                if u < lo.p:
                    return True
        return False

    def send(self, src: int, dst: int, msg: Any) -> None:
        """Send ``msg`` on link ``src -> dst`` (dropped silently if a fault says so)."""
        row = self._cnt[src]
        k = row[dst]
        row[dst] = k + 1
        self.sent += 1
        now = self.now
        d = self._delay(src, dst, k)
        if self._faulty:
            if self._blocked(src, dst, now, k):
                self.dropped += 1
                return
            for dl in self._delays:
                if dl.at_ms <= now < dl.until_ms and (src in dl.nodes or dst in dl.nodes):
                    d = d * dl.factor + dl.extra_ms
        t = now + d
        last = self._last[src]
        if t < last[dst]:
            t = last[dst]
        else:
            last[dst] = t
        heappush(self._heap, (t, next(self._ctr), dst, src, msg))

    def timer(self, node: int, at_ms: float, tag: Any) -> None:
        """Call ``nodes[node].on_timer(tag)`` at ``at_ms`` (skipped if the node is crashed then)."""
        heappush(self._heap, (at_ms, next(self._ctr), node, _TIMER, tag))

    def crash_node(self, node: int) -> None:
        """Crash ``node`` now (processed before any later event)."""
        heappush(self._heap, (self.now, next(self._ctr), node, _CONTROL, "crash"))

    def recover_node(self, node: int) -> None:
        """Restart ``node`` now."""
        heappush(self._heap, (self.now, next(self._ctr), node, _CONTROL, "recover"))

    def run(self, until_ms: float = math.inf, max_events: int | None = None) -> int:
        """Process events up to ``until_ms`` (or until a node sets ``halt``); returns events run."""
        heap = self._heap
        nodes = self.nodes
        pop = heappop
        done = 0
        limit = max_events if max_events is not None else -1
        self.halt = False
        while heap and not self.halt:
            if heap[0][0] > until_ms:
                break
            t, _, dst, src, payload = pop(heap)
            self.now = t
            node = nodes[dst]
            if src >= 0:
                if node is None or node.crashed:
                    self.dropped += 1
                else:
                    self.delivered += 1
                    node.on_message(src, payload)
            elif src == _TIMER:
                if node is not None and not node.crashed:
                    node.on_timer(payload)
            else:
                if node is not None:
                    if payload == "crash":
                        if not node.crashed:
                            node.crashed = True
                            hook = getattr(node, "on_crash", None)
                            if hook:
                                hook()
                    elif node.crashed:
                        node.crashed = False
                        hook = getattr(node, "on_recover", None)
                        if hook:
                            hook()
            done += 1
            if done == limit:
                break
        if not self.halt and until_ms != math.inf and (not heap or heap[0][0] > until_ms):
            self.now = max(self.now, until_ms)
        return done
