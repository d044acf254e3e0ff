"""ACP — adaptive consensus: Raft and PBFT simulators, Byzantine detection, the adaptive rule.

This is the public face of the consensus part of the DWCP v3 reference implementation. It
re-exports the pieces that live in sibling modules and adds the decision logic:

================================  =============================================================
message-level simulators          :func:`simulate_raft`, :func:`simulate_pbft` (and the
                                  :class:`RaftCluster` / :class:`PbftCluster` they drive): every
                                  message, HMAC-authenticated, seeded, with fault injection
                                  (:class:`Crash`, :class:`Partition`, :class:`Delay`,
                                  :class:`Loss`, :class:`Forge`, Byzantine replicas)
fast path                         :func:`fast_raft`, :func:`fast_pbft`: numba normal-case
                                  engines that reproduce the simulators' fault-free runs
                                  exactly (same decisions, same times)
detection and reputation          :class:`ByzantineDetector`, :class:`ReputationSystem`
                                  (original constants, one lock each, no re-entrant calls)
adaptive rule                     :func:`select_protocol` (mode + trust -> Raft or PBFT),
                                  :func:`threat_level`, :func:`security_mode`, :class:`ACPRouter`
quorum arithmetic                 :func:`pbft_quorum`, the ProBFT formula family
                                  (:func:`quorum_sqrt`, :func:`quorum_classical`,
                                  :func:`quorum_probabilistic`, :func:`quorum_adaptive`) and
                                  :func:`quorums_intersect`
property-test helper              :func:`random_schedule`
================================  =============================================================

Deviations from the original (``backend/core/network/dwcp/v3/consensus``, reference digest
§7 and §9), besides the fixes listed in each module:

- The router reports *measured* (simulated) latencies, not the original's constants
  (100 ms / 2 s / 500 ms), and never sends work to Raft while Byzantine nodes are
  suspected (the original's threat analyzer recommended Raft up to 10 % Byzantine).
- ProBFT's ``ceil(sqrt(n))`` quorum is kept only as a documented function: it breaks
  quorum intersection (``2q - n >= f + 1`` fails, e.g. n = 100, f = 33, q = 10). The
  simulators use :func:`pbft_quorum`, the smallest quorum that intersects safely.
- T-PBFT/EigenTrust, Bullshark and ProBFT's VRF leader election are not implemented.

Example
-------
>>> select_protocol("hybrid", trust=0.9).protocol, select_protocol("hybrid", trust=0.5).protocol
('raft', 'pbft')
>>> r = simulate_pbft(4, decisions=10, seed=1, byzantine={3: "equivocate"})
>>> r.safety_violations(), len(r.decisions)
([], 10)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal

from dwcpkit.errors import ParameterError
from dwcpkit.protocol.acp_fast import FastResult, fast_pbft, fast_raft
from dwcpkit.protocol.acp_net import (
    Crash,
    Decision,
    Delay,
    Fault,
    Forge,
    Keyring,
    LatencyModel,
    Loss,
    Msg,
    Partition,
    fault_end,
)
from dwcpkit.protocol.acp_pbft import BYZANTINE_BEHAVIOURS, PbftConfig, pbft_quorum
from dwcpkit.protocol.acp_pbft_sim import PbftCluster, PbftResult, simulate_pbft
from dwcpkit.protocol.acp_raft import RaftCluster, RaftConfig, RaftResult, simulate_raft
from dwcpkit.protocol.acp_trust import (
    VIOLATION_WEIGHTS,
    ByzantineDetector,
    DetectorConfig,
    Evidence,
    ReputationConfig,
    ReputationSystem,
    Violation,
    network_trust,
)

__all__ = [
    # simulators
    "simulate_raft", "simulate_pbft", "RaftCluster", "PbftCluster", "RaftConfig", "PbftConfig",
    "RaftResult", "PbftResult", "Decision", "LatencyModel", "Keyring", "Msg",
    "Crash", "Partition", "Delay", "Loss", "Forge", "Fault", "fault_end", "BYZANTINE_BEHAVIOURS",
    # fast path
    "fast_raft", "fast_pbft", "FastResult",
    # trust
    "ByzantineDetector", "DetectorConfig", "ReputationSystem", "ReputationConfig", "Violation", "Evidence",
    "VIOLATION_WEIGHTS", "network_trust",
    # quorums
    "pbft_f", "pbft_quorum", "quorum_pbft", "quorum_sqrt", "quorum_classical", "quorum_probabilistic",
    "quorum_adaptive", "quorums_intersect", "byzantine_tolerant",
    # adaptive rule
    "MODES", "ProtocolChoice", "threat_level", "select_protocol", "security_mode", "v1_decision_tree",
    "ACPRouter", "ProposeResult",
    # helpers
    "random_schedule",
]

MODES = ("datacenter", "internet", "hybrid")


# ---------------------------------------------------------------------------- quorums


def pbft_f(n: int) -> int:
    """Faults tolerated by ``n`` replicas: ``(n - 1) // 3`` for n >= 4, else 0.

    >>> [pbft_f(n) for n in (1, 3, 4, 7, 10, 100)]
    [0, 0, 1, 2, 3, 33]
    """
    return (n - 1) // 3 if n >= 4 else 0


def byzantine_tolerant(n: int, f: int) -> bool:
    """``n >= 3f + 1``.

    >>> byzantine_tolerant(4, 1), byzantine_tolerant(6, 2)
    (True, False)
    """
    return n >= 3 * f + 1


def quorum_pbft(f: int) -> int:
    """The original's PBFT commit quorum ``2f + 1`` (safe only when ``n = 3f + 1``)."""
    return 2 * f + 1


