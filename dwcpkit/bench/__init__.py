"""Benchmarks: one module per ``dwcpkit bench NAME``, each with ``run(quick=False)`` and ``format_table(rows)``."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render_table"]


def render_table(header: Sequence[str], body: Sequence[Sequence[str]], align: str | None = None) -> str:
    """Plain-text table; ``align`` has one ``l``/``r`` per column (default: first left, the rest right).

    >>> print(render_table(("name", "GB/s"), [("memcpy", "12.0"), ("hde", "2.3")]))
    name    GB/s
    memcpy  12.0
    hde      2.3
    """
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    lines = []
    for row in (header, *body):
        cells = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
