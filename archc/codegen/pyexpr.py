"""Widths as Python source: the language's expressions, rewritten and printed for emitted code.

A block class takes its parameters and its input channels, so the widths inside it are
expressions in those names (`n1 + n3 + n5 + proj`). They are built from the AST's own
expression nodes: `add` and `times` combine them (folding numbers), `substitute` puts a use's
arguments in for a block's parameters, and `python` prints one with the fewest parentheses.
`INPUT` stands for a class's input channels: the name a block's statements read them by, and
the constructor argument of its class. A call prints as archc.lang.functions says, and `python`
notes each function it prints, so the emitted file defines what it uses.
"""

from __future__ import annotations

from archc.errors import Span
from archc.lang import ast
from archc.lang.evaluate import IN_CHANNELS, evaluate
from archc.lang.functions import FUNCTIONS

INPUT = IN_CHANNELS  # no parameter may take this name (archc.lang.loader refuses it)
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def number(value: int | float, span: Span) -> ast.Num:
    return ast.Num(value, span)


def add(left: ast.Expr, right: ast.Expr) -> ast.Expr:
    if isinstance(left, ast.Num) and isinstance(right, ast.Num):
        return ast.Num(left.value + right.value, left.span)
    return ast.BinOp("+", left, right, left.span)


def total(terms: list[ast.Expr]) -> ast.Expr:
    result = terms[0]
    for term in terms[1:]:
        result = add(result, term)
    return result


def times(expr: ast.Expr, factor: int) -> ast.Expr:
    if factor == 1:
        return expr
    if isinstance(expr, ast.Num):
        return ast.Num(expr.value * factor, expr.span)
    return ast.BinOp("*", expr, ast.Num(factor, expr.span), expr.span)


def divided(expr: ast.Expr, parts: int) -> ast.Expr:
    if parts == 1:
        return expr
    if isinstance(expr, ast.Num):
        return ast.Num(expr.value // parts, expr.span)  # divides exactly (checked)
    return ast.BinOp("/", expr, ast.Num(parts, expr.span), expr.span)


def substitute(expr: ast.Expr, values: dict[str, ast.Expr]) -> ast.Expr:
    """`expr` with each name in `values` replaced by its expression."""
    if isinstance(expr, ast.Ref):
        return values.get(expr.name, expr)
    if isinstance(expr, ast.Neg):
        return ast.Neg(substitute(expr.operand, values), expr.span)
    if isinstance(expr, ast.BinOp):
        return ast.BinOp(expr.op, substitute(expr.left, values),
                         substitute(expr.right, values), expr.span)
    if isinstance(expr, ast.Call):
        return ast.Call(expr.name, tuple(substitute(a, values) for a in expr.args), expr.span)
    return expr


def python(expr: ast.Expr, names: dict[str, str], outer: int = 0, real: bool = False,
           used: set[str] | None = None) -> str:
    """Python source for `expr`, names renamed by `names`; parts without names are folded.
    The functions it calls are added to `used`.

    `/` prints as `//`: a width divides exactly (the front end refuses fractional channels);
    inside a function of real numbers (`divisible(c / 3, 8)`), it prints as `/`.
    """
    used = set() if used is None else used
    if not _names_in(expr):
        value = evaluate(expr, {}, ())
        if isinstance(value, float):  # a rate as the source wrote it: 0.2 * 6 / 16
            text = as_written(expr)
            compound = not isinstance(expr, ast.Num) or text.startswith("-")
            return f"({text})" if compound and outer > 0 else text
        return repr(value) if value >= 0 or outer == 0 else f"({value!r})"
    if isinstance(expr, ast.Ref):
        return names[expr.name]
    if isinstance(expr, ast.Neg):
        return f"-{python(expr.operand, names, 3, real, used)}"
    if isinstance(expr, ast.Call):
        function = FUNCTIONS[expr.name]
        used.add(expr.name)
        args = (python(a, names, 0, real or function.real, used) for a in expr.args)
        return f"{function.python}({', '.join(args)})"
    level = PRECEDENCE[expr.op]
    left = python(expr.left, names, level, real, used)
    right = python(expr.right, names, level + 1, real, used)  # a - (b - c): binds tighter
    text = f"{left} {'//' if expr.op == '/' and not real else expr.op} {right}"
    return f"({text})" if level < outer else text


def as_written(expr: ast.Expr) -> str:
    """Python for a real value as the source wrote it (`0.2 * 6 / 16`, not its repr
    0.07500000000000001), for an expression without names: its whole-number parts folded,
    its literals as typed (`1e-6`)."""
    value = evaluate(expr, {}, ())
    if isinstance(value, int) or isinstance(expr, ast.Ref):
        return repr(value)
    if isinstance(expr, ast.Num):
        typed = ast.text(expr.span)
        return typed if _float(typed) == value else repr(value)
    if isinstance(expr, ast.Neg):
        return f"-{_operand(expr.operand, 3)}"
    if isinstance(expr, ast.Call):
        function = FUNCTIONS[expr.name]
        return f"{function.python}({', '.join(as_written(a) for a in expr.args)})"
    level = PRECEDENCE[expr.op]
    return f"{_operand(expr.left, level)} {expr.op} {_operand(expr.right, level + 1)}"


def _operand(expr: ast.Expr, outer: int) -> str:
    text = as_written(expr)
    inner = PRECEDENCE.get(expr.op, 9) if isinstance(expr, ast.BinOp) else 9
    folded = isinstance(evaluate(expr, {}, ()), int)
    return f"({text})" if inner < outer and not folded else text


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def real(expr: ast.Expr, reals: set[str]) -> bool:
    """Whether `expr` is a real number in Python when the names in `reals` are: a width the
    front end took as within rounding of an integer (`f * 8`, f = 0.5) is written round(...)."""
    if isinstance(expr, ast.Num):
        return isinstance(expr.value, float)
    if isinstance(expr, ast.Ref):
        return expr.name in reals
    if isinstance(expr, ast.Neg):
        return real(expr.operand, reals)
    if isinstance(expr, ast.BinOp):
        return real(expr.left, reals) or real(expr.right, reals)
    if isinstance(expr, ast.Call):
        if expr.name in ("min", "max"):
            return any(real(a, reals) for a in expr.args)
        return expr.name in ("log", "pow")
    return False


def _names_in(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.Ref):
        return True
    if isinstance(expr, ast.Neg):
        return _names_in(expr.operand)
    if isinstance(expr, ast.BinOp):
        return _names_in(expr.left) or _names_in(expr.right)
    if isinstance(expr, ast.Call):
        return any(_names_in(a) for a in expr.args)
    return False
