"""Pooling: `maxpool 3x3/2 pad=1 round=ceil`, `avgpool 7x7/1`, `gap` (global average) and
`adaptivepool 4x4` (PyTorch's adaptive average pool to that output size: window i spans
floor(i x H / 4) to ceil((i + 1) x H / 4), so windows may overlap and differ in size, as
torchvision's GoogLeNet heads pool 14x14 to 4x4).

Shape: rounds as the op says, with Caffe's rule for ceil (a window that would start inside
the right/bottom padding is dropped); padding at most half the window, as PyTorch allows. No
parameters, no MACs. avgpool counts the padding (PyTorch's default). The triton plan runs
each on its pool kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.args import pad_arg, stride_arg, window_arg, word_arg
from archc.ops.base import Field, OpSpec, Shape, Signature, Statement
from archc.ops.common import (
    Text,
    free,
    grow,
    module_call,
    options,
    pad_text,
    square,
    whole,
    windowed,
)


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: int
    pad: tuple[int, int]
    ceil: bool  # Caffe's rounding (a window starting in the padding is dropped)


@dataclass(frozen=True)
class GlobalAvgPool:
    pass


@dataclass(frozen=True)
class AdaptivePool:
    size: tuple[int, int]  # the output's height and width


def make_adaptive(args, span) -> AdaptivePool:
    window = window_arg(args, span)
    if window.stride is not None:
        raise ArchError("an adaptive pool takes its output size, without a stride",
                        window.span)
    return AdaptivePool(window.dims)


def adaptive_shape(op: AdaptivePool, inputs, context) -> Shape:
    (x,) = inputs
    if op.size[0] > x.h or op.size[1] > x.w:
        raise ArchError(f"output {op.size[0]}x{op.size[1]} is larger than its input "
                        f"{x.h}x{x.w}")
    return Shape(x.c, *op.size)


def adaptive_field(op: AdaptivePool, inputs) -> Field:
    """The widest of its windows, and their stride rounded down where they do not tile."""
    field, shape = inputs[0]
    h, out = shape.h, op.size[0]
    window = max(-(-(i + 1) * h // out) - i * h // out for i in range(out))
    return grow(field, window, h // out)


def _statement(kind: str) -> Statement:
    def make(args, span) -> Pool:
        window = window_arg(args, span)
        rounding = word_arg(args, "round", ("ceil", "floor"), span)
        stride = stride_arg(args, window, span) or window.dims[0]  # PyTorch's: stride = window
        return Pool(kind, window.dims, stride, pad_arg(args, window.dims, span),
                    rounding == "ceil")
    return Statement(Signature(("window",), ("stride", "pad", "round"), family="pool"), make)


def pool_shape(op: Pool, inputs, context) -> Shape:
    (x,) = inputs
    for pad, size, side in zip(op.pad, op.window, ("height", "width")):
        if pad > size // 2:
            raise ArchError(f"pad {pad} is more than half the window's {side} {size}")
    return windowed(op, x, x.c, ceil=op.ceil)


def pool_module(op: Pool, texts: dict[str, str]) -> str:
    kind = "MaxPool2d" if op.kind == "max" else "AvgPool2d"
    stride = Text(texts.get("stride", str(op.stride)))  # always written: torch's default
    padding = Text(texts["pad"]) if "pad" in texts else square(op.pad)  # is the window
    extra = options(stride=(stride, None), padding=(padding, 0), ceil_mode=(op.ceil, False))
    window = Text(texts["window"]) if "window" in texts else square(op.window)
    return f"nn.{kind}({window}{extra})"


POOL = OpSpec(
    type=Pool,
    statements={f"{kind}pool": _statement(kind) for kind in ("max", "avg")},
    group=None,
    name=lambda op: f"{op.kind}pool",
    describe=lambda op: f"{op.kind}pool {op.window[0]}x{op.window[1]}/{op.stride}",
    options=lambda op: pad_text(op.pad) + (" ceil" if op.ceil else ""),
    titles={"maxpool": "max pool", "avgpool": "avg pool"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=pool_shape,
    field=lambda op, inputs: grow(inputs[0][0], op.window[0], op.stride),
    cost=free,
    folds_bn=False,
    draw="pool",
    width="same",
    given=("stride", "window"),
    module=pool_module,
    helper="",
    reads="spatial",
    call=module_call,
    plan="pool",
    aliases=False,
)

GAP = OpSpec(
    type=GlobalAvgPool,
    statements={"gap": Statement(Signature(()), lambda args, span: GlobalAvgPool())},
    group=None,
    name=lambda op: "gap",
    describe=lambda op: "gap",
    options=lambda op: "",
    titles={"gap": "global avg pool"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=lambda op, inputs, context: Shape(inputs[0].c, 1, 1),
    field=lambda op, inputs: whole(inputs),
    cost=free,
    folds_bn=False,
    draw="pool",
    width="same",
    given=(),
    module=lambda op, texts: "nn.AdaptiveAvgPool2d(1)",
    helper="",
    reads="spatial",
    call=module_call,
    plan="gap",
    aliases=False,
)
ADAPTIVE = OpSpec(
    type=AdaptivePool,
    statements={"adaptivepool": Statement(Signature(("window",)), make_adaptive)},
    group=None,
    name=lambda op: "adaptivepool",
    describe=lambda op: f"adaptivepool {op.size[0]}x{op.size[1]}",
    options=lambda op: "",
    titles={"adaptivepool": "adaptive avg pool"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=adaptive_shape,
    field=adaptive_field,
    cost=free,
    folds_bn=False,
    draw="pool",
    width="same",
    given=(),
    module=lambda op, texts: f"nn.AdaptiveAvgPool2d({square(op.size)})",
    helper="",
    reads="spatial",
    call=module_call,
    plan="torch",
    aliases=False,
)
SPECS = (POOL, GAP, ADAPTIVE)
