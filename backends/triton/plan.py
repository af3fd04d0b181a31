"""Plan: the checked graph -> `KernelPlan`, the triton backend's fusion decisions. No torch.

A pass like infer or count: a function of the `Analysis` returning a value that can be printed
(`archc compile FILE --backend triton --plan`) and golden-tested. Each layer becomes one `Step`
or joins one; these passes decide, in order:

1. `choose_kernels`: a 1x1 convolution (stride 1, no padding, one group) and its activation is
   a GEMM step with bias and activation on the accumulator; a depthwise convolution (groups =
   channels = output channels) a `dwconv` step, one read and one write. Other convolutions
   stay on cuDNN, and say why.
2. `fuse_epilogues` (archc.backends.fusion, shared with the cpu plan): a linear conv takes the
   batch norm after it (folded in eval mode), a 1x1 GEMM also a layer scale (folded) and a
   residual sum's shortcut, a depthwise conv a layer norm over channels, and each the
   activation after them (any of `TRITON_ACTS`, which archc.backends.triton.epilogue applies).
3. `fold_pools`: a 3x3/1 max pool feeding a 1x1 GEMM is taken as the GEMM loads its input.
4. `chain_mlps`: a 1x1 GEMM feeding another is one `mlp` kernel (NIN's micro network).
5. `merge_siblings`: 1x1 GEMMs that read the same tensor (its users, the IR's networkx
   successors: an inception's #1x1, #3x3 reduce and #5x5 reduce) and agree on the ReLU become one
   GEMM over their weights side by side.
6. `gate_gemm_inputs`: a squeeze-and-excitation gate read only by a 1x1 GEMM is multiplied in
   as that GEMM loads its input.
7. `squeeze_in_dwconvs`: a global average pool of a depthwise conv's output (an SE block's
   squeeze) is summed by the conv's epilogue as it stores: no read of its own.
8. `defer_to_sums`: a linear 1x1 GEMM whose output reaches only a shortcut sum that
   `fuse_epilogues` could not take (a line of the caller's class, or after stochastic depth,
   which does nothing at inference) is run by the sum with the shortcut in its epilogue.
9. `place_in_concats`: each branch of a concat is written into its channel slice of one
   preallocated buffer, by the kernel that makes it where that is a Triton step, else copied.

Pools and global average pooling are Triton steps; everything else stays a torch op, and a
layer a kernel takes elsewhere says why not here (`NOT_FUSED`).
"""

from __future__ import annotations

from dataclasses import replace

from archc import ops
from archc.backends.fusion import KernelPlan, Slice, Step, fuse_epilogues, only_user
from archc.ops.activation import TABLE
from archc.pipeline import Analysis

# The activations the kernels apply to their accumulator (archc.backends.triton.epilogue).
TRITON_ACTS = tuple(row.name for row in TABLE if row.triton)
MAX_HIDDEN = 256  # archc.backends.triton.mlp1x1 keeps the hidden tile in registers


def plan(analysis: Analysis) -> KernelPlan:
    graph = analysis.graph.verify()
    steps = choose_kernels(analysis)
    steps = fuse_epilogues(analysis, steps, acts=TRITON_ACTS)
    steps = fold_pools(analysis, steps)
    steps = chain_mlps(analysis, steps)
    steps = merge_siblings(analysis, steps)
    steps = gate_gemm_inputs(analysis, steps)
    steps = squeeze_in_dwconvs(analysis, steps)
    steps = defer_to_sums(analysis, steps)
    return place_in_concats(analysis, KernelPlan(graph.name, tuple(steps)))


# ---- the passes ----------------------------------------------------------------------------


