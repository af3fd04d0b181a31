"""Infer: `ir.Graph` -> output shape (C, H, W) and receptive field of every layer.

Contract: visits layers in topological order, applying each op's rules from the registry
(`ops.spec(op).shape` and `.field`, in the op's family file); a shape rule takes the op, its
input shapes and a `Context` and returns the output shape, or raises `ArchError` (without a
span; `infer_shapes` adds the layer's span and block-use notes). A layer that fails is
reported and the layers that depend on it are skipped, so one pass reports every independent
mistake and no consequence of one. A tensor of more than `MAX_ELEMENTS` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc import ops
from archc.errors import ArchError, ErrorList
from archc.ir.graph import Graph
from archc.ops.base import Context, Field, Shape

__all__ = ["MAX_ELEMENTS", "Field", "Shape", "SoFar", "flat_values", "infer_shapes",
           "receptive_fields", "shape_so_far"]

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


def infer_shapes(graph: Graph) -> dict[int, Shape]:
    shapes: dict[int, Shape] = {}
    errors = ErrorList()
    flat = flat_values(graph)
    for node_id in graph.order():
        node = graph.node(node_id)
        if any(i not in shapes for i in node.inputs):
            continue  # downstream of a layer that failed: its error says enough
        try:
            shapes[node_id] = _infer(graph, node_id, [shapes[i] for i in node.inputs], flat)
        except ArchError as error:
            errors.add(error)
    errors.raise_any()
    return shapes


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


def receptive_fields(graph: Graph, shapes: dict[int, Shape]) -> dict[int, Field]:
    fields: dict[int, Field] = {}
    for node_id in graph.order():
        node = graph.node(node_id)
        inputs = [(fields[i], shapes[i]) for i in node.inputs]
        fields[node_id] = ops.spec(node.op).field(node.op, inputs)
    return fields
