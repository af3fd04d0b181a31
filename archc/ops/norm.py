"""Normalisation: `bn eps=1e-3 momentum=0.01` (batch norm over channels) and `lrn 5`
(AlexNet's and GoogLeNet's local response normalisation).

Both keep their input's shape and cost no MACs. Batch norm's learnt scale and shift count as
params (as PyTorch counts them) and its running mean and variance as buffers; at inference it
folds into a conv before it (`archc stats --fold-bn`, and the triton plan). It normalises a
C x H x W tensor: a flat input is an error. `momentum` is PyTorch's (the new batch's weight).
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import errors
from archc.ops.args import int_arg, real_arg
from archc.ops.base import Cost, OpSpec, Signature, Statement
from archc.ops.common import free, module_call, options, same_field, same_shape


@dataclass(frozen=True)
class BatchNorm:
    eps: float
    momentum: float  # PyTorch's: the weight of the new batch in the running statistics


@dataclass(frozen=True)
class LRN:
    size: int
    alpha: float
    beta: float
    k: float


def make_bn(args, span) -> BatchNorm:
    eps, momentum = real_arg(args, "eps", span), real_arg(args, "momentum", span)
    if eps <= 0:
        raise errors.ArchError(f"eps must be positive, got {eps}", args["eps"].span)
    if not 0 <= momentum <= 1:
        raise errors.ArchError(f"momentum must be in [0, 1], got {momentum}",
                               args["momentum"].span)
    return BatchNorm(eps, momentum)


def bn_shape(op: BatchNorm, inputs, context):
    """Over channels: of a C x H x W tensor, not of a flat one."""
    (operand,) = context.operands
    if context.flat[operand]:
        raise errors.ArchError("bn normalises the channels of a C x H x W tensor; this input "
                               f"is flat ({inputs[0].c} features, after "
                               f"{context.describe(operand)})")
    return inputs[0]


def bn_module(op: BatchNorm, texts: dict[str, str]) -> str:
    extra = options(eps=(op.eps, 1e-5), momentum=(op.momentum, 0.1))
    return f"nn.BatchNorm2d({texts['in']}{extra})"


BN = OpSpec(
    type=BatchNorm,
    statements={"bn": Statement(Signature((), ("eps", "momentum")), make_bn)},
    group=None,
    name=lambda op: "bn",
    describe=lambda op: "bn",
    options=lambda op: "",
    titles={"bn": "batch norm"},
    title_detail=lambda op: "",
    arity="one",
    layout="keeps",
    shape=bn_shape,
    field=same_field,
    cost=lambda op, inputs, out: Cost(affine=2 * out.c, buffers=2 * out.c),
    folds_bn=False,
    draw="normalisation",
    width="same",
    given=(),
    module=bn_module,
    helper="",
    reads="spatial",
    call=module_call,
    plan="torch",
)

LRN_SPEC = OpSpec(
    type=LRN,
    statements={"lrn": Statement(Signature(("size",), ("alpha", "beta", "k")),
                                 lambda args, span: LRN(
                                     int_arg(args, "size", span), real_arg(args, "alpha", span),
                                     real_arg(args, "beta", span), real_arg(args, "k", span)))},
    group=None,
    name=lambda op: "lrn",
    describe=lambda op: f"lrn {op.size}",
    options=lambda op: "",
    titles={"lrn": "LRN"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=same_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="normalisation",
    width="same",
    given=(),
    module=lambda op, texts: (f"nn.LocalResponseNorm({op.size}, alpha={op.alpha!r}, "
                              f"beta={op.beta!r}, k={op.k!r})"),
    helper="",
    reads="spatial",
    call=module_call,
    plan="torch",
)
SPECS = (BN, LRN_SPEC)
