"""``dwcpkit`` command line: list, show and run runbooks; benchmarks; sample data.

Exit codes follow DESIGN.md: the verdict's (0/10/20/30), 1 runbook error, 2 usage error
(caught before any kernel starts), 3 source error, 138 dead kernel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dwcpkit.errors import DwcpkitError, ParameterError

__all__ = ["main"]


def _load_param_file(path: str) -> dict[str, Any]:
    from dwcpkit._yamlio import read_yaml

    data = read_yaml(path, what="parameter", error=ParameterError, mapping=False)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"parameter file {path} must be a mapping of name: value, got {type(data).__name__}")
    return data


def _cmd_list(args: argparse.Namespace) -> int:
    from dwcpkit.runbook.catalog import catalogue

    items = catalogue()
    width = max((len(i.name) for i in items), default=10)
    for item in items:
        print(f"{item.name:<{width}}  {item.kind:<8}  {item.title}")
    if not items:
        print("no runbooks found (set DWCPKIT_HOME to a dwcpkit checkout)", file=sys.stderr)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from dwcpkit.runbook.catalog import find
    from dwcpkit.runbook.params import read_schema

    info = find(args.name)
    schema = read_schema(info.path)
    print(f"{info.name} ({info.kind}): {info.title}")
    print(f"  notebook: {info.path}")
    if not schema.parameters:
        print("  (no parameters)")
    for p in schema:
        type_name = "choice" if p.choices is not None else p.type
        print(f"  {p.name}: {type_name} = {p.default!r}")
        if p.help:
            print(f"      {p.help}")
        print(f"      allowed: {p.describe_allowed()}")
    return 0


def _summary(result) -> str:
    from dwcpkit.runbook.run import describe_error

    lines = []
    v = result.verdict
    if v:
        label = v.get("label")
        head = v["level"] if not label or label == v["level"] else f"{v['level']} ({label})"
        lines.append(f"VERDICT  {head}" + (f": {v['summary']}" if v.get("summary") else ""))
        for reason in v.get("reasons", [])[:5]:
            lines.append(f"  - {reason}")
        if len(v.get("reasons", [])) > 5:
            lines.append(f"  ... {len(v['reasons']) - 5} more in the report")
    else:
        lines.append(f"RUN {result.status.upper()}  {describe_error(result)}")
    planned, executed = result.actions.get("planned", []), result.actions.get("executed", [])
    if planned or executed:
        lines.append(f"actions  {len(planned)} planned (dry run), {len(executed)} executed")
    outputs = result.manifest.get("outputs", {})
    report = outputs.get("report") or outputs.get("notebook")
    lines.append(f"report   {result.folder / report if report else result.folder}")
    if outputs.get("report_error"):
        lines.append(f"         (no HTML report: {outputs['report_error']})")
    lines.append(f"record   {result.folder / 'manifest.json'}")
    lines.append(f"exit     {result.exit_code}")
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from dwcpkit.runbook.run import prepare, run

    values: dict[str, Any] = {}
    for path in args.param_file or []:
        values.update(_load_param_file(path))
    for key, value in args.param or []:
        values[key] = value
    info, _, _ = prepare(args.name, values)  # exit 2 here, before any kernel starts
    print(f"running {info.name} ({info.kind}) ...", file=sys.stderr)
    result = run(args.name, values, out=args.out, progress=not args.no_progress, html=not args.no_html,
                 cell_timeout=args.cell_timeout)
    print(_summary(result))
    return result.exit_code


def _cmd_fanout(args: argparse.Namespace) -> int:
    from dwcpkit.runbook.fanout import fanout, format_summary, load_targets

    targets = load_targets(args.over)
    print(f"fanning {args.name} out over {len(targets)} targets, {args.jobs} at a time ...", file=sys.stderr)
    result = fanout(args.name, targets, out=args.out, jobs=args.jobs, scheduler=args.scheduler)
    print(format_summary(result))
    return result.exit_code


def _cmd_warm(args: argparse.Namespace) -> int:
    """Compile every numba kernel into the on-disk cache by running each benchmark in quick mode."""
    import importlib

    for name in _benchmarks():
        module = importlib.import_module(f"dwcpkit.bench.{name}")
        if getattr(module, "USES_NUMBA", False):
            module.run(quick=True)
            print(f"warmed {name}")
    return 0


def _cmd_refresh(args: argparse.Namespace) -> int:
    from dwcpkit.runbook.catalog import catalogue
    from dwcpkit.runbook.run import refresh

    names = args.names or [i.name for i in catalogue()]
    for name in names:
        print(f"refreshed {refresh(name)}")
    return 0


def _benchmarks() -> list[str]:
    import pkgutil

    from dwcpkit import bench

    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    names = _benchmarks()
    if args.what not in names:
        raise ParameterError(f"unknown benchmark {args.what!r}; available: {', '.join(names)}")
    module = importlib.import_module(f"dwcpkit.bench.{args.what}")
    rows = module.run(quick=args.quick)
    print(module.format_table(rows))
    return 0


def _cmd_sample_data(args: argparse.Namespace) -> int:
    from dwcpkit.telemetry import synth

    kwargs: dict[str, Any] = {"seed": args.seed}
    if args.days is not None:
        kwargs["days"] = args.days
    paths = synth.write_sample(Path(args.out) if args.out else None, **kwargs)
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="dwcpkit", description="Runbooks and analyses for DWCP v3.")
    parser.add_argument("--version", action="version", version=f"dwcpkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list every runbook and analysis")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="show a runbook's parameters")
    p.add_argument("name")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("run", help="run a runbook or analysis headless")
    p.add_argument("name", help="runbook name (see `dwcpkit list`) or path to an .ipynb")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a parameter (repeatable)")
    p.add_argument("-f", "--param-file", action="append", metavar="YAML",
                   help="YAML file of parameters (repeatable; -p wins)")
    p.add_argument("--out", default="runs", metavar="DIR",
                   help="root of run folders (default ./runs): DIR/NAME/<UTC time>-<id>/; or a template "
                        "such as 'out/{name}/{date}/{region}' ({name} {date} {time} {timestamp} {id} {<param>})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-html", action="store_true", help="skip the HTML report")
    p.add_argument("--cell-timeout", type=float, default=None, metavar="SECONDS",
                   help="fail a cell that runs longer than this")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("fanout", help="run one runbook per target (cluster, region) and fold the verdicts")
    p.add_argument("name", help="runbook name or path to an .ipynb")
    p.add_argument("--over", required=True, metavar="TARGETS.yaml", help="targets and their parameters")
    p.add_argument("-j", "--jobs", type=int, default=2, help="runs at a time (default 2)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:port); default: a local process pool")
    p.add_argument("--out", default="runs", metavar="DIR", help="root of run folders (default ./runs)")
    p.set_defaults(func=_cmd_fanout)

    p = sub.add_parser("warm", help="compile the numba kernels into the cache (Binder, containers)")
    p.set_defaults(func=_cmd_warm)

    p = sub.add_parser("refresh", help="re-execute committed notebooks in place on the sample data (maintainers)")
    p.add_argument("names", nargs="*", help="notebook names (default: all)")
    p.set_defaults(func=_cmd_refresh)

    p = sub.add_parser("bench", help="benchmarks, side by side with reference implementations")
    p.add_argument("what", metavar="NAME", help="benchmark: one of the modules in dwcpkit/bench (e.g. telemetry)")
    p.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("sample-data", help="regenerate the embedded sample telemetry bit-for-bit")
    p.add_argument("--out", default=None, metavar="DIR", help="folder (default: the package's data/)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=float, default=None)
    p.set_defaults(func=_cmd_sample_data)
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dwcpkit")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dwcpkit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DwcpkitError as exc:
        print(f"dwcpkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dwcpkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