def choose_kernels(analysis: Analysis) -> list[Step]:
    steps = []
    for n in analysis.graph.order():
        node = analysis.graph.node(n)
        op, source = node.op, node.inputs[0] if node.inputs else None
        kind = ops.spec(op).plan
        if kind == "none":
            continue
        if kind == "gemm" and _depthwise(op, analysis.shapes[source].c):
            steps.append(_dwconv_step(n, source, op))
        elif kind == "gemm":
            reason = _not_a_gemm(op)
            if reason:
                steps.append(Step("torch", (n,), source, op.act == "relu", f"cuDNN: {reason}"))
            else:
                act = ops.REGISTRY[ops.Act].titles.get(op.act)
                steps.append(Step("gemm", (n,), source, op.act == "relu",
                                  f"1x1 conv, bias and {act} in one GEMM" if act
                                  else "1x1 conv and bias in one GEMM", act=op.act))
        elif kind == "pool":
            steps.append(Step("pool", (n,), source, why=f"{op.kind} pool"))
        elif kind == "gap":
            steps.append(Step("gap", (n,), source, why="global average pool"))
        else:
            steps.append(Step("torch", (n,), source, why=_torch_why(op)))
    return steps


# Why a layer that a kernel could take stays a torch op, where a fusion exists only elsewhere.
NOT_FUSED = {
    ops.LayerNorm: "fused only after a depthwise conv, whose program holds a pixel's channels",
    ops.LayerScale: "folded only into a 1x1 GEMM before it",
    ops.DropPath: "nothing at inference (a deferred GEMM passes through it to the sum); in "
                  "training it drops the branch per image, so the sum after it is no GEMM's "
                  "epilogue",
    ops.Mul: "applied by a 1x1 GEMM's loads only when that GEMM is its one reader",
}


def _torch_why(op: ops.OpT) -> str:
    why = f"{ops.op_name(op)}: a torch op"
    return f"{why}; {NOT_FUSED[type(op)]}" if type(op) in NOT_FUSED else why


