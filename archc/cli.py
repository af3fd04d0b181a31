"""The `archc` command line: one subcommand per job, each with --help.

Exit status: 0 success; 1 the program has errors (printed as file:line:col: error: ...);
2 a usage error (bad flag, unreadable file, unknown --set name). A traceback is a bug in archc.
The front-end commands (stats, check) import neither torch nor triton.
"""

from __future__ import annotations

import argparse
import json
import sys

from archc.errors import ArchError, UsageError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except ArchError as error:
        print(error, file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archc", description="A compiler for convolutional network architectures.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    stats = commands.add_parser(
        "stats", help="print the layer table, parameter and MAC counts of nets",
        description="Print each net's table in the layout of GoogLeNet's Table 1 (one file), "
                    "or one comparison line per net (several files, as VGG's Table 2).")
    stats.add_argument("files", nargs="+", metavar="FILE", help=".arch files")
    stats.add_argument("--json", action="store_true", help="print machine-readable JSON")
    _add_set(stats)
    stats.set_defaults(run=run_stats)

    check = commands.add_parser(
        "check", help="check nets for errors (exit 1 if any)",
        description="Parse, build and check every file: shapes, counts and `expect` claims. "
                    "Differences from `paper` values are warnings.")
    check.add_argument("files", nargs="+", metavar="FILE", help=".arch files")
    check.add_argument("--json", action="store_true",
                       help="print the errors and warnings as JSON on standard output")
    _add_set(check)
    check.set_defaults(run=run_check)

    compile_ = commands.add_parser(
        "compile", help="emit a standalone PyTorch module for a net",
        description="Write the net as a readable PyTorch source file that imports only torch: "
                    "a class per block use, one line per layer with its output shape.")
    compile_.add_argument("file", metavar="FILE", help="an .arch file")
    compile_.add_argument("-o", "--output", metavar="OUT.py",
                          help="where to write the module (default: standard output)")
    _add_heads(compile_)
    _add_set(compile_)
    compile_.set_defaults(run=run_compile)
    _add_graph_and_export(commands)
    return parser


def _add_graph_and_export(commands) -> None:
    graph = commands.add_parser(
        "graph", help="draw a net as a graph (DOT, SVG, PNG, PDF)",
        description="Draw the net with each edge labelled by its tensor shape. Block uses are "
                    "one node unless --expand. .dot needs nothing; .svg/.png/.pdf need "
                    "Graphviz's `dot` program.")
    graph.add_argument("file", metavar="FILE", help="an .arch file")
    graph.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="out.dot, out.svg, out.png or out.pdf")
    graph.add_argument("--expand", action="store_true", help="draw every layer of every block")
    _add_set(graph)
    graph.set_defaults(run=run_graph)

    export = commands.add_parser(
        "export", help="export a net to ONNX and verify it",
        description="Export the deployment network (eval mode, no auxiliary heads) to ONNX with "
                    "a dynamic batch size, run the ONNX checker, and compare onnxruntime's "
                    "output with PyTorch's on a random batch.")
    export.add_argument("file", metavar="FILE", help="an .arch file")
    export.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    _add_set(export)
    export.set_defaults(run=run_export)


def _add_heads(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-heads", dest="heads", action="store_false",
                         help="the deployment network: leave out the auxiliary heads")


def _add_set(command: argparse.ArgumentParser) -> None:
    command.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         type=_override, help="override a net parameter (e.g. classes=10)")


def _override(text: str) -> tuple[str, int | float]:
    name, sep, value = text.partition("=")
    try:
        number = float(value) if "." in value or "e" in value.lower() else int(value)
    except ValueError:
        number = None
    if not sep or not name.isidentifier() or number is None:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}")
    return name, number


def _analyse_all(args) -> list:
    from archc.pipeline import analyse

    return [analyse(path, dict(args.set)) for path in args.files]


def run_stats(args) -> int:
    from archc.report import render_comparison, render_table, stats

    analyses = _analyse_all(args)
    errors = [d for a in analyses for d in a.errors]
    if errors:
        print("\n".join(d.render() for d in errors), file=sys.stderr)
        return 1
    datas = [stats(a) for a in analyses]
    if args.json:
        print(json.dumps(datas[0] if len(datas) == 1 else datas, indent=2))
    elif len(datas) == 1:
        print(render_table(datas[0]))
    else:
        print(render_comparison(datas))
    return 0


def _checked(path: str, overrides: dict):
    """The analysis of a file with no errors (`paper` warnings are left to `archc check`)."""
    from archc.pipeline import analyse

    return analyse(path, overrides).raise_errors()


def run_compile(args) -> int:
    from archc.emit import emit

    if args.output is not None:
        _writable(args.output, args.file)
    emitted = emit(_checked(args.file, dict(args.set)), heads=args.heads)
    if args.output is None:
        sys.stdout.write(emitted.source)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(emitted.source)
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror}") from None
    print(f"wrote {args.output}: class {emitted.class_name}", file=sys.stderr)
    return 0


def _writable(path: str, source: str) -> str:
    """Refuse, before any work, an output in a missing folder or on top of the source."""
    from pathlib import Path

    target = Path(path).resolve()
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: no such folder")
    if target == Path(source).resolve():
        raise UsageError(f"refusing to write {path}: it is the input file")
    return path


def run_graph(args) -> int:
    from archc.draw import write

    output = _writable(args.output, args.file)
    path = write(_checked(args.file, dict(args.set)), output, expand=args.expand)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def run_export(args) -> int:
    import logging

    from archc.export import export_net

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # exporter chatter
    output = _writable(args.onnx, args.file)
    report = export_net(_checked(args.file, dict(args.set)), output, opset=args.opset)
    print(f"wrote {report.path} (opset {report.opset}): ONNX checker passed; onnxruntime vs "
          f"PyTorch max |difference| {report.max_abs_diff:.2e}")
    return 0


def run_check(args) -> int:
    from archc.pipeline import analyse

    diagnostics = []
    for path in args.files:
        try:
            diagnostics += analyse(path, dict(args.set)).diagnostics
        except ArchError as error:
            diagnostics.append(error.diagnostic())
    status = 1 if any(d.severity == "error" for d in diagnostics) else 0
    if args.json:
        print(json.dumps([d.to_json() for d in diagnostics], indent=2))
        return status
    for diagnostic in diagnostics:
        print(diagnostic.render(), file=sys.stderr)
    if status == 0:
        print(f"{len(args.files)} file{'s' * (len(args.files) != 1)} checked, no errors")
    return status


if __name__ == "__main__":
    sys.exit(main())
