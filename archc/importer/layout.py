"""Layout: traced layers -> readable .arch text, its blocks recovered from the modules.

1. Structure: the layers form a series-parallel graph; a join (`sum`, `concat`, `mul`) takes
   the branches from its immediate dominator (networkx), each a chain, the one that is the
   fork itself written `id`. A graph that is not series-parallel is an ImportFailure.
2. Blocks (`blocks="modules"`): statements that all sit in one instance of a module class of
   the user's (torchvision's BasicBlock, Inception) become a use of a block named after the
   class; an `nn.Sequential` a labelled group (`layer1: { ... }`, so the keys read as
   torchvision's `layer1.0...`). The instances of one class with the same structure share a
   definition, the numbers that differ between them its parameters (`c`, or `c1`, `c2`...);
   repeated equal uses are written `xN`. `blocks="none"` writes every layer in the net.
3. The text: archc.importer.writer, through archc's formatter (which proves it parses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import networkx as nx

from archc.importer.trace import ImportFailure, Layer
from archc.ops.activation import TABLE

FUNCTIONAL = {row.name for row in TABLE} | {"flatten", "softmax"}


@dataclass
class Stmt:
    layer: Layer | None = None  # a layer statement, or the join of `branches`
    branches: list[list[Stmt]] = field(default_factory=list)
    block: str | None = None  # a block use: its definition's name ...
    args: tuple = ()  # ... and arguments
    body: list[Stmt] = field(default_factory=list)  # a group's or a block's statements
    label: str | None = None
    repeat: int = 1
    last: Stmt | None = None  # written `xN`: its last repetition, whose value it makes

    def layers(self):
        if self.layer is not None:
            yield self.layer
        for branch in self.branches:
            for stmt in branch:
                yield from stmt.layers()
        for stmt in self.body:
            yield from stmt.layers()


def structure(layers: list[Layer]) -> list[Stmt]:
    """The net's statements, joins with their branches, from the input to the output."""
    layers = _unflattened(layers)
    by_name = {layer.name: layer for layer in layers}
    graph = nx.DiGraph()
    graph.add_nodes_from(by_name)
    graph.add_edges_from((i, layer.name) for layer in layers for i in layer.inputs)
    start, end = layers[0].name, layers[-1].name
    dominators = nx.immediate_dominators(graph, start)
    order = {layer.name: i for i, layer in enumerate(layers)}  # execution order

    def chain(source: str, target: str) -> list[Stmt]:
        out: list[Stmt] = []
        while target != source:
            layer = by_name[target]
            if order[target] < order[source]:  # walked back past the branch's start
                raise ImportFailure(f"{layer.name} reads a value from before its branch "
                                    "began: the net is not series-parallel")
            if layer.join:
                fork = dominators[target]
                out.insert(0, Stmt(layer, [chain(fork, i) for i in layer.inputs]))
                target = fork
            else:
                out.insert(0, Stmt(layer))
                target = layer.inputs[0]
        return out

    return [Stmt(layers[0])] + chain(start, end)


def _unflattened(layers: list[Layer]) -> list[Layer]:
    """The layers without a flatten only an fc reads: an fc flattens its input itself, as
    archc's nets are written (`gap; fc classes`). New layers where an input changes: the
    caller's stay as they are."""
    readers: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    skipped = {layer.name: layer.inputs[0] for layer in layers[:-1] if layer.text == "flatten"
               and [u.text.split()[0] for u in readers.get(layer.name, [])] == ["fc"]}
    return [replace(layer, inputs=[skipped.get(i, i) for i in layer.inputs])
            if set(layer.inputs) & set(skipped) else layer
            for layer in layers if layer.name not in skipped]


# ---- blocks ----------------------------------------------------------------------------------


def group(stmts: list[Stmt], depth: int = 0) -> list[Stmt]:
    """`stmts`, with each run inside one module instance at `depth` of the module stack made
    a group (an nn.Sequential) or a block use (a class of the user's)."""
    out: list[Stmt] = []
    i = 0
    while i < len(stmts):
        owner = _owner(stmts[i], depth)
        j = i + 1
        while owner is not None and j < len(stmts) and _owner(stmts[j], depth) == owner:
            j += 1
        run = stmts[i:j]
        if owner is None or (len(run) == 1 and _leaf(run[0], owner)):
            stmt = run[0]
            stmt.branches = [group(b, depth) for b in stmt.branches]
            if owner is not None and stmt.layer is not None and not stmt.branches and \
                    _learns(stmt.layer):  # conv1, bn1, fc: torchvision's member names
                stmt.label = _label(owner[0])
            out.append(stmt)
            i = j
            continue
        path, kind = owner
        body = group(run, depth + 1)
        if kind.__module__.startswith("torch.nn"):  # Sequential, ModuleList: a group
            out += _dissolved(Stmt(body=repeats(body), label=_label(path)))
        else:
            out.append(Stmt(block=kind.__name__, body=body, label=_label(path)))
        i = j
    return out


def _owner(stmt: Stmt, depth: int):
    """The module instance at `depth` that every layer of `stmt` sits in, or None."""
    stacks = [layer.stack for layer in stmt.layers()]
    if not stacks or any(len(s) <= depth for s in stacks):
        return None
    first = stacks[0][depth]
    return first if all(s[depth][0] == first[0] for s in stacks) else None


def _leaf(stmt: Stmt, owner) -> bool:
    """A layer that is the module itself (conv1), not a statement inside a module."""
    return stmt.layer is not None and not stmt.branches and \
        stmt.layer.stack and stmt.layer.stack[-1][0] == owner[0]


def _dissolved(stmt: Stmt) -> list[Stmt]:
    """A group of one module (a layer's or a block use's) and activations around it is that
    module, labelled with the group's name, among them: what archc emits for it (a member of
    one layer or one block is that module, its activations functions)."""
    def plain(s: Stmt) -> bool:
        return s.layer is not None and not s.branches and not s.body and s.block is None

    members = [s for s in stmt.body if s.block is not None or plain(s) and
               not functional(s.layer)]
    rest = [s for s in stmt.body if plain(s) and functional(s.layer)]
    if len(members) != 1 or len(members) + len(rest) != len(stmt.body) or members[0].label \
            or members[0].repeat != 1:
        return [stmt]
    members[0].label = stmt.label
    return stmt.body


def functional(layer: Layer) -> bool:
    """A layer archc emits as a function, no module: an activation, flatten, softmax."""
    return layer.text.split()[0] in FUNCTIONAL


def _learns(layer: Layer) -> bool:
    """A layer with weights: labelled by its module's name (an activation used twice is not)."""
    return layer.text.split()[0] in ("conv", "bn", "fc", "layernorm", "scale")


def _label(path: str) -> str | None:
    last = path.rsplit(".", 1)[-1]
    return last if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", last) else None


# ---- text ------------------------------------------------------------------------------------


def repeats(stmts: list[Stmt]) -> list[Stmt]:
    """Consecutive equal layer statements written once with `xN` (VGG's conv 3x3 512 x3)."""
    out: list[Stmt] = []
    for stmt in stmts:
        last = out[-1] if out else None
        if last is not None and last.layer is not None and stmt.layer is not None and \
                not last.branches and not stmt.branches and not last.label and \
                not stmt.label and last.layer.text == stmt.layer.text:
            last.repeat += 1
            last.last = stmt.last or stmt
        else:
            out.append(stmt)
    return out
