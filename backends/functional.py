"""The kernels as differentiable functions: what a module compiled with the triton backend calls.

Each function takes and returns ordinary tensors and has a backward written with torch ops
(the forward is the kernel). `conv1x1_siblings` runs sibling 1x1 convs (an inception's #1x1,
#3x3 reduce and #5x5 reduce) as one GEMM over their weights concatenated at run time, so the
module keeps one parameter per conv and its `state_dict` is the torch backend's.

Where no kernel can run (a CPU tensor without `TRITON_INTERPRET=1`), each function computes
the same with torch ops and says so once. Inputs in another memory format are made channels
last first (a documented conversion: the kernels read pixels as rows).
"""

from __future__ import annotations

import warnings

import torch
from torch.nn import functional as F

from .layout import interpreted

_warned: set[str] = set()


def conv1x1(x: torch.Tensor, conv: torch.nn.Conv2d, relu: bool = False) -> torch.Tensor:
    """`relu(conv(x))` for a 1x1 conv layer, as the fused GEMM over its weight and bias."""
    return _gemm(x, conv.weight, conv.bias, relu)


def conv1x1_siblings(x: torch.Tensor, convs: list[torch.nn.Conv2d],
                     relu: bool) -> list[torch.Tensor]:
    """Several 1x1 conv layers of one input as one GEMM over their weights side by side
    (concatenated at run time, so each layer keeps its parameters); their outputs, as
    channel slices of the GEMM's."""
    weight, bias = torch.cat([c.weight for c in convs]), None
    if any(c.bias is not None for c in convs):
        bias = torch.cat([c.bias if c.bias is not None else c.weight.new_zeros(c.out_channels)
                          for c in convs])
    out = _gemm(x, weight, bias, relu)
    return list(out.split([c.out_channels for c in convs], dim=1))


def _gemm(x, weight, bias, relu):
    if not _runs(x, "conv1x1"):
        y = F.conv2d(x, weight, bias)
        return F.relu(y) if relu else y
    weight = weight.to(x.dtype)  # under autocast the activations are half, the weights not
    bias = bias.to(x.dtype) if bias is not None else None
    return _Conv1x1.apply(_nhwc(x), weight, bias, relu)


def pool2d(x: torch.Tensor, kind: str, window: tuple[int, int], stride: tuple[int, int],
           pad: tuple[int, int], ceil: bool) -> torch.Tensor:
    """max_pool2d or avg_pool2d (torch's AvgPool2d divisor), Caffe's ceil rounding."""
    if not _runs(x, "pool2d"):
        return _torch_pool(x, kind, window, stride, pad, ceil)
    return _Pool2d.apply(_nhwc(x), kind, window, stride, pad, ceil)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """adaptive_avg_pool2d(x, 1)."""
    if not _runs(x, "global_avg_pool"):
        return F.adaptive_avg_pool2d(x, 1)
    return _GlobalAvgPool.apply(_nhwc(x))


# ---- autograd ------------------------------------------------------------------------------


class _Conv1x1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, relu):
        from .conv1x1 import conv1x1 as kernel

        out = kernel(x, weight, bias, relu=relu)
        ctx.save_for_backward(x, weight, out if relu else None)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, out = ctx.saved_tensors
        if out is not None:
            grad = grad * (out > 0)
        grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad)
        grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad)
        grad_b = grad.sum((0, 2, 3)) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None


class _Pool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind, window, stride, pad, ceil):
        from .pool2d import pool2d as kernel

        ctx.save_for_backward(x)
        ctx.args = (kind, window, stride, pad, ceil)
        return kernel(x, kind, window, stride, pad, ceil)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():  # torch's own pooling, differentiated
            leaf = x.detach().requires_grad_()
            (grad_x,) = torch.autograd.grad(_torch_pool(leaf, *ctx.args), leaf, grad)
        return grad_x, None, None, None, None, None


class _GlobalAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        from .global_avg_pool import global_avg_pool as kernel

        ctx.shape = x.shape
        return kernel(x)

    @staticmethod
    def backward(ctx, grad):
        n, c, h, w = ctx.shape
        return (grad / (h * w)).expand(n, c, h, w)


# ---- helpers -------------------------------------------------------------------------------


def _torch_pool(x, kind, window, stride, pad, ceil):
    if kind == "max":
        return F.max_pool2d(x, window, stride, pad, ceil_mode=ceil)
    return F.avg_pool2d(x, window, stride, pad, ceil_mode=ceil)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _runs(x: torch.Tensor, op: str) -> bool:
    """Whether the kernel can run on `x`; if not, say once that torch ops stand in."""
    if (x.device.type == "cuda") != interpreted():
        return True
    if op not in _warned:
        _warned.add(op)
        where = ("a CUDA tensor while TRITON_INTERPRET=1 is set" if x.device.type == "cuda"
                 else "a CPU tensor without TRITON_INTERPRET=1")
        warnings.warn(f"archc.backends: {op} runs as torch ops here ({where})", stacklevel=3)
    return False
