"""Dropout: `dropout 0.4` zeroes that fraction of its input in training (and scales the rest
by 1/(1-p), PyTorch's convention); at inference it passes its input on. No parameters, no
MACs, the input's shape and layout."""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.args import real_arg
from archc.ops.base import OpSpec, Signature, Statement
from archc.ops.common import free, module_call, same_field, same_shape


@dataclass(frozen=True)
class Dropout:
    p: float


def make_dropout(args, span) -> Dropout:
    if "p" not in args:
        raise ArchError("missing p (the fraction dropped, e.g. dropout 0.4)", span)
    p = real_arg(args, "p", span)
    if not 0 <= p < 1:
        raise ArchError(f"dropout fraction must be in [0, 1), got {p}", args["p"].span)
    return Dropout(p)


DROPOUT = OpSpec(
    type=Dropout,
    statements={"dropout": Statement(Signature(("p",)), make_dropout)},
    group=None,
    name=lambda op: "dropout",
    describe=lambda op: f"dropout {op.p:g}",
    options=lambda op: "",
    titles={"dropout": "dropout"},
    title_detail=lambda op: f" ({op.p:.0%})",
    arity="one",
    layout="keeps",
    shape=same_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=("p",),
    module=lambda op, texts: f"nn.Dropout({texts['p']})",
    reads="as-is",
    call=module_call,
    plan="torch",
)
SPECS = (DROPOUT,)