def quorum_sqrt(n: int) -> int:
    """ProBFT's ``ceil(sqrt(n))`` — what the original engine used. **Unsafe**: see
    :func:`quorums_intersect`.

    >>> quorum_sqrt(100), quorums_intersect(quorum_sqrt(100), 100, 33)
    (10, False)
    """
    return math.isqrt(n - 1) + 1 if n > 0 else 0


def quorum_classical(n: int, f: int) -> int:
    """Classical Byzantine quorum ``floor((n + f) / 2) + 1`` (always intersects safely).

    >>> quorum_classical(100, 33), quorums_intersect(quorum_classical(100, 33), 100, 33)
    (67, True)
    """
    return (n + f) // 2 + 1


def quorum_probabilistic(n: int, f: int, confidence: float) -> int:
    """The original's "probabilistic" quorum: ``max(ceil(sqrt n), classical) + ceil(f * confidence)``,
    capped at ``n`` (defined but unused by its engine).

    >>> quorum_probabilistic(100, 33, 0.5)
    84
    """
    if not 0.0 <= confidence <= 1.0:
        raise ParameterError(f"confidence must be in [0, 1], got {confidence}")
    return min(n, max(quorum_sqrt(n), quorum_classical(n, f)) + math.ceil(f * confidence))


def quorum_adaptive(n: int, f: int, confidence: float, *, latency_ms: float = 0.0, failure_rate: float = 0.0,
                    byzantine_ratio: float = 0.0, active: int | None = None) -> int:
    """The original's adaptive quorum: probabilistic x (1 + 0.1 if latency > 100 ms + failure
    rate if > 0.1 + Byzantine ratio if > 0.2), capped at the active node count.

    >>> quorum_adaptive(100, 33, 0.5, latency_ms=150)
    92
    """
    q = quorum_probabilistic(n, f, confidence)
    factor = 1.0
    if latency_ms > 100:
        factor += 0.1
    if failure_rate > 0.1:
        factor += failure_rate
    if byzantine_ratio > 0.2:
        factor += byzantine_ratio
    cap = n if active is None else active
    return min(cap, int(q * factor))


def quorums_intersect(q: int, n: int, f: int) -> bool:
    """True iff any two quorums of size ``q`` among ``n`` share an honest replica: ``2q - n >= f + 1``.

    >>> quorums_intersect(pbft_quorum(5), 5, 1), quorums_intersect(quorum_pbft(1), 5, 1)
    (True, False)
    """
    return 2 * q - n >= f + 1


# ---------------------------------------------------------------------------- adaptive rule


def threat_level(byzantine_ratio: float) -> str:
    """The original's bands: <= 10 % low, <= 20 % medium, <= 33 % high, above critical.

    Kept for reporting only (the original mapped them to raft/pbft/probft/tpbft).

    >>> [threat_level(x) for x in (0.0, 0.15, 0.3, 0.4)]
    ['low', 'medium', 'high', 'critical']
    """
    if not 0.0 <= byzantine_ratio <= 1.0:
        raise ParameterError(f"byzantine_ratio must be in [0, 1], got {byzantine_ratio}")
    if byzantine_ratio <= 0.10:
        return "low"
    if byzantine_ratio <= 0.20:
        return "medium"
    if byzantine_ratio <= 0.33:
        return "high"
    return "critical"


