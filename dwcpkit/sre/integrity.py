"""RB-12 data integrity: replica checksums compared, VM state hashes, replication lag; the score is what they found.

The original (``backend/core/validation/data_integrity.go``) reported constants (998/1000 valid
checksums, 14/15 replicas, 148/150 VMs) and its report's "99.8 % integrity" was one of them. Here
the checks read a directory of replicas::

    <root>/<replica>/objects/...          objects (any files, any depth)
    <root>/<replica>/vms/<vm>.state       VM state snapshots
    <root>/<replica>/_replication.json    {"role": "primary"|"replica", "last_seq": int, "last_applied_at": ISO}

Every file is hashed with SHA-256 (streamed). Files whose name starts with ``_`` are replica
metadata, not data.

``object checksums`` / ``VM state hashes``
    per path (outside / inside ``vms/``): *consistent* when every replica holds it with the same
    hash, *divergent* when hashes differ, *missing* when a replica lacks it. The majority hash (held
    by more than half the replicas) says which copies are the odd ones out; with no majority the
    correct copy cannot be told from the replicas and only a backup can.
``replication lag``
    per non-primary replica: sequence numbers and seconds behind the primary, from the
    ``_replication.json`` files; without them the check is *not checked*.

The score of each check is passed / checked items, and the overall score is the checks that
passed over the checks that ran (the original's ConsistencyScore formula, over real checks).
Repairs (:func:`repair_plan`): copy the majority copy over each odd copy (verified by hash after
the copy); a runbook records them as dry-run actions.

Example
-------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     root = make_sample_replicas(d)
...     r = evaluate(root)
>>> r.label, r.checks.filter(pl.col("check") == "object checksums")["failed"][0]
('INCONSISTENT', 1)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError

__all__ = [
    "STATE_FILE",
    "VM_DIR",
    "make_sample_replicas",
    "open_replicas",
    "sha256_file",
    "hash_replica",
    "compare_replicas",
    "agreement_frame",
    "replication_lag",
    "Repair",
    "repair_plan",
    "IntegrityReport",
    "evaluate",
]

STATE_FILE = "_replication.json"
VM_DIR = "vms"
_SAMPLE_TIME = datetime(2026, 11, 2, 23, 59, tzinfo=timezone.utc)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def make_sample_replicas(root: str | Path, *, replicas: tuple[str, ...] = ("replica-a", "replica-b", "replica-c"),
                         objects: int = 24, vms: int = 6, seed: int = 7, divergent: int = 1,
                         lag_s: float = 39.0, lag_ops: int = 13) -> Path:
    """Write a small deterministic replica set under ``root`` (same arguments, same bytes).

    ``objects`` files of 1-8 KiB under ``objects/`` and ``vms`` VM state files under ``vms/`` in
    every replica; the last replica gets ``divergent`` objects with one byte changed and lags the
    primary (the first replica) by ``lag_ops`` sequence numbers and ``lag_s`` seconds.
    """
    if len(replicas) < 2:
        raise ParameterError("a replica set needs at least 2 replicas")
    if not 0 <= divergent <= objects:
        raise ParameterError(f"divergent={divergent}; give 0..objects ({objects})")
    root = Path(root)
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    for i in range(objects):
        files[f"objects/object-{i:04d}.bin"] = rng.integers(0, 256, int(rng.integers(1024, 8193)), dtype=np.uint8).tobytes()
    for i in range(vms):
        files[f"{VM_DIR}/vm-{i:03d}.state"] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    odd = set(rng.choice(objects, size=divergent, replace=False).tolist()) if divergent else set()
    last_seq = 1200
    for k, rep in enumerate(replicas):
        base = root / rep
        for rel, data in files.items():
            p = base / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if k == len(replicas) - 1 and rel.startswith("objects/") and int(rel[-8:-4]) in odd:
                b = bytearray(data)
                b[len(b) // 2] ^= 0xFF
                data = bytes(b)
            p.write_bytes(data)
        behind = k == len(replicas) - 1
        state = {"role": "primary" if k == 0 else "replica", "last_seq": last_seq - (lag_ops if behind else 0),
                 "last_applied_at": (_SAMPLE_TIME - timedelta(seconds=lag_s if behind else 0)).isoformat()
                 .replace("+00:00", "Z")}
        (base / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    return root


def open_replicas(spec: str) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """``(root, temp)``: ``"sample"`` generates the sample set in a temporary directory (call
    ``temp.cleanup()`` when done); any other value is an existing directory of replicas."""
    if spec == "sample":
        temp = tempfile.TemporaryDirectory(prefix="dwcpkit-replicas-")
        return make_sample_replicas(temp.name), temp
    root = Path(spec)
    if not root.is_dir():
        raise SourceError(f"replica directory {spec!r} not found; pass a directory holding one folder per replica, "
                          "or 'sample'")
    return root, None


def _replicas(root: Path) -> list[str]:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if len(names) < 2:
        raise DataError(f"{root.name}: found {len(names)} replica folder(s); comparing needs at least 2 "
                        "(layout: <root>/<replica>/...)")
    return names


def hash_replica(path: str | Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every data file of one replica (``_*`` names are metadata)."""
    base = Path(path)
    out = {}
    for p in sorted(base.rglob("*")):
        if p.is_file() and not p.name.startswith("_") and not any(part.startswith(".") for part in p.relative_to(base).parts):
            out[p.relative_to(base).as_posix()] = sha256_file(p)
    return out


