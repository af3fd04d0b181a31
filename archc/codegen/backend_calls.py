"""Backends: how a checked net's layers become lines of forward(), as values passed to emit.

A `Backend` is its per-op table of calls (`CALLS`: how each op's forward line reads), the
imports the emitted source needs, its memory format, and whether it runs the fusion plan
(archc.codegen.triton.plan). Both backends build the same layers (archc.codegen.modules: one
constructor table), so a module's `state_dict` is the same whichever backend wrote it, and
checkpoints move between them. A test checks that every op has a row in every backend's table.

- `TORCH`: nn.Modules and torch.nn.functional, the reference.
- `TRITON`: the plan's GEMMs and pools call archc.backends' kernels (`K.conv1x1(...)`); the
  other convs stay on cuDNN; activations are channels last.

A call row takes the op and its `Site`: the member it is stored in, its arguments as Python
text, whether it ends the net or a head, its plan step (None for the torch backend) and the
concat buffer it writes into, if any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archc import ops
from archc.codegen.triton.plan import Step


@dataclass(frozen=True)
class Site:
    """Where a layer's call is written: what a call row needs besides the op."""

    attr: str  # the member holding its module: `self.branch3x3[0]`
    args: list[str]  # its inputs as Python text, flattened where the op wants N x C
    final: bool  # it ends the net or a head
    step: Step | None  # its plan step (the triton backend)
    into: str | None = None  # a concat buffer: `buffer.part(0)` for a branch, `buffer` itself
    bn: str | None = None  # a fused GEMM's batch norm member: `self.residual[7]`
    residual: str | None = None  # the value a fused GEMM adds in its epilogue
    relu: bool | None = None  # a fused step's ReLU (a flag, or a relu layer after it)
    epilogue: bool = False  # the step's bn, sum and ReLU layers are written in this call
    pool: bool = False  # the step's 3x3/1 max pool is taken as the GEMM loads its input
    second: str | None = None  # an mlp step's second 1x1 conv member


Call = Callable[[ops.OpT, Site], str]


# How each activation reads in forward(), flag or layer.
ACTIVATION_CALLS = {"relu": "F.relu({})", "relu6": "F.relu6({})", "sigmoid": "torch.sigmoid({})",
                    "tanh": "torch.tanh({})", "hardswish": "F.hardswish({})",
                    "leakyrelu": "F.leaky_relu({}, {slope!r})"}


def activate(act: str, value: str, slope: float = 0.01) -> str:
    return value if act == "linear" else ACTIVATION_CALLS[act].format(value, slope=slope)


def _module(op, site: Site) -> str:
    return activate(getattr(op, "act", "linear"), f"{site.attr}({site.args[0]})")


def _softmax(op, site: Site) -> str:
    value = site.args[0]
    if site.final:  # training returns logits, for a cross-entropy loss
        return f"{value} if self.training else F.softmax({value}, dim=1)"
    return f"F.softmax({value}, dim=1)"


TORCH_CALLS: dict[type, Call] = {
    ops.Input: lambda op, site: site.args[0],
    ops.Conv: _module,
    ops.Pool: _module,
    ops.GlobalAvgPool: _module,
    ops.LRN: _module,
    ops.Dropout: _module,
    ops.FC: _module,
    ops.Flatten: lambda op, site: f"torch.flatten({site.args[0]}, 1)",
    ops.Softmax: _softmax,
    ops.Concat: lambda op, site: f"torch.cat([{', '.join(site.args)}], dim=1)",
    ops.BatchNorm: _module,
    ops.Act: lambda op, site: activate(op.kind, site.args[0], op.slope),
    ops.Sum: lambda op, site: " + ".join(site.args),
}


def _out(site: Site) -> str:
    return f", out={site.into}" if site.into else ""


def _triton_conv(op: ops.Conv, site: Site) -> str:
    if site.epilogue and site.step.kind == "mlp":  # two 1x1 convs, one kernel
        return (f"K.mlp1x1({site.args[0]}, {site.attr}, {site.second}, "
                f"relu_a={op.act == 'relu'}, relu_b={site.relu})")
    if site.epilogue and site.step.kind == "torch":  # cuDNN, its bn folded, its ReLU
        call = f"K.conv_bn({site.args[0]}, {site.attr}, {site.bn})" if site.bn else \
            f"{site.attr}({site.args[0]})"
        return activate("relu", call) if site.relu else call
    if site.step is None or site.step.kind != "gemm":
        return _module(op, site)  # cuDNN, or an activation the GEMM does not apply
    relu = op.act == "relu" if site.relu is None else site.relu
    epilogue = (f", bn={site.bn}" if site.bn else "") + \
        (f", residual={site.residual}" if site.residual else "") + \
        (", pool=True" if site.pool else "")
    return f"K.conv1x1({site.args[0]}, {site.attr}, relu={relu}{epilogue}{_out(site)})"


def _triton_pool(op: ops.Pool, site: Site) -> str:
    return (f"K.pool2d({site.args[0]}, {op.kind!r}, {op.window}, {(op.stride, op.stride)}, "
            f"{op.pad}, {op.ceil}{_out(site)})")


def _triton_concat(op: ops.Concat, site: Site) -> str:
    if site.into is None:
        return TORCH_CALLS[ops.Concat](op, site)
    return f"{site.into}.join([{', '.join(site.args)}])"


TRITON_CALLS: dict[type, Call] = {
    **TORCH_CALLS,
    ops.Conv: _triton_conv,
    ops.Pool: _triton_pool,
    ops.GlobalAvgPool: lambda op, site: f"K.global_avg_pool({site.args[0]})",
    ops.Concat: _triton_concat,
}


def siblings_call(attrs: list[str], x: str, relu: bool, into: str | None) -> str:
    """One GEMM for sibling 1x1 convs: their weights side by side, concatenated at run time."""
    indent = " " * 12  # a continuation line of forward()'s body
    out = f",\n{indent}out={into}" if into else ""
    return f"K.conv1x1_siblings(\n{indent}{x}, [{', '.join(attrs)}], relu={relu}{out})"


@dataclass(frozen=True)
class Backend:
    name: str
    calls: dict[type, Call]
    imports: tuple[str, ...]
    channels_last: bool  # forward() converts its input, and the kernels keep the format
    plans: bool  # runs archc.codegen.triton.plan, and emits its merged GEMMs


TORCH_IMPORTS = ("import torch", "from torch import nn", "from torch.nn import functional as F")
TORCH = Backend("torch", TORCH_CALLS, TORCH_IMPORTS, channels_last=False, plans=False)
TRITON = Backend("triton", TRITON_CALLS,
                 TORCH_IMPORTS + ("from archc.backends import functional as K",),
                 channels_last=True, plans=True)
BACKENDS = {backend.name: backend for backend in (TORCH, TRITON)}