@dataclass(frozen=True)
class ProtocolChoice:
    """What :func:`select_protocol` decided and why."""

    protocol: Literal["raft", "pbft"]
    fallback: Literal["pbft"] | None
    threat: str
    safe: bool
    reason: str


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {MODES}, got {mode!r}")


def select_protocol(mode: str, trust: float = 1.0, *, byzantine_ratio: float = 0.0) -> ProtocolChoice:
    """Pick Raft or PBFT from the network mode and the network trust.

    Rules (in order):

    1. Byzantine nodes suspected (``byzantine_ratio > 0``) -> PBFT, never Raft (the original
       recommended Raft up to 10 %). Above 1/3 no BFT protocol is safe: PBFT, ``safe=False``.
    2. ``datacenter`` -> Raft (crash faults only; the original's datacenter policy skips
       Byzantine checks), with no fallback.
    3. ``internet`` -> PBFT.
    4. ``hybrid`` -> Raft with PBFT fallback when ``trust > 0.8`` (the mode-security
       threshold for datacenter checks), else PBFT.

    Parameters
    ----------
    mode : {"datacenter", "internet", "hybrid"}
    trust : float
        Network trust in [0, 1] (:func:`network_trust` /
        :meth:`ReputationSystem.network_trust`).
    byzantine_ratio : float
        Fraction of nodes suspected or confirmed Byzantine.

    Examples
    --------
    >>> select_protocol("datacenter").protocol
    'raft'
    >>> c = select_protocol("datacenter", byzantine_ratio=0.05)
    >>> c.protocol, c.threat
    ('pbft', 'low')
    >>> select_protocol("internet", byzantine_ratio=0.5).safe
    False
    """
    _check_mode(mode)
    if not 0.0 <= trust <= 1.0:
        raise ParameterError(f"trust must be in [0, 1], got {trust}")
    threat = threat_level(byzantine_ratio)
    if byzantine_ratio > 1.0 / 3.0:
        return ProtocolChoice("pbft", None, threat, False,
                              f"{byzantine_ratio:.0%} Byzantine exceeds 1/3: no BFT protocol is safe")
    if byzantine_ratio > 0.0:
        return ProtocolChoice("pbft", None, threat, True, "Byzantine nodes suspected: crash-fault Raft is unsafe")
    if mode == "datacenter":
        return ProtocolChoice("raft", None, threat, True, "datacenter: crash faults only")
    if mode == "internet":
        return ProtocolChoice("pbft", None, threat, True, "internet: Byzantine-fault tolerance required")
    if trust > 0.8:
        return ProtocolChoice("raft", "pbft", threat, True, f"hybrid, trust {trust:.2f} > 0.8: Raft, PBFT on failure")
    return ProtocolChoice("pbft", None, threat, True, f"hybrid, trust {trust:.2f} <= 0.8: PBFT")


def security_mode(trust: float, current: str = "hybrid", *, since_change_s: float = math.inf,
                  min_interval_s: float = 300.0) -> str:
    """Next security mode from network trust, with hysteresis and a 5-min minimum interval.

    hybrid -> datacenter above 0.8, -> internet below 0.4 (the original's thresholds);
    datacenter -> hybrid below 0.7, internet -> hybrid above 0.5 (the 0.1 hysteresis; the
    original could never leave datacenter/internet again).

    >>> security_mode(0.9), security_mode(0.75, "datacenter"), security_mode(0.65, "datacenter")
    ('datacenter', 'datacenter', 'hybrid')
    >>> security_mode(0.3, "hybrid", since_change_s=60.0)      # too soon to switch
    'hybrid'
    """
    _check_mode(current)
    if not 0.0 <= trust <= 1.0:
        raise ParameterError(f"trust must be in [0, 1], got {trust}")
    if since_change_s < min_interval_s:
        return current
    if current == "hybrid":
        if trust > 0.8:
            return "datacenter"
        if trust < 0.4:
            return "internet"
        return "hybrid"
    if current == "datacenter":
        return "hybrid" if trust < 0.7 else "datacenter"
    return "hybrid" if trust > 0.5 else "internet"


def v1_decision_tree(regions: int, latency_ms: float, conflict_rate: float = 0.0) -> str:
    """The v1 ACP engine's protocol choice (``acp_engine.go``), kept for comparison.

    >>> v1_decision_tree(2, 20.0), v1_decision_tree(5, 300.0), v1_decision_tree(5, 100.0, 0.2)
    ('raft', 'eventual', 'epaxos')
    """
    if regions <= 3 and latency_ms < 50:
        return "raft"
    if latency_ms > 200:
        return "eventual"
    if conflict_rate > 0.1:
        return "epaxos"
    if regions > 3 and latency_ms < 200:
        return "hybrid"
    return "paxos"


