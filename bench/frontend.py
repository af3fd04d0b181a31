"""Front-end cost against network size: parse + build + infer + count + check + stats.

Generates nets of about 100, 1,000 and 10,000 layers (`--sizes` for more: issue 14 asks for
linear growth to 100,000), runs each stage of the pipeline (stats: `archc stats`'s table,
computed and rendered), and
prints the best of several repetitions per stage, the time per layer and the growth from one
size to the next. Two kinds of source: `mixed` (4 lines per 10 layers: convs one per line and an
inception-style block use) and `blocks` (one inception-style block use of 6 layers a line).
Target (issue 2): linear growth, 10,000 layers under one second.

    .venv/bin/python bench/frontend.py [--repeat 5] [--kind mixed|blocks] [--sizes 100 1000]
"""

from __future__ import annotations

import argparse
import platform
import time

from archc.analysis.check import compare_claims, diagnose
from archc.analysis.cost import count_costs
from archc.analysis.shapes import infer_shapes, receptive_fields
from archc.ir.build import build_graph
from archc.lang.loader import Program
from archc.lang.parser import parse
from archc.pipeline import Analysis
from archc.report.stats import stats
from archc.report.tables import render_table

BLOCK = """block mix(c) {
    concat {
        conv 1x1 c
        { conv 1x1 c; conv 3x3 c }
        { maxpool 3x3/1 pad=1; conv 1x1 c }
    }
}
"""
# One unit of generated body, and the layers it makes.
UNITS = {
    "mixed": ("conv 3x3 32\nconv 1x1 32 expect 32x32x32\nu{i}: mix(8)\nconv 3x3 32\n", 10),
    "blocks": ("u{i}: mix(8) expect 24x32x32\n", 6),
}


def generate(layers: int, kind: str = "mixed") -> str:
    unit, layers_per_unit = UNITS[kind]
    units = max(1, layers // layers_per_unit)
    body = "".join(unit.format(i=i) for i in range(units))
    return f"{BLOCK}net big {{\n    input 3x32x32\n    default conv relu pad=same\n{body}}}\n"


def stages(text: str) -> dict[str, float]:
    times, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        times[name], t = now - t, now

    file = parse(text, "generated.arch")
    lap("parse")
    graph = build_graph(Program(file.nets[0], {b.name: b for b in file.blocks}, file.blocks))
    lap("build")
    shapes = infer_shapes(graph)
    fields = receptive_fields(graph, shapes)
    lap("infer")
    costs = count_costs(graph, shapes)
    lap("count")
    checks = compare_claims(graph, shapes, costs)
    assert not diagnose(checks)
    lap("check")
    render_table(stats(Analysis("generated.arch", graph, shapes, fields, costs, checks, [])))
    lap("stats")
    times["layers"] = len(graph)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kind", choices=sorted(UNITS), default="mixed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    args = parser.parse_args()
    parse("net warm { input 1x1x1 }", "warm.arch")  # build the Lark parser once, outside timing
    print(f"python {platform.python_version()} on {platform.machine()}, {args.kind} source, "
          f"best of {args.repeat}")
    header = ["layers", "parse", "build", "infer", "count", "check", "stats", "total", "us/layer",
              "growth"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    previous = None
    for size in args.sizes:
        text = generate(size, args.kind)
        runs = [stages(text) for _ in range(args.repeat)]
        best = {k: min(r[k] for r in runs) for k in runs[0]}
        layers = int(best.pop("layers"))
        total = sum(best.values())
        growth = f"x{total / previous:.1f}" if previous else ""
        cells = [f"{layers:,}", *(f"{best[k] * 1e3:.1f} ms" for k in best),
                 f"{total * 1e3:.1f} ms", f"{total / layers * 1e6:.1f}", growth]
        print("| " + " | ".join(cells) + " |")
        previous = total


if __name__ == "__main__":
    main()
