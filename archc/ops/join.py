"""Joins, made by groups rather than statements: `concat { ... }` (along channels, inputs in
operand order) and `sum { ... }` (elementwise, of branches that agree in C, H and W: a
residual connection; an `id` branch is the sum's own input). Neither has parameters or MACs
(the additions of a sum are not multiply-accumulates). A join of flat values is flat.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.base import OpSpec, Shape
from archc.ops.common import free, widest


@dataclass(frozen=True)
class Concat:
    pass  # along channels, inputs in operand order


@dataclass(frozen=True)
class Sum:
    """Elementwise, of branches that agree in C, H and W: a residual connection."""

    identities: tuple[bool, ...] = ()  # per branch: an `id` shortcut (the sum's own input)


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


def _branch_text(op: Sum, context, i: int) -> str:
    """The layer that ends branch i, or `id` for a shortcut."""
    return "id" if op.identities[i] else context.describe(context.operands[i])


CONCAT = OpSpec(
    type=Concat,
    statements={},
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
    reads="joins",
    call=lambda op, site: f"torch.cat([{', '.join(site.args)}], dim=1)",
    plan="torch",
)

SUM = OpSpec(
    type=Sum,
    statements={},
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
    reads="joins",
    call=lambda op, site: " + ".join(site.args),
    plan="torch",
)
SPECS = (CONCAT, SUM)
