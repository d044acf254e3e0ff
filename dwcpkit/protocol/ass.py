"""ASS — asynchronous state synchronisation: vector clocks, causal delivery, CRDTs, anti-entropy, gossip.

The original v3 ``ASSv3`` was a stub (digest §6.1); the real material was the v1 engine (§6.2)
and its CRDT library (§6.3). This module keeps their rules and fixes their defects:

- :class:`VectorClock` (element-wise max merge; before / after / equal / concurrent) and
  :class:`CausalBuffer`, the original's causal-delivery rule exactly: an event is deliverable iff
  its listed dependencies were delivered, ``VC_e[origin] = VC_local[origin] + 1`` and
  ``VC_e[k] <= VC_local[k]`` for every other k; undeliverable events wait and are re-scanned after
  each delivery.
- State-based CRDTs whose merge is commutative, associative and idempotent (property-tested):
  :class:`GCounter`, :class:`PNCounter`, :class:`LWWRegister`, :class:`ORSet`, :class:`LWWMap`,
  serialised as canonical JSON with the original's type tags (``g_counter``, ``pn_counter``,
  ``lww_register``, ``or_set``; ``lww_map`` is new) and rebuilt by :func:`crdt_from_json` from
  the *remote* type tag.
- :class:`Replica`: a key → CRDT store with per-key SHA-256 digests and a bucketed Merkle tree.
- :func:`simulate`: a deterministic (seeded) discrete-event simulation of N replicas running
  push gossip (fanout 3, every 5 s, TTL 10) and anti-entropy (every 30 s with one random peer)
  under message loss and partitions; it reports convergence time, bytes and messages, and checks
  that every replica ends equal to the join of every state ever written.

Deviations from the original (deliberate)
-----------------------------------------
- LWW order is (Lamport clock, node, canonical value) for merge *and* compare; the original
  merged by wall time but compared by clock, which disagree. A local write takes the register's
  highest Lamport clock + 1, so a write that has seen another wins over it.
- OR-Set tags are (node, counter) pairs, not wall-clock timestamps (JSON-stable equality).
- Anti-entropy exchanges Missing, Theirs *and* Stale keys and deserialises by the remote type tag;
  the original dropped pulled keys it did not already hold and never exchanged stale ones.
  ``anti_entropy="original"`` reproduces that behaviour for comparison, ``"digest"`` is the fixed
  flat-digest protocol and ``"merkle"`` (default) compares a root and bucket hashes first.
- Applying a gossip update does not re-broadcast it under a new message id (the original's
  amplification loop); seen ids expire by time, not by wiping the set at 1000 entries.
- Bytes are counted as canonical-JSON payload plus a fixed envelope (``header_bytes``, 64 B:
  id, type, sender, receiver, timestamp); vector clocks are not sent because state-based CRDT
  merges do not need causal delivery.
- Not implemented here: MV-Register, G-Set, 2P-Set, OR-Map, RGA (the original had them), the
  datacenter Raft path and the hybrid mode switch (those belong to ACP).

Example
-------
>>> a, b = GCounter(), GCounter()
>>> a.increment("n1", 2); b.increment("n2", 3)
>>> a.merge(b).value
5
>>> r = simulate(SimConfig(n=8, n_writes=40, seed=1))
>>> r.converged and r.correct
True
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import polars as pl

from dwcpkit.errors import DecodeError, ParameterError, ProtocolError

__all__ = [
    "Order",
    "VectorClock",
    "Event",
    "deliverable",
    "CausalBuffer",
    "canonical_json",
    "CRDT",
    "GCounter",
    "PNCounter",
    "LWWRegister",
    "ORSet",
    "LWWMap",
    "crdt_from_json",
    "CRDT_TYPES",
    "Replica",
    "merkle_buckets",
    "sync_pair",
    "Partition",
    "SimConfig",
    "SimResult",
    "simulate",
    "results_table",
]


# =================================================================================================
# vector clocks and causal delivery
# =================================================================================================


class Order(enum.Enum):
    """Outcome of comparing two vector clocks."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


def _check_node(node: Any) -> str:
    if not isinstance(node, str) or not node:
        raise ParameterError(f"node ids are non-empty strings, got {node!r}")
    return node


