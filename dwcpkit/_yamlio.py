"""Reading YAML: user files (errors that name the file and line) and dwcpkit's own data tables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dwcpkit.errors import DwcpkitError, ParseError, SchemaError

__all__ = ["read_yaml", "package_yaml"]


def read_yaml(path: str | Path, *, what: str = "YAML", error: type[DwcpkitError] = ParseError,
              mapping: bool = True) -> Any:
    """Load a user's YAML file; ``error`` (ParseError by default) names the file and line when it is bad.

    With ``mapping=True`` the top level must be a mapping.
    """
    path = Path(path)

    def fail(message: str, line: int | None = None) -> DwcpkitError:
        if issubclass(error, ParseError):
            return error(message, path=str(path), line=line)
        return error(f"{path}{f':{line}' if line else ''}: {message}")

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"cannot read this {what} file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise fail(f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                   mark.line + 1 if mark else None) from None
    if mapping and not isinstance(data, dict):
        raise fail(f"a {what} file must hold a mapping at the top level, got {type(data).__name__}")
    return data


@lru_cache(maxsize=None)
def package_yaml(relative: str) -> dict[str, Any]:
    """A data table shipped inside the package (e.g. ``"sre/health.yaml"``), read once."""
    path = Path(__file__).parent / relative
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:  # pragma: no cover - packaging fault
        raise SchemaError(f"cannot read dwcpkit's data table {path}: {exc}; reinstall dwcpkit") from exc
    if not isinstance(data, dict):  # pragma: no cover - packaging fault
        raise SchemaError(f"dwcpkit's data table {path} is not a mapping; reinstall dwcpkit")
    return data
