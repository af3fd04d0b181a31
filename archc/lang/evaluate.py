"""Evaluate: an expression of the language, with its names bound, -> a number.

`evaluate` gives an int or a float (`/` gives an int when it divides exactly); an undefined
name, a division by zero, or a number over `MAX_NUMBER` is an `ArchError` at the expression,
with the block-use notes of where it was evaluated. `evaluate_word` leaves a bare unbound name
as a word (`same`, `ceil`): the op it is given to decides whether that word means anything.
"""

from __future__ import annotations

import difflib

from archc.errors import ArchError, Note
from archc.lang import ast

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
            raise ArchError(f"undefined name '{expr.name}'{suggest(expr.name, env)}", expr.span,
                            notes)
        value = env[expr.name]
    elif isinstance(expr, ast.Neg):
        value = -number(expr.operand, env, notes)
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