class VectorClock:
    """Immutable map node → counter (missing = 0). Merge is the element-wise maximum.

    Example
    -------
    >>> a = VectorClock().increment("x")
    >>> b = a.increment("y")
    >>> a.compare(b), b.compare(a), a.increment("z").compare(b)
    (<Order.BEFORE: 'before'>, <Order.AFTER: 'after'>, <Order.CONCURRENT: 'concurrent'>)
    >>> a.merge(VectorClock({"y": 4})).to_dict()
    {'x': 1, 'y': 4}
    """

    __slots__ = ("_c",)

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        c: dict[str, int] = {}
        for k, v in (counts or {}).items():
            _check_node(k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ParameterError(f"vector clock entries are integers >= 0, got {k!r}: {v!r}")
            if v:
                c[k] = v
        self._c = c

    def get(self, node: str) -> int:
        """Counter of ``node`` (0 if absent)."""
        return self._c.get(node, 0)

    def increment(self, node: str) -> VectorClock:
        """A new clock with ``node``'s counter + 1."""
        c = dict(self._c)
        c[_check_node(node)] = c.get(node, 0) + 1
        return VectorClock(c)

    def merge(self, other: VectorClock) -> VectorClock:
        """Element-wise maximum."""
        c = dict(self._c)
        for k, v in other._c.items():
            if v > c.get(k, 0):
                c[k] = v
        return VectorClock(c)

    def compare(self, other: VectorClock) -> Order:
        """BEFORE (happened-before ``other``), AFTER, EQUAL or CONCURRENT."""
        less = greater = False
        for k in self._c.keys() | other._c.keys():
            a, b = self.get(k), other.get(k)
            if a < b:
                less = True
            elif a > b:
                greater = True
        if less and greater:
            return Order.CONCURRENT
        if less:
            return Order.BEFORE
        if greater:
            return Order.AFTER
        return Order.EQUAL

    def __le__(self, other: VectorClock) -> bool:
        return self.compare(other) in (Order.BEFORE, Order.EQUAL)

    def __lt__(self, other: VectorClock) -> bool:
        return self.compare(other) is Order.BEFORE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorClock) and self._c == other._c

    def __hash__(self) -> int:
        return hash(frozenset(self._c.items()))

    def to_dict(self) -> dict[str, int]:
        """Plain dict, keys sorted (the JSON shape)."""
        return dict(sorted(self._c.items()))

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> VectorClock:
        """Inverse of :meth:`to_dict` (:class:`~dwcpkit.errors.DecodeError` if malformed)."""
        try:
            return cls(d)
        except (ParameterError, AttributeError) as exc:
            raise DecodeError(f"malformed vector clock {d!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"VectorClock({self.to_dict()})"


@dataclass(frozen=True)
class Event:
    """A causally tracked event: ``origin`` created it with clock ``clock`` (its own entry bumped)."""

    id: str
    origin: str
    clock: VectorClock
    deps: frozenset[str] = frozenset()
    payload: Any = None


def deliverable(event: Event, local: VectorClock, delivered: Iterable[str] | set[str]) -> bool:
    """The original ``CausalTracker`` rule (digest §6.2), exactly.

    Example
    -------
    >>> e = Event("a:1", "a", VectorClock({"a": 1}))
    >>> deliverable(e, VectorClock(), set()), deliverable(e, VectorClock({"a": 1}), set())
    (True, False)
    """
    done = delivered if isinstance(delivered, (set, frozenset)) else set(delivered)
    if not event.deps <= done:
        return False
    if event.clock.get(event.origin) != local.get(event.origin) + 1:
        return False
    return all(event.clock.get(k) <= local.get(k) for k in event.clock._c if k != event.origin)


class CausalBuffer:
    """Causal delivery at one node: buffer events until :func:`deliverable`, then deliver in order.

    Duplicates (events whose origin counter is already covered) are dropped, not buffered.

    Example
    -------
    >>> a = CausalBuffer("a")
    >>> e1, e2 = a.local_event("x"), a.local_event("y")
    >>> b = CausalBuffer("b")
    >>> b.receive(e2), [e.payload for e in b.receive(e1)]
    ([], ['x', 'y'])
    """

    def __init__(self, node: str) -> None:
        self.node = _check_node(node)
        self.clock = VectorClock()
        self.delivered: set[str] = set()
        self._pending: list[Event] = []

    @property
    def pending(self) -> tuple[Event, ...]:
        """Events received but not deliverable yet."""
        return tuple(self._pending)

    def local_event(self, payload: Any = None, deps: Iterable[str] = ()) -> Event:
        """Create (and locally deliver) an event of this node, to be sent to the others."""
        self.clock = self.clock.increment(self.node)
        ev = Event(f"{self.node}:{self.clock.get(self.node)}", self.node, self.clock, frozenset(deps), payload)
        self.delivered.add(ev.id)
        return ev

    def receive(self, event: Event) -> list[Event]:
        """Accept one event; return every event delivered as a consequence, in delivery order."""
        if event.id in self.delivered or event.clock.get(event.origin) <= self.clock.get(event.origin):
            return []
        if any(p.id == event.id for p in self._pending):
            return []
        self._pending.append(event)
        out: list[Event] = []
        progress = True
        while progress:
            progress = False
            for i, ev in enumerate(self._pending):
                if deliverable(ev, self.clock, self.delivered):
                    del self._pending[i]
                    self.clock = self.clock.merge(ev.clock)
                    self.delivered.add(ev.id)
                    out.append(ev)
                    progress = True
                    break
        return out


# =================================================================================================
# CRDTs
# =================================================================================================


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, UTF-8, no NaN.

    Example
    -------
    >>> canonical_json({"b": 1, "a": [1, "x"]})
    b'{"a":[1,"x"],"b":1}'
    """
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"value is not JSON-serialisable: {exc}") from None


def _check_json_value(value: Any) -> Any:
    canonical_json(value)
    return value


def _count(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise DecodeError(f"{what} must be an integer >= 0, got {v!r}")
    return v


class CRDT:
    """Base of the state-based CRDTs: ``merge`` is a join (commutative, associative, idempotent).

    ``merge`` returns a new object and leaves both inputs unchanged; mutators change ``self``.
    Equality is equality of the canonical JSON state.
    """

    type_tag: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CRDT:  # pragma: no cover - abstract
        raise NotImplementedError

    def _join(self, other: CRDT) -> CRDT:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def value(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def merge(self, other: CRDT) -> CRDT:
        """Join of two states of the same type (new object)."""
        if type(other) is not type(self):
            raise ProtocolError(
                f"cannot merge {type(other).__name__} into {type(self).__name__}: a key keeps one CRDT type"
            )
        return self._join(other)

    def copy(self) -> CRDT:
        """Deep copy through the JSON form."""
        return type(self).from_json(self.to_json())

    def canonical(self) -> bytes:
        """Canonical JSON bytes of the state (what is hashed and sent)."""
        return canonical_json(self.to_json())

    def digest(self) -> bytes:
        """SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical()).digest()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.canonical() == other.canonical()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"

    @classmethod
    def _check_tag(cls, obj: Mapping[str, Any]) -> None:
        if not isinstance(obj, Mapping) or obj.get("type") != cls.type_tag:
            got = obj.get("type") if isinstance(obj, Mapping) else type(obj).__name__
            raise DecodeError(f"expected a {cls.type_tag!r} object, got type {got!r}")


