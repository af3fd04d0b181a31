"""The ops of the language: one frozen dataclass each, and how a statement's arguments become one.

`SIGNATURES` says, per op name, which positional arguments, `key=value` options and bare flags
the op accepts; `MAKERS` turns the evaluated arguments into the op's dataclass, checking each
value. Both are plain tables: adding an op is a dataclass, a signature and a maker (and a row in
the shape and cost tables, which a test enforces).
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import ast
from archc.ast import Window
from archc.errors import ArchError, Span


@dataclass(frozen=True)
class Input:
    shape: tuple[int, int, int]  # C, H, W


@dataclass(frozen=True)
class Conv:
    window: tuple[int, int]  # as Pool names it
    stride: int
    pad: tuple[int, int]
    channels: int
    groups: int
    act: str  # "linear" or an activation of ACTIVATION_LAYERS (a flag: `conv 3x3 64 relu`)
    bias: bool = True  # `bias=false`, as before a batch norm


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
class LRN:
    size: int
    alpha: float
    beta: float
    k: float


@dataclass(frozen=True)
class Dropout:
    p: float


@dataclass(frozen=True)
class FC:
    features: int
    act: str


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Softmax:
    pass


@dataclass(frozen=True)
class Concat:
    pass  # along channels, inputs in operand order


@dataclass(frozen=True)
class BatchNorm:
    eps: float
    momentum: float  # PyTorch's: the weight of the new batch in the running statistics


@dataclass(frozen=True)
class Act:
    kind: str  # one of ACTIVATION_LAYERS
    slope: float = 0.0  # leakyrelu's negative slope


@dataclass(frozen=True)
class Sum:
    """Elementwise, of branches that agree in C, H and W: a residual connection."""

    identities: tuple[bool, ...] = ()  # per branch: an `id` shortcut (the sum's own input)


OpT = (Input | Conv | Pool | GlobalAvgPool | LRN | Dropout | FC | Flatten | Softmax | Concat
       | BatchNorm | Act | Sum)
OP_TYPES = (Input, Conv, Pool, GlobalAvgPool, LRN, Dropout, FC, Flatten, Softmax, Concat,
            BatchNorm, Act, Sum)


@dataclass(frozen=True)
class Value:
    """An evaluated argument: a number, a bare word (`same`, `ceil`) or a window."""

    value: int | float | str | Window
    span: Span


@dataclass(frozen=True)
class Signature:
    positional: tuple[str, ...]
    keys: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # bare words; stored under the key "act"
    family: str = ""  # the name `default` uses, if it differs from the op's


# Activations: as layers (`relu`, `leakyrelu slope=0.2`) and as flags on conv and fc
# (`conv 3x3 64 relu6`; a flag leakyrelu takes the default slope).
ACTIVATION_LAYERS = ("relu", "relu6", "leakyrelu", "sigmoid", "tanh", "hardswish")
ACTIVATIONS = ("linear", *ACTIVATION_LAYERS)
SIGNATURES: dict[str, Signature] = {
    "input": Signature(("shape",)),
    "conv": Signature(("window", "channels"), ("stride", "pad", "groups", "bias"), ACTIVATIONS),
    "maxpool": Signature(("window",), ("stride", "pad", "round"), family="pool"),
    "avgpool": Signature(("window",), ("stride", "pad", "round"), family="pool"),
    "gap": Signature(()),
    "lrn": Signature(("size",), ("alpha", "beta", "k")),
    "dropout": Signature(("p",)),
    "fc": Signature(("features",), (), ACTIVATIONS),
    "flatten": Signature(()),
    "softmax": Signature(()),
    "bn": Signature((), ("eps", "momentum")),
    **{name: Signature((), ("slope",) if name == "leakyrelu" else ()) for name in
       ACTIVATION_LAYERS},
}
IDENTITY = "id"  # a branch that passes its input on (a residual's shortcut); makes no layer

# Values an option takes when neither the statement nor a `default` gives one.
BUILTIN_DEFAULTS = {"pad": "valid", "groups": 1, "act": "linear", "round": "floor",
                    "alpha": 1e-4, "beta": 0.75, "k": 1.0, "bias": "true", "eps": 1e-5,
                    "momentum": 0.1, "slope": 0.01}


def family(op_name: str) -> str:
    return SIGNATURES[op_name].family or op_name


# ---- binding: a statement's arguments -> the op's named slots, before evaluation ----------


def bind(op: str, args: tuple[ast.Arg, ...], signature: Signature) -> dict[str, ast.Arg]:
    """Which slot each argument fills: a window, a positional slot, a `key=`, or a flag ("act").

    Syntax only, so the emitter can read back which expression gave a layer its width. A slot
    filled twice (`relu relu`, `pad=1 pad=2`) or contradicting flags (`relu linear`) is an
    error at the second.
    """
    bound: dict[str, ast.Arg] = {}
    slots = [s for s in signature.positional if s not in ("window", "shape")]
    window = next((s for s in signature.positional if s in ("window", "shape")), None)
    for arg in args:
        if isinstance(arg, Window):
            key = window
        elif isinstance(arg, ast.KeyArg):
            key = arg.key
            if key not in signature.keys:
                takes = f" (it takes: {', '.join(signature.keys)})" if signature.keys else ""
                raise ArchError(f"'{op}' takes no option '{key}'{takes}", arg.span)
        elif isinstance(arg, ast.Ref) and arg.name in signature.flags:
            key = "act"
        else:
            key = slots.pop(0) if slots else None
        if key is None:
            raise ArchError(f"too many arguments for '{op}'", arg.span)
        if key in bound:
            raise ArchError(_twice(key, bound[key], arg), arg.span)
        bound[key] = arg
    return bound


def windows_given(op: str, args: tuple[ast.Arg, ...], signature: Signature,
                  env: dict) -> tuple[ast.Arg, ...]:
    """`args` with a parameter that holds a window (`block b(k) { conv k 64 }` used as
    `b(11x11/4)`) written as that window, where the op takes one and has none yet."""
    slot = any(s in ("window", "shape") for s in signature.positional)
    has_window = any(isinstance(a, Window) for a in args)
    result = []
    for arg in args:
        value = env.get(arg.name) if isinstance(arg, ast.Ref) else None
        if isinstance(value, Window):
            if not slot or has_window:
                raise ArchError(f"'{arg.name}' is a window ({_text(value)}) where '{op}' "
                                "needs a number", arg.span)
            arg, has_window = Window(value.dims, value.stride, arg.span), True
        result.append(arg)
    return tuple(result)


def _text(window: Window) -> str:
    return "x".join(map(str, window.dims)) + ("" if window.stride is None else
                                              f"/{window.stride}")


def _twice(key: str, first: ast.Arg, second: ast.Arg) -> str:
    if key == "act":
        if first.name == second.name:
            return f"flag '{second.name}' given twice"
        return f"'{second.name}' contradicts '{first.name}' given before it"
    if key == "window":
        return "a second window: the op takes one"
    return f"{key} given twice"


# ---- makers: evaluated arguments -> op -----------------------------------------------------

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
        raise ArchError(f"{key} must be an integer, got a window ({_text(value.value)})",
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


def op_name(op: OpT) -> str:
    """The language's name for an op: `conv`, `maxpool`, `gap`."""
    if isinstance(op, Pool):
        return f"{op.kind}pool"
    if isinstance(op, Act):
        return op.kind
    return {Input: "input", Conv: "conv", GlobalAvgPool: "gap", LRN: "lrn", Dropout: "dropout",
            FC: "fc", Flatten: "flatten", Softmax: "softmax", Concat: "concat", BatchNorm: "bn",
            Sum: "sum"}[type(op)]


