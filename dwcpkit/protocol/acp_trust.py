"""Byzantine detector and reputation system, with the original's constants and no deadlocks.

Constants come from ``backend/core/network/dwcp/v3/security/byzantine_detector.go`` and
``reputation_system.go`` (see ``reference/dwcp-protocol.md`` §9.1–9.2):

- **Detector.** Violation weights (invalid signature 15, equivocation 40, timing anomaly
  10, malformed 8, conflicting vote 35, silent node 5, flood 25, view-change abuse 30,
  checkpoint manipulation 45); suspicion score = sum of ``weight * (1 - age / 5 min)``
  over violations younger than 5 min, x1.5 when two or more types are present, capped at
  100; >= 40 suspicious, >= 70 confirmed Byzantine (evidence kept, confidence = score/100,
  node quarantined). Timing: flag a response slower than mean + 3 sigma of the node's
  previous 100 (once at least 10 are known; the original included the new sample in its
  own mean and sigma).
- **Reputation.** Start 50 (clamped 0–100); consensus +2 / −5; Byzantine penalty severity
  x 3; message +0.5 / −1; decay 0.5 points per idle hour after 1 h idle, floor 20, not
  during the 5-min new-node grace; quarantine at <= 15 for 30 min, released only with
  score >= 50, at most 3 quarantines; levels highly trusted >= 90, trusted >= 75,
  neutral >= 40, suspicious >= 15, else untrusted.

Fixes (documented deviations):

- **No lock-order deadlocks.** Each object has exactly one non-reentrant lock. A public
  method takes it, updates state, and *collects* what must happen elsewhere (the
  detector's calls into the reputation system); those run after the lock is released.
  Nothing calls a public method of its own object while holding its lock. (The original
  re-locked ``rs.mu`` from ``checkQuarantine -> QuarantineNode`` and called the reputation
  system while holding the detector's lock.) The simulators are single-threaded; the locks
  make concurrent notebook/threaded use safe, and a test hammers both from threads.
- sigma is a standard deviation (the original used the variance in ns², so the timing check
  never fired).
- Decay is ``rate x hours since the last decay`` (linear), not ``rate x total idle hours``
  applied every hour (quadratic).
- A node leaves quarantine only when both 30 min have passed *and* its score is >= 50
  (the original's ``IsQuarantined`` returned false after 30 min whatever the score); a
  fourth quarantine bans it for good (the original refused to quarantine it again, letting
  a repeat offender go free).
- Equivocation is tracked per (view, sequence, phase, node) and a PREPARE/COMMIT pair with
  different digests from one node is emitted as a *conflicting vote*; vote trackers expire
  with the behaviour window (the original's cleanup condition was never true).
- Every violation type can be emitted: silent node (:meth:`ByzantineDetector.check_silent`),
  flood (:meth:`ByzantineDetector.record_activity` with a rate limit you set; the original
  has no constant, so it is off by default), view-change abuse and checkpoint manipulation
  (fed by the PBFT simulator), or any type via :meth:`ByzantineDetector.record_violation`.

Times are seconds (floats) passed explicitly as ``now``, so runs are deterministic.

Example
-------
>>> rep = ReputationSystem()
>>> det = ByzantineDetector(reputation=rep)
>>> det.record_vote(3, view=0, seq=1, digest=b"a", phase="prepare", now=0.0)
>>> det.record_vote(3, view=0, seq=1, digest=b"b", phase="prepare", now=1.0)   # equivocation
>>> det.score(3, now=1.0), det.is_suspicious(3, now=1.0), det.is_byzantine(3)
(40.0, True, False)
>>> det.score(3, now=151.0)                                      # linear decay over 5 min
20.0
>>> det.record_malformed(3, "PP", now=1.0)                       # (40 + 8) x 1.5
72.0
>>> det.is_byzantine(3), rep.is_quarantined(3, now=1.0), rep.score(3)
(True, True, 0.0)
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from dwcpkit.errors import ParameterError

__all__ = [
    "VIOLATION_WEIGHTS",
    "Violation",
    "Evidence",
    "DetectorConfig",
    "ByzantineDetector",
    "ReputationConfig",
    "ReputationSystem",
    "network_trust",
]

VIOLATION_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "invalid_signature": 15.0,
    "equivocation": 40.0,
    "timing_anomaly": 10.0,
    "malformed_message": 8.0,
    "conflicting_vote": 35.0,
    "silent_node": 5.0,
    "flood": 25.0,
    "view_change_abuse": 30.0,
    "checkpoint_manipulation": 45.0,
})

_PHASES = ("pre-prepare", "prepare", "commit")


@dataclass(frozen=True)
class Violation:
    """One recorded misbehaviour of ``node`` at time ``at`` (seconds)."""

    node: Any
    kind: str
    severity: float
    at: float
    detail: str = ""


@dataclass
class Evidence:
    """Why a node was confirmed Byzantine."""

    node: Any
    attack: str
    confidence: float
    detected_at: float
    violations: list[Violation]


@dataclass(frozen=True)
class DetectorConfig:
    """Detector thresholds (defaults are the original's)."""

    suspicion_threshold: float = 40.0
    byzantine_threshold: float = 70.0
    behaviour_window_s: float = 300.0
    suspicion_decay_s: float = 600.0
    response_sigma: float = 3.0
    response_samples: int = 100
    response_min_samples: int = 10
    multi_type_bonus: float = 1.5
    silent_after_s: float = 10.0
    flood_per_s: float | None = None
    weights: Mapping[str, float] = field(default_factory=lambda: VIOLATION_WEIGHTS)

    def validate(self) -> None:
        if not 0 < self.suspicion_threshold <= self.byzantine_threshold:
            raise ParameterError("need 0 < suspicion_threshold <= byzantine_threshold")
        if self.behaviour_window_s <= 0 or self.response_sigma <= 0:
            raise ParameterError("behaviour_window_s and response_sigma must be > 0")
        missing = set(VIOLATION_WEIGHTS) - set(self.weights)
        if missing:
            raise ParameterError(f"weights lack violation types {sorted(missing)}")


_ATTACK = {
    "equivocation": "equivocation", "conflicting_vote": "equivocation",
    "invalid_signature": "message_tampering", "malformed_message": "message_tampering",
    "timing_anomaly": "timing_manipulation", "silent_node": "denial_of_service",
    "flood": "denial_of_service", "view_change_abuse": "view_change_attack",
    "checkpoint_manipulation": "message_tampering",
}


class ByzantineDetector:
    """Scores nodes from authenticated evidence; confirms Byzantine nodes at 70.

    Parameters
    ----------
    config : DetectorConfig, optional
    reputation : ReputationSystem, optional
        Receives ``record_byzantine_behavior(node, severity)`` for every violation and
        ``quarantine(node)`` on confirmation — after the detector's lock is released.
    """

    def __init__(self, config: DetectorConfig | None = None, reputation: "ReputationSystem | None" = None):
        self.config = config or DetectorConfig()
        self.config.validate()
        self.reputation = reputation
        self._lock = threading.Lock()
        self._violations: dict[Any, list[Violation]] = {}
        self._score: dict[Any, float] = {}
        self._confirmed: dict[Any, Evidence] = {}
        self._votes: dict[tuple, dict[Any, Any]] = {}
        self._vote_seen: dict[tuple, float] = {}
        self._node_votes: dict[tuple, dict[str, Any]] = {}
        self._rt: dict[Any, deque] = {}
        self._last_seen: dict[Any, float] = {}
        self._flood: dict[Any, deque] = {}
        self._silent_flagged: dict[Any, float] = {}
        self.messages = 0

    # ------------------------------------------------------------------ core (lock held)
    def _score_locked(self, node: Any, now: float) -> float:
        cfg = self.config
        total = 0.0
        kinds = set()
        for v in self._violations.get(node, ()):
            age = now - v.at
            if 0 <= age < cfg.behaviour_window_s:
                total += v.severity * (1.0 - age / cfg.behaviour_window_s)
                kinds.add(v.kind)
            elif age < 0:  # recorded "in the future" relative to the query: count fully
                total += v.severity
                kinds.add(v.kind)
        if len(kinds) > 1:
            total *= cfg.multi_type_bonus
        return round(min(total, 100.0), 2)

    def _violate_locked(self, node: Any, kind: str, now: float, detail: str, actions: list) -> float:
        if kind not in self.config.weights:
            raise ParameterError(f"unknown violation type {kind!r}; choose one of {sorted(self.config.weights)}")
        sev = float(self.config.weights[kind])
        v = Violation(node, kind, sev, now, detail)
        self._violations.setdefault(node, []).append(v)
        score = self._score_locked(node, now)
        self._score[node] = score
        if score >= self.config.byzantine_threshold:
            kinds = [x.kind for x in self._violations[node]]
            attack = _ATTACK[max(set(kinds), key=lambda k: (self.config.weights[k], k))]
            ev = self._confirmed.get(node)
            first = ev is None
            if first:
                ev = Evidence(node, attack, score / 100.0, now, [])
                self._confirmed[node] = ev
            ev.attack, ev.confidence = attack, score / 100.0
            ev.violations = list(self._violations[node])
            if first and self.reputation is not None:
                actions.append(("quarantine", node, f"confirmed Byzantine ({attack}, score {score})", now))
        if self.reputation is not None:
            actions.append(("penalty", node, sev, now))
        return score

    def _run(self, actions: list) -> None:
        rep = self.reputation
        for a in actions:
            if a[0] == "penalty":
                rep.record_byzantine_behavior(a[1], a[2], now=a[3])
            else:
                rep.quarantine(a[1], a[2], now=a[3])

    # ------------------------------------------------------------------ recording
    def record_violation(self, node: Any, kind: str, *, now: float, detail: str = "") -> float:
        """Record a violation of type ``kind`` (a key of :data:`VIOLATION_WEIGHTS`); returns the new score.

        >>> ByzantineDetector().record_violation("n1", "checkpoint_manipulation", now=0.0)
        45.0
        """
        actions: list = []
        with self._lock:
            score = self._violate_locked(node, kind, now, detail, actions)
        self._run(actions)
        return score

    def record_vote(self, node: Any, view: int, seq: int, digest: Any, phase: str, *, now: float) -> None:
        """Record an authenticated vote; a second, different digest for the same (view, seq,
        phase) is an *equivocation*, a COMMIT differing from the node's PREPARE a *conflicting vote*."""
        if phase not in _PHASES:
            raise ParameterError(f"phase must be one of {_PHASES}, got {phase!r}")
        actions: list = []
        with self._lock:
            self.messages += 1
            self._last_seen[node] = now
            key = (view, seq, phase)
            votes = self._votes.get(key)
            if votes is None:
                votes = self._votes[key] = {}
                self._vote_seen[key] = now
            first = votes.get(node)
            if first is None:
                votes[node] = digest
            elif first != digest:
                self._violate_locked(node, "equivocation", now, f"{phase} view {view} seq {seq}", actions)
            if phase != "pre-prepare":
                nv = self._node_votes.setdefault((view, seq, node), {})
                nv.setdefault(phase, digest)
                other = "commit" if phase == "prepare" else "prepare"
                if other in nv and nv[other] != digest and first is None:
                    self._violate_locked(node, "conflicting_vote", now, f"prepare/commit differ view {view} seq {seq}",
                                         actions)
        self._run(actions)

    def record_invalid_signature(self, node: Any, *, now: float) -> float:
        """A message that arrived from ``node``'s connection failed its MAC check."""
        return self.record_violation(node, "invalid_signature", now=now)

    def record_malformed(self, node: Any, kind: str = "", *, now: float) -> float:
        """An authenticated but malformed/illegal message (e.g. a PRE-PREPARE from a non-primary)."""
        return self.record_violation(node, "malformed_message", now=now, detail=kind)

    def record_response_time(self, node: Any, seconds: float, *, now: float) -> bool:
        """Add a response time; True (and a timing violation) if it exceeds mean + 3 sigma.

        >>> d = ByzantineDetector()
        >>> [d.record_response_time("x", 0.1 + 0.001 * (i % 3), now=float(i)) for i in range(12)][-1]
        False
        >>> d.record_response_time("x", 5.0, now=12.0)
        True
        """
        actions: list = []
        flagged = False
        with self._lock:
            cfg = self.config
            q = self._rt.get(node)
            if q is None:
                q = self._rt[node] = deque(maxlen=cfg.response_samples)
            if len(q) >= max(cfg.response_min_samples, 2):
                mean = sum(q) / len(q)
                var = sum((x - mean) ** 2 for x in q) / len(q)
                sigma = math.sqrt(var)
                if seconds > mean + cfg.response_sigma * sigma and seconds > mean:
                    flagged = True
                    self._violate_locked(node, "timing_anomaly", now, f"{seconds:.6f}s vs mean {mean:.6f}s", actions)
            q.append(seconds)
        self._run(actions)
        return flagged

    def record_activity(self, node: Any, *, now: float) -> bool:
        """Note that ``node`` sent something; True (and a flood violation) above ``flood_per_s``."""
        actions: list = []
        flooded = False
        with self._lock:
            self._last_seen[node] = now
            self._silent_flagged.pop(node, None)
            lim = self.config.flood_per_s
            if lim is not None:
                q = self._flood.setdefault(node, deque())
                q.append(now)
                while q and q[0] <= now - 1.0:
                    q.popleft()
                if len(q) > lim:
                    flooded = True
                    q.clear()
                    self._violate_locked(node, "flood", now, f"> {lim} messages/s", actions)
        self._run(actions)
        return flooded

    def check_silent(self, nodes: list, *, now: float) -> list:
        """Emit a silent-node violation for each of ``nodes`` unseen for ``silent_after_s``
        (once per silence); returns those flagged."""
        actions: list = []
        out = []
        with self._lock:
            for node in nodes:
                last = self._last_seen.get(node, -math.inf)
                if now - last >= self.config.silent_after_s and node not in self._silent_flagged:
                    self._silent_flagged[node] = now
                    out.append(node)
                    self._violate_locked(node, "silent_node", now, f"silent for {now - last:.1f}s", actions)
        self._run(actions)
        return out

    # ------------------------------------------------------------------ queries
    def score(self, node: Any, *, now: float) -> float:
        """Current suspicion score (0–100) of ``node``."""
        with self._lock:
            return self._score_locked(node, now)

    def is_suspicious(self, node: Any, *, now: float) -> bool:
        return self.score(node, now=now) >= self.config.suspicion_threshold

    def is_byzantine(self, node: Any) -> bool:
        with self._lock:
            return node in self._confirmed

    def byzantine_nodes(self) -> dict[Any, Evidence]:
        with self._lock:
            return dict(self._confirmed)

    def suspicious_nodes(self, *, now: float) -> dict[Any, float]:
        with self._lock:
            scores = {n: self._score_locked(n, now) for n in self._violations}
        return {n: s for n, s in scores.items() if s >= self.config.suspicion_threshold}

    def violations(self, node: Any) -> list[Violation]:
        with self._lock:
            return list(self._violations.get(node, ()))

    def tick(self, *, now: float) -> None:
        """Periodic maintenance: expire vote trackers and forget old, low-score records."""
        with self._lock:
            w = self.config.behaviour_window_s
            for key in [k for k, t in self._vote_seen.items() if now - t > w]:
                del self._vote_seen[key]
                self._votes.pop(key, None)
                view, seq, _ = key
                for nk in [nk for nk in self._node_votes if nk[0] == view and nk[1] == seq]:
                    del self._node_votes[nk]
            for node in list(self._violations):
                vs = self._violations[node]
                last = max(v.at for v in vs) if vs else -math.inf
                if self._score_locked(node, now) < 10 and now - last > self.config.suspicion_decay_s \
                        and node not in self._confirmed:
                    del self._violations[node]
                    self._score.pop(node, None)

    @property
    def tracked_votes(self) -> int:
        with self._lock:
            return len(self._votes)


# ---------------------------------------------------------------------- reputation


@dataclass(frozen=True)
class ReputationConfig:
    """Reputation constants (defaults are the original's)."""

    initial: float = 50.0
    grace_s: float = 300.0
    consensus_correct: float = 2.0
    consensus_incorrect: float = 5.0
    byzantine_multiplier: float = 3.0
    message_success: float = 0.5
    message_failure: float = 1.0
    decay_per_hour: float = 0.5
    decay_after_s: float = 3600.0
    decay_floor: float = 20.0
    quarantine_threshold: float = 15.0
    suspicious_threshold: float = 40.0
    trusted_threshold: float = 75.0
    highly_trusted_threshold: float = 90.0
    quarantine_enabled: bool = True
    quarantine_s: float = 1800.0
    recovery_threshold: float = 50.0
    max_quarantines: int = 3
    forget_after_s: float = 86_400.0


@dataclass
class _Rep:
    score: float
    first_seen: float
    last_active: float
    last_decay: float
    quarantined_at: float | None = None
    quarantines: int = 0
    banned: bool = False
    byzantine: int = 0
    correct: int = 0
    incorrect: int = 0


class ReputationSystem:
    """Per-node reputation in [0, 100] with quarantine (one lock, no re-entrant calls).

    >>> rs = ReputationSystem()
    >>> rs.record_byzantine_behavior("n7", 40.0, now=0.0)   # 50 - 120 -> 0: quarantined
    0.0
    >>> rs.is_quarantined("n7", now=60.0), rs.level("n7", now=60.0)
    (True, 'quarantined')
    >>> rs.tick(now=2000.0); rs.is_quarantined("n7", now=2000.0)   # 30 min over, but score < 50
    True
    """

    def __init__(self, config: ReputationConfig | None = None):
        self.config = config or ReputationConfig()
        self._lock = threading.Lock()
        self._reps: dict[Any, _Rep] = {}
        self.events: list[tuple[float, Any, str]] = []

    # ------------------------------------------------------------------ internals (lock held)
    def _get(self, node: Any, now: float) -> _Rep:
        r = self._reps.get(node)
        if r is None:
            r = self._reps[node] = _Rep(self.config.initial, now, now, now)
        return r

    def _adjust(self, node: Any, delta: float, now: float) -> float:
        r = self._get(node, now)
        r.score = min(100.0, max(0.0, r.score + delta))
        r.last_active = max(r.last_active, now)
        r.last_decay = max(r.last_decay, now)
        if self.config.quarantine_enabled and r.score <= self.config.quarantine_threshold \
                and r.quarantined_at is None and not r.banned:
            self._quarantine_locked(node, r, f"score {r.score:.1f} <= {self.config.quarantine_threshold}", now)
        return r.score

    def _quarantine_locked(self, node: Any, r: _Rep, reason: str, now: float) -> None:
        if r.quarantines >= self.config.max_quarantines:
            r.banned = True
            r.quarantined_at = now
            self.events.append((now, node, f"banned after {r.quarantines} quarantines: {reason}"))
            return
        r.quarantines += 1
        r.quarantined_at = now
        self.events.append((now, node, f"quarantined ({r.quarantines}): {reason}"))

    # ------------------------------------------------------------------ recording
    def record_consensus(self, node: Any, correct: bool, *, now: float) -> float:
        """+2 for a correct consensus participation, −5 for an incorrect one."""
        with self._lock:
            r = self._get(node, now)
            if correct:
                r.correct += 1
            else:
                r.incorrect += 1
            c = self.config
            return self._adjust(node, c.consensus_correct if correct else -c.consensus_incorrect, now)

    def record_byzantine_behavior(self, node: Any, severity: float, *, now: float) -> float:
        """Penalty ``severity x 3``; quarantines at <= 15 without re-entering the lock."""
        with self._lock:
            self._get(node, now).byzantine += 1
            return self._adjust(node, -severity * self.config.byzantine_multiplier, now)

    def record_message(self, node: Any, ok: bool, *, now: float) -> float:
        """+0.5 for a good message, −1 for a failed one."""
        with self._lock:
            c = self.config
            return self._adjust(node, c.message_success if ok else -c.message_failure, now)

    def quarantine(self, node: Any, reason: str = "", *, now: float) -> bool:
        """Quarantine ``node`` (a 4th quarantine bans it); False if already quarantined."""
        with self._lock:
            r = self._get(node, now)
            if r.quarantined_at is not None or not self.config.quarantine_enabled:
                return False
            self._quarantine_locked(node, r, reason or "requested", now)
            return True

    def release(self, node: Any, *, now: float) -> bool:
        """Release from quarantine if 30 min have passed and the score is >= 50."""
        with self._lock:
            return self._release_locked(node, now)

    def _release_locked(self, node: Any, now: float) -> bool:
        r = self._reps.get(node)
        if r is None or r.quarantined_at is None or r.banned:
            return False
        c = self.config
        if now - r.quarantined_at < c.quarantine_s or r.score < c.recovery_threshold:
            return False
        r.quarantined_at = None
        self.events.append((now, node, "released"))
        return True

    def tick(self, *, now: float) -> None:
        """Hourly decay (linear, floor 20, after the grace period), quarantine expiry, cleanup."""
        with self._lock:
            c = self.config
            for node in list(self._reps):
                r = self._reps[node]
                if r.quarantined_at is not None:
                    self._release_locked(node, now)
                if now - r.first_seen >= c.grace_s and now - r.last_active > c.decay_after_s \
                        and r.score > c.decay_floor:
                    hours = (now - max(r.last_decay, r.last_active)) / 3600.0
                    if hours > 0:
                        r.score = max(c.decay_floor, r.score - c.decay_per_hour * hours)
                        r.last_decay = now
                if now - r.last_active > c.forget_after_s and r.quarantined_at is None:
                    del self._reps[node]

    # ------------------------------------------------------------------ queries
    def score(self, node: Any) -> float:
        with self._lock:
            r = self._reps.get(node)
            return self.config.initial if r is None else r.score

    def is_quarantined(self, node: Any, *, now: float) -> bool:
        with self._lock:
            r = self._reps.get(node)
            return r is not None and r.quarantined_at is not None

    def is_trusted(self, node: Any) -> bool:
        return self.score(node) >= self.config.trusted_threshold

    def level(self, node: Any, *, now: float) -> str:
        """``quarantined``, ``highly_trusted``, ``trusted``, ``neutral``, ``suspicious`` or ``untrusted``."""
        with self._lock:
            r = self._reps.get(node)
            s = self.config.initial if r is None else r.score
            if r is not None and r.quarantined_at is not None:
                return "quarantined"
        c = self.config
        if s >= c.highly_trusted_threshold:
            return "highly_trusted"
        if s >= c.trusted_threshold:
            return "trusted"
        if s >= c.suspicious_threshold:
            return "neutral"
        if s >= c.quarantine_threshold:
            return "suspicious"
        return "untrusted"

    def nodes(self) -> list:
        with self._lock:
            return list(self._reps)

    def network_trust(self, nodes: list | None = None, *, now: float) -> float:
        """``trusted/total - 2 x quarantined/total`` clamped to [0, 1] (mode-security formula).

        >>> rs = ReputationSystem(); [rs.record_consensus(i, True, now=0.0) for i in range(3)][-1]
        52.0
        >>> rs.network_trust(now=0.0)
        0.0
        """
        with self._lock:
            ids = list(self._reps) if nodes is None else list(nodes)
            c = self.config
            trusted = quarantined = 0
            for i in ids:
                r = self._reps.get(i)
                if r is not None and r.quarantined_at is not None:
                    quarantined += 1
                elif (r.score if r is not None else c.initial) >= c.trusted_threshold:
                    trusted += 1
        return network_trust(trusted, quarantined, len(ids))


def network_trust(trusted: int, quarantined: int, total: int) -> float:
    """Network trust = ``trusted/total - 2 * quarantined/total``, clamped to [0, 1].

    >>> network_trust(9, 0, 10), network_trust(9, 1, 10), network_trust(0, 0, 0)
    (0.9, 0.7, 0.0)
    """
    if total <= 0:
        return 0.0
    return round(min(1.0, max(0.0, trusted / total - 2.0 * quarantined / total)), 12)