class GCounter(CRDT):
    """Grow-only counter: per-node counts, merge = per-node max, value = sum.

    Example
    -------
    >>> c = GCounter(); c.increment("a"); c.increment("a", 4)
    >>> c.value, c.to_json()
    (5, {'type': 'g_counter', 'counts': {'a': 5}})
    """

    type_tag = "g_counter"

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self.counts: dict[str, int] = {}
        for k, v in (counts or {}).items():
            if _count(v, f"count of {k!r}"):
                self.counts[_check_node(k)] = v

    def increment(self, node: str, amount: int = 1) -> None:
        """Add ``amount`` (>= 0) to ``node``'s count."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ParameterError(f"a G-Counter only grows: amount must be an integer >= 0, got {amount!r}")
        if amount:
            self.counts[_check_node(node)] = self.counts.get(node, 0) + amount

    @property
    def value(self) -> int:
        return sum(self.counts.values())

    def _join(self, other: GCounter) -> GCounter:  # type: ignore[override]
        out = dict(self.counts)
        for k, v in other.counts.items():
            if v > out.get(k, 0):
                out[k] = v
        return GCounter(out)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_tag, "counts": dict(sorted(self.counts.items()))}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> GCounter:
        cls._check_tag(obj)
        counts = obj.get("counts")
        if not isinstance(counts, Mapping):
            raise DecodeError(f"g_counter needs a 'counts' object, got {counts!r}")
        try:
            return cls(counts)
        except ParameterError as exc:
            raise DecodeError(f"malformed g_counter: {exc}") from None


class PNCounter(CRDT):
    """Counter with decrements: two G-Counters (P, N); value = P − N.

    Example
    -------
    >>> c = PNCounter(); c.increment("a", 5); c.decrement("b", 2)
    >>> c.value
    3
    """

    type_tag = "pn_counter"

    def __init__(self, p: GCounter | None = None, n: GCounter | None = None) -> None:
        self.p = p if p is not None else GCounter()
        self.n = n if n is not None else GCounter()

    def increment(self, node: str, amount: int = 1) -> None:
        """Add ``amount`` (>= 0)."""
        self.p.increment(node, amount)

    def decrement(self, node: str, amount: int = 1) -> None:
        """Subtract ``amount`` (>= 0)."""
        self.n.increment(node, amount)

    @property
    def value(self) -> int:
        return self.p.value - self.n.value

    def _join(self, other: PNCounter) -> PNCounter:  # type: ignore[override]
        return PNCounter(self.p._join(other.p), self.n._join(other.n))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_tag, "p": self.p.to_json()["counts"], "n": self.n.to_json()["counts"]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PNCounter:
        cls._check_tag(obj)
        p = GCounter.from_json({"type": "g_counter", "counts": obj.get("p")})
        n = GCounter.from_json({"type": "g_counter", "counts": obj.get("n")})
        return cls(p, n)


Timestamp = tuple[int, str]  # (Lamport clock, node)


def _check_ts(ts: Any, what: str) -> Timestamp | None:
    if ts is None:
        return None
    if (not isinstance(ts, (list, tuple)) or len(ts) != 2 or isinstance(ts[0], bool)
            or not isinstance(ts[0], int) or ts[0] < 1 or not isinstance(ts[1], str) or not ts[1]):
        raise DecodeError(f"{what} must be [lamport >= 1, node], got {ts!r}")
    return (int(ts[0]), str(ts[1]))


class LWWRegister(CRDT):
    """Last-writer-wins register ordered by (Lamport clock, node, canonical value).

    The value tie-break only matters if one node reused a clock for two values; it keeps merge a
    join in that case too.

    Example
    -------
    >>> a, b = LWWRegister(), LWWRegister()
    >>> a.set("v1", node="n1"); b.set("v2", node="n2")   # concurrent, both at clock 1
    >>> a.merge(b).value, b.merge(a).value               # n2 > n1 breaks the tie
    ('v2', 'v2')
    >>> c = a.merge(b); c.set("v3", node="n1"); c.timestamp   # a later write wins
    (2, 'n1')
    """

    type_tag = "lww_register"

    def __init__(self, value: Any = None, timestamp: Timestamp | None = None) -> None:
        self._value = _check_json_value(value)
        self.timestamp = _check_ts(timestamp, "timestamp") if timestamp is not None else None

    @property
    def value(self) -> Any:
        return self._value

    @property
    def lamport(self) -> int:
        """Highest Lamport clock seen (0 if never written)."""
        return self.timestamp[0] if self.timestamp else 0

    def set(self, value: Any, node: str, lamport: int | None = None) -> None:
        """Write ``value`` at (``lamport`` or current clock + 1, ``node``); loses to a later state."""
        ts = (self.lamport + 1 if lamport is None else int(lamport), _check_node(node))
        if ts[0] < 1:
            raise ParameterError(f"lamport clocks start at 1, got {lamport!r}")
        cand = LWWRegister(value, ts)
        if _lww_wins(cand.timestamp, cand._value, False, self.timestamp, self._value, False):
            self._value, self.timestamp = cand._value, cand.timestamp

    def _join(self, other: LWWRegister) -> LWWRegister:  # type: ignore[override]
        win = other if _lww_wins(other.timestamp, other._value, False, self.timestamp, self._value, False) else self
        return LWWRegister(win._value, win.timestamp)

    def to_json(self) -> dict[str, Any]:
        ts = list(self.timestamp) if self.timestamp else None
        return {"type": self.type_tag, "value": self._value, "ts": ts}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LWWRegister:
        cls._check_tag(obj)
        return cls(obj.get("value"), _check_ts(obj.get("ts"), "lww_register ts"))


def _lww_wins(ts_a: Timestamp | None, v_a: Any, d_a: bool, ts_b: Timestamp | None, v_b: Any, d_b: bool) -> bool:
    """True if write a is strictly later than write b in (lamport, node, tombstone, canonical value)."""
    if ts_a is None:
        return False
    if ts_b is None:
        return True
    if ts_a != ts_b:
        return ts_a > ts_b
    if d_a != d_b:
        return d_a
    return canonical_json(v_a) > canonical_json(v_b)


def _check_elem(e: Any) -> str | int:
    if isinstance(e, bool) or not isinstance(e, (str, int)):
        raise ParameterError(f"OR-Set elements are str or int (JSON-stable), got {e!r}")
    return e


def _elem_sort_key(e: str | int) -> bytes:
    return canonical_json(e)


class ORSet(CRDT):
    """Observed-remove set with unique (node, counter) add tags.

    ``add`` tags the element; ``remove`` tombstones every add tag it has observed, so a concurrent
    add (unseen tag) survives: add wins. ``clock`` holds each node's highest tag counter. Tombstones
    are kept forever (no garbage collection, as in the original).

    Example
    -------
    >>> a = ORSet(); a.add("x", "n1")
    ('n1', 1)
    >>> b = a.copy(); _ = b.remove("x"); _ = a.add("x", "n2")     # concurrent remove and re-add
    >>> sorted(a.merge(b).value), sorted(b.merge(a).value)
    (['x'], ['x'])
    """

    type_tag = "or_set"

    def __init__(self) -> None:
        self.adds: dict[str | int, set[tuple[str, int]]] = {}
        self.removes: set[tuple[str, int]] = set()
        self.clock: dict[str, int] = {}

    def add(self, elem: str | int, node: str) -> tuple[str, int]:
        """Add ``elem`` with a fresh tag of ``node``; returns the tag."""
        _check_elem(elem)
        c = self.clock.get(_check_node(node), 0) + 1
        self.clock[node] = c
        tag = (node, c)
        self.adds.setdefault(elem, set()).add(tag)
        return tag

    def remove(self, elem: str | int) -> bool:
        """Tombstone every observed add tag of ``elem``; False if it was not present."""
        live = self.adds.get(_check_elem(elem), set()) - self.removes
        self.removes |= live
        return bool(live)

    def contains(self, elem: str | int) -> bool:
        """Some add tag of ``elem`` is not tombstoned."""
        return bool(self.adds.get(elem, set()) - self.removes)

    @property
    def value(self) -> frozenset:
        return frozenset(e for e, tags in self.adds.items() if tags - self.removes)

    def _join(self, other: ORSet) -> ORSet:  # type: ignore[override]
        out = ORSet()
        for src in (self, other):
            for e, tags in src.adds.items():
                out.adds.setdefault(e, set()).update(tags)
            out.removes |= src.removes
            for k, v in src.clock.items():
                if v > out.clock.get(k, 0):
                    out.clock[k] = v
        return out

    def to_json(self) -> dict[str, Any]:
        adds = [[e, sorted([list(t) for t in self.adds[e]])] for e in sorted(self.adds, key=_elem_sort_key)]
        return {"type": self.type_tag, "adds": adds, "removes": sorted([list(t) for t in self.removes]),
                "clock": dict(sorted(self.clock.items()))}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ORSet:
        cls._check_tag(obj)
        out = cls()
        try:
            for e, tags in obj["adds"]:
                out.adds[_check_elem(e)] = {_tag(t) for t in tags}
            out.removes = {_tag(t) for t in obj["removes"]}
            out.clock = {_check_node(k): _count(v, "or_set clock") for k, v in obj["clock"].items()}
        except (KeyError, TypeError, ValueError, ParameterError) as exc:
            raise DecodeError(f"malformed or_set: {exc!r}") from None
        return out


def _tag(t: Any) -> tuple[str, int]:
    if not isinstance(t, (list, tuple)) or len(t) != 2 or not isinstance(t[0], str):
        raise DecodeError(f"an OR-Set tag is [node, counter], got {t!r}")
    return (t[0], _count(t[1], "tag counter"))


class LWWMap(CRDT):
    """Map of str keys to last-writer-wins entries; deletes are timestamped tombstones.

    Each entry is ordered like :class:`LWWRegister` (Lamport clock, node, then tombstone, then
    value). A local write takes the map's highest clock + 1.

    Example
    -------
    >>> a = LWWMap(); a.set("k", 1, "n1"); a.set("j", 2, "n1")
    >>> b = a.copy(); b.delete("k", "n2"); a.set("j", 3, "n1")
    >>> a.merge(b).value
    {'j': 3}
    """

    type_tag = "lww_map"

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, Timestamp, bool]] = {}

    @property
    def lamport(self) -> int:
        """Highest Lamport clock of any entry (0 when empty)."""
        return max((ts[0] for _, ts, _ in self.entries.values()), default=0)

    def _write(self, key: str, value: Any, node: str, deleted: bool, lamport: int | None) -> None:
        if not isinstance(key, str):
            raise ParameterError(f"LWW-Map keys are strings, got {key!r}")
        ts = (self.lamport + 1 if lamport is None else int(lamport), _check_node(node))
        if ts[0] < 1:
            raise ParameterError(f"lamport clocks start at 1, got {lamport!r}")
        _check_json_value(value)
        cur = self.entries.get(key)
        if cur is None or _lww_wins(ts, value, deleted, cur[1], cur[0], cur[2]):
            self.entries[key] = (value, ts, deleted)

    def set(self, key: str, value: Any, node: str, lamport: int | None = None) -> None:
        """Write ``key`` = ``value``."""
        self._write(key, value, node, False, lamport)

    def delete(self, key: str, node: str, lamport: int | None = None) -> None:
        """Write a tombstone for ``key``."""
        self._write(key, None, node, True, lamport)

    def get(self, key: str, default: Any = None) -> Any:
        """Live value of ``key`` or ``default``."""
        e = self.entries.get(key)
        return default if e is None or e[2] else e[0]

    @property
    def value(self) -> dict[str, Any]:
        return {k: v for k, (v, _, d) in sorted(self.entries.items()) if not d}

    def _join(self, other: LWWMap) -> LWWMap:  # type: ignore[override]
        out = LWWMap()
        out.entries = dict(self.entries)
        for k, (v, ts, d) in other.entries.items():
            cur = out.entries.get(k)
            if cur is None or _lww_wins(ts, v, d, cur[1], cur[0], cur[2]):
                out.entries[k] = (v, ts, d)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_tag, "entries": {
            k: {"value": v, "ts": list(ts), "deleted": d} for k, (v, ts, d) in sorted(self.entries.items())
        }}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LWWMap:
        cls._check_tag(obj)
        out = cls()
        ents = obj.get("entries")
        if not isinstance(ents, Mapping):
            raise DecodeError(f"lww_map needs an 'entries' object, got {ents!r}")
        for k, e in ents.items():
            if not isinstance(e, Mapping) or not isinstance(e.get("deleted"), bool):
                raise DecodeError(f"malformed lww_map entry {k!r}: {e!r}")
            ts = _check_ts(e.get("ts"), f"lww_map entry {k!r} ts")
            if ts is None:
                raise DecodeError(f"lww_map entry {k!r} has no timestamp")
            out.entries[str(k)] = (e.get("value"), ts, e["deleted"])
        return out


CRDT_TYPES: dict[str, type[CRDT]] = {
    c.type_tag: c for c in (GCounter, PNCounter, LWWRegister, ORSet, LWWMap)
}


def crdt_from_json(obj: Mapping[str, Any] | bytes | str) -> CRDT:
    """Rebuild a CRDT from its JSON form, dispatching on the (remote) ``type`` tag.

    Example
    -------
    >>> crdt_from_json(b'{"type":"g_counter","counts":{"a":2}}').value
    2
    """
    if isinstance(obj, (bytes, str)):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise DecodeError(f"CRDT payload is not JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise DecodeError(f"CRDT payload must be a JSON object, got {type(obj).__name__}")
    cls = CRDT_TYPES.get(obj.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise DecodeError(f"unknown CRDT type {obj.get('type')!r}; known: {sorted(CRDT_TYPES)}")
    return cls.from_json(obj)


# =================================================================================================
# replica store, digests and Merkle buckets
# =================================================================================================


def merkle_buckets(key: str, buckets: int) -> int:
    """Bucket of ``key``: first 4 bytes of SHA-256(key) modulo ``buckets``.

    Example
    -------
    >>> 0 <= merkle_buckets("vm-42/config", 16) < 16
    True
    """
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % buckets


class Replica:
    """A node's key → CRDT store with cached per-key digests and a bucketed Merkle tree.

    Example
    -------
    >>> a, b = Replica("a"), Replica("b")
    >>> a.mutate("hits", GCounter, lambda c: c.increment("a", 3))
    >>> a.root() == b.root()
    False
    >>> b.merge_key("hits", a.store["hits"]), a.root() == b.root()
    (True, True)
    """

    def __init__(self, node: str, buckets: int = 16) -> None:
        self.node = _check_node(node)
        if buckets < 1:
            raise ParameterError(f"buckets must be >= 1, got {buckets!r}")
        self.buckets = int(buckets)
        self.store: dict[str, CRDT] = {}
        self._digest: dict[str, bytes] = {}
        self._canon: dict[str, bytes] = {}
        self._bucket_of: dict[str, int] = {}
        self._members: list[set[str]] = [set() for _ in range(self.buckets)]
        self._bucket_hash: list[bytes | None] = [None] * self.buckets
        self._root: bytes | None = None

    def _changed(self, key: str, canon: bytes | None = None) -> None:
        canon = self.store[key].canonical() if canon is None else canon
        self._canon[key] = canon
        self._digest[key] = hashlib.sha256(canon).digest()
        b = self._bucket_of.get(key)
        if b is None:
            b = self._bucket_of[key] = merkle_buckets(key, self.buckets)
            self._members[b].add(key)
        self._bucket_hash[b] = None
        self._root = None

    def mutate(self, key: str, kind: type[CRDT], op) -> None:
        """Apply a local operation ``op(crdt)`` to ``key`` (created empty of type ``kind`` if absent).

        The operation runs on a copy (stored states are never changed in place, so states can
        be shared between replicas of a simulation).
        """
        cur = self.store.get(key)
        if cur is None:
            cur = kind()
        elif type(cur) is not kind:
            raise ProtocolError(f"key {key!r} holds a {cur.type_tag}, not a {kind.type_tag}")
        else:
            cur = cur.copy()
        op(cur)
        self.store[key] = cur
        self._changed(key)

    def _share(self, key: str, state: CRDT, canon: bytes, digest: bytes) -> None:
        """Install a state without copying (simulation set-up; the state must not be mutated)."""
        self.store[key] = state
        self._canon[key] = canon
        self._digest[key] = digest
        b = self._bucket_of.get(key)
        if b is None:
            b = self._bucket_of[key] = merkle_buckets(key, self.buckets)
            self._members[b].add(key)
        self._bucket_hash[b] = None
        self._root = None

    def merge_key(self, key: str, state: CRDT | bytes) -> bool:
        """Merge a remote state (a CRDT or its canonical JSON) into ``key``; True if it changed.

        A JSON payload is rebuilt from its own (remote) type tag; identical bytes are a no-op.
        """
        if isinstance(state, (bytes, bytearray)):
            if self._canon.get(key) == state:
                return False
            state = crdt_from_json(bytes(state))
            fresh = True
        else:
            fresh = False
        cur = self.store.get(key)
        if cur is None:
            new = state if fresh else state.copy()
        else:
            new = cur.merge(state)
        canon = new.canonical()
        if cur is not None and canon == self._canon.get(key):
            return False
        self.store[key] = new
        self._changed(key, canon)
        return True

    def canonical(self, key: str) -> bytes:
        """Cached canonical JSON of ``key``'s state (KeyError if absent)."""
        return self._canon[key]

    def digest(self) -> dict[str, bytes]:
        """key → SHA-256 of the key's canonical state."""
        return dict(self._digest)

    def bucket_keys(self, b: int) -> dict[str, bytes]:
        """key → digest for the keys of bucket ``b``."""
        return {k: self._digest[k] for k in self._members[b]}

    def bucket_hashes(self) -> list[bytes]:
        """Hash of every bucket (SHA-256 over its sorted key/digest pairs)."""
        for b in range(self.buckets):
            if self._bucket_hash[b] is None:
                h = hashlib.sha256()
                for k, d in sorted(self.bucket_keys(b).items()):
                    h.update(k.encode() + b"\0" + d)
                self._bucket_hash[b] = h.digest()
        return list(self._bucket_hash)  # type: ignore[arg-type]

    def root(self) -> bytes:
        """Merkle root: SHA-256 of the bucket hashes."""
        if self._root is None:
            self._root = hashlib.sha256(b"".join(self.bucket_hashes())).digest()
        return self._root


