"""An ipywidgets form for a runbook, generated from its parameter schema (JupyterLab).

>>> from dwcpkit.runbook import form
>>> f = form("rollout-gate")          # doctest: +SKIP
>>> f                                 # doctest: +SKIP

Choices become dropdowns, bounded numbers bounded inputs, booleans checkboxes, help texts
tooltips. **Run** validates the values with the same rules as ``dwcpkit run`` and executes the
runbook through the same engine, then shows the verdict and a link to the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dwcpkit.errors import DwcpkitError
from dwcpkit.runbook.catalog import find
from dwcpkit.runbook.params import Parameter, read_schema, validate
from dwcpkit.runbook.run import RunResult, describe_error, run
from dwcpkit.runbook.verdict import Verdict

__all__ = ["RunbookForm", "form"]


def _widget(p: Parameter):
    import ipywidgets as w

    common = {"description": p.name, "tooltip": p.help or p.describe_allowed(),
              "style": {"description_width": "160px"}, "layout": w.Layout(width="520px")}
    if p.choices is not None:
        return w.Dropdown(options=list(p.choices), value=p.default, **common)
    if p.type == "bool":
        return w.Checkbox(value=bool(p.default), indent=False, **common)
    if p.type in ("int", "float") and not p.optional:
        lo, hi = p.range or (None, None)
        if p.type == "int":
            cls = w.BoundedIntText if p.range else w.IntText
        else:
            cls = w.BoundedFloatText if p.range else w.FloatText
        bounds = {}
        if p.range:
            bounds = {"min": lo if lo is not None else -(2**53), "max": hi if hi is not None else 2**53}
        return cls(value=p.default, **bounds, **common)
    placeholder = "ENV_VAR_NAME" if p.secret else ("empty = none" if p.optional else "")
    return w.Text(value="" if p.default is None else str(p.default), placeholder=placeholder, **common)


class RunbookForm:
    """The widgets of one runbook's form; display it in a notebook, or drive it from code."""

    def __init__(self, name: str, *, out: str | Path = "runs",
                 runner: Callable[..., RunResult] = run):
        import ipywidgets as w

        self.info = find(name)
        self.schema = read_schema(self.info.path)
        self.out = out
        self._runner = runner
        self.inputs = {p.name: _widget(p) for p in self.schema}
        self.button = w.Button(description=f"Run {self.info.name}", button_style="primary", icon="play")
        self.output = w.Output()
        self.result: RunResult | None = None
        self.button.on_click(lambda _: self.run())
        title = w.HTML(f"<b>{self.info.name}</b> — {self.info.title}")
        self.box = w.VBox([title, *self.inputs.values(), self.button, self.output])

    def values(self) -> dict[str, Any]:
        """Current values that differ from the defaults (what a run passes)."""
        out = {}
        for p in self.schema:
            value = self.inputs[p.name].value
            if p.optional and value == "":
                value = None
            if value != p.default:
                out[p.name] = value
        return out

    def run(self) -> RunResult | None:
        """Validate, run, and show the verdict (or the error) in the form's output area."""
        from IPython.display import HTML

        self.output.outputs = ()
        show = self.output.append_display_data  # works in a kernel and when driven from code
        try:
            values = validate(self.schema, self.values())
        except DwcpkitError as exc:
            show(HTML(f"<pre style='color:#cf222e'>{exc}</pre>"))
            return None
        self.button.disabled = True
        try:
            self.result = r = self._runner(str(self.info.path), values, out=self.out, progress=False)
        finally:
            self.button.disabled = False
        if r.verdict:
            v = r.verdict
            show(Verdict(v["level"], v.get("reasons", []), v.get("label"), v.get("summary", "")))
        else:
            show(HTML(f"<pre style='color:#cf222e'>run {r.status}: {describe_error(r)}</pre>"))
        report = r.folder / r.manifest.get("outputs", {}).get("report", "")
        show(HTML(f"<a href='{report.as_posix()}' target='_blank'>report</a> · exit code {r.exit_code}"))
        return r

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def form(name: str, *, out: str | Path = "runs") -> RunbookForm:
    """A form for runbook ``name`` (see module docstring)."""
    return RunbookForm(name, out=out)
