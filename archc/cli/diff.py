"""`archc diff A.arch B.arch`: what changed between two nets, or two builds of one.

    archc diff nets/vgg_a.arch nets/vgg_e.arch
    archc diff nets/mnasnet1_0.arch nets/mnasnet1_0.arch --set-b alpha=1.3

Rows aligned by label, then by kind in order (archc.report.diff); per row the change of
shape, params and MACs; the block definitions that differ; the totals. Exit 0 when the two are
identical, 1 when they differ (as diff(1)), 2 on a usage error. Torch-free. `--graph OUT.svg`
draws B as a paper figure (archc.report.figure) with its changed and added statements filled.
"""

from __future__ import annotations

import json
import sys

from archc.cli.args import add_set, override, require, writable


def add_command(commands) -> None:
    diff = commands.add_parser(
        "diff", help="compare two nets row by row: shapes, params, MACs, blocks, totals",
        description="Align B's table with A's (by label, then by kind of row in order) and "
                    "print the rows that changed, were added or removed, the block "
                    "definitions that differ, and the totals. Exit 0 identical, 1 different.")
    diff.add_argument("a", metavar="A", help="an .arch file")
    diff.add_argument("b", metavar="B", help="an .arch file (A again to compare two builds)")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.add_argument("--all", action="store_true", help="list the unchanged rows too")
    add_set(diff)
    for side in ("a", "b"):
        diff.add_argument(f"--set-{side}", action="append", default=[], type=override,
                          metavar="NAME=VALUE",
                          help=f"override a net parameter of {side.upper()} only "
                               f"(after --set; e.g. alpha=1.3)")
    diff.add_argument("--graph", metavar="OUT.svg",
                      help="also draw B, one box per statement, the changed statements "
                           "orange and the added green (.svg, .pdf, .png; Graphviz)")
    diff.set_defaults(run=run_diff)


def run_diff(args) -> int:
    from archc.pipeline import analyse
    from archc.report.diff import diff, render

    if args.graph:
        require("diff --graph", "graphviz")
        writable(args.graph, args.a, args.b)
    a = analyse(args.a, {**dict(args.set), **dict(args.set_a)}).raise_errors()
    b = analyse(args.b, {**dict(args.set), **dict(args.set_b)}).raise_errors()
    result = diff(a, b)
    if args.graph:
        _draw(result, b, args.graph)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(render(result, args.all), end="")
    return 0 if result.identical else 1


def _draw(result, b, path: str) -> None:
    """B's paper-style figure with the statements the diff found changed or added filled."""
    from archc.report.draw import write

    marks = {r.b.name: r.kind for r in result.rows if r.kind in ("changed", "added")}
    removed = sum(r.kind == "removed" for r in result.rows)
    changed, added = (sum(v == kind for v in marks.values()) for kind in ("changed", "added"))
    title = f"{result.b.net} against {result.a.net}: {changed} changed (orange), {added} " \
        f"added (green), {removed} removed"
    write(b, path, style="paper", marks=marks, title=title)
    print(f"wrote {path}", file=sys.stderr)
