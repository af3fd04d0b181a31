"""Headers: the top of an emitted class, its docstring and its __init__ up to the members.

A block's docstring names the block and its parameters; a head's says it runs in training
only; the net's gives its parameters, its input and output shapes, what forward() returns in
each mode and whether a final softmax runs. The constructor takes the class's parameters
(a net's width parameters with their defaults, archc.codegen.widths) and, for a net with
heads, `heads`; the members follow (archc.codegen.containers), and a net's weights are
initialised last.
"""

from __future__ import annotations

from archc import ops
from archc.codegen import pyexpr
from archc.codegen.containers import declare_members
from archc.codegen.drafts import Draft
from archc.codegen.scopes import Scope
from archc.codegen.widths import Widths
from archc.pipeline import Analysis


def class_header(analysis: Analysis, flat: dict[int, bool], logits: bool, scope: Scope,
                 widths: Widths, init: list, heads: bool, chains: set[str],
                 roles: dict[str, list[str]]) -> Draft:
    """The docstring, the class attributes and __init__ of the class written from `scope`."""
    graph = analysis.graph
    draft = Draft([], [])
    weights = {h.name: h.weight for h in graph.heads}
    has_heads = scope.kind == "net" and bool(weights)
    draft.add(f'    """{_docstring(analysis, flat, logits, scope, widths.params)}"""')
    draft.add("")
    if has_heads:
        draft.add(f"    loss_weights = {weights!r}")
        draft.add("")
    signature = ["self", *widths.signature()] + [f"heads: bool = {heads}"] * has_heads
    draft.add(f"    def __init__({', '.join(signature)}):")
    draft.add("        super().__init__()")
    for line in widths.derivations():
        draft.add(f"        {line}")
    declare_members(draft, init, chains, roles)
    if scope.kind == "net":
        draft.add("        init_weights(self)")
    draft.add("")
    return draft


def _docstring(analysis: Analysis, flat: dict[int, bool], logits: bool, scope: Scope,
               params: dict[str, str]) -> str:
    graph = analysis.graph
    if scope.kind == "block":
        use = graph.block_uses[scope.use]
        names = ", ".join(p for n, p in params.items() if n != pyexpr.INPUT)
        return f"block {use.name}({names}), taking in_channels."
    if scope.kind == "head":
        return f"auxiliary head {scope.path[0][1]}: runs in training only."

    def shape(n: int) -> str:
        return f"{analysis.shapes[n].c}" if flat[n] else str(analysis.shapes[n])

    shapes = f"{shape(scope.input)} -> {shape(scope.nodes[-1])}"
    net_params = ", ".join(f"{k}={v}" for k, v in graph.params.items())
    heads = ("; in training mode, with heads, it\n    returns (output, {head: output}) "
             "and `loss_weights` weighs the heads'\n    losses") if graph.heads else ""
    ends_in_softmax = isinstance(graph.node(graph.output).op, ops.Softmax)
    softmax = ("\n    A final softmax runs in eval mode only: training returns logits "
               "for a\n    cross-entropy loss.") if ends_in_softmax else ""
    if logits and ends_in_softmax:
        softmax = "\n    Built to return logits: the final softmax is left out."
    return (f"net {graph.name}({net_params}): {shapes}.\n\n"
            f"    forward(x) returns the main output{heads}.{softmax}\n    ")