# =================================================================================================
# deterministic gossip / anti-entropy simulator
# =================================================================================================


@dataclass(frozen=True)
class Partition:
    """Messages between ``side`` and the other replicas are dropped during [start_s, end_s)."""

    start_s: float
    end_s: float
    side: frozenset[int]

    def cuts(self, t: float, a: int, b: int) -> bool:
        """True if a message from ``a`` to ``b`` sent at ``t`` is dropped."""
        return self.start_s <= t < self.end_s and ((a in self.side) != (b in self.side))


AntiEntropy = Literal["merkle", "digest", "original", "off"]


@dataclass(frozen=True)
class SimConfig:
    """Simulation parameters (defaults = the original's gossip and anti-entropy constants).

    Workload: ``n_writes`` local writes at uniform times in [0, ``write_window_s``), each at a
    random replica on one of ``n_keys`` keys; key ``k`` holds CRDT type ``k mod 5`` of
    (g_counter, pn_counter, lww_register, or_set, lww_map). ``n_shared_keys`` more keys start
    identical on every replica (a large, mostly in-sync store: what Merkle comparison is for).
    Latency is ``latency_s`` + U(0, ``jitter_s``) per message; each message is lost with
    probability ``loss``; messages across an active :class:`Partition` are dropped.
    """

    n: int = 16
    fanout: int = 3
    gossip_interval_s: float = 5.0
    ttl: int = 10
    gossip: bool = True
    anti_entropy: AntiEntropy = "merkle"
    anti_entropy_interval_s: float = 30.0
    merkle_buckets: int = 64
    loss: float = 0.0
    latency_s: float = 0.05
    jitter_s: float = 0.02
    partitions: tuple[Partition, ...] = ()
    n_keys: int = 40
    n_shared_keys: int = 0
    n_writes: int = 200
    write_window_s: float = 60.0
    seen_ttl_s: float = 120.0
    header_bytes: int = 64
    max_time_s: float = 1800.0
    seed: int = 0

    def validate(self) -> SimConfig:
        """Raise :class:`~dwcpkit.errors.ParameterError` on nonsense; returns ``self``."""
        if self.n < 2:
            raise ParameterError(f"n (replicas) must be >= 2, got {self.n}")
        if not (0 <= self.loss < 1):
            raise ParameterError(f"loss is a probability in [0, 1), got {self.loss}")
        if self.fanout < 1 or self.ttl < 0:
            raise ParameterError(f"fanout must be >= 1 and ttl >= 0, got fanout={self.fanout}, ttl={self.ttl}")
        if self.anti_entropy not in ("merkle", "digest", "original", "off"):
            raise ParameterError(f"anti_entropy must be merkle, digest, original or off, got {self.anti_entropy!r}")
        for nm in ("gossip_interval_s", "anti_entropy_interval_s", "max_time_s", "write_window_s"):
            if getattr(self, nm) <= 0:
                raise ParameterError(f"{nm} must be > 0, got {getattr(self, nm)}")
        if self.n_keys < 1 or self.n_writes < 1 or self.n_shared_keys < 0:
            raise ParameterError("n_keys and n_writes must be >= 1 and n_shared_keys >= 0")
        for p in self.partitions:
            if not isinstance(p, Partition) or p.end_s < p.start_s or not p.side:
                raise ParameterError(f"partitions must be Partition(start_s <= end_s, non-empty side), got {p!r}")
            if any(not (0 <= i < self.n) for i in p.side):
                raise ParameterError(f"partition side {sorted(p.side)} names replicas outside 0..{self.n - 1}")
        return self


