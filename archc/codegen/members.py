"""Members: the attribute of its class that each layer of an emitted class is stored in.

Names come from the statements of the body the class is written from (a net's, a block's, a
head's), so the same statement gets the same name in every use of a block:

- a labelled statement takes its label (`conv1`; `3a: inception(...)` gives `inception3a`);
- an unlabelled one its op or block name and a counter (`maxpool1`, `lrn2`);
- each branch of a `concat` statement is its own member, named by its label or by what it
  does: `branch_pool` (it starts with a pool), `branch_inception` (with a block use), else
  `branch1x1`, `branch3x3` (its widest conv).

A member made by several layers is a container (archc.codegen.containers): its layers by
position where they are one kind (`conv 3x3 64 x2`: `conv3[0]`, `conv3[1]`), by role where
they differ (`role_names`: ResNet's `residual.conv1`, `residual.bn1`, as torchvision's
Bottleneck names them), a role being a layer's own label inside the member, or its op or
block name and a counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from archc import ops
from archc.codegen.names import fresh, safe
from archc.lang import ast

Syntax = ast.Op | ast.Concat | ast.BlockUse  # what a layer or a block use is made by


@dataclass(frozen=True)
class Members:
    names: dict[int, str]  # id(syntax) -> member name
    branches: set[str]  # the members that are branches of a concat
    taken: set[str]  # every name given, for more members (heads) to avoid
    labels: dict[int, str]  # id(syntax) -> the label of its statement inside a member


def member_names(body: tuple[ast.Stmt, ...], taken: set[str]) -> Members:
    """The member of every op, concat and block use in `body`."""
    names: dict[int, str] = {}
    branches: set[str] = set()
    labels: dict[int, str] = {}
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
            labels.update(_inner_labels(part))
    return Members(names, branches, taken, labels)


# What an nn.ModuleDict answers itself, so no layer may be called by it.
# The statements forward() writes as functions (activations, flatten, softmax): no member.
FUNCTIONS = frozenset(name for spec in ops.REGISTRY.values() if spec.module is None
                      for name in spec.statements)
MODULE_DICT_METHODS = frozenset({"clear", "items", "keys", "pop", "update", "values"})


def role_names(layers: list[Syntax], labels: dict[int, str]) -> list[str] | None:
    """The role of each of a member's layers (they made its modules, in order): its label
    inside the member, else its op or block name, with a counter where the name recurs
    (`conv1`, `bn1`, `conv2`; `gap`). None where they are all one kind, unlabelled: position
    names them (`conv3[1]`)."""
    titles = [ast.title(s) for s in layers]
    if len(set(titles)) == 1 and not any(id(s) in labels for s in layers):
        return None
    recurring = {t for t in titles if titles.count(t) > 1}
    taken: set[str] = set()
    counts: dict[str, int] = {}
    roles = []
    for syntax, title in zip(layers, titles):
        counts[title] = counts.get(title, 0) + 1
        label = labels.get(id(syntax))
        counted = f"{title}{'_' * title[-1].isdigit()}{counts[title]}"
        role = safe((counted if title in recurring else title) if label is None else
                    label if label.isidentifier() else f"{title}{label}")
        roles.append(fresh(role + "_" if role in MODULE_DICT_METHODS else role, taken))
    return roles


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


def _inner_labels(stmt: ast.Stmt) -> dict[int, str]:
    """id(syntax) -> label, for the labelled statements inside `stmt` (not `stmt` itself)."""
    core = stmt.core
    inner = core.body if isinstance(core, ast.Group) else \
        core.branches if isinstance(core, ast.Concat) else ()
    labels = {}
    for part in inner:
        if part.label and isinstance(part.core, (ast.Op, ast.BlockUse)):
            labels[id(part.core)] = part.label
        labels.update(_inner_labels(part))
    return labels


def _branch_name(branch: ast.Stmt, index: int, kind: str) -> str:
    if branch.label:
        return branch.label if branch.label.isidentifier() else f"branch{branch.label}"
    parts = list(syntax_in(branch))
    named = _lone_label(branch, parts)
    if named is not None:  # `{ a: conv 1x3 c; relu }`: its one module is `a`
        return named if named.isidentifier() else f"branch{named}"
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


def _lone_label(branch: ast.Stmt, parts: list[Syntax]) -> str | None:
    """The label of a group's one statement with a module, where the others are functions
    (activations, flatten, softmax): what the branch's member is."""
    if not isinstance(branch.core, ast.Group):
        return None
    modules = [p for p in parts if not (isinstance(p, ast.Op) and p.name in FUNCTIONS)]
    labelled = [s for s in branch.core.body if s.label and any(s.core is m for m in modules)]
    return labelled[0].label if len(modules) == 1 and len(labelled) == 1 else None


def _is_input(core: ast.Core) -> bool:
    """`input` and `id`: statements that make no layer, so no member."""
    return isinstance(core, ast.Op) and core.name in ("input", "id")
