"""Normalisation and learnt scales: `bn eps=1e-3 momentum=0.01` (batch norm over channels),
`lrn 5` (AlexNet's and GoogLeNet's local response normalisation), `layernorm eps=1e-6` (layer
norm over each pixel's channels, ConvNeXt's LayerNorm2d) and `scale 1e-6` (a learnt
per-channel scale starting at that value, ConvNeXt's layer scale).

All keep their input's shape and cost no MACs (FlopCounterMode counts none of them). Batch
norm's and layer norm's learnt scale and shift count as params (as PyTorch counts them), as
does a layer scale's one value a channel; batch norm's running mean and variance are buffers.
At inference a batch norm folds into a conv before it (`archc stats --fold-bn`, and the
triton plan). bn and layernorm normalise a C x H x W tensor: a flat input is an error.
`momentum` is PyTorch's (the new batch's weight).
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


@dataclass(frozen=True)
class LayerNorm:
    eps: float


@dataclass(frozen=True)
class LayerScale:
    init: float  # every channel's scale before training


def bn_shape(op: BatchNorm | LayerNorm, inputs, context):
    """Over channels: of a C x H x W tensor, not of a flat one."""
    (operand,) = context.operands
    if context.flat[operand]:
        name = "bn" if isinstance(op, BatchNorm) else "layernorm"
        raise errors.ArchError(f"{name} normalises the channels of a C x H x W tensor; this "
                               f"input is flat ({inputs[0].c} features, after "
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
    aliases=False,
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
    aliases=False,
)
def make_layer_norm(args, span) -> LayerNorm:
    eps = real_arg(args, "eps", span)
    if eps <= 0:
        raise errors.ArchError(f"eps must be positive, got {eps}", args["eps"].span)
    return LayerNorm(eps)


# torchvision's LayerNorm2d, written out: the channels of each pixel normalised.
LAYER_NORM_2D = '''class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each pixel of an N x C x H x W tensor."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
'''

LAYER_SCALE = '''class LayerScale(nn.Module):
    """A learnt scale a channel (ConvNeXt's layer scale), every one starting at `init`."""

    def __init__(self, channels, init):
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels, 1, 1), init))

    def forward(self, x):
        return self.scale * x
'''

LAYER_NORM = OpSpec(
    type=LayerNorm,
    statements={"layernorm": Statement(Signature((), ("eps",)), make_layer_norm)},
    group=None,
    name=lambda op: "layernorm",
    describe=lambda op: "layernorm",
    options=lambda op: "",
    titles={"layernorm": "layer norm"},
    title_detail=lambda op: "",
    arity="one",
    layout="keeps",
    shape=bn_shape,
    field=same_field,
    cost=lambda op, inputs, out: Cost(affine=2 * out.c),
    folds_bn=False,
    draw="normalisation",
    width="same",
    given=(),
    module=lambda op, texts: f"LayerNorm2d({texts['in']}{options(eps=(op.eps, 1e-5))})",
    helper=LAYER_NORM_2D,
    reads="spatial",
    call=module_call,
    plan="torch",
    aliases=False,
)

SCALE = OpSpec(
    type=LayerScale,
    statements={"scale": Statement(Signature(("init",)), lambda args, span: LayerScale(
        real_arg(args, "init", span)))},
    group=None,
    name=lambda op: "scale",
    describe=lambda op: f"scale {op.init:g}",
    options=lambda op: "",
    titles={"scale": "layer scale"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=same_shape,
    field=same_field,
    cost=lambda op, inputs, out: Cost(affine=out.c),
    folds_bn=False,
    draw="normalisation",
    width="same",
    given=(),
    module=lambda op, texts: f"LayerScale({texts['in']}, {op.init!r})",
    helper=LAYER_SCALE,
    reads="spatial",
    call=module_call,
    plan="torch",
    aliases=False,
)
SPECS = (BN, LRN_SPEC, LAYER_NORM, SCALE)
