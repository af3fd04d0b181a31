"""Members: the attribute of its class that each layer of an emitted class is stored in.

Names come from the statements of the body the class is written from (a net's, a block's, a
head's), so the same statement gets the same name in every use of a block:

- a labelled statement takes its label (`conv1`; `3a: inception(...)` gives `inception3a`);
- an unlabelled one its op or block name and a counter (`maxpool1`, `lrn2`);
- each branch of a `concat` statement is its own member, named by its label or by what it
  does: `branch_pool` (it starts with a pool), `branch_inception` (with a block use), else
  `branch1x1`, `branch3x3` (its widest conv).

A member made by several layers (a branch of two convs, `conv 3x3 64 x2`) is an
nn.ModuleList indexed in layer order: `branch3x3[0]`, `branch3x3[1]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from archc.codegen.names import fresh, safe
from archc.lang import ast

Syntax = ast.Op | ast.Concat | ast.BlockUse  # what a layer or a block use is made by


@dataclass(frozen=True)
class Members:
    names: dict[int, str]  # id(syntax) -> member name
    branches: set[str]  # the members that are branches of a concat
    taken: set[str]  # every name given, for more members (heads) to avoid


def member_names(body: tuple[ast.Stmt, ...], taken: set[str]) -> Members:
    """The member of every op, concat and block use in `body`."""
    names: dict[int, str] = {}
    branches: set[str] = set()
    counts: dict[str, int] = {}
    for stmt in body:
        core = stmt.core
        if core is None or isinstance(core, (ast.Default, ast.Head)) or _is_input(core):
            continue
        title = ast.title(core)
        counts[title] = counts.get(title, 0) + 1
        if isinstance(core, ast.Concat):
            parts = [(b, _branch_name(b, i, core.kind)) for i, b in enumerate(core.branches, 1)]
        else:
            name = stmt.label or f"{title}{counts[title]}"
            parts = [(stmt, name if name.isidentifier() else f"{title}{name}")]
        for part, name in parts:
            member = fresh(safe(name), taken)
            names.update((id(s), member) for s in syntax_in(part))
            if part is not stmt:
                branches.add(member)
    return Members(names, branches, taken)


def syntax_in(stmt: ast.Stmt) -> Iterator[Syntax]:
    """Every op, concat and block use a statement holds, inside groups and concats too."""
    core = stmt.core
    if isinstance(core, (ast.Op, ast.BlockUse)):
        yield core
    elif isinstance(core, ast.Group):
        for inner in core.body:
            yield from syntax_in(inner)
    elif isinstance(core, ast.Concat):
        yield core
        for inner in core.branches:
            yield from syntax_in(inner)


def _branch_name(branch: ast.Stmt, index: int, kind: str) -> str:
    if branch.label:
        return branch.label if branch.label.isidentifier() else f"branch{branch.label}"
    parts = list(syntax_in(branch))
    first = parts[0] if parts else None
    if kind == "mul" and isinstance(first, ast.Op) and first.name == "gap":
        return "se"  # squeeze (the global pool) and excitation: the gate's branch
    if isinstance(first, ast.Op) and first.name.endswith("pool"):
        return "branch_pool"
    if isinstance(first, ast.BlockUse):
        return f"branch_{first.name}"
    windows = [a.dims for s in parts if isinstance(s, ast.Op) and s.name == "conv"
               for a in s.args if isinstance(a, ast.Window)]
    if windows:
        height, width = max(windows, key=lambda dims: dims[0] * dims[1])
        return f"branch{height}x{width}"
    return f"branch{index}"


def _is_input(core: ast.Core) -> bool:
    """`input` and `id`: statements that make no layer, so no member."""
    return isinstance(core, ast.Op) and core.name in ("input", "id")
