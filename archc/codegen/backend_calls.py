"""Backends: how a checked net's layers become lines of forward(), as values passed to emit.

A `Backend` is its table of calls for the ops it writes its own way (`calls`; every other op
reads as its spec's torch `call`, in the op's family file), the imports the emitted source
needs, its memory format, the fusion plan it runs (archc.codegen.triton.plan,
archc.codegen.cpu.plan), if any, and how it writes the two things a plan makes that are no
single layer: a GEMM over sibling convs and a concat buffer. The emitter writes no call of
its own.
Every backend builds the same layers (each op's `module` rule), so a module's `state_dict` is
the same whichever backend wrote it, and checkpoints move between them.

- `TORCH`: nn.Modules and torch.nn.functional, the reference: no rows of its own.
- `CPU`: every conv is one oneDNN primitive with the bn, shortcut and activation after it
  (archc.codegen.cpu.plan; `C.conv(...)`, archc.backends.cpu), every fc one with its
  activation (`C.linear(...)`), local response norms archc's own; activations are channels
  last.
- `TRITON`: the plan's GEMMs, depthwise convs and pools call archc.backends' kernels
  (`K.conv1x1(...)`, `K.dwconv(...)`); the other convs stay on cuDNN; activations are channels
  last.

A call row takes the op and its `Site`: the member it is stored in, its arguments as Python
text, whether it ends the net or a head, its plan step (None for the torch backend) and the
concat buffer it writes into, if any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archc import ops
from archc.codegen.cpu.plan import POST_OP_ACTS
from archc.codegen.cpu.plan import plan as cpu_plan
from archc.codegen.fusion import KernelPlan, Step
from archc.codegen.triton.plan import plan as triton_plan
from archc.ops.activation import activate
from archc.ops.common import module_call
from archc.pipeline import Analysis


@dataclass(frozen=True)
class Site:
    """Where a layer's call is written: what a call row needs besides the op."""

    attr: str  # the member holding its module: `self.branch3x3[0]`
    args: list[str]  # its inputs as Python text, flattened where the op wants N x C
    final: bool  # it ends the net or a head
    step: Step | None  # its plan step (the triton backend)
    into: str | None = None  # a concat buffer: `buffer.part(0)` for a branch, `buffer` itself
    bn: str | None = None  # a fused GEMM's batch norm member: `self.residual.bn3`
    residual: str | None = None  # the value a fused GEMM adds in its epilogue
    relu: bool | None = None  # a fused step's ReLU (a flag, or a relu layer after it)
    epilogue: bool = False  # the step's bn, sum and ReLU layers are written in this call
    pool: bool = False  # the step's 3x3/1 max pool is taken as the GEMM loads its input
    second: str | None = None  # an mlp step's second 1x1 conv member
    act: str = "linear"  # a fused step's activation layer
    norm: str | None = None  # a fused depthwise conv's layer norm member
    scale: str | None = None  # a fused GEMM's layer scale member


Call = Callable[[ops.OpT, Site], str]


def _torch_call(op, site: Site) -> str:
    return ops.spec(op).call(op, site)


def _out(site: Site) -> str:
    return f", out={site.into}" if site.into else ""


def _cpu_conv(op: ops.Conv, site: Site) -> str:
    act = site.act if site.epilogue else op.act
    if act not in POST_OP_ACTS + ("linear",):
        return module_call(op, site)  # an activation oneDNN does not apply: torch's own
    extra = (f", bn={site.bn}" if site.bn else "") + \
        (f", residual={site.residual}" if site.residual else "") + \
        (f", act={act!r}" if act != "linear" else "")
    return f"C.conv({site.args[0]}, {site.attr}{extra})"


def _cpu_linear(op: ops.FC, site: Site) -> str:
    if op.act not in POST_OP_ACTS + ("linear",):
        return module_call(op, site)
    return f"C.linear({site.args[0]}, {site.attr}" + \
        (f", act={op.act!r})" if op.act != "linear" else ")")


# The ops the cpu backend writes its own way; every other op reads as the torch backend's.
CPU_CALLS: dict[type, Call] = {
    ops.Conv: _cpu_conv,
    ops.FC: _cpu_linear,
    ops.LRN: lambda op, site: f"C.local_response_norm({site.args[0]}, {site.attr})",
}


