"""The triton backend's calls: each kernel step of its plan as a line of forward(). No torch.

Rows are keyed by the kind of plan step (archc.backends.triton.plan makes each kind): a layer
whose step is one of `STEP_CALLS`, of the op that kind computes, is written as that kernel's
call (`K.conv1x1(...)`, `K.dwconv(...)`), so a new kernel is its kernel file
(archc.backends.triton), the plan rule that makes its step and its row here. `OP_CALLS` holds what
depends on the op rather than on a kernel step: a conv left to cuDNN with its bn folded, a
pool or global pool (always a kernel, also where its step is a GEMM's that reads through it
in another class), a concat whose branches write into its buffer. Everything else reads as
the torch backend's.
"""

from __future__ import annotations

from archc import ops
from archc.backends.backend import TORCH_IMPORTS, Backend, Call, Site, torch_call
from archc.backends.triton.plan import plan
from archc.ops.activation import activate
from archc.ops.common import module_call


def _out(site: Site) -> str:
    return f", out={site.into}" if site.into else ""


def _act(op: ops.Conv, site: Site) -> str:
    """The activation the call applies: its step's where it writes the step's epilogue."""
    return site.act if site.epilogue else op.act


def gemm(op: ops.Conv, site: Site) -> str:
    act = _act(op, site)
    flag = f", act={act!r}" if act != "linear" else ""
    epilogue = (f", bn={site.bn}" if site.bn else "") + \
        (f", scale={site.scale}" if site.scale else "") + \
        (f", residual={site.residual}" if site.residual else "") + \
        (f", pool={site.pool}" if site.pool else "") + \
        (", deferred=True" if site.step.deferred is not None else "")
    return f"K.conv1x1({site.args[0]}, {site.attr}{flag}{epilogue}{_out(site)})"


def mlp(op: ops.Conv, site: Site) -> str:
    """Two 1x1 convs, one kernel, where this class writes both; else each its own call."""
    if not site.epilogue:
        return module_call(op, site)
    return (f"K.mlp1x1({site.args[0]}, {site.attr}, {site.second}, "
            f"relu_a={op.act == 'relu'}, relu_b={site.relu})")


def dwconv(op: ops.Conv, site: Site) -> str:
    act = _act(op, site)
    return f"K.dwconv({site.args[0]}, {site.attr}" + \
        (f", bn={site.bn}" if site.bn else "") + \
        (f", norm={site.norm}" if site.norm else "") + \
        (f", act={act!r}" if act != "linear" else "") + \
        (", squeeze=True)" if site.step.squeeze is not None else ")")


def pool(op: ops.Pool, site: Site) -> str:
    return f"K.pool2d({site.args[0]}, {site.attr}{_out(site)})"  # its geometry: the module's


def gap(op: ops.GlobalAvgPool, site: Site) -> str:
    return f"K.global_avg_pool({site.args[0]}, {site.attr})"


# kind of step -> (the op it computes, its call)
STEP_CALLS: dict[str, tuple[type, Call]] = {
    "gemm": (ops.Conv, gemm),
    "mlp": (ops.Conv, mlp),
    "dwconv": (ops.Conv, dwconv),
    "pool": (ops.Pool, pool),
    "gap": (ops.GlobalAvgPool, gap),
    "gate": (ops.Mul, lambda op, site: f"K.gated({', '.join(site.args)})"),  # either order
    "sum": (ops.Sum, lambda op, site: f"K.add({', '.join(site.args)})"),  # runs the deferred
}


def _cudnn_conv(op: ops.Conv, site: Site) -> str:
    """A conv cuDNN runs: its bn folded (`K.conv_bn`) where the plan fused it, its
    activation applied."""
    if not (site.epilogue and site.step.kind == "torch"):
        return module_call(op, site)
    call = f"K.conv_bn({site.args[0]}, {site.attr}, {site.bn})" if site.bn else \
        f"{site.attr}({site.args[0]})"
    return activate(_act(op, site), call)


def _concat(op: ops.Concat, site: Site) -> str:
    if site.into is None:
        return torch_call(op, site)
    return f"{site.into}.join([{', '.join(site.args)}])"


OP_CALLS: dict[type, Call] = {
    ops.Conv: _cudnn_conv,
    ops.Pool: pool,
    ops.GlobalAvgPool: gap,
    ops.Concat: _concat,
}


def siblings(attrs: list[str], x: str, relu: bool, into: str | None) -> str:
    """One GEMM for sibling 1x1 convs: their weights side by side, concatenated at run time."""
    indent = " " * 12  # a continuation line of forward()'s body
    out = f",\n{indent}out={into}" if into else ""
    act = ", act='relu'" if relu else ""
    return f"K.conv1x1_siblings(\n{indent}{x}, [{', '.join(attrs)}]{act}{out})"


TRITON = Backend("triton", OP_CALLS,
                 TORCH_IMPORTS + ("from archc.backends import functional as K",),
                 channels_last=True, planner=plan, siblings=siblings,
                 buffer=lambda widths: f"K.ConcatBuffer({widths})", steps=STEP_CALLS)
