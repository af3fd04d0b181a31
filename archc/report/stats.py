"""Stats: `Analysis` -> what `archc stats` reports, as typed values; `to_json()` is `--json`.

Everything is computed here once: a row per top-level statement of the net (and per head),
the totals, and the `paper` comparisons the pipeline already made (`Analysis.checks`). The
text renderers in archc.report.tables only lay these values out.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import ops
from archc.analysis.check import Comparison
from archc.analysis.cost import Cost, total
from archc.analysis.shapes import Shape
from archc.ir.graph import Row
from archc.pipeline import Analysis

BYTES_PER_ELEMENT = 4  # activation memory is counted in float32

# How Table 1 names each op.
# The type column: each op's title (its spec's `titles`), by the language's name.
TYPE_NAMES = {name: title for spec in ops.REGISTRY.values()
              for name, title in spec.titles.items()}


@dataclass(frozen=True)
class Counts:
    params: int
    weights: int
    macs: int
    buffers: int = 0  # batch norm's running statistics: not params

    @staticmethod
    def of(cost: Cost) -> Counts:
        return Counts(cost.params, cost.weights, cost.macs, cost.buffers)

    def to_json(self) -> dict:
        return {"params": self.params, "weights": self.weights, "macs": self.macs,
                "buffers": self.buffers}


@dataclass(frozen=True)
class PaperValue:
    """A printed value beside the computed one. `default`: under --set, the value with the
    net's defaults where --set changed it; the printed value is then not compared."""

    key: str
    printed: str
    computed: str
    agrees: bool
    default: str | None = None

    def to_json(self) -> dict:
        data = {"key": self.key, "printed": self.printed, "computed": self.computed,
                "agrees": self.agrees}
        return data if self.default is None else {**data, "default": self.default}


@dataclass(frozen=True)
class RowStats:
    name: str
    type: str
    patch: str  # window/stride of the row's widest layer, for convs and pools
    shape: Shape
    depth: int  # weight layers on the longest path through the row
    counts: Counts
    receptive_field: int
    stride: int  # cumulative
    activations: int
    args: dict[str, int | float]  # a block use's arguments
    paper: tuple[PaperValue, ...]
    head: tuple[str, float] | None = None  # a head's source row and loss weight
    labelled: bool = False  # its name is its statement's label (`4a`), not a counter's

    @property
    def memory(self) -> int:
        return self.activations * BYTES_PER_ELEMENT

    def to_json(self) -> dict:
        data = {"name": self.name, "type": self.type, "patch": self.patch,
                "shape": list(self.shape), "depth": self.depth, **self.counts.to_json(),
                "receptive_field": self.receptive_field, "stride": self.stride,
                "activations": self.activations, "args": dict(self.args)}
        if self.head is not None:
            data["weight"], data["from"] = self.head[1], self.head[0]
        if self.paper:
            data["paper"] = [p.to_json() for p in self.paper]
        return data


@dataclass(frozen=True)
class NetStats:
    net: str
    file: str
    params: dict[str, int | float]
    input: Shape
    output: Shape
    rows: tuple[RowStats, ...]
    heads: tuple[RowStats, ...]
    depth: int
    total: Counts  # inference: heads excluded, as the papers count
    training_total: Counts
    activations: int
    paper: tuple[PaperValue, ...]  # claims about the whole net
    bn_folded: bool = False  # counted with each bn folded into its conv (--fold-bn)

    @property
    def memory(self) -> int:
        return self.activations * BYTES_PER_ELEMENT

    def to_json(self) -> dict:
        return {"net": self.net, "file": self.file, "params": dict(self.params),
                "input": list(self.input), "output": list(self.output),
                "rows": [r.to_json() for r in self.rows],
                "heads": [r.to_json() for r in self.heads], "depth": self.depth,
                "total": self.total.to_json(), "training_total": self.training_total.to_json(),
                "activations": self.activations, "paper": [p.to_json() for p in self.paper],
                "bn_folded": self.bn_folded}


