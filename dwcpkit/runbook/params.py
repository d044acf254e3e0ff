"""Runbook parameter schemas, read from a notebook's ``parameters`` cell, and validation.

A parameters cell holds one annotated assignment per parameter, papermill style::

    source: str = "sample"                     # telemetry source: sample, a file, or a Prometheus URL
    target_percent: int = 10                   # rollout stage being gated [0, 100]
    trigger_mode: Literal["cumulative", "consecutive"] = "consecutive"  # how failing checks add up
    prom_token: Secret = ""                    # NAME of the env var holding a bearer token
    dry_run: bool = True                       # only record actions; False executes them

The annotation gives the type (``int``, ``float``, ``str``, ``bool``, ``Literal[...]`` for choices,
``Secret`` for the name of an environment variable holding a secret), the trailing comment is the
help text, and a trailing ``[lo, hi]`` in the comment is an inclusive range (either end may be
empty). Reading the schema parses JSON and Python source only: no kernel, no heavy imports, so
``dwcpkit run`` rejects bad parameters in milliseconds.

Example
-------
>>> cell = 'n: int = 3  # how many [1, 10]\\nmode: Literal["a", "b"] = "a"  # which'
>>> schema = parse_parameters_source(cell)
>>> schema["n"].range
(1, 10)
>>> validate(schema, {"n": "5"})["n"]
5
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dwcpkit.errors import ParameterError

__all__ = [
    "Parameter",
    "Schema",
    "parse_parameters_source",
    "read_schema",
    "parameters_cell",
    "validate",
    "coerce",
    "ENV_NAME",
]

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RANGE = re.compile(r"\[\s*([-+0-9.eE]*)\s*,\s*([-+0-9.eE]*)\s*\]\s*$")
_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Parameter:
    """One runbook parameter: name, type name, default, allowed choices, range and help."""

    name: str
    type: str  # int | float | str | bool | Secret | choice
    default: Any
    choices: tuple[Any, ...] | None = None
    range: tuple[float | None, float | None] | None = None
    help: str = ""
    optional: bool = False  # annotation allows None

    @property
    def secret(self) -> bool:
        """True for ``Secret`` parameters (their value is an environment-variable name)."""
        return self.type == "Secret"

    def describe_allowed(self) -> str:
        """Human text of what values are allowed."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.secret:
            return "the NAME of an environment variable (e.g. PROM_TOKEN), not the secret itself"
        text = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}[self.type]
        if self.range is not None:
            lo, hi = self.range
            if lo is not None and hi is not None:
                text += f" in [{lo:g}, {hi:g}]"
            elif lo is not None:
                text += f" >= {lo:g}"
            elif hi is not None:
                text += f" <= {hi:g}"
        if self.optional:
            text += " (or none)"
        return text


@dataclass
class Schema:
    """Ordered parameters of one notebook."""

    notebook: str
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Parameter:
        return self.parameters[name]

    def __iter__(self):
        return iter(self.parameters.values())

    def __contains__(self, name: object) -> bool:
        return name in self.parameters

    def defaults(self) -> dict[str, Any]:
        """Default value of every parameter."""
        return {p.name: p.default for p in self}