def _triton_conv(op: ops.Conv, site: Site) -> str:
    if site.epilogue and site.step.kind == "mlp":  # two 1x1 convs, one kernel
        return (f"K.mlp1x1({site.args[0]}, {site.attr}, {site.second}, "
                f"relu_a={op.act == 'relu'}, relu_b={site.relu})")
    act = site.act if site.epilogue else op.act
    if site.epilogue and site.step.kind == "torch":  # cuDNN, its bn folded, its activation
        call = f"K.conv_bn({site.args[0]}, {site.attr}, {site.bn})" if site.bn else \
            f"{site.attr}({site.args[0]})"
        return activate(act, call)
    if site.step is not None and site.step.kind == "dwconv":
        return f"K.dwconv({site.args[0]}, {site.attr}" + \
            (f", bn={site.bn}" if site.bn else "") + \
            (f", norm={site.norm}" if site.norm else "") + \
            (f", act={act!r}" if act != "linear" else "") + \
            (", squeeze=True)" if site.step.squeeze is not None else ")")
    if site.step is None or site.step.kind != "gemm":
        return module_call(op, site)  # cuDNN, or an activation the GEMM does not apply
    # relu=True/False for those two, as emitted modules have always written; else act=...
    flag = f"act={act!r}" if act not in ("linear", "relu") else f"relu={act == 'relu'}"
    epilogue = (f", bn={site.bn}" if site.bn else "") + \
        (f", scale={site.scale}" if site.scale else "") + \
        (f", residual={site.residual}" if site.residual else "") + \
        (", pool=True" if site.pool else "") + \
        (", deferred=True" if site.step.deferred is not None else "")
    return f"K.conv1x1({site.args[0]}, {site.attr}, {flag}{epilogue}{_out(site)})"


def _triton_pool(op: ops.Pool, site: Site) -> str:
    return (f"K.pool2d({site.args[0]}, {op.kind!r}, {op.window}, {(op.stride, op.stride)}, "
            f"{op.pad}, {op.ceil}{_out(site)})")


def _triton_mul(op: ops.Mul, site: Site) -> str:
    if site.step is None or site.step.kind != "gate":
        return _torch_call(op, site)
    return f"K.gated({', '.join(site.args)})"  # the gate is the [N, C, 1, 1] one, either


def _triton_sum(op: ops.Sum, site: Site) -> str:
    if site.step is None or site.step.kind != "sum":
        return _torch_call(op, site)
    return f"K.add({', '.join(site.args)})"  # runs the deferred GEMM with the shortcut


def _triton_concat(op: ops.Concat, site: Site) -> str:
    if site.into is None:
        return _torch_call(op, site)
    return f"{site.into}.join([{', '.join(site.args)}])"


# The ops the triton backend writes its own way; every other op reads as the torch backend's.
TRITON_CALLS: dict[type, Call] = {
    ops.Conv: _triton_conv,
    ops.Pool: _triton_pool,
    ops.GlobalAvgPool: lambda op, site: f"K.global_avg_pool({site.args[0]})",
    ops.Concat: _triton_concat,
    ops.Mul: _triton_mul,
    ops.Sum: _triton_sum,
}


def _triton_siblings(attrs: list[str], x: str, relu: bool, into: str | None) -> str:
    """One GEMM for sibling 1x1 convs: their weights side by side, concatenated at run time."""
    indent = " " * 12  # a continuation line of forward()'s body
    out = f",\n{indent}out={into}" if into else ""
    return f"K.conv1x1_siblings(\n{indent}{x}, [{', '.join(attrs)}], relu={relu}{out})"


@dataclass(frozen=True)
class Backend:
    name: str
    calls: dict[type, Call]  # its own rows; an op without one reads as its spec's `call`
    imports: tuple[str, ...]
    channels_last: bool  # forward() converts its input, and the kernels keep the format
    planner: Callable[[Analysis], KernelPlan] | None  # its fusion plan, None: no fusions
    moduleless: frozenset[type]  # ops its calls compute without their nn.Module (no weights)
    # the plan's merged GEMM over sibling convs (members, input, relu, concat slice), and the
    # concat buffer its kernels write into (its widths attribute): where its plan makes them
    siblings: Callable[[list[str], str, bool, str | None], str] | None = None
    buffer: Callable[[str], str] | None = None

    def call(self, op: ops.OpT, site: Site) -> str:
        """Layer `op`'s forward() expression at `site`."""
        return self.calls.get(type(op), _torch_call)(op, site)


TORCH_IMPORTS = ("import torch", "from torch import nn", "from torch.nn import functional as F")
TORCH = Backend("torch", {}, TORCH_IMPORTS, channels_last=False, planner=None,
                moduleless=frozenset())
TRITON = Backend("triton", TRITON_CALLS,
                 TORCH_IMPORTS + ("from archc.backends import functional as K",),
                 channels_last=True, planner=triton_plan,
                 moduleless=frozenset({ops.Pool, ops.GlobalAvgPool}),  # K.pool2d and the gap
                 siblings=_triton_siblings, buffer=lambda widths: f"K.ConcatBuffer({widths})")
CPU = Backend("cpu", CPU_CALLS, TORCH_IMPORTS + ("from archc.backends import cpu as C",),
              channels_last=True, planner=cpu_plan, moduleless=frozenset())
BACKENDS = {backend.name: backend for backend in (TORCH, CPU, TRITON)}
