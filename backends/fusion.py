"""Fusion steps: what a backend's plan is made of, and the epilogue pass both plans share.

A plan (archc.backends.triton.plan, archc.backends.cpu.plan) is a `KernelPlan`: the net's layers
as `Step`s, each one kernel or torch call that computes one layer or several (a conv with the
batch norm, shortcut and activation after it). `fuse_epilogues` is the pass that makes those
multi-layer steps for both backends. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from archc import ops
from archc.pipeline import Analysis

# Every step kind, in the order a plan's summary counts them: "gemm" (a 1x1 conv + bias +
# epilogue), "dwconv", "mlp" (two 1x1 convs), "pool", "gap", "gate" (an SE gate the next GEMM
# applies), "sum" (a shortcut sum that runs a deferred GEMM with the shortcut in its
# epilogue), "onednn" (the cpu plan's convs and fcs) or "torch".
StepKind = Literal["gemm", "dwconv", "mlp", "pool", "gap", "gate", "sum", "onednn", "torch"]
KINDS: tuple[str, ...] = get_args(StepKind)


@dataclass(frozen=True)
class Slice:
    """Channels `start:stop` of the buffer that concat `%concat` preallocates."""

    concat: int
    start: int
    stop: int


@dataclass(frozen=True)
class Step:
    kind: StepKind
    nodes: tuple[int, ...]  # the layers it computes: several for a merged GEMM
    input: int | None  # the value it reads (a concat reads its branches)
    relu: bool = False
    why: str = ""  # what was fused, or why it stays a torch op
    into: tuple[Slice | None, ...] = ()  # per node: the concat slice it is written into
    bn: int | None = None  # a GEMM's batch norm: folded in eval mode, after it in training
    residual: int | None = None  # a value the GEMM adds in its epilogue (a shortcut)
    tail: tuple[int, ...] = ()  # the layers after the conv it computes too: bn or layer scale
    # or layer norm, sum, activation (an mlp step: its second conv)
    pool: int | None = None  # a 3x3/1 max pool folded into the GEMM's input load
    scale: int | None = None  # a GEMM's layer scale, folded into its weight and bias
    norm: int | None = None  # a depthwise conv's layer norm over channels, in its epilogue
    squeeze: int | None = None  # a global average pool of a depthwise conv's output, which
    # its epilogue sums (the gap keeps its step, which then reads those sums)
    deferred: int | None = None  # a GEMM's: the shortcut sum (a "sum" step) that runs it
    act: str = "linear"  # the activation layer its epilogue applies (relu: `relu` is True)
    overwrites: bool = False  # its sum is written into the residual's memory, which no later
    # layer reads (the cpu plan: oneDNN's in-place sum post-op)

    @property
    def output(self) -> int:
        """The layer whose value the step makes (a merged GEMM: the first conv's)."""
        return self.tail[-1] if self.tail else self.nodes[0]


@dataclass(frozen=True)
class KernelPlan:
    net: str
    steps: tuple[Step, ...]
    slices: dict[int, Slice] = field(default_factory=dict)  # branch output -> its slice
    backend: str = "triton"  # whose plan: "triton" or "cpu" (archc.backends.cpu.plan)

    def step_of(self, node: int) -> Step:
        return next(s for s in self.steps
                    if node in s.nodes or node in s.tail or node == s.pool)

    def text(self, analysis: Analysis) -> str:
        """One line a step, with the IR's ids (`archc compile --emit ir`)."""
        graph, counts = analysis.graph, {}
        for step in self.steps:
            counts[step.kind] = counts.get(step.kind, 0) + 1
        merged = sum(1 for s in self.steps if s.kind == "gemm" and len(s.nodes) > 1)
        summary = ", ".join(f"{counts[k]} {k}" for k in KINDS if k in counts)
        folds = sum(1 for s in self.steps if s.bn is not None)
        shortcuts = sum(1 for s in self.steps if s.residual is not None or
                        s.deferred is not None)
        epilogues = f"; {folds} fold a bn, {shortcuts} add a shortcut" if folds or shortcuts \
            else ""
        merges = f"; {merged} GEMMs merge sibling 1x1 convs" if self.backend == "triton" else ""
        lines = [f"plan for {self.net}, {self.backend} backend: {len(self.steps)} steps "
                 f"({summary}{merges}{epilogues})"]
        kind_width = max(5, *(len(s.kind) for s in self.steps))
        for step in self.steps:
            covered = (step.pool,) * (step.pool is not None) + step.nodes + step.tail
            nodes = ", ".join(f"%{n}" for n in covered)
            what = " + ".join(ops.full_text(graph.node(n).op) for n in covered)
            if step.residual is not None:
                what += f" (+ %{step.residual})"
            into = [f"%{n}->%{s.concat}[{s.start}:{s.stop}]" for n, s in
                    zip(step.nodes, step.into) if s is not None]
            where = f"  into {', '.join(into)}" if into else ""
            lines.append(f"{step.kind:<{kind_width}} {nodes:<16} {what}{where}  ({step.why})")
        if self.backend == "cpu":
            lines.append("at run time, an input shape seen often at inference runs as one oneDNN "
                         "Graph instead where that measures faster (archc.backends.cpu.graph)")
        return "\n".join(lines) + "\n"


def fuse_epilogues(analysis: Analysis, steps: list[Step], acts: tuple[str, ...] = ("relu",),
                   shortcuts: tuple[str, ...] = ("gemm",)) -> list[Step]:
    """A linear 1x1 GEMM takes in what follows it alone: a batch norm or a layer scale (each
    folded into its weight and bias; the bn in eval mode), then a sum with a value computed
    before it (a ResNet block's shortcut), then an activation. A depthwise conv takes its batch
    norm, a layer norm over channels (ConvNeXt's) and the activation; a cuDNN conv its batch
    norm and activation. Each must be the only user of the layer before it, so no value the
    step skips is read elsewhere, and sit in the conv's block use (`_user_in`). Another
    backend's plan (archc.backends.cpu.plan) names the activations its steps apply (`acts`)
    and the step kinds that add a shortcut."""
    graph, fused, absorbed = analysis.graph, {}, set()
    for step in steps:
        n = step.nodes[0]
        cudnn = step.kind == "torch" and isinstance(graph.node(n).op, ops.Conv)
        if not (step.kind in ("gemm", "dwconv", "onednn") or cudnn) or step.relu or \
                not isinstance(graph.node(n).op, ops.Conv) or graph.node(n).op.act != "linear":
            continue
        tail: list[int] = []
        bn = _take(analysis, n, tail, ops.BatchNorm)
        scale = _take(analysis, n, tail, ops.LayerScale, bn is None and step.kind == "gemm")
        norm = _take(analysis, n, tail, ops.LayerNorm, step.kind == "dwconv")
        residual = None
        total = _take(analysis, n, tail, ops.Sum, step.kind in shortcuts)
        if total is not None:
            other = [i for i in graph.node(total).inputs if i not in (n, *tail)]
            if len(graph.node(total).inputs) == 2 and len(other) == 1 and other[0] < n:
                residual = other[0]  # computed before the GEMM runs (not x + x)
            else:
                tail.pop()
        activation = _take(analysis, n, tail, ops.Act)
        act = graph.node(activation).op.kind if activation is not None else "linear"
        if act not in ("linear", *acts):
            tail.pop()  # an activation the step does not apply
            act = "linear"
        if tail:
            parts = ["bn folded (eval)"] * (bn is not None) + \
                ["layer scale folded"] * (scale is not None) + \
                ["layer norm over channels"] * (norm is not None) + \
                ["the shortcut added"] * (residual is not None) + \
                ([ops.REGISTRY[ops.Act].titles[act]] if act != "linear" else [])
            why = f"1x1 conv, {', '.join(parts)} in one GEMM's epilogue" \
                if step.kind == "gemm" else f"{step.why}; {', '.join(parts)}"
            fused[n] = replace(step, relu=act == "relu", act=act, bn=bn, scale=scale,
                               norm=norm, residual=residual, tail=tuple(tail), why=why)
            absorbed.update(tail)
    return [fused.get(s.nodes[0], s) for s in steps if s.nodes[0] not in absorbed]


def _take(analysis: Analysis, n: int, tail: list[int], kind: type, when: bool = True):
    """The layer after step `n`'s `tail`, appended to it if it is a `kind` alone in `n`'s block
    use; None if not."""
    last = tail[-1] if tail else n
    if when and isinstance(_user_in(analysis, last, analysis.graph.node(n).blocks), kind):
        tail.append(analysis.graph.users(last)[0])
        return tail[-1]
    return None


def only_user(analysis: Analysis, n: int) -> ops.OpT | None:
    """The op of `n`'s one user, if `n` has one and its value is needed nowhere else."""
    graph = analysis.graph
    users = graph.users(n)
    if len(users) != 1 or n == graph.output or any(h.source == n for h in graph.heads):
        return None
    return graph.node(users[0]).op


def _user_in(analysis: Analysis, n: int, blocks: tuple[int, ...]) -> ops.OpT | None:
    """`only_user`, if it sits in the block use `blocks`: a fused step is one call in one
    emitted module (a block's last layer summed with its caller's shortcut, as MobileNet-v2's
    inverted residual, leaves the sum a line of the caller)."""
    user = only_user(analysis, n)
    return user if user is not None and \
        analysis.graph.node(analysis.graph.users(n)[0]).blocks == blocks else None
