"""The `archc` command line: one subcommand per job, each with --help.

Exit status: 0 success; 1 the program has errors (printed as file:line:col: error: ...);
2 a usage error (bad flag, unreadable file, unknown --set name). A traceback is a bug in archc.
The front-end commands (stats, check) import neither torch nor triton.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

from archc.cli.args import add_set, require, writable
from archc.errors import ArchError, UsageError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        status = args.run(args)
        if not sys.stdout.closed:  # `archc lsp`'s stdio closes with the editor's session
            sys.stdout.flush()
        return status
    except ArchError as error:
        print(error, file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `archc check --json | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a Unix tool killed by SIGPIPE


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
    stats.add_argument("--format", choices=("text", "markdown", "latex", "csv"), default="text",
                       help="the table as text (default), a Markdown pipe table, a LaTeX "
                            "booktabs tabular (\\usepackage{booktabs}) or CSV (typed values), "
                            "footnotes kept")
    stats.add_argument("--fold-bn", action="store_true",
                       help="count each batch norm folded into the conv before it (inference)")
    stats.add_argument("--wide", action="store_true",
                       help="add receptive field, stride, activations and memory columns")
    add_set(stats)
    stats.set_defaults(run=run_stats)

    check = commands.add_parser(
        "check", help="check nets for errors (exit 1 if any)",
        description="Parse, build and check every file: shapes, counts and `expect` claims. "
                    "Differences from `paper` values are warnings.")
    check.add_argument("files", nargs="+", metavar="FILE", help=".arch files")
    check.add_argument("--json", action="store_true",
                       help="print the errors and warnings as JSON on standard output")
    add_set(check)
    check.set_defaults(run=run_check)

    compile_ = commands.add_parser(
        "compile", help="emit a standalone PyTorch module for a net",
        description="Write the net as a readable PyTorch source file that imports only torch: "
                    "a class per block use, one line per layer with its output shape.")
    compile_.add_argument("file", metavar="FILE", help="an .arch file")
    compile_.add_argument("-o", "--output", metavar="OUT.py",
                          help="where to write the module (default: standard output)")
    compile_.add_argument("--backend", choices=("torch", "cpu", "triton"), default="torch",
                          help="torch (nn.Modules, the reference), cpu (each conv one oneDNN "
                               "primitive with its bn, shortcut and activation, at inference) "
                               "or triton (fused 1x1 convs and pools as Triton kernels); the "
                               "same state_dict")
    compile_.add_argument("--plan", action="store_true",
                          help="print the backend's fusion plan instead (triton or cpu): what "
                               "was fused, and why the rest was not")
    compile_.add_argument("--emit", choices=("python", "ir"), default="python",
                          help="python (the module) or ir (the checked graph, one layer a line)")
    _add_heads(compile_)
    _add_logits(compile_)
    add_set(compile_)
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
                       help="out.dot, out.svg, out.png or out.pdf (out.tex: --style paper)")
    graph.add_argument("--expand", action="store_true", help="draw every layer of every block")
    graph.add_argument("--style", choices=("full", "paper"), default="full",
                       help="paper: a figure for a paper, one box per statement with its "
                            "output shape, stages framed, shortcuts drawn, black on white; "
                            "out.tex writes it as TikZ")
    add_set(graph)
    graph.set_defaults(run=run_graph)

    export = commands.add_parser(
        "export", help="export a net to ONNX and verify it",
        description="Export the deployment network (eval mode, no auxiliary heads) to ONNX with "
                    "a dynamic batch size, run the ONNX checker, and compare onnxruntime's "
                    "output with PyTorch's on a random batch.")
    export.add_argument("file", metavar="FILE", help="an .arch file")
    export.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write")
    export.add_argument("--opset", type=int, default=18,
                        help="ONNX opset (default 18, what torch's exporter writes; others are "
                             "converted, or refused when ONNX's converter cannot)")
    _add_logits(export)
    add_set(export)
    export.set_defaults(run=run_export)

    from archc.cli import diff, fmt, importer, kernels, sweep, weights  # import no torch
    from archc.train.options import add_commands, run_eval, run_train  # imports no torch

    add_commands(commands, run_train, run_eval)
    kernels.add_command(commands)
    weights.add_command(commands)
    fmt.add_command(commands)
    diff.add_command(commands)
    sweep.add_command(commands)
    importer.add_command(commands)
    lsp = commands.add_parser(
        "lsp", help="run the language server on stdio (shapes, counts, errors while editing)",
        description="Speak the Language Server Protocol on standard input and output: "
                    "diagnostics, hovers with shapes and counts, inlay hints (initialization "
                    "option inlayHints), code lenses, go to definition, symbols, completion, "
                    "formatting. Needs the lsp extra (pygls).")
    lsp.set_defaults(run=run_lsp)


def _add_heads(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-heads", dest="heads", action="store_false",
                         help="the deployment network: leave out the auxiliary heads")


def _add_logits(command: argparse.ArgumentParser) -> None:
    command.add_argument("--logits", action="store_true",
                         help="leave out the net's final softmax: return logits")


@dataclass
class _FileResult:
    """One file of a multi-file command: its analysis, or what stopped it."""

    path: str
    analysis: object | None  # archc.pipeline.Analysis
    diagnostics: list  # of archc.errors.Diagnostic
    usage_error: str | None = None

    def to_json(self) -> list[dict]:
        if self.usage_error is not None:
            return [{"file": self.path, "line": None, "column": None, "severity": "error",
                     "message": self.usage_error, "notes": []}]
        return [d.to_json() for d in self.diagnostics]


def _analyse_each(args) -> list[_FileResult]:
    """Every file on its own: one that is missing or broken hides none of the others."""
    from archc.pipeline import analyse

    results = []
    for path in args.files:
        try:
            analysis = analyse(path, dict(args.set))
            results.append(_FileResult(path, analysis, analysis.diagnostics))
        except ArchError as error:
            results.append(_FileResult(path, None, error.diagnostics()))
        except UsageError as error:
            results.append(_FileResult(path, None, [], str(error)))
    return results


def _status(results: list[_FileResult]) -> int:
    if any(r.usage_error for r in results):
        return 2
    return 1 if any(d.severity == "error" for r in results for d in r.diagnostics) else 0


def _print_problems(results: list[_FileResult], severities: tuple[str, ...]) -> None:
    for r in results:
        if r.usage_error:
            print(f"archc: error: {r.usage_error}", file=sys.stderr)
        for d in r.diagnostics:
            if d.severity in severities:
                print(d.render(), file=sys.stderr)


def run_stats(args) -> int:
    from archc.report.stats import stats
    from archc.report.tables import render_comparison, render_table

    if args.json and args.format != "text":
        raise UsageError("--json and --format are two outputs: give one")
    results = _analyse_each(args)
    good = {r.path: stats(r.analysis, args.fold_bn) for r in results
            if r.analysis and not r.analysis.errors}
    if args.json:
        data = [good[r.path].to_json() if r.path in good else
                {"file": r.path, "errors": r.to_json()} for r in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
        return _status(results)
    _print_problems(results, ("error",))
    end = "\n" if args.format == "text" else ""  # the other formats end their last line
    if len(args.files) == 1 and good:
        print(render_table(next(iter(good.values())), args.wide, args.format), end=end)
    elif good:
        print(render_comparison(list(good.values()), args.format), end=end)
    return _status(results)


def _checked(path: str, overrides: dict):
    """The analysis of a file with no errors (`paper` warnings are left to `archc check`)."""
    from archc.pipeline import analyse

    return analyse(path, overrides).raise_errors()


def run_compile(args) -> int:
    from archc.backends.registry import BACKENDS
    from archc.codegen.emit import emit
    from archc.files import write_atomically

    if args.output is not None:
        writable(args.output, args.file)
    analysis = _checked(args.file, dict(args.set))
    backend = BACKENDS[args.backend]
    if args.plan and backend.planner is None:
        raise UsageError("--plan shows a fusing backend's plan: add --backend triton or "
                         "--backend cpu")
    if args.plan:
        text, what = backend.planner(analysis).text(analysis), "the plan"
    elif args.emit == "ir":
        text, what = analysis.graph.verify().dump(analysis.shapes), "the IR"
    else:
        emitted = emit(analysis, args.heads, args.logits, backend)
        text, what = emitted.source, f"class {emitted.class_name}"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
    try:
        write_atomically(args.output, write)
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror}") from None
    print(f"wrote {args.output}: {what}", file=sys.stderr)
    return 0


def run_graph(args) -> int:
    require("graph", "graphviz")
    from archc.report.draw import write

    output = writable(args.output, args.file)
    if args.style == "paper" and args.expand:
        raise UsageError("--expand draws every layer; --style paper one box per statement: "
                         "choose one")
    path = write(_checked(args.file, dict(args.set)), output, expand=args.expand,
                 style=args.style)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def run_export(args) -> int:
    require("export", "torch", "onnx", "onnxruntime", "onnxscript")
    import logging

    from archc.codegen.export import export_net

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # exporter chatter
    output = writable(args.onnx, args.file)
    report = export_net(_checked(args.file, dict(args.set)), output, opset=args.opset,
                        logits=args.logits)
    print(f"wrote {report.path} (opset {report.opset}): ONNX checker passed; onnxruntime vs "
          f"PyTorch max |difference| {report.max_abs_diff:.2e}")
    return 0


def run_lsp(args) -> int:
    require("lsp", "pygls", "lsprotocol")
    from archc.lsp.server import main as serve

    serve()
    return 0


def run_check(args) -> int:
    results = _analyse_each(args)
    status = _status(results)
    if args.json:
        print(json.dumps([d for r in results for d in r.to_json()], indent=2))
        return status
    _print_problems(results, ("error", "warning", "note"))
    if status == 0:
        print(f"{len(args.files)} file{'s' * (len(args.files) != 1)} checked, no errors")
    return status


if __name__ == "__main__":
    sys.exit(main())
