"""Binding: a statement's arguments -> the op's named slots, before evaluation.

Syntax only, so the emitter can read back which expression gave a layer its width
(`Node.given`). A slot filled twice, contradicting flags, a repetition written against its
argument: each an error at the argument.
"""

from __future__ import annotations

import re

from archc.errors import ArchError
from archc.lang import ast
from archc.lang.ast import Window
from archc.ops.args import window_text
from archc.ops.base import Signature

REPETITION = re.compile(r"x[0-9]+")  # how `dropout 0.5x2` lexes its `x2`: a name
IDENTITY = "id"  # a branch that passes its input on (a residual's shortcut); makes no layer


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
    `b(11x11/4)`) written as that window, where the op takes one and has none yet, and one
    that holds an activation (`b(relu6)` for `conv 3x3 64 act`) written as that flag."""
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
        elif isinstance(value, str):
            if value not in signature.flags:
                raise ArchError(f"'{arg.name}' is the activation '{value}' where '{op}' needs "
                                "a number" + (" (it takes no activation flag)" if
                                              not signature.flags else ""), arg.span)
            arg = ast.Ref(value, arg.span)
        result.append(arg)
    return tuple(result)


def _twice(key: str, first: ast.Arg, second: ast.Arg) -> str:
    if key == "act":
        if first.name == second.name:
            return f"flag '{second.name}' given twice"
        return f"'{second.name}' contradicts '{first.name}' given before it"
    if key == "window":
        return "a second window: the op takes one"
    return f"{key} given twice"
