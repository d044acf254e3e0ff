"""Running notebooks as runbooks: parameters, verdicts, dry-run actions, manifests.

In a notebook::

    from dwcpkit.runbook import Secret, action, verdict

From Python or the ``dwcpkit`` CLI::

    from dwcpkit.runbook import run
    result = run("incident-triage", {"lookback_minutes": 60})
"""

from typing import NewType

from dwcpkit.runbook.actions import ActionRecord, action, command, secret
from dwcpkit.runbook.catalog import NotebookInfo, catalogue, find
from dwcpkit.runbook.form import RunbookForm, form
from dwcpkit.runbook.params import Parameter, Schema, read_schema, validate
from dwcpkit.runbook.record import read_records, read_verdict
from dwcpkit.runbook.run import RunResult, prepare, run
from dwcpkit.runbook.verdict import LEVELS, Verdict, verdict

#: Annotation for a parameter that holds the NAME of an environment variable containing a secret.
Secret = NewType("Secret", str)

__all__ = [
    "Secret",
    "ActionRecord",
    "action",
    "command",
    "secret",
    "NotebookInfo",
    "RunbookForm",
    "form",
    "catalogue",
    "find",
    "Parameter",
    "Schema",
    "read_schema",
    "validate",
    "read_records",
    "read_verdict",
    "RunResult",
    "prepare",
    "run",
    "LEVELS",
    "Verdict",
    "verdict",
]
