"""Exceptions raised by dwcpkit.

Every error a user can cause is a :class:`DwcpkitError`: it says what was wrong and how to
fix it, and carries the exit code the CLI uses for it (see DESIGN.md "Verdicts and exit codes")::

    DwcpkitError                    exit 1   base class; a runbook cell raised
    ├── ParameterError              exit 2   bad runbook parameters, caught before a kernel starts
    │   └── RunbookNotFoundError    exit 2   no runbook or analysis of that name
    ├── SourceError                 exit 3   a telemetry source is unreachable or invalid
    │   ├── ParseError              exit 3   malformed input file/text (names file and line)
    │   ├── SchemaError             exit 3   a frame that is not the canonical telemetry frame
    │   └── PrometheusError         exit 3   Prometheus unreachable, timed out or answered an error
    ├── DataError                   exit 1   valid frame, but not usable for the requested maths
    ├── RunbookError                exit 1   a notebook failed to execute (names the failing cell)
    └── ProtocolError               exit 1   the protocol reference implementation refused its input
        ├── DecodeError             exit 1   corrupted, truncated or malformed payload / frame
        │   └── BaselineMismatchError        a delta decoded against the wrong baseline
        └── TransferError           exit 1   a transfer failed: peer hung, stream died, timeout

Example
-------
>>> from dwcpkit.errors import ParseError
>>> str(ParseError("bad value 'x'", path="m.prom", line=3))
"m.prom:3: bad value 'x'"
"""

from __future__ import annotations

__all__ = [
    "DwcpkitError",
    "ParameterError",
    "RunbookNotFoundError",
    "SourceError",
    "ParseError",
    "SchemaError",
    "PrometheusError",
    "DataError",
    "RunbookError",
    "ProtocolError",
    "DecodeError",
    "BaselineMismatchError",
    "TransferError",
    "exit_code_for",
]


class DwcpkitError(Exception):
    """Base class of every dwcpkit error. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class ParameterError(DwcpkitError):
    """A runbook parameter is unknown, of the wrong type or outside its allowed values."""

    exit_code = 2


class RunbookNotFoundError(ParameterError):
    """No runbook or analysis has that name."""


class SourceError(DwcpkitError):
    """A telemetry source could not be read: unreachable, missing or invalid."""

    exit_code = 3


class ParseError(SourceError):
    """Malformed input. ``path`` and ``line`` (1-based) locate it when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None and line is not None:
            where = f"{path}:{line}: "
        elif path is not None:
            where = f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class SchemaError(SourceError):
    """A frame does not have the canonical telemetry shape (DESIGN.md "Telemetry frame")."""


class PrometheusError(SourceError):
    """A Prometheus server could not be reached, timed out, or answered with an error."""


class DataError(DwcpkitError):
    """The data is well-formed but cannot answer the question (e.g. no samples in a window)."""


class RunbookError(DwcpkitError):
    """A notebook did not execute to the end."""


class ProtocolError(DwcpkitError):
    """The protocol reference implementation (``dwcpkit.protocol``) refused its input."""


class DecodeError(ProtocolError):
    """A payload or frame is corrupted, truncated or malformed; nothing was decoded."""


class BaselineMismatchError(DecodeError):
    """A delta was decoded against a baseline other than the one it was encoded against."""


class TransferError(ProtocolError):
    """A transfer failed (peer hung, stream died, timeout); nothing was delivered half-assembled."""


def exit_code_for(name: str) -> int | None:
    """Exit code of the dwcpkit error class called ``name``, or ``None`` if it is not one.

    Used to map an exception raised inside a notebook kernel (known only by class name)
    back to its exit code.

    >>> exit_code_for("PrometheusError")
    3
    >>> exit_code_for("ValueError") is None
    True
    """
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, DwcpkitError):
        return cls.exit_code
    return None