# ---------------------------------------------------------------------------- router


@dataclass(frozen=True)
class ProposeResult:
    """Outcome of :meth:`ACPRouter.propose` (latency in simulated ms)."""

    value: Any
    mode: str
    protocol: str | None
    committed: bool
    latency_ms: float
    slot: int | None
    failover: bool
    choice: ProtocolChoice


@dataclass
class _Lane:
    cluster: Any
    client: Any


class ACPRouter:
    """``propose(value, mode)`` over simulated Raft and PBFT clusters (the original's ACPv3 shape).

    datacenter -> Raft with a 100 ms timeout; internet -> PBFT with 5 s; hybrid -> Raft
    first when trust allows, then PBFT on failure (counted in ``failovers``). Latencies are
    measured in simulated time; ``mean_latency_ms`` is the original's EWMA
    ``(9 * old + new) / 10``.

    Parameters
    ----------
    raft_n, pbft_n : int
        Cluster sizes.
    seed : int
    raft_latency, pbft_latency : LatencyModel
        Defaults: datacenter (0.25 ms) for Raft, WAN (50 ms) for PBFT.
    reputation : ReputationSystem, optional
        Source of network trust for hybrid mode when ``trust`` is not given.
    warmup_ms : float
        Simulated time run at construction so that Raft has a leader.

    Examples
    --------
    >>> r = ACPRouter(seed=1)
    >>> a = r.propose("x", "datacenter")
    >>> a.protocol, a.committed, a.latency_ms < 100
    ('raft', True, True)
    >>> for i in range(3):
    ...     r.raft.net.crash_node(i)                      # Raft loses its majority
    >>> b = r.propose("y", "hybrid", trust=0.9)
    >>> b.protocol, b.failover, r.failovers
    ('pbft', True, 1)
    """

    RAFT_TIMEOUT_MS = 100.0
    PBFT_TIMEOUT_MS = 5000.0

    def __init__(self, raft_n: int = 5, pbft_n: int = 4, *, seed: int = 0,
                 raft_latency: LatencyModel | None = None, pbft_latency: LatencyModel | None = None,
                 raft_config: RaftConfig | None = None, pbft_config: PbftConfig | None = None,
                 byzantine: dict[int, str] | None = None, reputation: ReputationSystem | None = None,
                 warmup_ms: float = 2000.0):
        rc = RaftCluster(raft_n, seed=seed, latency=raft_latency or LatencyModel.preset("datacenter"),
                         config=raft_config, requests=0)
        pc = PbftCluster(pbft_n, seed=seed + 1, latency=pbft_latency or LatencyModel.preset("wan"),
                         config=pbft_config or PbftConfig.preset("wan"), byzantine=byzantine, requests=0)
        for c in (rc, pc):
            c.start_clients()
            c.run(warmup_ms)
        self.raft = rc
        self.pbft = pc
        self._lanes = {"raft": _Lane(rc, rc.clients[0]), "pbft": _Lane(pc, pc.clients[0])}
        self.reputation = reputation
        self.count = 0
        self.failovers = 0
        self.mean_latency_ms: float | None = None
        self.history: list[ProposeResult] = []

    def _try(self, protocol: str, value: Any, timeout_ms: float) -> tuple[bool, float, int | None]:
        lane = self._lanes[protocol]
        cl, client = lane.cluster, lane.client
        book = cl.book
        before = len(book.decisions)
        client.queue.append(value)
        client.requests = len(client.queue)
        client.done = False
        # align the client's request counter with the queue (abandoned requests stay abandoned)
        if protocol == "raft":
            client.rid = len(client.queue) - 1
        else:
            client.t = len(client.queue) - 1
        start = cl.net.now
        book.stop_after_ms = start
        client._next()
        cl.run(start + timeout_ms)
        book.stop_after_ms = None
        if len(book.decisions) > before:
            d = book.decisions[-1]
            return True, d.end_ms - start, d.slot
        client.done = True  # abandon: ignore late replies and stop retrying
        return False, cl.net.now - start, None

    def propose(self, value: Any, mode: str, *, trust: float | None = None,
                byzantine_ratio: float = 0.0) -> ProposeResult:
        """Commit ``value`` with the protocol :func:`select_protocol` picks for ``mode``."""
        _check_mode(mode)
        if trust is None:
            trust = self.reputation.network_trust(now=0.0) if self.reputation is not None else 1.0
        choice = select_protocol(mode, trust, byzantine_ratio=byzantine_ratio)
        plan = [choice.protocol] + ([choice.fallback] if choice.fallback else [])
        if mode == "internet" or choice.protocol == "pbft":
            plan = ["pbft"]
        total = 0.0
        failover = False
        res = None
        for k, proto in enumerate(plan):
            timeout = self.RAFT_TIMEOUT_MS if proto == "raft" else self.PBFT_TIMEOUT_MS
            ok, lat, slot = self._try(proto, value, timeout)
            total += lat
            if ok:
                res = ProposeResult(value, mode, proto, True, total, slot, failover, choice)
                break
            if k + 1 < len(plan):
                failover = True
                self.failovers += 1
        if res is None:
            res = ProposeResult(value, mode, None, False, total, None, failover, choice)
        else:
            self.count += 1
            self.mean_latency_ms = res.latency_ms if self.mean_latency_ms is None else \
                (9 * self.mean_latency_ms + res.latency_ms) / 10
        self.history.append(res)
        return res

    def healthy(self, mode: str) -> bool:
        """datacenter: a live Raft leader; internet: PBFT with a quorum of live replicas; hybrid: either."""
        _check_mode(mode)
        raft_ok = self.raft.leader() is not None
        live = sum(1 for r in self.pbft.replicas if not r.crashed and r.id not in self.pbft.byzantine)
        pbft_ok = live >= pbft_quorum(self.pbft.n)
        return {"datacenter": raft_ok, "internet": pbft_ok, "hybrid": raft_ok or pbft_ok}[mode]


