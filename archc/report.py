"""Report: `Analysis` -> the stats of `archc stats`, as JSON-ready data and as text tables.

`stats` computes everything once (one dict per file, the `--json` output); the text renderers
only lay that dict out: `render_table` in the layout of GoogLeNet's Table 1 for one file,
`render_comparison` as one line per net (VGG's Table 2) for several.
"""

from __future__ import annotations

import textwrap

from archc import ops
from archc.check import compare
from archc.cost import Cost, total
from archc.ir import Row
from archc.pipeline import Analysis

CONVENTIONS = (
    "params = weights + biases (PyTorch's sum of p.numel()); weights exclude biases. "
    "MACs = multiply-accumulates of conv and fc layers for one image (FLOPs = 2 x MACs).",
    "depth = weight layers on the longest path through a row; RF = receptive field in input "
    "pixels; stride = cumulative stride; output is HxWxC as in the papers (JSON: [C, H, W]); "
    "activations = elements of a row's output (the total adds up every layer's output).",
    "Printed values: Ki = 1024, K = 1000, M = 10^6, G = 10^9; one agrees when the computed "
    "value is within one unit of its last printed digit.",
    "Rounding: convolutions round down; each pool rounds as written (ceil drops a window "
    "that would start in the padding, as Caffe does).",
)

# How Table 1 names each op.
TYPE_NAMES = {"conv": "convolution", "maxpool": "max pool", "avgpool": "avg pool",
              "gap": "global avg pool", "lrn": "LRN", "dropout": "dropout", "fc": "linear",
              "flatten": "flatten", "softmax": "softmax", "concat": "concat"}


def stats(analysis: Analysis) -> dict:
    graph = analysis.graph
    main = graph.main_nodes()
    claims = [c for c in graph.claims if c.row is None]
    return {
        "net": graph.name,
        "file": analysis.path,
        "params": graph.params,
        "input": list(analysis.shapes[graph.input]),
        "output": list(analysis.shapes[graph.output]),
        "rows": [_row(analysis, r) for r in graph.rows if r.head is None],
        "heads": [_row(analysis, r) for r in graph.rows if r.head is not None],
        "depth": _depth(analysis, set(main), graph.output),
        "total": _cost(total(analysis.costs, main)),
        "training_total": _cost(total(analysis.costs, graph.order())),
        "activations": sum(analysis.shapes[n].numel() for n in main if n != graph.input),
        "paper": [_comparison(c) for claim in claims if claim.annotation.kind == "paper"
                  for c in compare(claim, analysis.shapes, analysis.costs)],
    }


def _row(analysis: Analysis, row: Row) -> dict:
    graph = analysis.graph
    shape, field = analysis.shapes[row.output], analysis.fields[row.output]
    lead = _lead(analysis, row)
    entry = {
        "name": row.name,
        "type": _type(row, lead),
        "patch": _patch(lead) if row.title in ("group", "conv", "maxpool", "avgpool") else "",
        "shape": list(shape),
        "depth": _depth(analysis, set(row.nodes), row.output),
        **_cost(total(analysis.costs, row.nodes)),
        "receptive_field": field.size,
        "stride": field.jump,
        "activations": shape.numel(),
        "args": dict(row.block_args),
    }
    if row.head is not None:
        head = next(h for h in graph.heads if h.name == row.head)
        entry["weight"] = head.weight
        entry["from"] = next(r.name for r in graph.rows if head.source in r.nodes)
        entry["type"] = f"head from {entry['from']}, weight {head.weight:g}"
    paper = [c for claim in graph.claims if claim.row == row.index
             and claim.annotation.kind == "paper"
             for c in compare(claim, analysis.shapes, analysis.costs)]
    if paper:
        entry["paper"] = [_comparison(c) for c in paper]
    return entry


def _lead(analysis: Analysis, row: Row) -> ops.OpT:
    """The op that names a row: the weighted layer with the largest window (a group's 3x3 after
    its 1x1 reduce, as Table 1 shows it; NIN's 5x5 before its 1x1s), else the last layer."""
    graph = analysis.graph
    weighted = [graph.node(n).op for n in row.nodes if analysis.costs[n].weights]
    if not weighted:
        return graph.node(row.nodes[-1]).op
    return max(weighted, key=lambda op: getattr(op, "kernel", (0, 0))[0])


def _type(row: Row, lead: ops.OpT) -> str:
    if row.title == "group":
        name = TYPE_NAMES[ops.op_name(lead)]
    elif row.title in TYPE_NAMES:
        name = TYPE_NAMES[row.title]
        if isinstance(lead, ops.Dropout):
            name += f" ({lead.p:.0%})"
    else:
        name = row.title if row.name.startswith(row.title) else f"{row.title} ({row.name})"
    return name + (f" x{row.repeat}" if row.repeat > 1 else "")


