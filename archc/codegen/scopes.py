"""Scopes: the layers one emitted class holds, and the member each is stored in.

A class is written from a `Scope`: the net, one block use, or one head. Its items are the
layers directly in it and one child `Scope` per block use within it (`items_of`); each item's
member (archc.codegen.members names them) gives its attribute and its state_dict key
(`attributes`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from archc.codegen.members import Members, Syntax, role_names
from archc.codegen.modules import is_module
from archc.codegen.names import camel
from archc.ir.graph import Graph
from archc.lang import ast


@dataclass
class Scope:
    """The layers one class holds: the net, one block use, or one head."""

    kind: str  # "net", "block" or "head"
    path: tuple  # node path prefix: block-use ids, after ("head", name) for a head
    nodes: list[int]
    input: int
    body: tuple[ast.Stmt, ...]  # the statements its members are named from
    name: str  # class name base
    use: int | None = None  # Graph.block_uses id, for a block


def items_of(graph: Graph, scope: Scope) -> list[int | Scope]:
    """Layers directly in `scope`, and one child `Scope` per block use within it."""
    items, depth = [], len(scope.path)
    for n in scope.nodes:
        path = _path(graph, n)
        if len(path) == depth:
            items.append(n)
            continue
        key = path[: depth + 1]
        if items and isinstance(items[-1], Scope) and items[-1].path == key:
            items[-1].nodes.append(n)
        else:
            use = graph.block_uses[key[-1]]
            items.append(Scope("block", key, [n], graph.node(n).inputs[0],
                               use.block.body, camel(use.name), key[-1]))
    return items


def _path(graph: Graph, n: int) -> tuple:
    node = graph.node(n)
    return ((("head", node.head),) if node.head else ()) + node.blocks


def syntax_of(graph: Graph, item: int | Scope) -> Syntax:
    """The op or block use that made `item`, as the source writes it."""
    if isinstance(item, Scope):
        return graph.written(graph.block_uses[item.use].syntax)
    return graph.written(graph.node(item).syntax)


def member_of(graph: Graph, item: int | Scope, members: Members) -> str | None:
    return members.names.get(id(syntax_of(graph, item)))


def is_module_item(graph: Graph, item: int | Scope) -> bool:
    return isinstance(item, Scope) or is_module(graph.node(item).op)


def roles_of(graph: Graph, items: list, members: Members) -> dict[str, list[str]]:
    """The members of several layers that are no chain (a ReLU between them) and whose layers
    differ in kind: the name of each of their layers, in order (members.role_names). Decided
    by the graph alone, so every backend keys a layer alike."""
    positions: dict[str, list[int]] = {}  # member -> where its layers with modules stand
    for position, item in enumerate(items):
        if is_module_item(graph, item):
            positions.setdefault(member_of(graph, item, members), []).append(position)
    roles = {}
    for member, where in positions.items():
        layers = [items[p] for p in where]
        if len(where) > 1 and not _chained(graph, layers, where):
            names = role_names([syntax_of(graph, i) for i in layers], members.labels)
            roles.update({member: names} if names else {})
    return roles


def _chained(graph: Graph, layers: list, where: list[int]) -> bool:
    """Each layer stands right after the one before and reads it alone, and none but the last
    is activated (`conv 1x1 64 relu`: the activation is a call around the layer's)."""
    def reads(item) -> tuple:
        return (item.input,) if isinstance(item, Scope) else graph.node(item).inputs

    def output(item) -> int:
        return item.nodes[-1] if isinstance(item, Scope) else item

    def activated(item) -> bool:
        return not isinstance(item, Scope) and getattr(graph.node(item).op, "act",
                                                       "linear") != "linear"

    return where == list(range(where[0], where[0] + len(where))) and \
        all(reads(b) == (output(a),) for a, b in zip(layers, layers[1:])) and \
        not any(activated(i) for i in layers[:-1])


def attributes(graph: Graph, items: list, members: Members,
               roles: dict[str, list[str]]) -> list[tuple]:
    """(member, attribute, state_dict key) of every item: `branch3x3`, `branch3x3[0]`,
    `branch3x3.0` (a member of several layers, indexed), or `residual.conv1` twice (one of
    `roles`)."""
    counts = Counter(member_of(graph, i, members) for i in items if is_module_item(graph, i))
    seen, result = Counter(), []
    for item in items:
        member = member_of(graph, item, members)
        attr = key = member
        if is_module_item(graph, item) and member in roles:
            attr = key = f"{member}.{roles[member][seen[member]]}"
            seen[member] += 1
        elif is_module_item(graph, item) and counts[member] > 1:
            attr, key = f"{member}[{seen[member]}]", f"{member}.{seen[member]}"
            seen[member] += 1
        result.append((member, attr, key))
    return result
