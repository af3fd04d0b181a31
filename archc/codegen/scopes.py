"""Scopes: the layers one emitted class holds, and the member each is stored in.

A class is written from a `Scope`: the net, one block use, or one head. Its items are the
layers directly in it and one child `Scope` per block use within it (`items_of`); each item's
member (archc.codegen.members names them) gives its attribute and its state_dict key
(`attributes`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from archc.codegen.members import Members
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


def member_of(graph: Graph, item: int | Scope, members: Members) -> str | None:
    if isinstance(item, Scope):
        return members.names[id(graph.block_uses[item.use].syntax)]
    return members.names.get(id(graph.node(item).syntax))


def is_module_item(graph: Graph, item: int | Scope) -> bool:
    return isinstance(item, Scope) or is_module(graph.node(item).op)


def attributes(graph: Graph, items: list, members: Members) -> list[tuple]:
    """(member, attribute, state_dict key) of every item: `branch3x3`,
    `branch3x3[0]`, `branch3x3.0` (a member of several layers is an nn.ModuleList)."""
    counts = Counter(member_of(graph, i, members) for i in items if is_module_item(graph, i))
    seen, result = Counter(), []
    for item in items:
        member = member_of(graph, item, members)
        attr = key = member
        if is_module_item(graph, item) and counts[member] > 1:
            attr, key = f"{member}[{seen[member]}]", f"{member}.{seen[member]}"
            seen[member] += 1
        result.append((member, attr, key))
    return result