@dataclass
class SimResult:
    """Outcome of :func:`simulate`. Times in simulated seconds."""

    config: SimConfig
    converged: bool
    converged_at_s: float | None
    last_write_s: float
    heal_s: float
    correct: bool
    bytes_gossip: int
    bytes_anti_entropy: int
    messages_sent: int
    messages_lost: int
    replicas: list[Replica] = field(repr=False)

    @property
    def bytes_total(self) -> int:
        return self.bytes_gossip + self.bytes_anti_entropy

    @property
    def convergence_time_s(self) -> float | None:
        """Seconds from the last write (or the last partition heal, if later) to convergence."""
        if self.converged_at_s is None:
            return None
        return max(0.0, self.converged_at_s - max(self.last_write_s, self.heal_s))

    def as_row(self) -> dict[str, Any]:
        """Flat dict for tables."""
        c = self.config
        return {
            "n": c.n, "keys": c.n_keys + c.n_shared_keys, "loss": c.loss,
            "partitioned": bool(c.partitions), "gossip": c.gossip,
            "anti_entropy": c.anti_entropy, "seed": c.seed, "converged": self.converged,
            "correct": self.correct, "convergence_time_s": self.convergence_time_s,
            "bytes_total": self.bytes_total, "bytes_gossip": self.bytes_gossip,
            "bytes_anti_entropy": self.bytes_anti_entropy, "messages_sent": self.messages_sent,
            "messages_lost": self.messages_lost,
        }