def compare_replicas(root: str | Path) -> pl.DataFrame:
    """One row per path: ``path``, ``kind`` (object / vm_state), one hash column per replica (first 12
    hex digits, null when missing), ``status`` (consistent / divergent / missing), ``majority`` (full
    hash held by more than half the replicas, else null) and ``odd`` (replicas not holding it)."""
    root = Path(root)
    reps = _replicas(root)
    hashes = {r: hash_replica(root / r) for r in reps}
    paths = sorted(set().union(*hashes.values()))
    if not paths:
        raise DataError(f"{root.name}: the replicas hold no data files: nothing to compare (empty is not consistent)")
    rows = []
    for path in paths:
        hs = {r: hashes[r].get(path) for r in reps}
        present = [h for h in hs.values() if h is not None]
        counts = Counter(present)
        top, n_top = counts.most_common(1)[0]
        majority = top if n_top > len(reps) / 2 else None
        if len(present) < len(reps):
            status = "missing"
        elif len(counts) > 1:
            status = "divergent"
        else:
            status = "consistent"
        odd = [r for r in reps if hs[r] != majority] if status != "consistent" else []
        rows.append({"path": path, "kind": "vm_state" if path.startswith(f"{VM_DIR}/") else "object",
                     **{r: (None if h is None else h[:12]) for r, h in hs.items()},
                     "status": status, "majority": majority, "odd": ", ".join(odd) if majority else ", ".join(reps)})
    return pl.DataFrame(rows, schema={"path": pl.String, "kind": pl.String, **{r: pl.String for r in reps},
                                      "status": pl.String, "majority": pl.String, "odd": pl.String})


def agreement_frame(comparison: pl.DataFrame) -> pl.DataFrame:
    """Long form for a heat-map: ``path``, ``replica``, ``agrees`` (1 when the copy has the majority
    hash, or all copies agree; 0 when it differs, is missing, or there is no majority)."""
    reps = [c for c in comparison.columns if c not in ("path", "kind", "status", "majority", "odd")]
    rows = []
    for r in comparison.iter_rows(named=True):
        ref = r["majority"][:12] if r["majority"] else None
        for rep in reps:
            ok = r["status"] == "consistent" or (ref is not None and r[rep] == ref)
            rows.append({"path": r["path"], "replica": rep, "agrees": 1.0 if ok else 0.0})
    return pl.DataFrame(rows, schema={"path": pl.String, "replica": pl.String, "agrees": pl.Float64})


