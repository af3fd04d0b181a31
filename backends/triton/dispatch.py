"""What every kernel's entry point asks: can the kernel run here, may it write in place.

An entry point (each kernel file's `layer`, re-exported by archc.backends.functional for the
modules the triton backend emits) first calls the layers it computes one by one, as the torch
backend does, where anything must see them called (archc.backends.hooks.unfused); then runs
its kernel where one can run, else the same with torch ops (`runs`, which says so once);
writes into shared buffers (a concat's slice, a value not yet computed) only while autograd
does not record and nothing compiles (`in_place`); and hands the kernels channels-last
tensors (`nhwc`: the kernels read pixels as rows).
"""

from __future__ import annotations

import warnings

import torch

from .launch import capturing
from .layout import interpreted

_warned: set[tuple[str, str]] = set()

# Kernels built on tl.dot, which Triton's interpreter computes wrong in bfloat16 (a 1x1 GEMM
# off by 5e10 under Triton 3.x): torch ops stand in for them there.
DOT_KERNELS = frozenset({"conv1x1"})


def runs(x: torch.Tensor, op: str) -> bool:
    """Whether the kernel can run on `x`; if not, say once that torch ops stand in."""
    if capturing():
        return True
    if (x.device.type == "cuda") == interpreted():
        where = ("a CUDA tensor while TRITON_INTERPRET=1 is set" if x.device.type == "cuda"
                 else "a CPU tensor without TRITON_INTERPRET=1")
    elif interpreted() and x.dtype == torch.bfloat16 and op in DOT_KERNELS:
        where = "bfloat16 under TRITON_INTERPRET=1, whose dot products get it wrong"
    else:
        return True
    if (op, where) not in _warned:
        _warned.add((op, where))
        warnings.warn(f"archc.backends: {op} runs as torch ops here ({where})", stacklevel=3)
    return False


def recording(*tensors: torch.Tensor) -> bool:
    """Whether autograd records an op of these tensors."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def in_place(*tensors: torch.Tensor) -> bool:
    """Whether outputs may go into shared buffers: not while autograd records or compiles."""
    return not recording(*tensors) and not torch.compiler.is_compiling()


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)
