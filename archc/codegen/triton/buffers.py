"""The plan's fusions in one emitted class: concat buffers, and GEMMs with an epilogue.

The plan (archc.codegen.triton.plan) says which kernels write their output straight into a
channel slice of a concat's buffer. In the emitted forward() of one class this reads as

    buffer = K.ConcatBuffer(self.concat_widths)    # before the first branch that writes
    branch1x1, ... = K.conv1x1_siblings(x, [...], relu=True, out=buffer.part(0))
    ...
    x = buffer.join([branch1x1, branch3x3, branch5x5, branch_pool])

with `self.concat_widths = (n1, n3, n5, proj)` set in __init__ (a plain tuple, not state, so
the `state_dict` stays the torch backend's). A write is emitted only where the writer and the
concat are both layers of this class; every other branch is copied in by `join`.

A GEMM whose plan step also computes the bn, sum and ReLU after it is written as one call
(`K.conv1x1(x, conv, relu=True, bn=..., residual=x)`) where all those layers are in this class
and the shortcut is made before it (`fused_epilogues`); elsewhere each layer keeps its line.
"""

from __future__ import annotations

from collections.abc import Callable

from archc import ops
from archc.codegen.fusion import KernelPlan, Step
from archc.codegen.names import fresh
from archc.ir.graph import Graph


class ConcatBuffers:
    def __init__(self, plan: KernelPlan | None, graph: Graph, items: list, taken: set[str],
                 fused: set[int], make: Callable[[str], str] | None = None):
        """`fused`: the GEMMs whose epilogue (bn, sum, ReLU) this class writes as one call;
        `make`: the backend's call that makes a buffer, from its widths attribute."""
        self.graph = graph
        self.make = make
        self.taken = taken
        self.writes: dict[int, tuple[int, int]] = {}  # writer -> (concat, branch index)
        layers = {i for i in items if isinstance(i, int)}
        for step in plan.steps if plan else ():
            writer, into = step.nodes[0], step.into[0] if step.into else None
            made = step.output if writer in fused else writer
            if into is not None and writer in layers and into.concat in layers and \
                    made == step.output:
                branch = graph.node(into.concat).inputs.index(made)
                self.writes[writer] = (into.concat, branch)
        self.names: dict[int, tuple[str, str]] = {}  # concat -> (variable, widths attribute)

    def open(self, writer: int) -> str | None:
        """The line that makes the buffer, if `writer` is the first to write into it."""
        if writer not in self.writes or self.writes[writer][0] in self.names:
            return None
        concat = self.writes[writer][0]
        names = (fresh("buffer", self.taken), fresh("concat_widths", self.taken))
        self.names[concat] = names
        return f"{names[0]} = {self.make(f'self.{names[1]}')}  # branches write their slices"

    def part(self, writer: int) -> str | None:
        """`buffer.part(i)`: where `writer`'s output goes, if it goes into a buffer."""
        if writer not in self.writes:
            return None
        concat, branch = self.writes[writer]
        return f"{self.names[concat][0]}.part({branch})"

    def buffer(self, concat: int) -> str | None:
        return self.names[concat][0] if concat in self.names else None

    def widths_line(self, concat: int, texts: list[str]) -> str | None:
        """`self.concat_widths = (n1, n3, n5, proj)` for __init__: each branch's channels."""
        if concat not in self.names:
            return None
        assert isinstance(self.graph.node(concat).op, ops.Concat)
        return f"self.{self.names[concat][1]} = ({', '.join(texts)}{',' * (len(texts) == 1)})"


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