def _read_state(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seq = data.get("last_seq")
        at = data.get("last_applied_at")
        role = data.get("role", "replica")
        at_dt = datetime.fromisoformat(str(at).replace("Z", "+00:00")) if at else None
    except (ValueError, AttributeError) as exc:
        raise ParseError(f"not a replication state file ({exc}); expected "
                         '{"role": ..., "last_seq": int, "last_applied_at": ISO}', path=f"{path.parent.name}/{path.name}") \
            from None
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise ParseError(f"last_seq={seq!r} is not an integer", path=f"{path.parent.name}/{path.name}")
    if at_dt is not None and at_dt.tzinfo is None:
        raise ParseError("last_applied_at has no UTC offset; add 'Z'", path=f"{path.parent.name}/{path.name}")
    return {"role": role, "last_seq": seq, "last_applied_at": at_dt}


def replication_lag(root: str | Path, *, primary: str = "", max_lag_s: float = 60.0,
                    max_lag_ops: int | None = None) -> pl.DataFrame:
    """Per replica: role, last_seq, last_applied_at, lag_ops, lag_s, status (pass / fail / not checked).

    The primary is ``primary``, else the replica whose state says ``"role": "primary"``, else the
    one with the highest ``last_seq``. Empty frame when no replica has a state file.
    """
    root = Path(root)
    reps = _replicas(root)
    states = {r: _read_state(root / r / STATE_FILE) for r in reps}
    schema = {"replica": pl.String, "role": pl.String, "last_seq": pl.Int64, "last_applied_at": pl.Datetime("us", "UTC"),
              "lag_ops": pl.Int64, "lag_s": pl.Float64, "status": pl.String}
    if all(s is None for s in states.values()):
        return pl.DataFrame(schema=schema)
    if primary:
        if primary not in reps:
            raise ParameterError(f"primary {primary!r} is not a replica; replicas: {', '.join(reps)}")
        prim = primary
    else:
        declared = [r for r, s in states.items() if s and s["role"] == "primary"]
        if len(declared) > 1:
            raise DataError(f"several replicas say they are primary ({', '.join(declared)}); pass primary=")
        prim = declared[0] if declared else max((r for r in reps if states[r] and states[r]["last_seq"] is not None),
                                                key=lambda r: states[r]["last_seq"], default=reps[0])
    ps = states.get(prim)
    rows = []
    for r in reps:
        s = states[r]
        if s is None:
            rows.append({"replica": r, "role": None, "last_seq": None, "last_applied_at": None, "lag_ops": None,
                         "lag_s": None, "status": "not checked"})
            continue
        role = "primary" if r == prim else "replica"
        lag_ops = lag_s = None
        if ps and ps["last_seq"] is not None and s["last_seq"] is not None:
            lag_ops = max(0, ps["last_seq"] - s["last_seq"])
        if ps and ps["last_applied_at"] and s["last_applied_at"]:
            lag_s = max(0.0, (ps["last_applied_at"] - s["last_applied_at"]).total_seconds())
        if r == prim:
            status = "primary"
        elif lag_ops is None and lag_s is None:
            status = "not checked"
        else:
            bad = (lag_s is not None and lag_s > max_lag_s) or (max_lag_ops is not None and lag_ops is not None
                                                                and lag_ops > max_lag_ops)
            status = "fail" if bad else "pass"
        rows.append({"replica": r, "role": role, "last_seq": s["last_seq"], "last_applied_at": s["last_applied_at"],
                     "lag_ops": lag_ops, "lag_s": lag_s, "status": status})
    return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class Repair:
    """Copy the majority copy of ``path`` from ``source`` over the copy in ``target`` (or restore from backup)."""

    path: str
    source: str | None
    target: str
    expected: str | None

    @property
    def title(self) -> str:
        """Action title."""
        if self.source is None:
            return f"Restore {self.path} on {self.target} from backup (no majority copy)"
        return f"Copy {self.path} from {self.source} to {self.target}"

    def runner(self, root: str | Path) -> Callable[[], str] | None:
        """The copy as a function (``None`` for a backup restore, a manual step); it verifies the hash."""
        if self.source is None:
            return None
        base = Path(root)

        def run() -> str:
            dst = base / self.target / self.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(base / self.source / self.path, dst)
            got = sha256_file(dst)
            if got != self.expected:
                raise RuntimeError(f"{self.target}/{self.path} hash {got[:12]} after the copy, expected {self.expected[:12]}")
            return f"{self.target}/{self.path} now {got[:12]}"

        return run


def repair_plan(comparison: pl.DataFrame) -> list[Repair]:
    """A repair per odd copy: from the first replica holding the majority hash, or from backup."""
    reps = [c for c in comparison.columns if c not in ("path", "kind", "status", "majority", "odd")]
    out = []
    for r in comparison.filter(pl.col("status") != "consistent").iter_rows(named=True):
        maj = r["majority"]
        src = next((x for x in reps if maj and r[x] == maj[:12]), None) if maj else None
        for tgt in (r["odd"] or "").split(", "):
            if tgt:
                out.append(Repair(r["path"], src, tgt, maj))
    return out


@dataclass
class IntegrityReport:
    """Everything the data-integrity runbook shows."""

    replicas: list[str]
    comparison: pl.DataFrame
    lag: pl.DataFrame
    checks: pl.DataFrame      # check, checked, passed, failed, score_pct, status, evidence
    score: float | None       # checks passed / checks run, percent
    repairs: list[Repair]
    level: str
    label: str
    reasons: list[str]
    summary: str


def evaluate(root: str | Path, *, primary: str = "", max_lag_s: float = 60.0,
             max_lag_ops: int | None = None) -> IntegrityReport:
    """Run the checks on the replica set at ``root`` (module docstring).

    Verdict: INCONSISTENT (ACT) when a copy diverges or is missing; LAGGING (WARN) when a replica is
    behind the limit; LAG NOT CHECKED (WARN) without replication state; CONSISTENT (OK) otherwise.
    """
    root = Path(root)
    if max_lag_s < 0:
        raise ParameterError(f"max_lag_s={max_lag_s!r}; give a non-negative number of seconds")
    comp = compare_replicas(root)
    reps = [c for c in comp.columns if c not in ("path", "kind", "status", "majority", "odd")]
    lag = replication_lag(root, primary=primary, max_lag_s=max_lag_s, max_lag_ops=max_lag_ops)
    rows = []
    for name, kind in (("object checksums", "object"), ("VM state hashes", "vm_state")):
        sel = comp.filter(pl.col("kind") == kind)
        if sel.height == 0:
            rows.append({"check": name, "checked": 0, "passed": 0, "failed": 0, "score_pct": None,
                         "status": "not checked", "evidence": f"no {kind.replace('_', ' ')} files"})
            continue
        bad = sel.filter(pl.col("status") != "consistent")
        ev = (f"{sel.height - bad.height} of {sel.height} identical on all {len(reps)} replicas"
              + ("; " + "; ".join(f"{r['path']} {r['status']} on {r['odd']}" for r in bad.head(5).iter_rows(named=True))
                 if bad.height else ""))
        rows.append({"check": name, "checked": sel.height, "passed": sel.height - bad.height, "failed": bad.height,
                     "score_pct": 100.0 * (sel.height - bad.height) / sel.height,
                     "status": "fail" if bad.height else "pass", "evidence": ev})
    judged = lag.filter(pl.col("status").is_in(["pass", "fail"]))
    if judged.height == 0:
        rows.append({"check": "replication lag", "checked": 0, "passed": 0, "failed": 0, "score_pct": None,
                     "status": "not checked", "evidence": f"no {STATE_FILE} with sequence or time in the replicas"})
    else:
        late = judged.filter(pl.col("status") == "fail")
        worst = judged.sort("lag_s", descending=True, nulls_last=True).row(0, named=True)
        ev = (f"{judged.height - late.height} of {judged.height} replicas within {max_lag_s:g} s"
              + (f" and {max_lag_ops} ops" if max_lag_ops is not None else "")
              + f"; most behind: {worst['replica']} ({worst['lag_ops']} ops, {worst['lag_s']:g} s)")
        rows.append({"check": "replication lag", "checked": judged.height, "passed": judged.height - late.height,
                     "failed": late.height, "score_pct": 100.0 * (judged.height - late.height) / judged.height,
                     "status": "fail" if late.height else "pass", "evidence": ev})
    checks = pl.DataFrame(rows, schema={"check": pl.String, "checked": pl.Int64, "passed": pl.Int64, "failed": pl.Int64,
                                        "score_pct": pl.Float64, "status": pl.String, "evidence": pl.String})
    ran = checks.filter(pl.col("status") != "not checked")
    score = 100.0 * ran.filter(pl.col("status") == "pass").height / ran.height if ran.height else None
    repairs = repair_plan(comp)
    data_bad = checks.filter(pl.col("check").is_in(["object checksums", "VM state hashes"]) & (pl.col("status") == "fail"))
    lag_row = checks.filter(pl.col("check") == "replication lag").row(0, named=True)
    reasons = [f"{r['check']}: {r['evidence']}" for r in checks.filter(pl.col("status") == "fail").iter_rows(named=True)]
    if data_bad.height:
        level, label = "ACT", "INCONSISTENT"
        n_backup = sum(1 for r in repairs if r.source is None)
        reasons.append(f"{len(repairs)} repair(s) planned: {len(repairs) - n_backup} copy from the majority, "
                       f"{n_backup} restore from backup")
    elif lag_row["status"] == "fail":
        level, label = "WARN", "LAGGING"
    elif lag_row["status"] == "not checked":
        level, label = "WARN", "LAG NOT CHECKED"
    else:
        level, label = "OK", "CONSISTENT"
    for r in checks.filter(pl.col("status") == "not checked").iter_rows(named=True):
        reasons.append(f"{r['check']}: not checked ({r['evidence']})")
    for r in checks.filter(pl.col("status") == "pass").iter_rows(named=True):
        reasons.append(f"{r['check']}: {r['evidence']}")
    reasons.append(f"score: {ran.filter(pl.col('status') == 'pass').height} of {ran.height} checks passed"
                   if ran.height else "score: none (no check ran)")
    summary = (f"{len(reps)} replicas, {comp.height} files: " + ", ".join(
        f"{r['check']} {r['passed']}/{r['checked']}" for r in ran.iter_rows(named=True)) + f": {label}")
    return IntegrityReport(reps, comp, lag, checks, score, repairs, level, label, reasons, summary)