_KINDS: tuple[type[CRDT], ...] = (GCounter, PNCounter, LWWRegister, ORSet, LWWMap)


class _Sim:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.reps = [Replica(f"r{i:03d}", cfg.merkle_buckets) for i in range(cfg.n)]
        self.q: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.now = 0.0
        self.outbox: list[list[dict]] = [[] for _ in range(cfg.n)]
        self.seen: list[dict[str, float]] = [{} for _ in range(cfg.n)]
        self.bytes = {"gossip": 0, "ae": 0}
        self.sent = self.lost = 0
        self.oracle: dict[str, CRDT] = {}
        self.msg_ids = 0

    # -- plumbing ---------------------------------------------------------------------------
    def push(self, t: float, kind: str, data: Any) -> None:
        self.seq += 1
        heapq.heappush(self.q, (t, self.seq, kind, data))

    def send(self, src: int, dst: int, channel: str, kind: str, body: dict, size: int) -> None:
        self.sent += 1
        self.bytes[channel] += self.cfg.header_bytes + size
        dropped = self.rng.random() < self.cfg.loss or any(
            p.cuts(self.now, src, dst) for p in self.cfg.partitions)
        delay = self.cfg.latency_s + self.rng.random() * self.cfg.jitter_s
        if dropped:
            self.lost += 1
            return
        self.push(self.now + delay, "msg", (src, dst, kind, body))

    # -- workload ---------------------------------------------------------------------------
    def write(self, node: int, key: str) -> None:
        rep = self.reps[node]
        kind = _KINDS[int(key[1:]) % len(_KINDS)]
        nid = rep.node
        r = self.rng

        def op(c: CRDT) -> None:
            if isinstance(c, GCounter):
                c.increment(nid, r.randint(1, 5))
            elif isinstance(c, PNCounter):
                (c.increment if r.random() < 0.6 else c.decrement)(nid, r.randint(1, 5))
            elif isinstance(c, LWWRegister):
                c.set(r.randint(0, 10**6), nid)
            elif isinstance(c, ORSet):
                e = r.randint(0, 9)
                if c.contains(e) and r.random() < 0.4:
                    c.remove(e)
                else:
                    c.add(e, nid)
            else:
                assert isinstance(c, LWWMap)
                f = f"f{r.randint(0, 4)}"
                if f in c.value and r.random() < 0.3:
                    c.delete(f, nid)
                else:
                    c.set(f, r.randint(0, 10**6), nid)

        rep.mutate(key, kind, op)
        st = rep.store[key]
        self.oracle[key] = st.copy() if key not in self.oracle else self.oracle[key].merge(st)
        if self.cfg.gossip:
            self.msg_ids += 1
            msg = {"id": f"{rep.node}#{self.msg_ids}", "key": key, "state": rep.canonical(key),
                   "ttl": self.cfg.ttl, "path": (node,)}
            self.seen[node][msg["id"]] = self.now
            self.outbox[node].append(msg)

    # -- gossip -----------------------------------------------------------------------------
    def gossip_tick(self, node: int) -> None:
        msgs, self.outbox[node] = self.outbox[node], []
        for m in msgs:
            peers = [p for p in range(self.cfg.n) if p != node and p not in m["path"]]
            size = 16 + len(m["key"]) + len(m["state"]) + 2 + 4 * len(m["path"])  # id, key, state, ttl, path
            for p in self.rng.sample(peers, min(self.cfg.fanout, len(peers))):
                self.send(node, p, "gossip", "GOSSIP", m, size)
        self.push(self.now + self.cfg.gossip_interval_s, "gossip", node)

    def on_gossip(self, dst: int, m: dict) -> bool:
        seen = self.seen[dst]
        if m["id"] in seen:
            return False
        seen[m["id"]] = self.now
        if len(seen) > 4096:  # time-based expiry (not a wipe)
            cutoff = self.now - self.cfg.seen_ttl_s
            for k in [k for k, t in seen.items() if t < cutoff]:
                del seen[k]
        changed = self.reps[dst].merge_key(m["key"], m["state"])
        if m["ttl"] > 0:
            self.outbox[dst].append(dict(m, ttl=m["ttl"] - 1, path=m["path"] + (dst,)))
        return changed

    # -- anti-entropy -----------------------------------------------------------------------
    def ae_tick(self, node: int) -> None:
        peer = self.rng.choice([p for p in range(self.cfg.n) if p != node])
        kind, body, size = _ae_open(self.reps[node], self.cfg.anti_entropy)
        self.send(node, peer, "ae", kind, body, size)
        self.push(self.now + self.cfg.anti_entropy_interval_s, "ae", node)

    def on_ae(self, src: int, dst: int, kind: str, body: dict) -> bool:
        changed, replies = _ae_handle(self.reps[dst], kind, body)
        for rkind, rbody, size in replies:
            self.send(dst, src, "ae", rkind, rbody, size)
        return changed

    # -- main loop --------------------------------------------------------------------------
    def converged(self) -> bool:
        r0 = self.reps[0].root()
        return all(r.root() == r0 for r in self.reps[1:])

    def run(self) -> SimResult:
        cfg = self.cfg
        writes = sorted(
            (self.rng.uniform(0, cfg.write_window_s), self.rng.randrange(cfg.n), f"k{self.rng.randrange(cfg.n_keys)}")
            for _ in range(cfg.n_writes)
        )
        for t, node, key in writes:
            self.push(t, "write", (node, key))
        for j in range(cfg.n_shared_keys):  # identical baseline on every replica
            st = LWWRegister({"baseline": j}, (1, self.reps[0].node))
            canon = st.canonical()
            dig = hashlib.sha256(canon).digest()
            for r in self.reps:
                r._share(f"s{j}", st, canon, dig)
            self.oracle[f"s{j}"] = st
        last_write = writes[-1][0]
        for i in range(cfg.n):
            if cfg.gossip:
                self.push(self.rng.uniform(0, cfg.gossip_interval_s), "gossip", i)
            if cfg.anti_entropy != "off":
                self.push(self.rng.uniform(0, cfg.anti_entropy_interval_s), "ae", i)
        converged_at = None
        while self.q:
            t, _, kind, data = heapq.heappop(self.q)
            if t > cfg.max_time_s:
                break
            self.now = t
            changed = False
            if kind == "write":
                self.write(*data)
                changed = True
            elif kind == "gossip":
                self.gossip_tick(data)
            elif kind == "ae":
                self.ae_tick(data)
            else:
                src, dst, mkind, body = data
                changed = self.on_gossip(dst, body) if mkind == "GOSSIP" else self.on_ae(src, dst, mkind, body)
            if changed and t >= last_write and self.converged():
                converged_at = t
                break
        correct = converged_at is not None and all(
            r.store.get(k) == st for r in self.reps for k, st in self.oracle.items()
        )
        heal = max((p.end_s for p in cfg.partitions), default=0.0)
        return SimResult(cfg, converged_at is not None, converged_at, last_write, heal, correct,
                         self.bytes["gossip"], self.bytes["ae"], self.sent, self.lost, self.reps)


