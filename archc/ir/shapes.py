"""Shapes as a graph is built: one layer's output shape by its op's rule, which values are
flat (N x C), and the shapes of a graph still being built (archc.ir.build asks for a block
that reads `in_channels`). archc.analysis.shapes infers a whole graph with the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc import ops
from archc.errors import ArchError
from archc.ir.graph import Graph
from archc.ops.base import Context, Shape

MAX_ELEMENTS = 10**12


def flat_values(graph: Graph) -> dict[int, bool]:
    """The one definition of flatness: whether each value is N x C (made by fc or flatten,
    passed on by dropout, softmax, activations and bn, a concat or sum of flat values) rather
    than N x C x H x W, by each op's `layout`. The emitter writes flat values as 2-D tensors;
    bn refuses them; the triton plan gives no concat of one a buffer."""
    flat: dict[int, bool] = {}
    for n in graph.order():
        flat[n] = _flat(graph, n, flat)
    return flat


def _flat(graph: Graph, n: int, flat: dict[int, bool]) -> bool:
    """Whether value `n` is flat, its inputs' flatness known."""
    node = graph.node(n)
    layout = ops.spec(node.op).layout
    if layout == "keeps":
        return flat[node.inputs[0]]
    if layout == "joins":
        return all(flat[i] for i in node.inputs)
    return layout == "flat"


@dataclass
class SoFar:
    """The shapes and flatness of the layers of a graph still being built, kept from one
    `shape_so_far` to the next so that each layer is inferred once."""

    shapes: dict[int, Shape] = field(default_factory=dict)
    flat: dict[int, bool] = field(default_factory=dict)


def shape_so_far(graph: Graph, value: int, known: SoFar) -> Shape:
    """The shape of `value` in a graph still being built (archc.ir.build asks, for a block
    that reads `in_channels`): its ancestors' shapes, kept in `known` from call to call (8,000
    such block uses took minutes while each call walked the whole graph). The first of them
    that fails raises its error, at its layer."""
    wanted, stack = set(), [value]
    while stack:
        n = stack.pop()
        if n not in known.shapes and n not in wanted:
            wanted.add(n)
            stack += graph.node(n).inputs
    for n in sorted(wanted):  # node ids grow with the build: inputs first
        known.flat[n] = _flat(graph, n, known.flat)
        known.shapes[n] = _infer(graph, n, [known.shapes[i] for i in graph.node(n).inputs],
                                 known.flat)
    return known.shapes[value]


def _infer(graph: Graph, node_id: int, inputs: list[Shape], flat: dict[int, bool]) -> Shape:
    node = graph.node(node_id)
    describe = lambda n: ops.describe(graph.node(n).op)  # noqa: E731
    try:
        shape = ops.spec(node.op).shape(node.op, inputs, Context(flat, node.inputs, describe))
        if shape.numel() > MAX_ELEMENTS:
            raise ArchError(f"output {shape} has {shape.numel():,} elements, more than the "
                            f"{MAX_ELEMENTS:.0e} archc accepts")
    except ArchError as error:
        raise ArchError(error.message, node.span, node.notes) from None
    return shape
