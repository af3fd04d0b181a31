"""Draw: `Analysis` -> a Graphviz graph of the network, each edge labelled with its tensor shape.

Built with the `graphviz` package, which writes DOT in pure Python; Graphviz's own `dot`
program lays it out and renders SVG or PNG. By default every block use at the top of the net is
one node (as a paper's figure would show an inception module); `expand=True` draws every layer
and puts each block use in a cluster labelled with the block and the statement
(`inception (4a)`). Nodes are coloured by kind (`KINDS`, with a legend) and show their params
and MACs; heads are dashed. Branches keep their source order left to right (`ordering=out`:
a layer's out-edges are added in the order its users were written).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import graphviz

from archc import ops
from archc.analysis.cost import Cost, total
from archc.errors import UsageError
from archc.pipeline import Analysis

FORMATS = ("dot", "gv", "svg", "png", "pdf")

# Fill colour by kind of node (ColorBrewer Pastel1, which prints and reads in grey too).
KINDS = {"conv": "#b3cde3", "pool": "#ccebc5", "normalisation": "#fed9a6", "fc": "#decbe4",
         "block": "#fbb4ae", "head": "#f2f2f2", "other": "#ffffff"}

def draw(analysis: Analysis, expand: bool = False) -> graphviz.Digraph:
    graph = analysis.graph
    dot = graphviz.Digraph(graph.name, graph_attr={"rankdir": "TB", "fontname": "Helvetica",
                                                   "ordering": "out"},
                           node_attr={"shape": "box", "style": "rounded,filled",
                                      "fontsize": "10", "fontname": "Helvetica"},
                           edge_attr={"fontsize": "9", "fontname": "Helvetica"})
    shown = {n: _shown_as(analysis, n, expand) for n in graph.order()}
    kinds: set[str] = set()
    if expand:
        _add_layers(dot, analysis, (), kinds)
    else:
        for n in graph.order():
            node = graph.node(n)
            if not node.blocks:
                _layer_node(dot, analysis, n, kinds)
            elif n == _first(analysis, node.blocks[0]):
                _use_node(dot, analysis, node.blocks[0], shown[n], kinds)
    edges = dict.fromkeys((shown[i], shown[n], str(analysis.shapes[i]))
                          for n in graph.order() for i in graph.node(n).inputs
                          if shown[i] != shown[n])
    for source, target, shape in edges:
        dot.edge(source, target, label=shape)
    _legend(dot, kinds)
    return dot


def write(analysis: Analysis, path: str | Path, expand: bool = False,
          style: str = "full", marks: dict[str, str] | None = None, title: str = "") -> Path:
    """`style`: "full" (this module's drawing) or "paper" (archc.report.figure: one box per
    statement, black on white, `marks` filling the statements `archc diff` found changed or
    added; .tex writes it as TikZ)."""
    from archc.report.figure import draw_figure, tikz

    path = Path(path)
    kind = path.suffix.lstrip(".").lower()
    if kind == "tex" and style == "paper":
        path.write_text(tikz(analysis))
        return path
    if kind not in FORMATS:
        also = " (and .tex with --style paper)" if style != "paper" else ", .tex"
        raise UsageError(f"cannot draw to '{path.name}': use one of "
                         f"{', '.join('.' + f for f in FORMATS)}{also}")
    dot = draw_figure(analysis, marks, title) if style == "paper" else draw(analysis, expand)
    if kind in ("dot", "gv"):
        path.write_text(dot.source)
        return path
    if shutil.which("dot") is None:
        raise UsageError(f"rendering .{kind} needs Graphviz's `dot` program (apt-get install "
                         "graphviz); a .dot file needs nothing")
    path.write_bytes(dot.pipe(format=kind))
    return path


# ---- nodes ---------------------------------------------------------------------------------


def _add_layers(dot: graphviz.Digraph, analysis: Analysis, path: tuple[int, ...],
                kinds: set[str]) -> None:
    """Layers inside exactly the block uses `path`, then one cluster per use nested in it."""
    graph, inner, here = analysis.graph, {}, []
    for n in graph.order():
        node = graph.node(n)
        if node.blocks == path:
            _layer_node(dot, analysis, n, kinds)
            here.append(n)
        elif node.blocks[: len(path)] == path and len(node.blocks) > len(path):
            inner.setdefault(node.blocks[len(path)], None)
    _siblings_side_by_side(dot, analysis, here)
    for use in inner:
        with dot.subgraph(name=f"cluster_use{use}") as cluster:
            cost = _cost(analysis, use)
            cluster.attr(label=f"{_use_name(analysis, use)}\n{_counts(cost)}", style="dashed",
                         labeljust="l")
            _add_layers(cluster, analysis, path + (use,), kinds)


def _siblings_side_by_side(dot, analysis: Analysis, nodes: list[int]) -> None:
    """The layers that read one tensor (an inception's four branches) on one rank, so that
    `ordering=out` keeps them in source order; dot would otherwise sink a one-layer branch
    towards the concat. Not where one sibling feeds another."""
    readers: dict[int, list[int]] = {}
    for n in nodes:
        inputs = analysis.graph.node(n).inputs
        if len(inputs) == 1:
            readers.setdefault(inputs[0], []).append(n)
    for group in readers.values():
        feeds = any(i in group for n in group for i in analysis.graph.node(n).inputs)
        if len(group) > 1 and not feeds:
            with dot.subgraph() as rank:
                rank.attr(rank="same")
                for n in group:
                    rank.node(str(n))


def _layer_node(dot, analysis: Analysis, n: int, kinds: set[str]) -> None:
    node = analysis.graph.node(n)
    kind = ops.spec(node.op).draw
    if node.head and kind not in ("conv", "fc"):  # a head's weight layers keep their colour
        kind = "head"
    lines = [ops.full_text(node.op).replace(" relu", " + relu")]
    if analysis.costs[n].params:
        lines.append(_counts(analysis.costs[n]))
    dot.node(str(n), "\n".join(lines), **_style(kind, node.head))
    kinds.add(kind)


def _use_node(dot, analysis: Analysis, use: int, name: str, kinds: set[str]) -> None:
    """A whole block use as one node: its name and label, output shape, params and MACs."""
    last = max(n for n in analysis.graph.order() if use in analysis.graph.node(n).blocks)
    head = analysis.graph.node(last).head
    label = f"{_use_name(analysis, use)}\n{analysis.shapes[last]}\n{_counts(_cost(analysis, use))}"
    kind = "head" if head else "block"
    dot.node(name, label, **_style(kind, head))
    kinds.add(kind)


def _legend(dot: graphviz.Digraph, kinds: set[str]) -> None:
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", style="solid", color="#bbbbbb", fontsize="9")
        order = [k for k in KINDS if k in kinds]
        for kind in order:
            legend.node(f"legend_{kind}", kind, **_style(kind, None), fontsize="9")
        for a, b in zip(order, order[1:]):  # a column, drawn beside the net
            legend.edge(f"legend_{a}", f"legend_{b}", style="invis")


def _style(kind: str, head: str | None) -> dict:
    style = "rounded,filled,dashed" if head else "rounded,filled"
    return {"style": style, "fillcolor": KINDS[kind]}


# ---- text ----------------------------------------------------------------------------------


def _counts(cost: Cost) -> str:
    return f"{_short(cost.params)} params, {_short(cost.macs)} MACs"


def _short(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _use_name(analysis: Analysis, use: int) -> str:
    """`inception (4a)`: the block, and the statement of the net (or head) it is used in; a
    use nested in another block is named by its block alone."""
    graph = analysis.graph
    block = graph.block_uses[use].name
    node = graph.node(_first(analysis, use))
    if node.row is None or node.blocks[0] != use:
        return block
    row = graph.rows[node.row].name
    return f"{block} ({row})" if row.rstrip("0123456789") != block else block


def _cost(analysis: Analysis, use: int) -> Cost:
    graph = analysis.graph
    return total(analysis.costs, (n for n in graph.order() if use in graph.node(n).blocks))


def _shown_as(analysis: Analysis, n: int, expand: bool) -> str:
    """The DOT node a layer is drawn as: its own, or its top-level block use's."""
    node = analysis.graph.node(n)
    return f"use{node.blocks[0]}" if node.blocks and not expand else str(n)


def _first(analysis: Analysis, use: int) -> int:
    return min(n for n in analysis.graph.order() if use in analysis.graph.node(n).blocks)
