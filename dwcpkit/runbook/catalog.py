"""Finding runbooks and analyses by name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dwcpkit._paths import notebook_dirs
from dwcpkit.errors import RunbookNotFoundError

__all__ = ["NotebookInfo", "catalogue", "find"]


@dataclass(frozen=True)
class NotebookInfo:
    """A runnable notebook: name (file stem), kind (runbook | analysis), path and one-line title."""

    name: str
    kind: str
    path: Path
    title: str


def _title(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "(unreadable notebook)"
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            src = "".join(cell.get("source", ""))
            for line in src.splitlines():
                line = line.strip().lstrip("#").strip()
                if line:
                    return line
    return ""


def catalogue() -> list[NotebookInfo]:
    """Every runbook and analysis, runbooks first, sorted by name."""
    out = []
    for kind, folder in notebook_dirs().items():
        for path in sorted(folder.glob("*.ipynb")):
            out.append(NotebookInfo(path.stem, kind, path, _title(path)))
    return out


def find(name: str) -> NotebookInfo:
    """The notebook called ``name`` (a catalogue name, or a path to an ``.ipynb`` file)."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return NotebookInfo(path.stem, "notebook", path.resolve(), _title(path))
    items = catalogue()
    for item in items:
        if item.name == name:
            return item
    import difflib

    close = difflib.get_close_matches(name, [i.name for i in items], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise RunbookNotFoundError(
        f"no runbook or analysis called {name!r}.{hint} Run `dwcpkit list` to see them all, "
        "or pass a path to an .ipynb file."
    )
