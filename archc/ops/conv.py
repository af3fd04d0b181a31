"""Convolution: `conv 3x3/2 64 pad=same groups=32 bias=false relu`.

Shape: rounds down, as PyTorch does; `groups` must divide both channel counts. Cost:
weights = out x in/groups x kh x kw, a bias per output channel unless `bias=false`, MACs =
weights x output pixels (one image). A batch norm that is its only user folds into it at
inference. The triton plan runs a 1x1 stride-1 unpadded ungrouped conv as a GEMM, the rest on
cuDNN.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.activation import ACTIVATIONS
from archc.ops.args import int_arg, pad_arg, stride_arg, window_arg, word_arg
from archc.ops.base import Cost, OpSpec, Shape, Signature, Statement
from archc.ops.common import Text, grow, module_call, options, pad_text, square, windowed


@dataclass(frozen=True)
class Conv:
    window: tuple[int, int]  # as Pool names it
    stride: int
    pad: tuple[int, int]
    channels: int
    groups: int
    act: str  # "linear" or an activation of ACTIVATION_LAYERS (a flag: `conv 3x3 64 relu`)
    bias: bool = True  # `bias=false`, as before a batch norm


def make_conv(args, span) -> Conv:
    window = window_arg(args, span)
    return Conv(window.dims, stride_arg(args, window, span) or 1, pad_arg(args, window.dims, span),
                int_arg(args, "channels", span), int_arg(args, "groups", span),
                word_arg(args, "act", ACTIVATIONS, span),
                word_arg(args, "bias", ("true", "false"), span) == "true")


def conv_shape(op: Conv, inputs, context) -> Shape:
    (x,) = inputs
    if x.c % op.groups or op.channels % op.groups:
        raise ArchError(f"groups={op.groups} must divide both the {x.c} input and the "
                        f"{op.channels} output channels")
    return windowed(op, x, op.channels, ceil=False)


def conv_cost(op: Conv, inputs: list[Shape], out: Shape) -> Cost:
    weights = op.channels * (inputs[0].c // op.groups) * op.window[0] * op.window[1]
    return Cost(weights, op.channels if op.bias else 0, weights * out.h * out.w)


def conv_options(op: Conv) -> str:
    return pad_text(op.pad) + (f" groups={op.groups}" if op.groups > 1 else "") + \
        ("" if op.bias else " bias=false") + (f" {op.act}" if op.act != "linear" else "")


def conv_module(op: Conv, texts: dict[str, str]) -> str:
    """`texts`: the arguments a block parameter gives, as Python (archc.codegen.widths)."""
    extra = options(stride=(Text(texts.get("stride", str(op.stride))), Text("1")),
                    padding=(_text(texts, "pad", op.pad), 0), bias=(op.bias, True))
    groups = f", groups={texts['groups']}" if texts["groups"] != "1" else ""
    window = _text(texts, "window", op.window)
    return f"nn.Conv2d({texts['in']}, {texts['out']}, {window}{extra}{groups})"


def _text(texts: dict[str, str], key: str, pair: tuple[int, int]):
    return Text(texts[key]) if key in texts else square(pair)


CONV = OpSpec(
    type=Conv,
    statements={"conv": Statement(Signature(("window", "channels"),
                                            ("stride", "pad", "groups", "bias"), ACTIVATIONS),
                                  make_conv)},
    group=None,
    name=lambda op: "conv",
    describe=lambda op: f"conv {op.window[0]}x{op.window[1]}/{op.stride} {op.channels}",
    options=conv_options,
    titles={"conv": "convolution"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=conv_shape,
    field=lambda op, inputs: grow(inputs[0][0], op.window[0], op.stride),
    cost=conv_cost,
    folds_bn=True,
    draw="conv",
    width="channels",
    given=("groups", "stride", "window"),
    module=conv_module,
    helper="",
    reads="spatial",
    call=module_call,
    plan="gemm",
    aliases=False,
)
SPECS = (CONV,)
