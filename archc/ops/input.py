"""The net's input: `input 3x224x224` (C x H x W, one image; the batch is not part of it).
It makes no layer: forward()'s argument, with the field of one pixel."""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.args import window_arg
from archc.ops.base import Field, OpSpec, Shape, Signature, Statement
from archc.ops.common import free


@dataclass(frozen=True)
class Input:
    shape: tuple[int, int, int]  # C, H, W


def make_input(args, span) -> Input:
    shape = window_arg(args, span, rank=3)
    if shape.stride is not None:
        raise ArchError("an input shape has no stride", shape.span)
    return Input(shape.dims)


INPUT = OpSpec(
    type=Input,
    statements={"input": Statement(Signature(("shape",)), make_input)},
    group=None,
    name=lambda op: "input",
    describe=lambda op: "input",
    options=lambda op: " " + "x".join(map(str, op.shape)),
    titles={},  # no row of the tables: the input is their first line
    title_detail=lambda op: "",
    arity="none",
    layout="spatial",
    shape=lambda op, inputs, context: Shape(*op.shape),
    field=lambda op, inputs: Field(1, 1),
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=(),
    module=None,
    helper="",
    reads="spatial",
    call=lambda op, site: site.args[0],
    plan="none",
    aliases=True,
)
SPECS = (INPUT,)
