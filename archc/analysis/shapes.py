"""Infer: `ir.Graph` -> output shape (C, H, W) and receptive field of every layer.

Contract: visits layers in topological order; every rule takes the op and its input shapes and
returns the output shape, or raises `ArchError` (without a span; `infer_shapes` adds the
layer's span and block-use notes). A layer that fails is reported and the layers that depend
on it are skipped, so one pass reports every independent mistake and no consequence of one.
Convolutions round down; pools round as their op says, with Caffe's rule for ceil: a window
that would start inside the right/bottom padding is dropped. A tensor of more than
`MAX_ELEMENTS` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from archc import ops
from archc.errors import ArchError, ErrorList
from archc.ir.graph import Graph

MAX_ELEMENTS = 10**12


class Shape(NamedTuple):
    c: int
    h: int
    w: int

    def numel(self) -> int:
        return self.c * self.h * self.w

    def __str__(self) -> str:
        return f"{self.c}x{self.h}x{self.w}"


@dataclass(frozen=True)
class Field:
    """Receptive field (pixels of the input one output pixel sees) and cumulative stride."""

    size: int
    jump: int


class Context(NamedTuple):
    """What a shape rule may read besides its op and input shapes."""

    graph: Graph
    flat: dict[int, bool]  # flat_values(graph)


PASSING_ON = (ops.Dropout, ops.Softmax, ops.Act, ops.BatchNorm)  # keep their input's layout


def flat_values(graph: Graph) -> dict[int, bool]:
    """The one definition of flatness: whether each value is N x C (made by fc or flatten,
    passed on by dropout, softmax, activations and bn, a concat or sum of flat values) rather
    than N x C x H x W. The emitter writes flat values as 2-D tensors; bn refuses them; the
    triton plan gives no concat of one a buffer."""
    flat: dict[int, bool] = {}
    for n in graph.order():
        node = graph.node(n)
        if isinstance(node.op, ops.FC | ops.Flatten):
            flat[n] = True
        elif isinstance(node.op, PASSING_ON):
            flat[n] = flat[node.inputs[0]]
        elif isinstance(node.op, ops.Concat | ops.Sum):
            flat[n] = all(flat[i] for i in node.inputs)
        else:
            flat[n] = False
    return flat


def infer_shapes(graph: Graph) -> dict[int, Shape]:
    shapes: dict[int, Shape] = {}
    errors = ErrorList()
    context = Context(graph, flat_values(graph))
    for node_id in graph.order():
        node = graph.node(node_id)
        if any(i not in shapes for i in node.inputs):
            continue  # downstream of a layer that failed: its error says enough
        inputs = [shapes[i] for i in node.inputs]
        try:
            shape = SHAPE_RULES[type(node.op)](node.op, inputs, context, node.inputs)
            if shape.numel() > MAX_ELEMENTS:
                raise ArchError(f"output {shape} has {shape.numel():,} elements, more than "
                                f"the {MAX_ELEMENTS:.0e} archc accepts")
        except ArchError as error:
            errors.add(ArchError(error.message, node.span, node.notes))
            continue
        shapes[node_id] = shape
    errors.raise_any()
    return shapes


def receptive_fields(graph: Graph, shapes: dict[int, Shape]) -> dict[int, Field]:
    fields: dict[int, Field] = {}
    for node_id in graph.order():
        node = graph.node(node_id)
        inputs = [(fields[i], shapes[i]) for i in node.inputs]
        fields[node_id] = FIELD_RULES[type(node.op)](node.op, inputs)
    return fields


# ---- shape rules ---------------------------------------------------------------------------


def _out_size(size: int, k: int, stride: int, pad: int, ceil: bool) -> int:
    span = size + 2 * pad - k
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1  # Caffe: the last window must start inside the image or the left padding
    return out


def _windowed(op, x: Shape, channels: int, ceil: bool) -> Shape:
    kernel = op.window
    if kernel[0] > x.h + 2 * op.pad[0] or kernel[1] > x.w + 2 * op.pad[1]:
        raise ArchError(f"window {kernel[0]}x{kernel[1]} is larger than its input "
                        f"{x.h}x{x.w}" + (f" padded by {op.pad[0]}" if op.pad[0] else ""))
    h = _out_size(x.h, kernel[0], op.stride, op.pad[0], ceil)
    w = _out_size(x.w, kernel[1], op.stride, op.pad[1], ceil)
    return Shape(channels, h, w)


def conv_shape(op: ops.Conv, inputs, context: Context, operands) -> Shape:
    (x,) = inputs
    if x.c % op.groups or op.channels % op.groups:
        raise ArchError(f"groups={op.groups} must divide both the {x.c} input and the "
                        f"{op.channels} output channels")
    return _windowed(op, x, op.channels, ceil=False)


def pool_shape(op: ops.Pool, inputs, context: Context, operands) -> Shape:
    (x,) = inputs
    for pad, size, side in zip(op.pad, op.window, ("height", "width")):
        if pad > size // 2:
            raise ArchError(f"pad {pad} is more than half the window's {side} {size}")
    return _windowed(op, x, x.c, ceil=op.ceil)


def concat_shape(op: ops.Concat, inputs, context: Context, operands) -> Shape:
    first = inputs[0]
    for operand, x in zip(operands[1:], inputs[1:]):
        for axis, name in ((1, "height"), (2, "width")):
            if x[axis] != first[axis]:
                a, b = (ops.describe(context.graph.node(o).op) for o in (operands[0], operand))
                raise ArchError(f"concat inputs differ in {name}: {first[axis]} ({a}) vs "
                                f"{x[axis]} ({b})")
    return Shape(sum(x.c for x in inputs), first.h, first.w)


def same_shape(op, inputs, context: Context, operands) -> Shape:
    return inputs[0]


def sum_shape(op: ops.Sum, inputs, context: Context, operands) -> Shape:
    first = inputs[0]
    for i, x in enumerate(inputs[1:], 1):
        for axis, name in ((0, "channels"), (1, "height"), (2, "width")):
            if x[axis] != first[axis]:
                a, b = (_branch_text(context.graph, op, operands, o) for o in (0, i))
                raise ArchError(f"sum branches differ in {name}: {first[axis]} ({a}) vs "
                                f"{x[axis]} ({b})")
    return first


def _branch_text(graph, op: ops.Sum, operands, i: int) -> str:
    """The layer that ends branch i, or `id` for a shortcut."""
    return "id" if op.identities[i] else ops.describe(graph.node(operands[i]).op)


def flat_ok(op, inputs, context: Context, operands) -> Shape:
    """Batch norm over channels: of a C x H x W tensor, not of a flat one."""
    if context.flat[operands[0]]:
        raise ArchError("bn normalises the channels of a C x H x W tensor; this input is "
                        f"flat ({inputs[0].c} features, after "
                        f"{ops.describe(context.graph.node(operands[0]).op)})")
    return inputs[0]


SHAPE_RULES = {
    ops.Input: lambda op, inputs, context, operands: Shape(*op.shape),
    ops.Conv: conv_shape,
    ops.Pool: pool_shape,
    ops.GlobalAvgPool: lambda op, inputs, context, operands: Shape(inputs[0].c, 1, 1),
    ops.LRN: same_shape,
    ops.Dropout: same_shape,
    ops.FC: lambda op, inputs, context, operands: Shape(op.features, 1, 1),
    ops.Flatten: lambda op, inputs, context, operands: Shape(inputs[0].numel(), 1, 1),
    ops.Softmax: same_shape,
    ops.Concat: concat_shape,
    ops.BatchNorm: flat_ok,
    ops.Act: same_shape,
    ops.Sum: sum_shape,
}

# ---- receptive-field rules -----------------------------------------------------------------


def _grow(field: Field, kernel: int, stride: int) -> Field:
    return Field(field.size + (kernel - 1) * field.jump, field.jump * stride)


def _whole(inputs) -> Field:
    """A layer that sees its whole input (global pool, fc)."""
    field, shape = inputs[0]
    return _grow(field, shape.h, shape.h)


FIELD_RULES = {
    ops.Input: lambda op, inputs: Field(1, 1),
    ops.Conv: lambda op, inputs: _grow(inputs[0][0], op.window[0], op.stride),
    ops.Pool: lambda op, inputs: _grow(inputs[0][0], op.window[0], op.stride),
    ops.GlobalAvgPool: lambda op, inputs: _whole(inputs),
    ops.LRN: lambda op, inputs: inputs[0][0],
    ops.Dropout: lambda op, inputs: inputs[0][0],
    ops.FC: lambda op, inputs: _whole(inputs),
    ops.Flatten: lambda op, inputs: _whole(inputs),
    ops.Softmax: lambda op, inputs: inputs[0][0],
    ops.Concat: lambda op, inputs: Field(max(f.size for f, _ in inputs),
                                         max(f.jump for f, _ in inputs)),
    ops.BatchNorm: lambda op, inputs: inputs[0][0],
    ops.Act: lambda op, inputs: inputs[0][0],
    ops.Sum: lambda op, inputs: Field(max(f.size for f, _ in inputs),
                                      max(f.jump for f, _ in inputs)),
}
