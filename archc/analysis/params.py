"""Width parameters: the net parameters an emitted net class can take as constructor arguments.

A net's class is written for one build: its spatial sizes, its flattened widths and its layer
count are numbers. A net parameter can still be a constructor argument (`Googlenet(classes=10)`)
when every use of it is written from it: the class then computes each width from the statement
that gives it (`nn.Linear(1024, classes)`), as a block class does, and each argument an op's
module takes from its statement (a conv's groups, a dropout's rate: the op's `given`). That
holds when building the net with other values of the parameter (`PROBES`) makes the same
layers, equal but for those widths and arguments, with the same input, the same spatial sizes
and the same heads' loss weights; `width_params` builds it so to find out (for each
parameter, the front end a few times more, without counting). `classes` is one in every
shipped net, a width multiplier such as MnasNet's `alpha` another; an input `size` is not,
nor a shuffle's groups, a slope, an eps or a chunk count (written as numbers), nor a value
that sets a repetition count (`x(max(1, floor(alpha)))`).

Nets with an auxiliary head that is not one block use take none: such a head's class is
written for its one use, in numbers.
"""

from __future__ import annotations

import dataclasses

from archc import ops
from archc.analysis.shapes import flat_values, infer_shapes
from archc.errors import ArchError
from archc.ir.build import build_graph
from archc.ir.graph import Graph
from archc.lang import ast
from archc.lang.loader import Program


def width_params(program: Program, graph: Graph) -> tuple[str, ...]:
    """The net parameters, in declaration order, that change only channel counts."""
    if any(not _one_block_use(head.syntax) for head in graph.heads):
        return ()
    shapes = infer_shapes(graph)
    built = _layout(graph, shapes)
    kept = []
    for name, value in graph.params.items():
        alike = [_same_class(program, graph, built, name, other)
                 for other in PROBES[type(value)](value)]
        if True in alike and False not in alike:
            kept.append(name)
    return tuple(kept)


# Other values of a parameter the class must build alike: a repetition count that rounds
# (`floor(alpha)`) can stay put for one and change for another; a value that builds no net
# (groups that do not divide the channels) says nothing.
PROBES = {int: lambda v: (2 * v, v + 1, 3 * v + 1), float: lambda v: (v * 1.5, v * 0.5, v * 3)}


def _same_class(program: Program, graph: Graph, built: tuple, name: str, other) -> bool | None:
    """Whether the net built with `name` = `other` is written by the same class; None where
    it builds no net."""
    derived = _derived_from(program, name)  # their defaults follow the probe's value
    fixed = {k: v for k, v in graph.params.items() if k not in derived}
    try:
        probe = build_graph(program, {**fixed, name: other})
        layout = _layout(probe, infer_shapes(probe))
    except ArchError:
        return None
    return layout == built and _input(probe) == _input(graph)


def _derived_from(program: Program, name: str) -> set[str]:
    """The net parameters whose defaults read `name`, directly or through another
    (EfficientNet's `n1 = ceil(depth)`)."""
    found: set[str] = set()
    for param in program.net.params:  # declaration order: a default reads earlier ones
        if param.default is not None and any(ast.reads(param.default, source)
                                             for source in (name, *found)):
            found.add(param.name)
    return found


def _layout(graph: Graph, shapes: dict) -> tuple:
    """What a net class is written for: each layer's op but for what the class writes from
    expressions, its inputs, spatial size and flatness; each head's loss weight."""
    flat = flat_values(graph)
    return tuple((_written_for(graph.node(n).op), graph.node(n).inputs, shapes[n].h,
                  shapes[n].w, flat[n]) for n in graph.order()) + \
        tuple((head.name, head.weight) for head in graph.heads)


def _written_for(op):
    """The op with the fields the emitter writes as expressions blanked: its width slot (a
    conv's channels, an fc's features) and the arguments its module is `given`."""
    spec = ops.spec(op)
    fields = {f.name for f in dataclasses.fields(op)}
    written = (set(spec.given) | {spec.width}) & fields
    return dataclasses.replace(op, **dict.fromkeys(written)) if written else op


def _input(graph: Graph) -> tuple[int, int, int]:
    return graph.node(graph.input).op.shape


def _one_block_use(head: ast.Head) -> bool:
    body = [s for s in head.body if s.core is not None]
    return len(body) == 1 and isinstance(body[0].core, ast.BlockUse)
