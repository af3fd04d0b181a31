"""Draw: `Analysis` -> a Graphviz graph of the network, each edge labelled with its tensor shape.

Built with the `graphviz` package, which writes DOT in pure Python; Graphviz's own `dot`
program lays it out and renders SVG or PNG. By default every block use at the top of the net is
one node (as a paper's figure would show an inception module); `expand=True` draws every layer
and puts each block use in a labelled cluster. Heads are dashed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import graphviz

from archc import ops
from archc.errors import UsageError
from archc.pipeline import Analysis

FORMATS = ("dot", "gv", "svg", "png", "pdf")


def draw(analysis: Analysis, expand: bool = False) -> graphviz.Digraph:
    graph = analysis.graph
    dot = graphviz.Digraph(graph.name, graph_attr={"rankdir": "TB", "fontname": "Helvetica"},
                           node_attr={"shape": "box", "style": "rounded", "fontsize": "10",
                                      "fontname": "Helvetica"},
                           edge_attr={"fontsize": "9", "fontname": "Helvetica"})
    shown = {n: _shown_as(analysis, n, expand) for n in graph.order()}
    if expand:
        _add_layers(dot, analysis, ())
    else:
        for n in graph.order():
            node = graph.node(n)
            if not node.blocks:
                dot.node(str(n), _layer_label(node.op, analysis.shapes[n]), **_style(node.head))
            elif n == _first(analysis, node.blocks[0]):
                use, last = node.blocks[0], _last(analysis, node.blocks[0])
                label = _use_label(analysis, n, graph.block_uses[use].name)
                dot.node(shown[n], f"{label}\n{analysis.shapes[last]}", **_style(node.head))
    edges = dict.fromkeys((shown[i], shown[n], str(analysis.shapes[i]))
                          for n in graph.order() for i in graph.node(n).inputs
                          if shown[i] != shown[n])
    for source, target, shape in edges:
        dot.edge(source, target, label=shape)
    return dot


def _add_layers(dot: graphviz.Digraph, analysis: Analysis, path: tuple[int, ...]) -> None:
    """Layers inside exactly the block uses `path`, then one cluster per use nested in it."""
    graph, inner = analysis.graph, {}
    for n in graph.order():
        node = graph.node(n)
        if node.blocks == path:
            dot.node(str(n), _layer_label(node.op, analysis.shapes[n]), **_style(node.head))
        elif node.blocks[: len(path)] == path and len(node.blocks) > len(path):
            inner.setdefault(node.blocks[len(path)], None)
    for use in inner:
        with dot.subgraph(name=f"cluster_use{use}") as cluster:
            cluster.attr(label=graph.block_uses[use].name, style="dashed")
            _add_layers(cluster, analysis, path + (use,))


def write(analysis: Analysis, path: str | Path, expand: bool = False) -> Path:
    path = Path(path)
    kind = path.suffix.lstrip(".").lower()
    if kind not in FORMATS:
        raise UsageError(f"cannot draw to '{path.name}': use one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    dot = draw(analysis, expand)
    if kind in ("dot", "gv"):
        path.write_text(dot.source)
        return path
    if shutil.which("dot") is None:
        raise UsageError(f"rendering .{kind} needs Graphviz's `dot` program (apt-get install "
                         "graphviz); a .dot file needs nothing")
    path.write_bytes(dot.pipe(format=kind))
    return path


def _shown_as(analysis: Analysis, n: int, expand: bool) -> str:
    """The DOT node a layer is drawn as: its own, or its top-level block use's."""
    node = analysis.graph.node(n)
    return f"use{node.blocks[0]}" if node.blocks and not expand else str(n)


def _first(analysis: Analysis, use: int) -> int:
    return min(n for n in analysis.graph.order() if use in analysis.graph.node(n).blocks)


def _last(analysis: Analysis, use: int) -> int:
    return max(n for n in analysis.graph.order() if use in analysis.graph.node(n).blocks)


def _use_label(analysis: Analysis, n: int, block: str) -> str:
    row = analysis.graph.rows[analysis.graph.node(n).row]
    return f"{block} ({row.name})" if row.name.rstrip("0123456789") != block else block


def _layer_label(op: ops.OpT, shape) -> str:
    text = ops.describe(op)
    if isinstance(op, (ops.Conv, ops.FC)) and op.act == "relu":
        text += " + relu"
    if isinstance(op, ops.Input):
        text += f" {shape}"
    return text


def _style(head: str | None) -> dict:
    return {"style": "rounded,dashed"} if head else {}
