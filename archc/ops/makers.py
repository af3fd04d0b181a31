"""Makers: a statement's evaluated arguments -> its op (archc.ops), every value checked.

`MAKERS` has one row per op name of `ops.SIGNATURES` (a test checks it): a function from the
arguments, bound to their slots and evaluated (`Value`s, each with its span), to the op's
frozen dataclass, or an `ArchError` at the argument that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError, Span
from archc.lang.ast import Window
from archc.ops import (
    ACTIVATION_LAYERS,
    ACTIVATIONS,
    BUILTIN_DEFAULTS,
    FC,
    LRN,
    Act,
    BatchNorm,
    Conv,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Input,
    Pool,
    Softmax,
    window_text,
)


@dataclass(frozen=True)
class Value:
    """An evaluated argument: a number, a bare word (`same`, `ceil`) or a window."""

    value: int | float | str | Window
    span: Span



Args = dict[str, Value]


def _int(args: Args, key: str, op_span: Span, minimum: int = 1) -> int:
    value = args.get(key)
    if value is None and key in BUILTIN_DEFAULTS:
        value = Value(BUILTIN_DEFAULTS[key], op_span)
    if value is None:
        raise ArchError(f"missing {key}", op_span)
    if isinstance(value.value, str):
        raise ArchError(f"undefined name '{value.value}'", value.span)
    if isinstance(value.value, Window):
        raise ArchError(f"{key} must be an integer, got a window ({window_text(value.value)})",
                        value.span)
    if not isinstance(value.value, int) or isinstance(value.value, bool):
        raise ArchError(f"{key} must be an integer, got {value.value}", value.span)
    if value.value < minimum:
        raise ArchError(f"{key} must be at least {minimum}, got {value.value}", value.span)
    return value.value


def _real(args: Args, key: str, op_span: Span) -> float:
    value = args.get(key, Value(BUILTIN_DEFAULTS.get(key, 0), op_span))
    if isinstance(value.value, str):
        raise ArchError(f"undefined name '{value.value}'", value.span)
    if isinstance(value.value, Window):
        raise ArchError(f"{key} must be a number", value.span)
    return float(value.value)


def _word(args: Args, key: str, choices: tuple[str, ...], op_span: Span) -> str:
    value = args.get(key, Value(BUILTIN_DEFAULTS[key], op_span))
    if value.value not in choices:
        raise ArchError(f"{key} must be one of {', '.join(choices)}, got {value.value}",
                        value.span)
    return value.value


def _window(args: Args, op_span: Span, rank: int = 2) -> Window:
    value = args.get("window") or args.get("shape")
    if value is None or not isinstance(value.value, Window):
        what = "a shape such as 3x224x224" if rank == 3 else "a window such as 3x3"
        raise ArchError(f"missing {what}", value.span if value else op_span)
    window = value.value
    if len(window.dims) != rank:
        raise ArchError(f"expected {rank} sizes, got {'x'.join(map(str, window.dims))}",
                        window.span)
    if min(window.dims) < 1 or (window.stride is not None and window.stride < 1):
        raise ArchError("sizes and stride must be at least 1", window.span)
    return window


def _pad(args: Args, kernel: tuple[int, int], op_span: Span) -> tuple[int, int]:
    value = args.get("pad", Value(BUILTIN_DEFAULTS["pad"], op_span))
    if value.value == "valid":
        return (0, 0)
    if value.value == "same":
        if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ArchError("pad=same needs an odd window", value.span)
        return (kernel[0] // 2, kernel[1] // 2)
    if isinstance(value.value, Window):  # pad=HxW: rows above and below, columns either side
        window = value.value
        if len(window.dims) != 2 or window.stride is not None:
            raise ArchError(f"pad is a number or HxW (pad=0x3), got {window_text(window)}",
                            value.span)
        return window.dims
    return (_int(args, "pad", op_span, minimum=0),) * 2


def make_input(args: Args, span: Span) -> Input:
    shape = _window(args, span, rank=3)
    if shape.stride is not None:
        raise ArchError("an input shape has no stride", shape.span)
    return Input(shape.dims)


def _stride(args: Args, window: Window, span: Span) -> int | None:
    """The stride of `3x3/2`, or of `stride=s` (which a block parameter can give)."""
    if "stride" not in args:
        return window.stride
    if window.stride is not None:
        raise ArchError("stride given twice: in the window and as stride=", args["stride"].span)
    return _int(args, "stride", span)


def make_conv(args: Args, span: Span) -> Conv:
    window = _window(args, span)
    return Conv(window.dims, _stride(args, window, span) or 1, _pad(args, window.dims, span),
                _int(args, "channels", span), _int(args, "groups", span),
                _word(args, "act", ACTIVATIONS, span),
                _word(args, "bias", ("true", "false"), span) == "true")


def make_bn(args: Args, span: Span) -> BatchNorm:
    eps, momentum = _real(args, "eps", span), _real(args, "momentum", span)
    if eps <= 0:
        raise ArchError(f"eps must be positive, got {eps}", args["eps"].span)
    if not 0 <= momentum <= 1:
        raise ArchError(f"momentum must be in [0, 1], got {momentum}", args["momentum"].span)
    return BatchNorm(eps, momentum)


def make_act(kind: str):
    def make(args: Args, span: Span) -> Act:
        return Act(kind, _real(args, "slope", span) if kind == "leakyrelu" else 0.0)
    return make


def make_pool(kind: str):
    def make(args: Args, span: Span) -> Pool:
        window = _window(args, span)
        rounding = _word(args, "round", ("ceil", "floor"), span)
        stride = _stride(args, window, span) or window.dims[0]  # PyTorch's: stride = window
        return Pool(kind, window.dims, stride, _pad(args, window.dims, span), rounding == "ceil")
    return make


def make_lrn(args: Args, span: Span) -> LRN:
    return LRN(_int(args, "size", span), _real(args, "alpha", span), _real(args, "beta", span),
               _real(args, "k", span))


def make_dropout(args: Args, span: Span) -> Dropout:
    if "p" not in args:
        raise ArchError("missing p (the fraction dropped, e.g. dropout 0.4)", span)
    p = _real(args, "p", span)
    if not 0 <= p < 1:
        raise ArchError(f"dropout fraction must be in [0, 1), got {p}", args["p"].span)
    return Dropout(p)


def make_fc(args: Args, span: Span) -> FC:
    return FC(_int(args, "features", span), _word(args, "act", ACTIVATIONS, span))


MAKERS = {
    "input": make_input,
    "conv": make_conv,
    "maxpool": make_pool("max"),
    "avgpool": make_pool("avg"),
    "gap": lambda args, span: GlobalAvgPool(),
    "lrn": make_lrn,
    "dropout": make_dropout,
    "fc": make_fc,
    "flatten": lambda args, span: Flatten(),
    "softmax": lambda args, span: Softmax(),
    "bn": make_bn,
    **{name: make_act(name) for name in ACTIVATION_LAYERS},
}
