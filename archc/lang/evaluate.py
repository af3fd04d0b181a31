"""Evaluate: an expression of the language, with its names bound, -> a number.

`evaluate` gives an int or a float (`/` gives an int when it divides exactly); an undefined
name, a division by zero, or a number over `MAX_NUMBER` is an `ArchError` at the expression,
with the block-use notes of where it was evaluated. An expression may call the helpers of
archc.lang.functions; a block's may read `in_channels` (archc.ir.build binds it).
`evaluate_word` leaves a bare unbound name as a word (`same`, `ceil`): the op it is given to
decides whether that word means anything.
"""

from __future__ import annotations

import difflib

from archc.errors import ArchError, Note
from archc.lang import ast
from archc.lang.functions import FUNCTIONS

IN_CHANNELS = "in_channels"  # a block's input channel count, bound where the block is used

MAX_NUMBER = 10**18  # larger values in a program are a typo, and would slow every count

# A block parameter may hold a window, or a word: an activation (`block b(act) { ...; act }`).
Env = dict[str, "int | float | ast.Window | str"]


def evaluate_word(expr: ast.Expr, env: Env, notes: tuple[Note, ...]) -> int | float | str:
    if isinstance(expr, ast.Ref) and expr.name not in env:
        return expr.name
    return evaluate(expr, env, notes)


def evaluate(expr: ast.Expr, env: Env, notes: tuple[Note, ...]) -> int | float | ast.Window:
    if isinstance(expr, ast.Window):
        return window(expr, env, notes)
    if isinstance(expr, ast.Num):
        value = expr.value
    elif isinstance(expr, ast.Ref):
        if expr.name not in env:
            raise ArchError(_undefined(expr.name, env), expr.span, notes)
        value = env[expr.name]
    elif isinstance(expr, ast.Neg):
        value = -number(expr.operand, env, notes)
    elif isinstance(expr, ast.Call):
        value = _call(expr, env, notes)
    else:
        value = _binop(expr, env, notes)
    if isinstance(value, ast.Window | str):
        return value
    if abs(value) > MAX_NUMBER:
        raise ArchError(f"number too large (over {MAX_NUMBER:.0e})", expr.span, notes)
    return value


def window(expr: ast.Window, env: Env, notes: tuple[Note, ...]) -> ast.Window:
    """`3x(size)x(size)` with its names replaced by their (integer) values."""
    def size(value: int | str) -> int:
        if isinstance(value, int):
            return value
        number = evaluate(ast.Ref(value, expr.span), env, notes)
        if not isinstance(number, int):
            raise ArchError(f"'{value}' is {_what(number)}; a size must be an integer",
                            expr.span, notes)
        return number

    stride = size(expr.stride) if expr.stride is not None else None
    return ast.Window(tuple(size(d) for d in expr.dims), stride, expr.span)


def number(expr: ast.Expr, env: Env, notes: tuple[Note, ...]) -> int | float:
    """`evaluate`, refusing a window or a word where a number is needed."""
    value = evaluate(expr, env, notes)
    if isinstance(value, ast.Window | str):
        raise ArchError(f"{_what(value)} where a number is needed", expr.span, notes)
    return value


def _what(value) -> str:
    if isinstance(value, ast.Window):
        text = "x".join(map(str, value.dims))
        return f"a window ({text}{'' if value.stride is None else f'/{value.stride}'})"
    if isinstance(value, str):
        return f"the activation '{value}'"
    return f"{value}"


def _call(expr: ast.Call, env: Env, notes: tuple[Note, ...]) -> int | float:
    function = FUNCTIONS.get(expr.name)
    if function is None:
        raise ArchError(f"unknown function '{expr.name}'{suggest(expr.name, FUNCTIONS)} (there "
                        f"are {', '.join(FUNCTIONS)})", expr.span, notes)
    if len(expr.args) != len(function.params):
        wanted = ", ".join(function.params)
        raise ArchError(f"{expr.name}({wanted}) takes {len(function.params)} argument"
                        f"{'s' if len(function.params) > 1 else ''}, got {len(expr.args)}",
                        expr.span, notes)
    args = [number(a, env, notes) for a in expr.args]
    refused = function.refuse(*args)
    if refused:
        raise ArchError(refused, expr.span, notes)
    return function.compute(*args)


def _undefined(name: str, env: Env) -> str:
    if name == IN_CHANNELS:
        return (f"'{IN_CHANNELS}' is defined in a block only: the channel count of the value "
                "the block is used on")
    return f"undefined name '{name}'{suggest(name, env)}"


def _binop(expr: ast.BinOp, env: Env, notes: tuple[Note, ...]) -> int | float:
    left, right = number(expr.left, env, notes), number(expr.right, env, notes)
    if expr.op == "+":
        return left + right
    if expr.op == "-":
        return left - right
    if expr.op == "*":
        return left * right
    if right == 0:
        raise ArchError("division by zero", expr.span, notes)
    exact = isinstance(left, int) and isinstance(right, int) and left % right == 0
    return left // right if exact else left / right


def suggest(name: str, known) -> str:
    """"; did you mean 'x'?" for the closest of `known`, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
