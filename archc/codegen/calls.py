"""Calls: a layer's forward() expression where the plan meets the backend's call table.

The emitter (archc.codegen.emit) walks a class's statements (archc.codegen.rewrite); for
each it asks `Calls` for the expression that computes it (a `Site` built from the plan's
step: the fused bn, shortcut, activation, pool or second conv, by the members that hold them,
rendered by the backend's table in archc.backends), or, for sibling 1x1 convs
merged into one GEMM, the one line that makes them all.
"""

from __future__ import annotations

from dataclasses import replace

from archc import ops
from archc.backends.backend import Backend, Site
from archc.codegen.names import LocalNames
from archc.codegen.rewrite import Statement
from archc.ir.graph import Graph


class Calls:
    def __init__(self, graph: Graph, backend: Backend, flat: dict[int, bool],
                 finals: set[int]):
        self.graph, self.backend = graph, backend
        self.flat = flat  # values that are N x C
        self.finals = finals  # the values that end the net or a head

    def layer(self, statement: Statement, attr: str | None, var: LocalNames, into: str | None,
              attrs: list[tuple], items: list) -> str:
        """The forward expression of a "layer" or "fused" statement, by the backend's table."""
        n, step = statement.item, statement.step
        node = self.graph.node(n)
        op = node.op
        fused = step if statement.kind == "fused" else None
        if fused is not None and fused.pool is not None:  # the GEMM reads what the pool would
            node = self.graph.node(fused.pool)
        args = self.args(ops.spec(op).reads, node.inputs, var)
        site = Site(f"self.{attr}", args, n in self.finals, step, into)
        if fused is not None:
            def member(layer):  # a fused layer's module, by its attribute
                return f"self.{attrs[items.index(layer)][1]}" if layer is not None else None

            residual = var.read(fused.residual, 4) if fused.residual is not None else None
            site = replace(site, bn=member(fused.bn), residual=residual, relu=fused.relu,
                           epilogue=True, pool=member(fused.pool), act=fused.act,
                           norm=member(fused.norm), scale=member(fused.scale))
            if fused.kind == "mlp":
                site = replace(site, second=member(fused.tail[0]))
        elif step is not None and step.tail and n in step.nodes:
            site = replace(site, relu=op.act == "relu")  # its epilogue lies in another class
        return self.backend.call(op, site)

    def args(self, reads: str, inputs: tuple[int, ...], var: LocalNames) -> list[str]:
        """A layer's inputs as Python, in the form its op `reads` them (archc.ops.base)."""
        if reads == "joins":
            dims = 2 if all(self.flat[i] for i in inputs) else 4
            return [var.read(i, dims) for i in inputs]
        value = var.read(inputs[0], 4 if reads == "spatial" else 2)  # 2: as it is
        if reads == "flattened" and not self.flat[inputs[0]]:
            value = f"torch.flatten({value}, 1)"
        return [value]

    def merged(self, statement: Statement, items, attrs, position, var, members, widths,
               into) -> str:
        """`a, b, c = K.conv1x1_siblings(x, [...], act='relu')`: names for all (the
        backend's `siblings` row writes the call)."""
        siblings = statement.siblings
        where = [items.index(s) for s in siblings]
        for s in siblings[1:]:
            widths.layer(s)
        names = [var.assign(position, s, attrs[i][0] if attrs[i][0] in members.branches
                            else None) for s, i in zip(siblings, where)]
        node = self.graph.node(siblings[0])
        call = self.backend.siblings([f"self.{attrs[i][1]}" for i in where],
                                     var.read(node.inputs[0], 4), node.op.act == "relu", into)
        return f"{', '.join(names)} = {call}"