def _ae_open(rep: Replica, mode: str) -> tuple[str, dict, int]:
    """First message of an anti-entropy session started by ``rep``: (kind, body, payload bytes)."""
    if mode == "merkle":
        return "AE_ROOT", {"root": rep.root()}, 32
    if mode == "digest":
        d = rep.digest()
        return "AE_DIGEST", {"digest": d}, _digest_size(d)
    if mode == "original":  # DIGEST_REQUEST, answered with the peer's digest
        return "DIGEST_REQUEST", {}, 0
    raise ParameterError(f"anti-entropy method must be merkle, digest or original, got {mode!r}")


def _states(rep: Replica, keys: Iterable[str]) -> dict[str, bytes]:
    return {k: rep.canonical(k) for k in sorted(keys) if k in rep.store}


def _ae_handle(rep: Replica, kind: str, body: dict) -> tuple[bool, list[tuple[str, dict, int]]]:
    """Handle one anti-entropy message at ``rep``: (state changed, replies to the sender)."""
    changed = False
    out: list[tuple[str, dict, int]] = []
    if kind == "AE_ROOT":
        if body["root"] != rep.root():
            hs = rep.bucket_hashes()
            out.append(("AE_BUCKETS", {"hashes": hs}, 32 * len(hs)))
    elif kind == "AE_BUCKETS":
        mine_h = rep.bucket_hashes()
        diff = [b for b, h in enumerate(body["hashes"]) if h != mine_h[b]]
        keys = {b: rep.bucket_keys(b) for b in diff}
        out.append(("AE_KEYS", {"buckets": keys}, 2 * len(diff) + sum(_digest_size(d) for d in keys.values())))
    elif kind in ("AE_KEYS", "AE_DIGEST"):
        if kind == "AE_KEYS":
            theirs: dict[str, bytes] = {}
            mine: dict[str, bytes] = {}
            for b, d in body["buckets"].items():
                theirs.update(d)
                mine.update(rep.bucket_keys(b))
        else:
            theirs, mine = body["digest"], rep.digest()
        only_me = mine.keys() - theirs.keys()  # the peer's Missing: pushed
        only_them = theirs.keys() - mine.keys()  # ours: pulled
        stale = {k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k]}  # both ways
        states = _states(rep, only_me | stale)
        want = sorted(only_them | stale)
        if states or want:
            out.append(("AE_STATES", {"states": states, "want": want},
                        _states_size(states) + sum(len(k) + 1 for k in want)))
    elif kind == "AE_STATES":
        for k, st in body["states"].items():
            changed |= rep.merge_key(k, st)  # rebuilt from the remote type tag
        if body.get("want"):
            states = _states(rep, body["want"])
            if states:
                out.append(("AE_STATES", {"states": states, "want": []}, _states_size(states)))
    elif kind == "DIGEST_REQUEST":  # --- the original protocol, defects included ---
        d = rep.digest()
        out.append(("DIGEST", {"digest": d}, _digest_size(d)))
    elif kind == "DIGEST":
        theirs, mine = body["digest"], rep.digest()
        push = mine.keys() - theirs.keys()  # "Theirs": keys only we have, pushed
        missing = theirs.keys() - mine.keys()  # requested; the response is dropped (no local type)
        # stale keys (on both sides, different checksums) were counted and never exchanged
        if push:
            st = _states(rep, push)
            out.append(("STATES_PUSH", {"states": st}, _states_size(st)))
        if missing:
            out.append(("STATES_REQUEST", {"keys": sorted(missing)}, sum(len(k) + 1 for k in missing)))
    elif kind == "STATES_PUSH":
        for k, st in body["states"].items():
            changed |= rep.merge_key(k, st)
    elif kind == "STATES_REQUEST":
        st = _states(rep, body["keys"])
        out.append(("STATES_RESPONSE", {"states": st}, _states_size(st)))
    elif kind == "STATES_RESPONSE":
        for k, st in body["states"].items():  # the original deserialised by the LOCAL type: absent -> dropped
            if k in rep.store:
                changed |= rep.merge_key(k, st)
    else:
        raise ProtocolError(f"unknown anti-entropy message {kind!r}")
    return changed, out


