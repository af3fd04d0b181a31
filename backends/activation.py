"""The activations the kernels and oneDNN apply after a conv, as torch computes them.

`TORCH_ACTS` computes each activation of the op registry's table (archc.ops.activation.TABLE)
that takes no keys with torch's own function, which is what every fused path must equal: the
fallbacks, the training paths (autograd records torch's op), and the tests' reference. `ACTS`
are their names ("linear" for none), what a launcher's `act` takes. The Triton form of each,
applied to a kernel's fp32 accumulator, is archc.backends.triton.epilogue.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from archc.ops.activation import TABLE  # names and calls: the registry's, torch-free


def _function(call: str):
    """`F.silu` -> torch.nn.functional.silu: the table's call, as a function."""
    namespace, name = call.split(".")
    return getattr({"F": F, "torch": torch}[namespace], name)


TORCH_ACTS = {"linear": lambda y: y,
              **{row.name: _function(row.torch) for row in TABLE if not row.keys}}
ACTS = tuple(TORCH_ACTS)


def act_of(relu: bool, act: str | None) -> str:
    """The activation a launcher applies: `act` when given, else ReLU or none. `relu=True` is
    what files emitted before `act=` alone wrote for the ReLU: they still run."""
    if act is None:
        return "relu" if relu else "linear"
    if act not in TORCH_ACTS:
        raise ValueError(f"unknown activation {act!r}; expected one of {', '.join(ACTS)}")
    if relu and act != "relu":
        raise ValueError(f"relu=True and act={act!r} disagree")
    return act


def activation_grad(before: torch.Tensor, act: str, grad: torch.Tensor) -> torch.Tensor:
    """The gradient at an activation's input `before`, given the gradient at its output: torch's
    own function, differentiated (the kernels' backwards)."""
    with torch.enable_grad():
        leaf = before.detach().requires_grad_()
        (grad_before,) = torch.autograd.grad(TORCH_ACTS[act](leaf), leaf, grad)
    return grad_before
