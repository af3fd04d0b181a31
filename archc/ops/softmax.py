"""Softmax over channels: `softmax`. When it ends the net, the emitted module applies it in
eval mode only (training returns logits, for a cross-entropy loss). No parameters, no MACs."""

from __future__ import annotations

from dataclasses import dataclass

from archc.ops.base import OpSpec, Signature, Statement
from archc.ops.common import free, same_field, same_shape


@dataclass(frozen=True)
class Softmax:
    pass


def softmax_call(op: Softmax, site) -> str:
    value = site.args[0]
    if site.final:  # training returns logits, for a cross-entropy loss
        return f"{value} if self.training else F.softmax({value}, dim=1)"
    return f"F.softmax({value}, dim=1)"


SOFTMAX = OpSpec(
    type=Softmax,
    statements={"softmax": Statement(Signature(()), lambda args, span: Softmax())},
    group=None,
    name=lambda op: "softmax",
    describe=lambda op: "softmax",
    options=lambda op: "",
    titles={"softmax": "softmax"},
    title_detail=lambda op: "",
    arity="one",
    layout="keeps",
    shape=same_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=(),
    module=None,
    helper="",
    reads="flat",
    call=softmax_call,
    plan="torch",
    aliases=False,
)
SPECS = (SOFTMAX,)
