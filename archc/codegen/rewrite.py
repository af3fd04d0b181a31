"""Rewrite: a backend's plan applied to one emitted class, before any of it is written.

The plan (archc.backends.fusion.KernelPlan) says which layers each kernel computes, for the
whole net; a class holds some of them (archc.codegen.scopes). This pass turns the class's
items into the statements of its forward(), each standing at the item it starts:

- "layer": one layer's call (its step's epilogue, if it has one, lies in another class);
- "fused": a GEMM with what its step computes too, all in this class: the bn, layer scale,
  sum and activation after it, its second conv (an mlp step), or the 3x3/1 max pool it reads
  through (which must stand right before it);
- "merged": sibling 1x1 convs of one GEMM, all in this class: one line assigns them all;
- "use": a block use.

It also says which kernels write straight into their slice of a concat's buffer (`writes`,
rendered by archc.codegen.buffers).

An item no statement stands at is computed by another: a fused GEMM's tail, a merged GEMM's
other convs, the pool a GEMM reads through. Its module is still declared (the state_dict is
the torch backend's). `reads` gives the values each position's statement reads, for the
variables' lifetimes (archc.codegen.names.LocalNames). The backend's table renders each
statement (archc.codegen.calls); the emitter follows the statements and knows no plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archc.backends.fusion import KernelPlan, Step
from archc.codegen.scopes import Scope
from archc.ir.graph import Graph


@dataclass(frozen=True)
class Statement:
    kind: Literal["layer", "fused", "merged", "use"]
    item: int | Scope  # the item it stands at: the layer, the GEMM's conv, the block use
    step: Step | None = None  # the plan's step that computes it, if any

    @property
    def output(self) -> int:
        """The value it makes (a merged GEMM: its first conv's; each conv's is assigned)."""
        if isinstance(self.item, Scope):
            return self.item.nodes[-1]
        return self.step.output if self.kind == "fused" else self.item

    @property
    def tail(self) -> tuple[int, ...]:
        """The layers after its conv that it computes too."""
        return self.step.tail if self.kind == "fused" else ()

    @property
    def siblings(self) -> tuple[int, ...]:
        return self.step.nodes if self.kind == "merged" else ()


@dataclass(frozen=True)
class Rewritten:
    statements: list[Statement | None]  # per item: the statement standing there, if any
    reads: list[list[int]]  # per item: the values its statement reads
    writes: dict[int, tuple[int, int]]  # writer -> (concat, branch): its slice of the buffer

    def at(self, position: int) -> Statement | None:
        return self.statements[position]


def rewrite(plan: KernelPlan | None, graph: Graph, items: list, scope_input: int) -> Rewritten:
    """The statements of the class written from `items` (whose input is `scope_input`)."""
    fused = fused_epilogues(plan, items, scope_input)
    computed = {n for s in fused.values() for n in (*s.tail, s.pool) if n is not None}
    statements: list[Statement | None] = []
    for item in items:
        if isinstance(item, Scope):
            statements.append(Statement("use", item))
        elif item in computed:
            statements.append(None)
        elif item in fused:
            statements.append(Statement("fused", item, fused[item]))
        else:
            statements.append(_layer_or_siblings(plan, item, items, computed, fused))
    reads = [_reads(graph, item, s, fused) for item, s in zip(items, statements)]
    return Rewritten(statements, reads, _writes(plan, graph, items, fused))


def _layer_or_siblings(plan: KernelPlan | None, n: int, items: list, computed: set[int],
                       fused: dict[int, Step]) -> Statement | None:
    """A layer's call; the merged GEMM where `n` is the first of siblings all in this class,
    nothing for the others (the merged line assigns them)."""
    step = plan.step_of(n) if plan else None
    if step is None or step.kind != "gemm" or len(step.nodes) < 2 or \
            not all(s in items for s in step.nodes) or step.nodes[0] in fused:
        return Statement("layer", n, step)
    if step.nodes[0] == n:
        return Statement("merged", n, step)
    computed.add(n)
    return None


def _reads(graph: Graph, item, statement: Statement | None, fused: dict[int, Step]) -> list:
    if isinstance(item, Scope):
        return [item.input]
    if statement is not None and statement.kind == "fused" and statement.step.pool is not None:
        return list(graph.node(statement.step.pool).inputs)  # it reads what the pool would
    if any(s.pool == item for s in fused.values()):
        return []  # the pool is taken by the GEMM after it
    return list(graph.node(item).inputs)


def _writes(plan: KernelPlan | None, graph: Graph, items: list,
            fused: dict[int, Step]) -> dict[int, tuple[int, int]]:
    """The kernels that write their output straight into a channel slice of a concat's
    buffer, where the writer and the concat are both layers of this class (every other
    branch is copied in by the concat)."""
    writes = {}
    layers = {i for i in items if isinstance(i, int)}
    for step in plan.steps if plan else ():
        writer, into = step.nodes[0], step.into[0] if step.into else None
        made = step.output if writer in fused else writer
        if into is not None and writer in layers and into.concat in layers and \
                made == step.output:
            writes[writer] = (into.concat, graph.node(into.concat).inputs.index(made))
    return writes


def fused_epilogues(plan: KernelPlan | None, items: list, scope_input: int) -> dict[int, Step]:
    """The plan's GEMMs with an epilogue whose layers all lie in this class (`items`: layer
    ids, and block uses with their `nodes`), and whose shortcut is made before the GEMM."""
    if plan is None:
        return {}
    layers = [i for i in items if isinstance(i, int)]
    fused = {}
    for step in plan.steps:
        conv = step.nodes[0]
        if not (step.tail or step.pool is not None) or conv not in layers or \
                not set(step.tail) <= set(layers):
            continue
        earlier = items[:items.index(conv)]
        if step.pool is not None and (not earlier or earlier[-1] != step.pool):
            continue  # the pool's input is read in its place: it must come right before
        made = {n for i in earlier for n in (getattr(i, "nodes", None) or (i,))}
        if step.residual is None or step.residual == scope_input or step.residual in made:
            fused[conv] = step
    return fused