# ---------------------------------------------------------------------------- schedules


def random_schedule(protocol: Literal["raft", "pbft"], n: int, seed: int, *, horizon_ms: float = 3000.0,
                    max_faults: int = 4, crashes: int | None = None, byzantine: int | None = None,
                    behaviours: tuple[str, ...] = BYZANTINE_BEHAVIOURS) -> tuple[list, dict[int, str]]:
    """A random fault schedule for property tests: crashes (with restarts), partitions,
    delays and loss, all healing before ``1.5 * horizon_ms``; plus Byzantine replicas for PBFT.

    By default Raft gets up to ``(n - 1) // 2`` crashing nodes and PBFT up to ``f`` Byzantine
    replicas and one crashing replica (so more than ``f`` can misbehave at once, which must
    not break safety even though it may stall progress while it lasts).

    Returns
    -------
    (faults, byzantine)

    >>> faults, byz = random_schedule("pbft", 4, seed=3)
    >>> all(fault_end(f) < 4500 for f in faults), len(byz) <= 1
    (True, True)
    """
    if protocol not in ("raft", "pbft"):
        raise ParameterError(f"protocol must be 'raft' or 'pbft', got {protocol!r}")
    rng = random.Random(f"schedule|{protocol}|{n}|{seed}")
    faults: list[Fault] = []
    if crashes is None:
        crashes = rng.randint(0, (n - 1) // 2) if protocol == "raft" else rng.randint(0, 1)
    for node in rng.sample(range(n), min(crashes, n)):
        a = rng.uniform(0, horizon_ms)
        faults.append(Crash(node, a, a + rng.uniform(50, horizon_ms / 2)))
    for _ in range(rng.randint(1, max_faults)):
        kind = rng.choice(("partition", "delay", "loss"))
        a = rng.uniform(0, horizon_ms)
        b = a + rng.uniform(50, horizon_ms / 2)
        if kind == "partition":
            nodes = list(range(n))
            rng.shuffle(nodes)
            cut = rng.randint(1, n - 1)
            faults.append(Partition.of(nodes[:cut], nodes[cut:], at_ms=a, until_ms=b))
        elif kind == "delay":
            faults.append(Delay(frozenset(rng.sample(range(n), rng.randint(1, n - 1))), a, b,
                                extra_ms=rng.uniform(0, 300), factor=rng.uniform(1, 5)))
        else:
            faults.append(Loss(rng.uniform(0.05, 0.5), a, b))
    byz: dict[int, str] = {}
    if protocol == "pbft":
        k = rng.randint(0, pbft_f(n)) if byzantine is None else byzantine
        for b in rng.sample(range(n), k):
            byz[b] = rng.choice(behaviours)
    return faults, byz

