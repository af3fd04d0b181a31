"""The abstract syntax tree: frozen dataclasses, each with the `Span` it came from.

The parser is the only producer; the builder the only consumer. Nothing here is evaluated:
expressions stay expressions until the builder binds parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace

from archc.errors import Span

# ---- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Ref:
    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """`divisible(c * 0.75, 8)`: one of archc.lang.functions."""

    name: str
    args: tuple[Expr, ...]
    span: Span


Expr = Num | Ref | BinOp | Neg | Call

# The most layers (and statements) a net may have: refused before a graph that would not fit
# in memory is built (archc.lang.parser counts statements, archc.ir the layers).
MAX_LAYERS = 1_000_000

# ---- op arguments --------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """`7x7/2`, `3x224x224`: sizes and an optional stride."""

    dims: tuple[int | str, ...]  # a str: a parameter's name, `(size)` in 3x(size)x(size)
    stride: int | str | None
    span: Span


@dataclass(frozen=True)
class KeyArg:
    key: str
    value: Expr
    span: Span


Arg = Window | KeyArg | Num | Ref | Neg

# ---- annotations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A count as printed, with its unit: `2.7Ki`, `34M`, `966986`, `1%`."""

    text: str
    span: Span


@dataclass(frozen=True)
class Annotation:
    kind: str  # "expect" (enforced) or "paper" (shown beside the computed value)
    shape: Window | None
    counts: tuple[tuple[str, Quantity], ...]  # key ("params", "weights", "macs", "tol"), value
    span: Span


# ---- statements ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    name: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class BlockUse:
    name: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Group:
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Concat:
    """`concat { ... }` (along channels), `sum { ... }` or `mul { ... }` (elementwise): branches
    of layers, joined by the op of archc.ops.GROUPS[kind]."""

    branches: tuple[Stmt, ...]
    span: Span
    kind: str = "concat"  # or "sum", "mul"


@dataclass(frozen=True)
class Default:
    op: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Head:
    name: str
    source_label: str
    source_span: Span
    weight: Expr
    body: tuple[Stmt, ...]
    span: Span


Core = Op | BlockUse | Group | Concat | Default | Head


def title(core: Core) -> str:
    """What a statement is: the op or block it uses, or the kind of statement."""
    if isinstance(core, (Op, BlockUse)):
        return core.name
    if isinstance(core, Concat):
        return core.kind
    return {Group: "group", Head: "head"}[type(core)]


@dataclass(frozen=True)
class Stmt:
    label: str | None
    core: Core | None  # None: annotations of the whole net
    repeat: int | Expr  # `x4`, or `x(blocks)`, `x(ceil(3 * depth))`: evaluated by the build
    annotations: tuple[Annotation, ...]
    span: Span
    index: Ref | None = None  # `x3 as i`: the name its arguments read the repetition's index by


# ---- definitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Use:
    path: str
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class NetDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class File:
    uses: tuple[Use, ...]
    blocks: tuple[BlockDef, ...]
    nets: tuple[NetDef, ...]
    span: Span


def first_line(definition: BlockDef | NetDef) -> Span:
    """The span of `block NAME(...)` / `net NAME`: where messages about a definition point."""
    s = definition.span
    end = len(s.source.line(s.line).rstrip()) + 1
    return Span(s.source, s.line, s.col, s.line, max(s.col + 1, end))


def reads(node, name: str) -> bool:
    """Whether `name` is read anywhere in `node` (a definition, a statement, an expression, a
    window's sizes)."""
    if isinstance(node, Ref):
        return node.name == name
    if isinstance(node, Window):
        return name in node.dims or node.stride == name
    if isinstance(node, tuple):
        return any(reads(item, name) for item in node)
    if is_dataclass(node) and not isinstance(node, Span):
        return any(reads(getattr(node, f.name), name) for f in fields(node))
    return False


def bind(node, name: str, value: int):
    """`node` with every read of `name` replaced by `value` (a repetition's index, for one
    pass): `Ref`s become `Num`s at their spans, window sizes the number. A statement that
    names its own index `name` keeps reading its own (its repeat count still reads ours)."""
    if isinstance(node, Ref):
        return Num(value, node.span) if node.name == name else node
    if isinstance(node, Window):
        return replace(node, dims=tuple(value if d == name else d for d in node.dims),
                       stride=value if node.stride == name else node.stride)
    if isinstance(node, tuple):
        new = tuple(bind(item, name, value) for item in node)
        return new if any(a is not b for a, b in zip(new, node)) else node
    if isinstance(node, Stmt) and node.index is not None and node.index.name == name:
        return replace(node, repeat=bind(node.repeat, name, value))
    if is_dataclass(node) and not isinstance(node, Span):
        changed = {f.name: new for f in fields(node)
                   if (new := bind(old := getattr(node, f.name), name, value)) is not old}
        return replace(node, **changed) if changed else node
    return node


def syntax_in(node):
    """Every op, block use and concat in `node` (a core, a statement, a tuple), in order."""
    if isinstance(node, (Op, BlockUse, Concat)):
        yield node
    if isinstance(node, tuple):
        for item in node:
            yield from syntax_in(item)
    elif is_dataclass(node) and not isinstance(node, (Span, Window, KeyArg, Annotation)):
        for f in fields(node):
            yield from syntax_in(getattr(node, f.name))


def meaning(node):
    """`node` (a file, a definition, a statement) without its source positions: what a layout
    may not change. Two programs mean the same where their meanings are equal."""
    if isinstance(node, tuple):
        return tuple(meaning(item) for item in node)
    if is_dataclass(node) and not isinstance(node, Span):
        return (type(node).__name__, *(meaning(getattr(node, f.name)) for f in fields(node)
                                       if not isinstance(getattr(node, f.name), Span)))
    return node


def text(span: Span) -> str:
    """The source text of a one-line span (an expression, as written)."""
    line = span.source.line(span.line)
    return line[span.col - 1:span.end_col - 1] if span.end_line == span.line else line
