"""Reading a statement's evaluated arguments: the checks every op's maker shares.

A maker (an op family's `Statement.make`) gets its arguments bound to their slots and
evaluated, as `Value`s with their spans, and reads each through these: a value of the wrong
kind or range is an `ArchError` at the argument; a missing one takes `BUILTIN_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError, Span
from archc.lang.ast import Window

# Values an option takes when neither the statement nor a `default` gives one.
BUILTIN_DEFAULTS = {"pad": "valid", "groups": 1, "act": "linear", "round": "floor",
                    "alpha": 1e-4, "beta": 0.75, "k": 1.0, "bias": "true", "eps": 1e-5,
                    "momentum": 0.1, "slope": 0.01}


def window_text(window: Window) -> str:
    return "x".join(map(str, window.dims)) + ("" if window.stride is None else
                                              f"/{window.stride}")


@dataclass(frozen=True)
class Value:
    """An evaluated argument: a number, a bare word (`same`, `ceil`) or a window."""

    value: int | float | str | Window
    span: Span


Args = dict[str, Value]


def whole(number: float) -> bool:
    """A real number within rounding of an integer (`f * 8` with f = 0.5 is 4.0)."""
    return abs(number - round(number)) <= 1e-9 * max(1.0, abs(number))


def int_arg(args: Args, key: str, op_span: Span, minimum: int = 1) -> int:
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
    if isinstance(value.value, float):
        if not whole(value.value):  # say how to make one: the language has no int()
            raise ArchError(f"{key} must be an integer, got {value.value}; give it as "
                            "round(...), floor(...), ceil(...) or divisible(..., 8)",
                            value.span)
        value = Value(round(value.value), value.span)  # 2 * 0.7 * 10 is 14.000000000000002
    if not isinstance(value.value, int) or isinstance(value.value, bool):
        raise ArchError(f"{key} must be an integer, got {value.value}", value.span)
    if value.value < minimum:
        raise ArchError(f"{key} must be at least {minimum}, got {value.value}", value.span)
    return value.value


def real_arg(args: Args, key: str, op_span: Span) -> float:
    value = args.get(key, Value(BUILTIN_DEFAULTS.get(key, 0), op_span))
    if isinstance(value.value, str):
        raise ArchError(f"undefined name '{value.value}'", value.span)
    if isinstance(value.value, Window):
        raise ArchError(f"{key} must be a number", value.span)
    return float(value.value)


def word_arg(args: Args, key: str, choices: tuple[str, ...], op_span: Span) -> str:
    value = args.get(key, Value(BUILTIN_DEFAULTS[key], op_span))
    if value.value not in choices:
        raise ArchError(f"{key} must be one of {', '.join(choices)}, got {value.value}",
                        value.span)
    return value.value


def window_arg(args: Args, op_span: Span, rank: int = 2) -> Window:
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


def pad_arg(args: Args, kernel: tuple[int, int], op_span: Span) -> tuple[int, int]:
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
    return (int_arg(args, "pad", op_span, minimum=0),) * 2


def stride_arg(args: Args, window: Window, span: Span) -> int | None:
    """The stride of `3x3/2`, or of `stride=s` (which a block parameter can give)."""
    if "stride" not in args:
        return window.stride
    if window.stride is not None:
        raise ArchError("stride given twice: in the window and as stride=", args["stride"].span)
    return int_arg(args, "stride", span)
