"""The IR: a graph of layers, plus the rows and claims the report and checker need.

Each node id is an int in creation (= source) order and carries one `Node`: its op, its
operands in order, the statement that made it and the block uses it sits in. `order()` is a
topological order with ties broken by source order, so golden output is stable.

The only module that imports networkx. `to_networkx()` gives the graph as a networkx graph
(edges mirror the operands; their iteration order means nothing) for the passes that want graph
algorithms, such as a tensor's users as its successors. It is built on first use: importing
networkx alone is a third of `archc check`'s start-up, and shapes, counts and checks walk
`order()`.

A `Row` is a top-level statement of the net (or of a head): what `archc stats` prints as one
line. A `Claim` is an `expect` or `paper` annotation with the nodes it speaks about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc import ops
from archc.errors import ArchError, Note, Span
from archc.lang import ast
from archc.ops import OpT

MAX_LAYERS = ast.MAX_LAYERS  # refuse before building a graph that would not fit in memory


@dataclass(frozen=True)
class Node:
    op: OpT
    inputs: tuple[int, ...]
    syntax: ast.Op | ast.Concat  # the statement that made it (shared by every use of a block)
    span: Span
    notes: tuple[Note, ...]  # "in block 'x' used here", innermost first
    row: int | None  # index into Graph.rows
    head: str | None  # the auxiliary head this layer belongs to, if any
    blocks: tuple[int, ...] = ()  # the block uses it sits in (Graph.block_uses), outermost first
    # The statement's own arguments by slot, as build bound them (a window parameter written as
    # its window): where the emitter finds the expression that gave a layer its width.
    given: tuple[tuple[str, ast.Arg], ...] = ()


@dataclass
class Row:
    index: int
    name: str  # the label, or the op/block name and a counter
    title: str  # op name, block name, or "group"
    span: Span
    block_args: tuple[tuple[str, int | float], ...]
    repeat: int
    head: str | None
    labelled: bool = False  # named by its statement's label, not by its kind and a counter
    nodes: list[int] = field(default_factory=list)
    output: int = -1


@dataclass(frozen=True)
class Claim:
    annotation: ast.Annotation
    nodes: tuple[int, ...]  # the layers the statement made (empty: the whole net)
    output: int
    row: int | None  # the row this annotates directly, if it is a top-level statement
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class BlockUseInfo:
    name: str
    args: tuple[tuple[str, int | float], ...]  # every parameter, defaults included
    block: ast.BlockDef
    syntax: ast.BlockUse


@dataclass(frozen=True)
class HeadInfo:
    name: str
    weight: float
    source: int  # the node the head branches from
    output: int
    syntax: ast.Head
    declared: int  # the node after which its statement stands (its source, if written before
    #                it): where the emitted module declares it, as torchvision's nets do

class IRError(AssertionError):
    """A broken IR: a bug in archc (a pass that broke an invariant), not in the user's net."""