def stats(analysis: Analysis, fold_bn: bool = False) -> NetStats:
    """The stats of a net as written, or with each batch norm folded into its conv."""
    if fold_bn:
        from dataclasses import replace

        from archc.analysis.cost import fold_bn as folded

        analysis = replace(analysis, costs=folded(analysis.graph, analysis.costs))
    graph = analysis.graph
    main = graph.main_nodes()
    papers = _papers_by_row(analysis)
    row_of = {n: r.name for r in graph.rows for n in r.nodes}  # where a head branches from
    return NetStats(
        graph.name, analysis.path, dict(graph.params), analysis.shapes[graph.input],
        analysis.shapes[graph.output],
        tuple(_row(analysis, r, papers, row_of) for r in graph.rows if r.head is None),
        tuple(_row(analysis, r, papers, row_of) for r in graph.rows if r.head is not None),
        _depth(analysis, set(main), graph.output),
        Counts.of(total(analysis.costs, main)),
        Counts.of(total(analysis.costs, graph.order())),
        sum(analysis.shapes[n].numel() for n in main if n != graph.input),
        papers.get(None, ()), fold_bn)


def _row(analysis: Analysis, row: Row, papers: dict, row_of: dict[int, str]) -> RowStats:
    shape, field = analysis.shapes[row.output], analysis.fields[row.output]
    lead = _lead(analysis, row)
    head = None
    if row.head is not None:
        info = next(h for h in analysis.graph.heads if h.name == row.head)
        head = (row_of[info.source], info.weight)
    return RowStats(
        row.name, _type(row, lead, head),
        _patch(lead) if row.title in ("group", "conv", "maxpool", "avgpool") else "",
        shape, _depth(analysis, set(row.nodes), row.output),
        Counts.of(total(analysis.costs, row.nodes)), field.size, field.jump, shape.numel(),
        dict(row.block_args), papers.get(row.index, ()), head, row.labelled or head is not None)


def _papers_by_row(analysis: Analysis) -> dict[int | None, tuple[PaperValue, ...]]:
    """Each row's `paper` comparisons (None: the whole net's and inner statements'), grouped
    in one pass over the claims: a scan per row was quadratic in a net of many rows."""
    rows: dict[int | None, list[PaperValue]] = {}
    for check in analysis.checks:
        if check.claim.annotation.kind == "paper":
            rows.setdefault(check.claim.row, []).extend(map(_value, check.comparisons))
    return {row: tuple(values) for row, values in rows.items()}


def _value(c: Comparison) -> PaperValue:
    return PaperValue(c.key, c.printed, c.computed, c.agrees, c.default)


def _lead(analysis: Analysis, row: Row) -> ops.OpT:
    """The op that names a row: the weighted layer with the largest window (a group's 3x3 after
    its 1x1 reduce, as Table 1 shows it; NIN's 5x5 before its 1x1s), else the last layer."""
    graph = analysis.graph
    weighted = [graph.node(n).op for n in row.nodes if analysis.costs[n].weights]
    if not weighted:
        return graph.node(row.nodes[-1]).op
    return max(weighted, key=lambda op: getattr(op, "window", (0, 0))[0])


def _type(row: Row, lead: ops.OpT, head: tuple[str, float] | None) -> str:
    if head is not None:
        return f"head from {head[0]}, weight {head[1]:g}"
    if row.title == "group":
        name = TYPE_NAMES[ops.op_name(lead)]
    elif row.title in TYPE_NAMES:
        name = TYPE_NAMES[row.title]
        if ops.op_name(lead) == row.title:
            name += ops.spec(lead).title_detail(lead)  # dropout's (40%)
    else:
        name = row.title if row.name.startswith(row.title) else f"{row.title} ({row.name})"
    return name + (f" x{row.repeat}" if row.repeat > 1 else "")


def _patch(op: ops.OpT) -> str:
    window = getattr(op, "window", None)
    return f"{window[0]}x{window[1]}/{op.stride}" if window else ""


def _depth(analysis: Analysis, nodes: set[int], output: int) -> int:
    """Weight layers on the longest path that ends at `output`, within `nodes`."""
    graph, depth = analysis.graph, {}
    for n in sorted(nodes):  # ids are a topological order (Graph.verify); only these nodes,
        before = [depth[i] for i in graph.node(n).inputs if i in depth]  # so rows stay linear
        depth[n] = max(before, default=0) + (1 if analysis.costs[n].weights else 0)
    return depth.get(output, 0)
