"""CPU plan: the checked graph -> `KernelPlan` for the cpu backend. No torch.

A pass like the triton plan (`archc compile FILE --backend cpu --plan` prints it), with one
rule: every convolution and fc is one oneDNN primitive (archc.backends.cpu.conv, .linear),
and a convolution also computes what follows it alone in its block, in order: a batch norm
(folded into its weight and bias in eval mode), a sum with a value made before it (a residual
block's shortcut), and an activation, which oneDNN applies as a post-op (after a sum only a
ReLU is; another is applied after the primitive, still in the same call). Where no layer
reads the shortcut after the sum, the sum is written into the shortcut's memory
(`sums_in_place`), as Inductor's freezing pass does: oneDNN's sum post-op, without the copy
of the shortcut its out-of-place form makes. Local response norms are archc's own
channel-window sum; everything else is a torch op on channels-last activations, which oneDNN
reads without a reorder.
"""

from __future__ import annotations

from dataclasses import replace

from archc import ops
from archc.backends.fusion import KernelPlan, Step, fuse_epilogues
from archc.ops.activation import TABLE
from archc.pipeline import Analysis

# The activations oneDNN applies as a convolution's post-op (the op registry's table).
POST_OP_ACTS = tuple(row.name for row in TABLE if row.onednn is not None)


def plan(analysis: Analysis) -> KernelPlan:
    graph = analysis.graph.verify()
    steps = fuse_epilogues(analysis, convs_on_onednn(analysis), acts=POST_OP_ACTS,
                           shortcuts=("onednn",))
    steps = sums_in_place(analysis, steps)
    return KernelPlan(graph.name, tuple(steps), backend="cpu")


def convs_on_onednn(analysis: Analysis) -> list[Step]:
    steps = []
    for n in analysis.graph.order():
        node = analysis.graph.node(n)
        op, source = node.op, node.inputs[0] if node.inputs else None
        if ops.spec(op).plan == "none":
            continue
        if isinstance(op, ops.Conv):
            act = op.act if op.act in POST_OP_ACTS else "linear"
            why = "oneDNN conv" + (f", its {op.act} a post-op" if act != "linear" else "")
            steps.append(Step("onednn", (n,), source, act == "relu", why, act=act))
        elif isinstance(op, ops.FC):
            act = op.act if op.act in POST_OP_ACTS else "linear"
            why = "oneDNN inner product" + (f", its {op.act} a post-op" if act != "linear" else "")
            steps.append(Step("onednn", (n,), source, act == "relu", why, act=act))
        elif isinstance(op, ops.LRN):
            steps.append(Step("torch", (n,), source, why="lrn: the channel window summed "
                                                         "in place"))
        else:
            steps.append(Step("torch", (n,), source, why=f"{ops.op_name(op)}: a torch op"))
    return steps


def sums_in_place(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """A conv's sum is written into its shortcut's memory where that is no one's loss: the
    shortcut is a fresh tensor (a oneDNN conv's output, not the net's input nor a view), no
    step after this one reads it or a view of it (`readers`: a dropout in eval mode or a
    chunk hands on the shortcut's memory), and it is no output of the net or a head. At run
    time the backend writes in place only inside the net's own forward, with no hook that
    could hold the tensor (archc.backends.cpu.owner)."""
    graph = analysis.graph
    position = {n: i for i, step in enumerate(steps)
                for n in (step.nodes + step.tail + ((step.pool,) if step.pool is not None else ()))}
    fresh = {step.output for step in steps if step.kind == "onednn"}
    finals = {graph.output} | {head.output for head in graph.heads}
    result = []
    for i, step in enumerate(steps):
        r = step.residual
        if r is not None and r in fresh and \
                all(position.get(u, len(steps)) < i for u in readers(graph, r, finals)
                    if u not in step.tail):
            why = step.why.replace("the shortcut added", f"the sum written over %{r}")
            step = replace(step, overwrites=True, why=why)
        result.append(step)
    return result


def readers(graph, value: int, finals: set[int]) -> set[int]:
    """The layers that read `value`'s memory: its users, and the users of every value that
    may be it or a view of it (archc.ops' `aliases`), transitively. A final output among
    those values is read after the forward: its reader stands for it as `len(graph)`."""
    found, views = set(), [value]
    while views:
        v = views.pop()
        if v in finals:
            found.add(len(graph))
        for user in graph.users(v):
            found.add(user)
            if ops.spec(graph.node(user).op).aliases:
                views.append(user)
    return found
