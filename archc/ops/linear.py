"""Fully connected layers and flattening: `fc 1000 relu`, `flatten`.

fc flattens its input, as Caffe's InnerProduct does: weights = input elements x features,
a bias per feature unless `bias=false`, MACs = weights (one image); its field is the whole
input. flatten makes the value flat (N x C); the emitter writes flat values as 2-D tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.ops.activation import ACTIVATIONS
from archc.ops.args import int_arg, word_arg
from archc.ops.base import Cost, OpSpec, Shape, Signature, Statement
from archc.ops.common import free, module_call, whole


@dataclass(frozen=True)
class FC:
    features: int
    act: str
    bias: bool = True  # `bias=false`, as nn.Linear(..., bias=False)


@dataclass(frozen=True)
class Flatten:
    pass


def fc_cost(op: FC, inputs: list[Shape], out: Shape) -> Cost:
    weights = inputs[0].numel() * op.features  # fc flattens its input, as Caffe's does
    return Cost(weights, op.features if op.bias else 0, weights)


FC_SPEC = OpSpec(
    type=FC,
    statements={"fc": Statement(Signature(("features",), ("bias",), ACTIVATIONS),
                                lambda args, span: FC(int_arg(args, "features", span),
                                                      word_arg(args, "act", ACTIVATIONS, span),
                                                      word_arg(args, "bias", ("true", "false"),
                                                               span) == "true"))},
    group=None,
    name=lambda op: "fc",
    describe=lambda op: f"fc {op.features}",
    options=lambda op: ("" if op.bias else " bias=false") +
    (f" {op.act}" if op.act != "linear" else ""),
    titles={"fc": "linear"},
    title_detail=lambda op: "",
    arity="one",
    layout="flat",
    shape=lambda op, inputs, context: Shape(op.features, 1, 1),
    field=lambda op, inputs: whole(inputs),
    cost=fc_cost,
    folds_bn=False,
    draw="fc",
    width="features",
    given=(),
    module=lambda op, texts: f"nn.Linear({texts['features_in']}, {texts['out']}"
    f"{'' if op.bias else ', bias=False'})",
    helper="",
    reads="flattened",
    call=module_call,
    plan="torch",
    aliases=False,
)

FLATTEN = OpSpec(
    type=Flatten,
    statements={"flatten": Statement(Signature(()), lambda args, span: Flatten())},
    group=None,
    name=lambda op: "flatten",
    describe=lambda op: "flatten",
    options=lambda op: "",
    titles={"flatten": "flatten"},
    title_detail=lambda op: "",
    arity="one",
    layout="flat",
    shape=lambda op, inputs, context: Shape(inputs[0].numel(), 1, 1),
    field=lambda op, inputs: whole(inputs),
    cost=free,
    folds_bn=False,
    draw="other",
    width="flattened",
    given=(),
    module=None,
    helper="",
    reads="spatial",
    call=lambda op, site: f"torch.flatten({site.args[0]}, 1)",
    plan="torch",
    aliases=True,
)
SPECS = (FC_SPEC, FLATTEN)
