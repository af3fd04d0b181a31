"""The ops of the language: one frozen dataclass each, and how a statement's arguments become one.

`SIGNATURES` says, per op name, which positional arguments, `key=value` options and bare flags
the op accepts; archc.ops.makers' `MAKERS` turns the evaluated arguments into the op's dataclass,
checking each value. Both are plain tables: adding an op is a dataclass, a signature and a
maker (and a row in the shape and cost tables, which a test enforces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archc.errors import ArchError
from archc.lang import ast
from archc.lang.ast import Window


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
REPETITION = re.compile(r"x[0-9]+")  # how `dropout 0.5x2` lexes its `x2`: a name
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
        if key is None and isinstance(arg, ast.Ref) and REPETITION.fullmatch(arg.name):
            raise ArchError(f"'{arg.name}' touches the argument before it: a repetition stands "
                            f"apart, after a space (`{op} ... {arg.name}`)", arg.span)
        if key is None and isinstance(arg, ast.Ref) and arg.name == "x":  # `x(2)`, `x(n + 1)`
            raise ArchError("a repetition repeats a number of times or a parameter's: x4, "
                            "x(blocks)", arg.span)
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
                raise ArchError(f"'{arg.name}' is a window ({window_text(value)}) where '{op}' "
                                "needs a number", arg.span)
            arg, has_window = Window(value.dims, value.stride, arg.span), True
        result.append(arg)
    return tuple(result)


def window_text(window: Window) -> str:
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
