"""`archc sweep NET.arch --set NAME=LO:HI:STEP ...`: the net's counts at every point of a grid.

    archc sweep nets/mnasnet1_0.arch --set alpha=0.5:1.5:0.25 --where "macs<400M"
    archc sweep nets/resnet_digits.arch --set width=8:32:8 --csv > points.csv

One row per point: its parameters, params, MACs, activations and depth, `*` on the Pareto front
of params and MACs among the points `--where` admits; a point whose program fails is listed
with its located error (also on standard error) and the sweep goes on. `--plot` draws MACs
against params with the front (matplotlib, the train extra). Exit 1 if any point failed.
"""

from __future__ import annotations

import csv
import json
import sys

from archc.cli.args import require, writable
from archc.errors import UsageError


def add_command(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="count a net over a grid of its parameters: the budget, the front",
        description="Analyse the net at every combination of the --set ranges (LO:HI:STEP, "
                    "both ends included, or one value) and print each point's params, MACs, "
                    "activations and depth, marking the Pareto front of params and MACs among "
                    "the points --where admits.")
    sweep.add_argument("file", metavar="FILE", help="an .arch file")
    sweep.add_argument("--set", action="append", default=[], metavar="NAME=LO:HI:STEP",
                       help="a net parameter's range, or a value (repeatable)")
    sweep.add_argument("--where", metavar="BUDGET",
                       help='the points to keep, e.g. "macs<600M and params<5M"')
    output = sweep.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the points as JSON")
    output.add_argument("--csv", action="store_true", help="print the points as CSV")
    sweep.add_argument("--plot", metavar="OUT.png", help="draw MACs against params (matplotlib)")
    sweep.add_argument("--latency", choices=("sm_90", "sm_80"), metavar="TARGET",
                       help="add each point's modelled time of its Triton kernels on TARGET "
                            "(sm_90 or sm_80; `archc kernels`' roofline, compiled offline; "
                            "needs torch and triton)")
    sweep.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp16",
                       help="the kernels' dtype for --latency (fp16)")
    sweep.add_argument("--batch", type=int, default=256, help="images for --latency (256)")
    sweep.set_defaults(run=run_sweep)


def run_sweep(args) -> int:
    from archc.report import sweep as sweeping

    ranges = dict(_range(text) for text in args.set)
    if args.plot:
        require("sweep --plot", "matplotlib")
        writable(args.plot, args.file)
    points = sweeping.sweep(args.file, sweeping.grid(ranges))
    if args.latency:
        _latencies(points, args)
    if args.where:
        sweeping.where(args.where, points)
    sweeping.front(points)
    for point in points:
        if point.error:
            print(point.error, file=sys.stderr)
    if args.json:
        print(json.dumps([p.to_json() for p in points], indent=2))
    elif args.csv:
        _csv(points, list(ranges))
    else:
        print(_table(points, list(ranges)))
    if args.plot:
        _plot(points, args.plot, args.file)
    return 1 if any(p.error for p in points) else 0


def _latencies(points, args) -> None:
    """Each point's modelled Triton time (ms), with a progress bar: a point lowers the net,
    captures its launches and compiles each new config (cached across points and runs)."""
    require("sweep --latency", "torch", "triton", "tqdm")
    from tqdm import tqdm

    from archc.backends.triton.aot import TARGETS
    from archc.cli.kernels import modelled_seconds

    target = TARGETS[args.latency]
    for point in tqdm([p for p in points if not p.error], desc=f"modelling on {target.name}",
                      unit="point", leave=False, file=sys.stderr, disable=None):
        seconds = modelled_seconds(args.file, target, args.dtype, args.batch, point.values)
        point.latency_ms = None if seconds is None else round(seconds * 1e3, 4)


def _range(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier() or not value:
        raise UsageError(f"--set {text}: write NAME=LO:HI:STEP or NAME=VALUE")
    return name, value


def _rows(points, names: list[str]) -> list[list]:
    from archc.report.sweep import COUNTS

    timed = any(p.latency_ms is not None for p in points)
    return [[*(p.values[n] for n in names), *(p.counts.get(c, "") for c in COUNTS),
             *([p.latency_ms if p.latency_ms is not None else ""] if timed else []),
             "yes" if p.admitted and not p.error else "no", "yes" if p.front else "",
             (p.error or "").splitlines()[0] if p.error else ""] for p in points]


def _csv(points, names: list[str]) -> None:
    from archc.report.sweep import COUNTS

    writer = csv.writer(sys.stdout, lineterminator="\n")
    timed = ["latency_ms"] if any(p.latency_ms is not None for p in points) else []
    writer.writerow([*names, *COUNTS, *timed, "admitted", "front", "error"])
    writer.writerows(_rows(points, names))


def _table(points, names: list[str]) -> str:
    from tabulate import tabulate

    from archc.report.sweep import COUNTS

    timed = any(p.latency_ms is not None for p in points)
    lines = [[*(p.values[n] for n in names),
              *(f"{p.counts[c]:,}" if c in p.counts else "" for c in COUNTS),
              *([f"{p.latency_ms:.3f}" if p.latency_ms is not None else ""] if timed else []),
              "error" if p.error else "" if p.admitted else "over budget",
              "*" if p.front else ""] for p in points]
    latency = ["triton ms"] if timed else []
    table = tabulate(lines, [*names, *COUNTS, *latency, "", "front"], tablefmt="simple",
                     disable_numparse=True, colalign=["right"] * (
                         len(names) + len(COUNTS) + len(latency)) + ["left", "left"])
    admitted = sum(p.admitted and not p.error for p in points)
    failed = sum(bool(p.error) for p in points)
    return (f"{table}\n\n{len(points)} points: {admitted} admitted, "
            f"{sum(p.front for p in points)} on the front (*: no admitted point has both fewer "
            f"params and fewer MACs), {failed} failed. params and MACs count inference, as "
            "archc stats." + ("\ntriton ms: the roofline time of the net's Triton kernels "
                              "(archc kernels' model, not a measurement; layers torch runs "
                              "are not counted)." if timed else ""))


def _plot(points, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [p for p in points if not p.error]
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=120)
    kept = [p for p in ok if p.admitted]
    axes.scatter([p.counts["params"] / 1e6 for p in ok if not p.admitted],
                 [p.counts["macs"] / 1e6 for p in ok if not p.admitted], c="#bbbbbb", s=14,
                 label="over budget")
    axes.scatter([p.counts["params"] / 1e6 for p in kept],
                 [p.counts["macs"] / 1e6 for p in kept], c="#4c72b0", s=14, label="admitted")
    line = sorted((p for p in kept if p.front), key=lambda p: p.counts["params"])
    axes.plot([p.counts["params"] / 1e6 for p in line], [p.counts["macs"] / 1e6 for p in line],
              "-o", c="#c44e52", ms=4, label="front")
    axes.set_xlabel("params (millions)")
    axes.set_ylabel("MACs (millions, one image)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    from archc.files import write_atomically

    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))
    plt.close(figure)
    print(f"wrote {path}", file=sys.stderr)
