"""The one verdict a runbook ends with: level, runbook-specific label, reasons.

=========  ====================  ==========  =========
level      meaning               rollout     exit code
=========  ====================  ==========  =========
OK         healthy / nothing     GO          0
WARN       degraded, watch       HOLD        10
ACT        action required       ROLLBACK    20
ESCALATE   page a human now      —           30
=========  ====================  ==========  =========

Example
-------
>>> v = Verdict("WARN", ["p99 0.61 s > 0.5 s"], label="HOLD")
>>> v.exit_code
10
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any

from dwcpkit.errors import ParameterError
from dwcpkit.runbook import record

__all__ = ["LEVELS", "Verdict", "verdict", "RECORD_NAME"]

#: verdict level -> exit code
LEVELS: dict[str, int] = {"OK": 0, "WARN": 10, "ACT": 20, "ESCALATE": 30}
RECORD_NAME = "dwcpkit.verdict"
_COLOURS = {"OK": "#1a7f37", "WARN": "#9a6700", "ACT": "#cf222e", "ESCALATE": "#8250df"}


@dataclass(repr=False)
class Verdict:
    """A runbook's conclusion. ``label`` is the runbook's own word for it (GO/HOLD/ROLLBACK, SEV1...)."""

    level: str
    reasons: list[str] = field(default_factory=list)
    label: str | None = None
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        level = str(self.level).upper()
        if level not in LEVELS:
            raise ParameterError(f"verdict level {self.level!r} is not one of {', '.join(LEVELS)}")
        self.level = level
        self.reasons = [str(r) for r in self.reasons]

    @property
    def exit_code(self) -> int:
        """Exit code of ``dwcpkit run`` for this verdict."""
        return LEVELS[self.level]

    def headline(self) -> str:
        """One line: level, label and summary."""
        text = self.level if not self.label or self.label == self.level else f"{self.level} ({self.label})"
        return f"{text}: {self.summary}" if self.summary else text

    def __str__(self) -> str:
        lines = [f"VERDICT {self.headline()}"]
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = _COLOURS[self.level]
        items = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (
            f'<div class="dwcpkit-verdict" style="border-left:8px solid {colour};padding:6px 12px;'
            f'background:#f6f8fa"><div style="font-size:1.4em;font-weight:bold;color:{colour}">'
            f"{html.escape(self.headline())}</div><ul>{items}</ul></div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what is recorded in the notebook and the manifest)."""
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


def verdict(
    level: str,
    reasons: list[str] | tuple[str, ...] = (),
    *,
    label: str | None = None,
    summary: str = "",
    evidence: dict[str, Any] | None = None,
) -> Verdict:
    """Conclude a runbook: display a banner and record the verdict for ``dwcpkit run`` / papermill users.

    Call it once, in the notebook's last cell. ``evidence`` must be JSON-serialisable.

    >>> verdict("OK", ["all gates pass"], label="GO").exit_code
    0
    """
    v = Verdict(level, list(reasons), label, summary, dict(evidence or {}))
    if record.in_kernel():
        from IPython.display import display

        display(v)
        record.emit(RECORD_NAME, v.to_dict())
    return v