def describe(op: OpT) -> str:
    """A short text for messages: `conv 1x1 64`, `maxpool 3x3/2`."""
    if isinstance(op, Conv):
        return f"conv {op.window[0]}x{op.window[1]}/{op.stride} {op.channels}"
    if isinstance(op, Pool):
        return f"{op.kind}pool {op.window[0]}x{op.window[1]}/{op.stride}"
    if isinstance(op, FC):
        return f"fc {op.features}"
    if isinstance(op, Input):
        return "input"
    if isinstance(op, Dropout):
        return f"dropout {op.p:g}"
    if isinstance(op, LRN):
        return f"lrn {op.size}"
    return op_name(op)


def full_text(op: OpT) -> str:
    """Everything the op does, as the language would write it: `conv 5x5/1 48 pad=2 relu`,
    `maxpool 3x3/2 ceil`; for drawings and the IR dump."""
    text = describe(op)
    pad = getattr(op, "pad", (0, 0))
    if pad != (0, 0):
        text += f" pad={pad[0]}" if pad[0] == pad[1] else f" pad={pad[0]}x{pad[1]}"
    if isinstance(op, Pool) and op.ceil:
        text += " ceil"
    if isinstance(op, Conv) and op.groups > 1:
        text += f" groups={op.groups}"
    if isinstance(op, Conv) and not op.bias:
        text += " bias=false"
    if isinstance(op, Conv | FC) and op.act != "linear":
        text += f" {op.act}"
    if isinstance(op, Input):
        text += " " + "x".join(map(str, op.shape))
    return text
