"""Infer: `ir.Graph` -> output shape (C, H, W) and receptive field of every layer.

Contract: visits layers in topological order, applying each op's rules from the registry
(`ops.spec(op).shape` and `.field`, in the op's family file); a shape rule takes the op, its
input shapes and a `Context` and returns the output shape, or raises `ArchError` (without a
span; `infer_shapes` adds the layer's span and block-use notes). A layer that fails is
reported and the layers that depend on it are skipped, so one pass reports every independent
mistake and no consequence of one. A tensor of more than `MAX_ELEMENTS` is refused. The rule
for one layer, flatness and the shapes of a graph still being built live in archc.ir.shapes
(the build asks them for `in_channels`).
"""

from __future__ import annotations

from archc import ops
from archc.errors import ArchError, ErrorList
from archc.ir.graph import Graph
from archc.ir.shapes import MAX_ELEMENTS, SoFar, _infer, flat_values, shape_so_far
from archc.ops.base import Field, Shape

__all__ = ["MAX_ELEMENTS", "Field", "Shape", "SoFar", "flat_values", "infer_shapes",
           "receptive_fields", "shape_so_far"]

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


def receptive_fields(graph: Graph, shapes: dict[int, Shape]) -> dict[int, Field]:
    fields: dict[int, Field] = {}
    for node_id in graph.order():
        node = graph.node(node_id)
        inputs = [(fields[i], shapes[i]) for i in node.inputs]
        fields[node_id] = ops.spec(node.op).field(node.op, inputs)
    return fields