def _comments_by_line(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _annotation(node: ast.expr, where: str) -> tuple[str, tuple[Any, ...] | None, bool]:
    """(type name, choices, optional) of an annotation node."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(b, ast.Constant) and b.value is None:
                t, c, _ = _annotation(a, where)
                return t, c, True
    if isinstance(node, ast.Name) and (node.id in _SIMPLE or node.id == "Secret"):
        return node.id, None, False
    if isinstance(node, ast.Subscript):
        base = node.value
        base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if base_name == "Literal":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            try:
                choices = tuple(ast.literal_eval(e) for e in elts)
            except ValueError as exc:
                raise ParameterError(f"{where}: Literal[...] choices must be constants") from exc
            return "choice", choices, False
        if base_name == "Optional":
            t, c, _ = _annotation(node.slice, where)
            return t, c, True
    raise ParameterError(
        f"{where}: unsupported annotation {ast.unparse(node)!r}; use int, float, str, bool, "
        "Secret, Literal[...] (optionally '| None')"
    )


def parse_parameters_source(source: str, notebook: str = "<cell>") -> Schema:
    """Parse the source of a ``parameters`` cell into a :class:`Schema`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{notebook}: parameters cell is not valid Python (line {exc.lineno}): {exc.msg}") from exc
    comments = _comments_by_line(source)
    schema = Schema(notebook)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring / bare string
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None):
            raise ParameterError(
                f"{notebook}: parameters cell line {node.lineno}: expected 'name: type = default  # help', "
                f"got {ast.unparse(node)!r}"
            )
        name = node.target.id
        where = f"{notebook}: parameter {name!r}"
        type_name, choices, optional = _annotation(node.annotation, where)
        try:
            default = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ParameterError(f"{where}: default must be a literal, got {ast.unparse(node.value)!r}") from exc
        help_text = comments.get(node.lineno, "")
        rng = None
        m = _RANGE.search(help_text)
        if m and type_name in ("int", "float"):
            lo, hi = (_number(x) for x in m.groups())
            rng = (lo, hi)
            help_text = help_text[: m.start()].rstrip()
        schema.parameters[name] = Parameter(name, type_name, default, choices, rng, help_text, optional)
    return schema


def parameters_cell(nb: dict) -> dict | None:
    """The cell tagged ``parameters`` of a notebook (as a dict), or None."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def read_schema(path: str | Path) -> Schema:
    """Read the parameter schema of the notebook at ``path`` (JSON only; no kernel)."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{path}: cannot read notebook: {exc}") from exc
    cell = parameters_cell(nb)
    if cell is None:
        return Schema(path.stem)
    src = cell.get("source", "")
    return parse_parameters_source("".join(src) if isinstance(src, list) else src, path.stem)


def _number(text: str) -> float | None:
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def coerce(param: Parameter, value: Any) -> Any:
    """Convert ``value`` (a CLI string or a YAML value) to ``param``'s type, or raise ParameterError."""
    def bad(why: str = "") -> ParameterError:
        return ParameterError(
            f"parameter {param.name!r}: {value!r} is not allowed{why}; expected {param.describe_allowed()}"
        )

    if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and param.optional):
        if param.optional:
            return None
        raise bad()
    if param.choices is not None:
        if value in param.choices:
            return value
        if isinstance(value, str):
            for c in param.choices:
                if str(c) == value:
                    return c
        close = difflib.get_close_matches(str(value), [str(c) for c in param.choices], n=1)
        raise bad(f" (did you mean {close[0]!r}?)" if close else "")
    t = param.type
    if t == "bool":
        if isinstance(value, bool):
            out: Any = value
        elif isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            out = value.lower() in _TRUE
        else:
            raise bad()
    elif t == "int":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            out = value
        elif isinstance(value, float) and value.is_integer():
            out = int(value)
        elif isinstance(value, str):
            try:
                out = int(value.strip())
            except ValueError:
                raise bad() from None
        else:
            raise bad()
    elif t == "float":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise bad() from None
        else:
            raise bad()
        if out != out:  # NaN
            raise bad()
    elif t == "Secret":
        if not isinstance(value, str) or (value and not ENV_NAME.match(value)):
            raise ParameterError(
                f"parameter {param.name!r} is a secret: pass the NAME of an environment variable "
                "that holds it (e.g. -p {0} PROM_TOKEN), never the secret value".format(param.name)
            )
        out = value
    else:  # str
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad()
        out = str(value)
    if param.range is not None and t in ("int", "float"):
        lo, hi = param.range
        if (lo is not None and out < lo) or (hi is not None and out > hi):
            raise bad(" (out of range)")
    return out


def validate(schema: Schema, values: dict[str, Any]) -> dict[str, Any]:
    """Validate and coerce user ``values`` against ``schema``; returns only the given keys, coerced.

    Unknown names, wrong types and values outside choices or ranges raise
    :class:`~dwcpkit.errors.ParameterError` naming the parameter and what is allowed.
    """
    out: dict[str, Any] = {}
    known = list(schema.parameters)
    for name, value in values.items():
        if name not in schema:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"unknown parameter {name!r} for {schema.notebook}.{hint} "
                f"Known parameters: {', '.join(known) or '(none)'} (see `dwcpkit show {schema.notebook}`)"
            )
        out[name] = coerce(schema[name], value)
    return out
