"""Joins, made by groups rather than statements: `concat { ... }` (along channels, inputs in
operand order), `sum { ... }` (elementwise, of branches that agree in C, H and W: a residual
connection; an `id` branch is the group's own input) and `mul { ... }` (elementwise product,
of branches that agree in C and in H and W or are 1x1: a squeeze-and-excitation gate,
`mul { id; { gap; conv 1x1 16 relu; conv 1x1 64 sigmoid } }`). None has parameters or MACs:
the additions of a sum and the gate's multiplies are elementwise, not multiply-accumulates
(FlopCounterMode, which torchvision's GFLOPS come from, counts neither). A join of flat
values is flat.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.base import Group, OpSpec, Shape
from archc.ops.common import free, widest


@dataclass(frozen=True)
class Concat:
    pass  # along channels, inputs in operand order


@dataclass(frozen=True)
class Sum:
    """Elementwise, of branches that agree in C, H and W: a residual connection."""

    identities: tuple[bool, ...] = ()  # per branch: an `id` shortcut (the sum's own input)


@dataclass(frozen=True)
class Mul:
    """Elementwise product; a 1x1 branch (a per-channel gate) scales every pixel."""

    identities: tuple[bool, ...] = ()  # per branch: an `id` branch (the group's input)


def concat_shape(op: Concat, inputs, context) -> Shape:
    first, operands = inputs[0], context.operands
    for operand, x in zip(operands[1:], inputs[1:]):
        for axis, name in ((1, "height"), (2, "width")):
            if x[axis] != first[axis]:
                a, b = context.describe(operands[0]), context.describe(operand)
                raise ArchError(f"concat inputs differ in {name}: {first[axis]} ({a}) vs "
                                f"{x[axis]} ({b})")
    return Shape(sum(x.c for x in inputs), first.h, first.w)


def sum_shape(op: Sum, inputs, context) -> Shape:
    first = inputs[0]
    for i, x in enumerate(inputs[1:], 1):
        for axis, name in ((0, "channels"), (1, "height"), (2, "width")):
            if x[axis] != first[axis]:
                a, b = (_branch_text(op, context, o) for o in (0, i))
                raise ArchError(f"sum branches differ in {name}: {first[axis]} ({a}) vs "
                                f"{x[axis]} ({b})")
    return first


def mul_shape(op: Mul, inputs, context) -> Shape:
    full = max(inputs, key=lambda x: x.h * x.w)
    for i, x in enumerate(inputs):
        axes = ((0, "channels"),) + (() if (x.h, x.w) == (1, 1) else
                                     ((1, "height"), (2, "width")))
        for axis, name in axes:
            if x[axis] != full[axis]:
                a, b = (_branch_text(op, context, o) for o in (inputs.index(full), i))
                raise ArchError(f"mul branches differ in {name}: {full[axis]} ({a}) vs "
                                f"{x[axis]} ({b}); a branch is the full size or a 1x1 gate")
    return full


def _branch_text(op: Sum | Mul, context, i: int) -> str:
    """The layer that ends branch i, or `id` for a shortcut."""
    return "id" if op.identities[i] else context.describe(context.operands[i])


CONCAT = OpSpec(
    type=Concat,
    statements={},
    group=Group("concat", 1, lambda identities: Concat()),
    name=lambda op: "concat",
    describe=lambda op: "concat",
    options=lambda op: "",
    titles={"concat": "concat"},
    title_detail=lambda op: "",
    arity="many",
    layout="joins",
    shape=concat_shape,
    field=lambda op, inputs: widest(inputs),
    cost=free,
    folds_bn=False,
    draw="other",
    width="total",
    given=(),
    module=None,
    helper="",
    reads="joins",
    call=lambda op, site: f"torch.cat([{', '.join(site.args)}], dim=1)",
    plan="torch",
    aliases=False,
)

SUM = OpSpec(
    type=Sum,
    statements={},
    group=Group("sum", 2, Sum),
    name=lambda op: "sum",
    describe=lambda op: "sum",
    options=lambda op: "",
    titles={"sum": "residual sum"},
    title_detail=lambda op: "",
    arity="many",
    layout="joins",
    shape=sum_shape,
    field=lambda op, inputs: widest(inputs),
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=(),
    module=None,
    helper="",
    reads="joins",
    call=lambda op, site: " + ".join(site.args),
    plan="torch",
    aliases=False,
)
MUL = OpSpec(
    type=Mul,
    statements={},
    group=Group("mul", 2, Mul),
    name=lambda op: "mul",
    describe=lambda op: "mul",
    options=lambda op: "",
    titles={"mul": "gate multiply"},
    title_detail=lambda op: "",
    arity="many",
    layout="joins",
    shape=mul_shape,
    field=lambda op, inputs: widest(inputs),
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=(),
    module=None,
    helper="",
    reads="joins",
    call=lambda op, site: " * ".join(site.args),
    plan="torch",
    aliases=False,
)
SPECS = (CONCAT, SUM, MUL)