class Graph:
    """A network: layers in a DiGraph, with rows, claims and heads on the side."""

    def __init__(self, syntax: ast.NetDef, params: dict[str, int | float]):
        self.syntax = syntax
        self.name = syntax.name
        self.params = params
        self.rows: list[Row] = []
        self.claims: list[Claim] = []
        self.heads: list[HeadInfo] = []
        self.block_uses: list[BlockUseInfo] = []
        self.input = -1
        self.output = -1
        self._nodes: list[Node] = []  # by id
        self._networkx = None  # built by to_networkx()
        # A repetition with an index (`x3 as i`) makes a copy of its statement per pass, its
        # index read as a number (ast.bind): id(copy's op) -> the op as written, so a pass's
        # layers are members of their statement as any repetition's are.
        self._written: dict[int, ast.Op | ast.BlockUse | ast.Concat] = {}

    def written(self, syntax):
        """The op, block use or concat as the source writes it (`syntax` or a pass's copy)."""
        while id(syntax) in self._written:
            syntax = self._written[id(syntax)]
        return syntax

    def copied(self, copy, original) -> None:
        """Record a pass's copy of a statement's core (ast.bind) against the core as written.
        The graph's nodes hold the copies, so their ids are not reused."""
        for made, written in zip(ast.syntax_in(copy), ast.syntax_in(original)):
            if made is not written:
                self._written[id(made)] = written

    def add(self, op: OpT, inputs: tuple[int, ...], syntax: ast.Op | ast.Concat,
            notes: tuple[Note, ...], row: int | None, head: str | None,
            blocks: tuple[int, ...] = (),
            given: tuple[tuple[str, ast.Arg], ...] = ()) -> int:
        span = syntax.span
        node_id = len(self._nodes)
        if node_id >= MAX_LAYERS:
            raise ArchError(f"the network has more than {MAX_LAYERS:,} layers", span, notes)
        assert all(i < node_id for i in inputs), "operands are created before their users"
        node = Node(op, inputs, syntax, span, notes, row, head, blocks, given)
        self._nodes.append(node)
        self._networkx = None
        if row is not None:
            self.rows[row].nodes.append(node_id)
        return node_id

    def add_block_use(self, use: BlockUseInfo) -> int:
        self.block_uses.append(use)
        return len(self.block_uses) - 1

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    def __len__(self) -> int:
        return len(self._nodes)

    def order(self) -> range:
        """Topological order, ties broken by source order.

        Ids are given in creation order and every operand is created before its user, so
        ascending ids are that order (a test checks it against networkx's own sort).
        """
        return range(len(self._nodes))

    def users(self, node_id: int) -> list[int]:
        """The layers that read `node_id`'s output (its successors), in source order."""
        return sorted(self.to_networkx().successors(node_id))

    def main_nodes(self) -> list[int]:
        """The inference network: every layer that is not part of an auxiliary head."""
        return [n for n in self.order() if self.node(n).head is None]

    def verify(self) -> Graph:
        """Itself, after checking what every pass relies on; else IRError naming the fault."""
        inputs = [n for n in self.order() if isinstance(self.node(n).op, ops.Input)]
        _require(inputs == [self.input] and not self.node(self.input).inputs,
                 f"one input, %{self.input}, with no operands; found {inputs}")
        _require(0 <= self.output < len(self) and self.node(self.output).head is None,
                 f"the output %{self.output} is a layer of the main network")
        for n in self.order():
            node = self.node(n)
            _require(isinstance(node.op, ops.OP_TYPES), f"%{n} has an op of archc's: {node.op}")
            _require(all(0 <= i < n for i in node.inputs), f"%{n} reads only earlier layers")
            many = len(node.inputs) or -1  # concat and sum: one operand a branch
            arity = {"none": 0, "one": 1, "many": many}[ops.spec(node.op).arity]
            _require(len(node.inputs) == arity, f"%{n} ({ops.describe(node.op)}) has "
                     f"{len(node.inputs)} operands")
            _require(all(0 <= b < len(self.block_uses) for b in node.blocks),
                     f"%{n} sits in known block uses")
        for row in self.rows:
            _require(row.output in row.nodes, f"row {row.name} ends at one of its layers")
        for head in self.heads:
            _require(self.node(head.source).head is None and self.node(head.output).head ==
                     head.name, f"head {head.name} branches from the main network")
        if self._networkx is not None:
            edges = {(i, n) for n in self.order() for i in self.node(n).inputs}
            _require(set(self._networkx.edges) == edges, "the networkx graph mirrors operands")
        return self

    def dump(self, shapes: dict | None = None) -> str:
        """The IR as text, one layer a line: `%8 = conv 1x1/1 64 relu %7  # 64x28x28  3a`.
        Ids are those of the plan (`archc compile --backend triton --plan`)."""
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"net {self.name}({params})"]
        for n in self.order():
            node = self.node(n)
            operands = ", ".join(f"%{i}" for i in node.inputs)
            code = f"%{n} = {ops.full_text(node.op)}" + (f" {operands}" if operands else "")
            where = [self.rows[node.row].name] if node.row is not None else []
            where += [self.block_uses[b].name for b in node.blocks]
            shape = f"{shapes[n]}  " if shapes else ""
            lines.append(f"{code:<48}  # {shape}{' > '.join(where)}".rstrip())
        lines.append(f"output %{self.output}")
        lines += [f"head {h.name} from %{h.source}, weight {h.weight:g}: output %{h.output}"
                  for h in self.heads]
        return "\n".join(lines) + "\n"

    def to_networkx(self):
        """The graph as a networkx DiGraph whose `node` attributes hold the `Node`s.

        Built once and cached: treat it as read-only.
        """
        if self._networkx is None:
            import networkx as nx

            graph = nx.DiGraph()
            graph.add_nodes_from((n, {"node": node}) for n, node in enumerate(self._nodes))
            graph.add_edges_from((i, n) for n, node in enumerate(self._nodes) for i in node.inputs)
            self._networkx = graph
        return self._networkx


def _require(condition: bool, invariant: str) -> None:
    if not condition:
        raise IRError(f"IR invariant broken: {invariant}")