def fold_pools(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """A 3x3/1 max pool (pad 1) whose only user is a 1x1 GEMM is taken while the GEMM loads its
    input: an inception's pool projection, whose pooled tensor then never exists."""
    graph, folded, absorbed = analysis.graph, {}, set()
    for step in steps:
        n = step.nodes[0]
        op = graph.node(n).op
        if step.kind != "pool" or op.kind != "max" or op.window != (3, 3) or op.stride != 1 \
                or op.pad != (1, 1):
            continue
        user = graph.users(n)[0] if isinstance(only_user(analysis, n), ops.Conv) else None
        gemm = next((s for s in steps if s.kind == "gemm" and s.nodes == (user,) and
                     _relu_or_linear(s)), None)
        if gemm is not None:
            folded[user] = replace(gemm, pool=n, input=step.input,
                                   why=f"{gemm.why}; its input max-pooled 3x3/1 as it loads")
            absorbed.add(n)
    return [folded.get(s.nodes[0], s) for s in steps if s.nodes[0] not in absorbed]


def chain_mlps(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """A 1x1 GEMM whose only user is another 1x1 GEMM (NIN's mlpconv: cccp after cccp) is one
    `mlp` step: both convs in one kernel, the hidden activation never written out."""
    graph, chained, absorbed = analysis.graph, {}, set()
    plain = {s.nodes: s for s in steps if s.kind == "gemm" and not s.tail and s.pool is None
             and _relu_or_linear(s)}
    for (a,), first in ((k, s) for k, s in plain.items() if len(k) == 1):
        user = graph.users(a)[0] if isinstance(only_user(analysis, a), ops.Conv) else None
        second = plain.get((user,))
        op_a = graph.node(a).op
        if a in absorbed or second is None or op_a.channels > MAX_HIDDEN or not op_a.bias or \
                not graph.node(user).op.bias:
            continue
        chained[a] = Step("mlp", (a,), first.input, second.relu, tail=(user,),
                          why=f"two 1x1 convs in one kernel, the {op_a.channels}-channel "
                              "hidden activation kept on chip")
        absorbed.add(user)
    return [chained.get(s.nodes[0], s) for s in steps if s.nodes[0] not in absorbed]


def _relu_or_linear(step: Step) -> bool:
    """Whether a GEMM's activation is one the pooled, mlp and merged GEMMs apply."""
    return step.act in ("linear", "relu")


def merge_siblings(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """One GEMM for the 1x1 GEMMs among a tensor's successors that agree on the ReLU; not
    those with an epilogue of their own or another activation."""
    gemm_of = {s.nodes[0]: s for s in steps
               if s.kind == "gemm" and not s.tail and s.pool is None and _relu_or_linear(s)}
    merged: dict[int, Step] = {}  # first sibling -> the merged step
    absorbed: set[int] = set()
    for tensor in analysis.graph.order():
        siblings = [u for u in analysis.graph.users(tensor) if u in gemm_of]
        for relu in (True, False):
            group = [u for u in siblings if gemm_of[u].relu == relu]
            if len(group) > 1:
                widths = "+".join(str(analysis.graph.node(u).op.channels) for u in group)
                merged[group[0]] = Step("gemm", tuple(group), tensor, relu,
                                        f"{len(group)} sibling 1x1 convs in one GEMM, "
                                        f"{widths} channels")
                absorbed.update(group[1:])
    return [merged.get(s.nodes[0], s) for s in steps if s.nodes[0] not in absorbed]


def gate_gemm_inputs(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """A squeeze-and-excitation gate, `x * gate` with gate [C, 1, 1], whose one reader is a 1x1
    GEMM (in any block: EfficientNet's projection sits in the SE block's caller) is a `gate`
    step: the GEMM multiplies the factors in as it loads x (gate.py), so the gated
    tensor is never made at inference. Not a merged, pooled or mlp GEMM."""
    graph, shapes = analysis.graph, analysis.shapes
    single = {s.nodes[0] for s in steps if s.kind == "gemm" and len(s.nodes) == 1 and
              s.pool is None}
    gated = []
    for step in steps:
        n = step.nodes[0]
        node = graph.node(n)
        users = graph.users(n)
        if step.kind == "torch" and isinstance(node.op, ops.Mul) and len(node.inputs) == 2 \
                and sorted((shapes[i].h, shapes[i].w) == (1, 1) for i in node.inputs) == \
                [False, True] and only_user(analysis, n) is not None and users[0] in single:
            step = replace(step, kind="gate",
                           why=f"the SE gate, multiplied in as the 1x1 GEMM %{users[0]} loads "
                               "its input: the gated tensor is never made")
        gated.append(step)
    return gated


def squeeze_in_dwconvs(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """A global average pool of what a depthwise conv step makes (EfficientNet's and
    MobileNet-v3's SE squeeze, in the block after the conv's) is summed by that conv's
    epilogue as it stores (archc.backends.triton.dwconv's `squeeze`): the gap step then returns
    those sums, and the activation is not read again for it. One gap a conv."""
    makers = {s.output: s for s in steps if s.kind == "dwconv"}
    squeezed: dict[int, Step] = {}  # the dwconv's first node -> it, with its squeeze
    for step in steps:
        maker = makers.get(step.input) if step.kind == "gap" else None
        if maker is not None and maker.nodes[0] not in squeezed:
            squeezed[maker.nodes[0]] = replace(
                maker, squeeze=step.nodes[0],
                why=f"{maker.why}; the SE squeeze %{step.nodes[0]} summed as it stores")
            squeezed[step.nodes[0]] = replace(
                step, why=f"global average pool, summed by the depthwise conv "
                          f"%{maker.nodes[0]}'s epilogue: no read of its own")
    return [squeezed.get(s.nodes[0], s) for s in steps]


def defer_to_sums(analysis: Analysis, steps: list[Step]) -> list[Step]:
    """A single 1x1 GEMM with no activation and no shortcut of its own, whose output's one
    path is a sum with a value computed before the GEMM (through stochastic depth, which does
    nothing at inference): MobileNet-v2's, EfficientNet's and MnasNet's projection, whose sum
    is a line of the block's caller, and ConvNeXt's, whose sum follows stochastic depth, so
    `fuse_epilogues` could not take them. At inference the GEMM is deferred
    (archc.backends.triton.gate's `Pending`) and the sum, a "sum" step, runs it with the shortcut in
    its epilogue: its output is never written and read back."""
    graph, deferred = analysis.graph, {}
    for step in steps:
        n = step.nodes[0]
        if step.kind != "gemm" or len(step.nodes) > 1 or step.act != "linear" or \
                step.residual is not None or step.pool is not None:
            continue
        value = step.output
        while isinstance(only_user(analysis, value), ops.DropPath):
            value = graph.users(value)[0]
        if not isinstance(only_user(analysis, value), ops.Sum):
            continue
        total = graph.users(value)[0]
        others = [i for i in graph.node(total).inputs if i != value]
        if len(graph.node(total).inputs) != 2 or len(others) != 1 or others[0] >= n:
            continue
        deferred[n] = replace(step, deferred=total,
                              why=f"{step.why}; run by the sum %{total}, which adds the "
                                  "shortcut in its epilogue")
        deferred[total] = Step("sum", (total,), value,
                               why=f"the shortcut %{others[0]} added by the deferred 1x1 "
                                   f"GEMM %{n} as it runs here")
    return [deferred.get(s.nodes[0], s) for s in steps]


def place_in_concats(analysis: Analysis, kernel_plan: KernelPlan) -> KernelPlan:
    """Each concat branch's slice of the concat's buffer; the steps that make a branch in
    Triton write it there (`into`), the others' outputs are copied in."""
    graph, slices, flat = analysis.graph, {}, analysis.flat
    for n in graph.order():
        node = graph.node(n)
        if isinstance(node.op, ops.Concat) and not _joins_flat(analysis, n, flat):
            start = 0
            for branch in node.inputs:
                width = analysis.shapes[branch].c
                if branch not in slices:  # a value in two concats is written into the first
                    slices[branch] = Slice(n, start, start + width)
                start += width
    steps = [replace(s, into=_writes(s, slices)) for s in kernel_plan.steps]
    for i, step in enumerate(steps):
        if n_concat := _concat(analysis, step, flat):
            in_place = sum(1 for s in steps for into in s.into
                           if into is not None and into.concat == n_concat)
            branches = len(graph.node(n_concat).inputs)
            step = replace(step, why=f"one buffer of {analysis.shapes[n_concat].c} channels: "
                                     f"{in_place} of {branches} branches written in place, "
                                     "the others copied in")
            steps[i] = step
    return replace(kernel_plan, steps=tuple(steps), slices=slices)


def _writes(step: Step, slices: dict[int, Slice]) -> tuple[Slice | None, ...]:
    """The concat slices a step's kernel writes: a GEMM's first conv (a merged GEMM's other
    outputs go to a buffer of their own) and a pool's output. Others are copied in."""
    if step.kind not in ("gemm", "pool"):
        return ()
    return (slices.get(step.output),) + (None,) * (len(step.nodes) - 1)


def _concat(analysis: Analysis, step: Step, flat: dict[int, bool]) -> int | None:
    n = step.nodes[0]
    node = analysis.graph.node(n)
    return n if isinstance(node.op, ops.Concat) and not _joins_flat(analysis, n, flat) else None


def _depthwise(op: ops.Conv, in_channels: int) -> bool:
    return op.groups == in_channels == op.channels and op.groups > 1


def _dwconv_step(n: int, source: int, op: ops.Conv) -> Step:
    act = op.act if op.act in TRITON_ACTS else "linear"
    title = ops.REGISTRY[ops.Act].titles.get(act)
    why = f"depthwise {op.window[0]}x{op.window[1]} conv, one read and one write" + \
        (f", {title} in its epilogue" if title else "")
    return Step("dwconv", (n,), source, act == "relu", why, act=act)


def _not_a_gemm(op: ops.Conv) -> str:
    if op.act not in ("linear", *TRITON_ACTS):
        return f"its {op.act} is not fused"
    if op.window != (1, 1):
        return f"a {op.window[0]}x{op.window[1]} conv; only 1x1 convs become GEMMs"
    if op.stride != 1 or op.pad != (0, 0):
        return "a strided or padded 1x1 conv"
    if op.groups != 1:
        return "a grouped conv"
    return ""


def _joins_flat(analysis: Analysis, n: int, flat: dict[int, bool]) -> bool:
    """Whether a concat joins a flat value (archc.pipeline.Analysis.flat): it then gets
    no buffer (its branches are 2-D)."""
    return any(flat[i] for i in analysis.graph.node(n).inputs)
