"""Width parameters: the net parameters an emitted net class can take as constructor arguments.

A net's class is written for one build: its spatial sizes, its flattened widths and its layer
count are numbers. A net parameter can still be a constructor argument (`Googlenet(classes=10)`)
when it changes channel counts only: the class then computes each width from the statement
that gives it (`nn.Linear(1024, classes)`), as a block class does. That holds when building
the net with another value of the parameter makes the same layers, with the same input and the
same spatial sizes; `width_params` builds it so to find out (for each parameter, the front end
once more, without counting). `classes` is one in every shipped net, a width multiplier such as
MnasNet's `alpha` another; an input `size` is not.

Nets with an auxiliary head that is not one block use take none: such a head's class is
written for its one use, in numbers.
"""

from __future__ import annotations

from archc.analysis.shapes import flat_values, infer_shapes
from archc.errors import ArchError
from archc.ir.build import build_graph
from archc.ir.graph import Graph
from archc.lang import ast
from archc.lang.loader import Program


def width_params(program: Program, graph: Graph) -> tuple[str, ...]:
    """The net parameters, in declaration order, that change only channel counts."""
    if any(not _one_block_use(head.syntax) for head in graph.heads):
        return ()
    shapes = infer_shapes(graph)
    built = _layout(graph, shapes)
    kept = []
    for name, value in graph.params.items():
        other = value + 1 if isinstance(value, int) else value * 1.5
        try:
            probe = build_graph(program, {**graph.params, name: other})
            layout = _layout(probe, infer_shapes(probe))
        except ArchError:  # the other value builds no net: the class is written for this one
            continue
        if layout == built and _input(probe) == _input(graph):
            kept.append(name)
    return tuple(kept)


def _layout(graph: Graph, shapes: dict) -> tuple:
    """What a net class is written for: each layer's op kind, inputs, spatial size, flatness."""
    flat = flat_values(graph)
    return tuple((type(graph.node(n).op), graph.node(n).inputs, shapes[n].h, shapes[n].w,
                  flat[n]) for n in graph.order())


def _input(graph: Graph) -> tuple[int, int, int]:
    return graph.node(graph.input).op.shape


def _one_block_use(head: ast.Head) -> bool:
    body = [s for s in head.body if s.core is not None]
    return len(body) == 1 and isinstance(body[0].core, ast.BlockUse)