def _patch(op: ops.OpT) -> str:
    kernel = getattr(op, "kernel", None) or getattr(op, "window", None)
    return f"{kernel[0]}x{kernel[1]}/{op.stride}" if kernel else ""


def _depth(analysis: Analysis, nodes: set[int], output: int) -> int:
    """Weight layers on the longest path that ends at `output`, within `nodes`."""
    graph, depth = analysis.graph, {}
    for n in graph.order():
        if n in nodes:
            before = [depth[i] for i in graph.node(n).inputs if i in depth]
            depth[n] = max(before, default=0) + (1 if analysis.costs[n].weights else 0)
    return depth.get(output, 0)


def _cost(cost: Cost) -> dict:
    return {"params": cost.params, "weights": cost.weights, "macs": cost.macs}


def _comparison(c) -> dict:
    return {"key": c.key, "printed": c.printed, "computed": c.computed, "agrees": c.agrees}


# ---- text ----------------------------------------------------------------------------------


def render_table(data: dict) -> str:
    arg_names = list(dict.fromkeys(k for r in data["rows"] + data["heads"] for k in r["args"]))
    has_paper = any("paper" in r for r in data["rows"] + data["heads"])
    headers = ["name", "type", "patch/stride", "output", "depth", *arg_names, "weights",
               "params", "MACs", "RF", "stride", "activations"]
    headers += ["paper", "check"] if has_paper else []
    lines = [_table_row(r, arg_names, has_paper) for r in data["rows"]]
    lines += [_table_row(r, arg_names, has_paper) for r in data["heads"]]
    align = ["left", "left", "left", "right", "right", *["right"] * len(arg_names)]
    align += ["right"] * 6 + ["left", "left"] * has_paper
    table = _tabulate(lines, headers, align)
    return "\n".join([_title(data), "", table, "", *_footer(data)])


def _title(data: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in data["params"].items())
    c, h, w = data["input"]
    return f"{data['net']}({params})  {data['file']}  input {c}x{h}x{w}"


def _table_row(row: dict, arg_names: list[str], has_paper: bool) -> list[str]:
    c, h, w = row["shape"]
    cells = [row["name"], row["type"], row["patch"], f"{h}x{w}x{c}", str(row["depth"])]
    cells += [_number(row["args"].get(name, "")) for name in arg_names]
    cells += [f"{row[k]:,}" if row[k] else "" for k in ("weights", "params", "macs")]
    cells += [str(row["receptive_field"]), str(row["stride"]), f"{row['activations']:,}"]
    if has_paper:
        cells += _paper_cells(row.get("paper", []))
    return cells


def _paper_cells(paper: list[dict]) -> list[str]:
    if not paper:
        return ["", ""]
    printed = " ".join(f"{p['key']}={p['printed']}" for p in paper)
    wrong = [f"{p['key']} is {p['computed']}" for p in paper if not p["agrees"]]
    return [printed, "DIFFERS: " + ", ".join(wrong) if wrong else "ok"]


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _footer(data: dict) -> list[str]:
    t, tt = data["total"], data["training_total"]
    lines = [f"total (inference, heads excluded): {data['depth']} weight layers deep, "
             f"{t['weights']:,} weights, {t['params']:,} params, {t['macs']:,} MACs, "
             f"{data['activations']:,} activations"]
    if data["heads"]:
        names = ", ".join(h["name"] for h in data["heads"])
        lines.append(f"training total (with heads {names}): {tt['weights']:,} weights, "
                     f"{tt['params']:,} params, {tt['macs']:,} MACs")
    for p in data["paper"]:
        verdict = "agrees" if p["agrees"] else "DIFFERS"
        lines.append(f"paper, whole net: {p['key']}={p['printed']}, computed "
                     f"{p['computed']} ({verdict})")
    return lines + [""] + _conventions()


def _conventions() -> list[str]:
    return [textwrap.fill(c, 100, subsequent_indent="  ") for c in CONVENTIONS]


def render_comparison(datas: list[dict]) -> str:
    headers = ["net", "file", "input", "depth", "weights", "params", "MACs", "activations",
               "paper", "check"]
    lines = []
    for d in datas:
        c, h, w = d["input"]
        t = d["total"]
        lines.append([d["net"], d["file"], f"{c}x{h}x{w}", str(d["depth"]),
                      f"{t['weights']:,}", f"{t['params']:,}", f"{t['macs']:,}",
                      f"{d['activations']:,}", *_paper_cells(d["paper"])])
    align = ["left", "left", "left", *["right"] * 5, "left", "left"]
    table = _tabulate(lines, headers, align)
    note = "Totals are for inference (auxiliary heads excluded), as the papers' tables count."
    return "\n".join([table, "", note, *_conventions()])


def _tabulate(lines: list[list[str]], headers: list[str], align: list[str]) -> str:
    from tabulate import tabulate  # imported here: --json never needs it (a fifth of start-up)

    return tabulate(lines, headers, tablefmt="simple", disable_numparse=True, colalign=align)