def sync_pair(initiator: Replica, responder: Replica, method: Literal["merkle", "digest", "original"] = "merkle",
              *, header_bytes: int = 64) -> dict[str, int]:
    """Run one anti-entropy session between two replicas in-process (no loss, no latency).

    Returns ``{"messages": …, "bytes": …}`` (payload + ``header_bytes`` per message).

    Example
    -------
    >>> a, b = Replica("a"), Replica("b")
    >>> a.mutate("x", GCounter, lambda c: c.increment("a", 2))
    >>> b.mutate("y", LWWRegister, lambda r: r.set("hello", "b"))
    >>> sync_pair(a, b)["messages"], a.root() == b.root(), b.store["x"].value, a.store["y"].value
    (5, True, 2, 'hello')
    >>> a2, b2 = Replica("a"), Replica("b")
    >>> b2.mutate("y", LWWRegister, lambda r: r.set("hello", "b"))
    >>> _ = sync_pair(a2, b2, "original"); "y" in a2.store      # the original could not pull
    False
    """
    kind, body, size = _ae_open(initiator, method)
    queue = [(responder, initiator, kind, body, size)]
    messages, nbytes = 0, 0
    while queue:
        dst, src, kind, body, size = queue.pop(0)
        messages += 1
        nbytes += header_bytes + size
        _, replies = _ae_handle(dst, kind, body)
        queue.extend((src, dst, k, b, s) for k, b, s in replies)
    return {"messages": messages, "bytes": nbytes}


def _digest_size(d: Mapping[str, bytes]) -> int:
    return sum(len(k) + 1 + len(v) for k, v in d.items())


def _states_size(states: Mapping[str, bytes]) -> int:
    return sum(len(k) + 1 + len(v) for k, v in states.items())


def simulate(config: SimConfig | None = None, **overrides: Any) -> SimResult:
    """Run one seeded simulation of N replicas syncing by gossip and anti-entropy.

    The run stops at the first moment after the last write when every replica has the same
    Merkle root (converged) or at ``max_time_s``. ``correct`` additionally checks that every
    replica equals, key by key, the join of every state ever written (nothing lost, nothing
    invented). Same config, same result.

    Example
    -------
    >>> r = simulate(n=6, n_writes=30, anti_entropy="off", seed=3)
    >>> r.converged, r.bytes_anti_entropy
    (True, 0)
    >>> cut = Partition(0.0, 90.0, frozenset({0, 1, 2}))
    >>> simulate(n=6, n_writes=30, anti_entropy="off", partitions=(cut,), seed=3).converged
    False
    """
    cfg = replace(config or SimConfig(), **overrides).validate()
    return _Sim(cfg).run()


def results_table(results: Sequence[SimResult]) -> pl.DataFrame:
    """One row per :class:`SimResult` (see :meth:`SimResult.as_row`).

    Example
    -------
    >>> results_table([simulate(n=4, n_writes=10)]).select("n", "converged").rows()
    [(4, True)]
    """
    if not results:
        raise ParameterError("results_table needs at least one SimResult")
    return pl.DataFrame([r.as_row() for r in results])
