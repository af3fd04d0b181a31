"""Backends: how a checked net's layers become lines of forward(), as values passed to emit.

A `Backend` is its per-op table of calls (`CALLS`: how each op's forward line reads), the
imports the emitted source needs, its memory format, and whether it runs the fusion plan
(archc.plan). Both backends build the same layers (archc.modules: one constructor table), so
a module's `state_dict` is the same whichever backend wrote it, and checkpoints move between
them. A test checks that every op has a row in every backend's table.

- `TORCH`: nn.Modules and torch.nn.functional, the reference.
- `TRITON`: the plan's GEMMs and pools call archc.backends' kernels (`K.conv1x1(...)`); the
  other convs stay on cuDNN; activations are channels last.

A call row takes the op, the member it is stored in (`self.branch3x3[0]`), its arguments as
Python text (the input already flattened where the op wants N x C), whether it ends the net
or a head, and its plan step (None for the torch backend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archc import ops
from archc.plan import Step

Call = Callable[[ops.OpT, str, list[str], bool, Step | None], str]


def _module(op, attr, args, final, step) -> str:
    call = f"{attr}({args[0]})"
    return f"F.relu({call})" if getattr(op, "act", "linear") == "relu" else call


def _softmax(op, attr, args, final, step) -> str:
    if final:  # training returns logits, for a cross-entropy loss
        return f"{args[0]} if self.training else F.softmax({args[0]}, dim=1)"
    return f"F.softmax({args[0]}, dim=1)"


TORCH_CALLS: dict[type, Call] = {
    ops.Input: lambda op, attr, args, final, step: args[0],
    ops.Conv: _module,
    ops.Pool: _module,
    ops.GlobalAvgPool: _module,
    ops.LRN: _module,
    ops.Dropout: _module,
    ops.FC: _module,
    ops.Flatten: lambda op, attr, args, final, step: f"torch.flatten({args[0]}, 1)",
    ops.Softmax: _softmax,
    ops.Concat: lambda op, attr, args, final, step: f"torch.cat([{', '.join(args)}], dim=1)",
}


def _triton_conv(op: ops.Conv, attr, args, final, step) -> str:
    if step is None or step.kind != "gemm":
        return _module(op, attr, args, final, step)  # cuDNN
    return f"K.conv1x1({args[0]}, {attr}, relu={op.act == 'relu'})"


def _triton_pool(op: ops.Pool, attr, args, final, step) -> str:
    return (f"K.pool2d({args[0]}, {op.kind!r}, {op.window}, {(op.stride, op.stride)}, "
            f"{op.pad}, {op.ceil})")


TRITON_CALLS: dict[type, Call] = {
    **TORCH_CALLS,
    ops.Conv: _triton_conv,
    ops.Pool: _triton_pool,
    ops.GlobalAvgPool: lambda op, attr, args, final, step: f"K.global_avg_pool({args[0]})",
}


def siblings_call(attrs: list[str], x: str, relu: bool) -> str:
    """One GEMM for sibling 1x1 convs: their weights side by side, concatenated at run time."""
    indent = " " * 12  # a continuation line of forward()'s body
    return f"K.conv1x1_siblings(\n{indent}{x}, [{', '.join(attrs)}], relu={relu})"


@dataclass(frozen=True)
class Backend:
    name: str
    calls: dict[type, Call]
    imports: tuple[str, ...]
    channels_last: bool  # forward() converts its input, and the kernels keep the format
    plans: bool  # runs archc.plan, and emits its merged GEMMs


TORCH_IMPORTS = ("import torch", "from torch import nn", "from torch.nn import functional as F")
TORCH = Backend("torch", TORCH_CALLS, TORCH_IMPORTS, channels_last=False, plans=False)
TRITON = Backend("triton", TRITON_CALLS,
                 TORCH_IMPORTS + ("from archc.backends import functional as K",),
                 channels_last=True, plans=True)
BACKENDS = {backend.name: backend for backend in (TORCH, TRITON)}
