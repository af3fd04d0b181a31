"""The kernels registered as torch custom ops, with fake (shape-only) versions and backwards.

`torch.ops.archc.conv1x1`, `torch.ops.archc.pool2d` and `torch.ops.archc.global_avg_pool` are
what `functional.py` calls. As custom ops they are single nodes to autograd, to
`torch.compile` (Dynamo traces through them with the fake versions; Inductor calls them as
they are) and to `torch.export`. Meta tensors reach the fakes too: while launches are
captured (`launch.capture`), the fakes call the kernels' launchers, which record. The
backwards use torch ops: they are correct first; the forward is where these kernels save
memory traffic.

The schemas are written out rather than inferred from annotations, so the file works the same
on every torch from 2.4 on (the GPU image has 2.11, CI installs 2.13).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .launch import capturing


@torch.library.custom_op(
    "archc::conv1x1", mutates_args=(),
    schema="(Tensor x, Tensor weight, Tensor? bias, Tensor? residual, bool relu) -> Tensor")
def conv1x1(x, weight, bias, residual, relu):
    from .conv1x1 import conv1x1 as kernel

    return kernel(x, weight, bias, relu=relu, residual=residual)


@conv1x1.register_fake
def _(x, weight, bias, residual, relu):
    if capturing():  # meta tensors reach the fakes: the launcher records the launch
        from .conv1x1 import conv1x1 as kernel

        return kernel(x, weight, bias, relu=relu, residual=residual)
    n, _, h, w = x.shape
    return x.new_empty((n, weight.shape[0], h, w)).contiguous(memory_format=torch.channels_last)


def _conv1x1_context(ctx, inputs, output):
    x, weight, bias, residual, relu = inputs
    ctx.save_for_backward(x, weight, output if relu else None)
    ctx.has_bias, ctx.has_residual = bias is not None, residual is not None


def _conv1x1_backward(ctx, grad):
    x, weight, out = ctx.saved_tensors
    if out is not None:
        grad = grad * (out > 0)
    grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad)
    grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad)
    grad_b = grad.sum((0, 2, 3)) if ctx.has_bias else None
    return grad_x, grad_w, grad_b, grad if ctx.has_residual else None, None


conv1x1.register_autograd(_conv1x1_backward, setup_context=_conv1x1_context)


@torch.library.custom_op(
    "archc::pool2d", mutates_args=(),
    schema="(Tensor x, str kind, int[] window, int[] stride, int[] pad, bool ceil) -> Tensor")
def pool2d(x, kind, window, stride, pad, ceil):
    from .pool2d import pool2d as kernel

    return kernel(x, kind, tuple(window), tuple(stride), tuple(pad), ceil)


@pool2d.register_fake
def _(x, kind, window, stride, pad, ceil):
    from .pool2d import output_size

    if capturing():
        from .pool2d import pool2d as kernel

        return kernel(x, kind, tuple(window), tuple(stride), tuple(pad), ceil)
    h, w = (output_size(x.shape[2 + i], window[i], stride[i], pad[i], ceil) for i in (0, 1))
    return x.new_empty((x.shape[0], x.shape[1], h, w)).contiguous(
        memory_format=torch.channels_last)


def _pool2d_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])
    ctx.args = inputs[1:]


def _pool2d_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    with torch.enable_grad():  # torch's own pooling, differentiated
        leaf = x.detach().requires_grad_()
        (grad_x,) = torch.autograd.grad(torch_pool(leaf, *ctx.args), leaf, grad)
    return grad_x, None, None, None, None, None


pool2d.register_autograd(_pool2d_backward, setup_context=_pool2d_context)


@torch.library.custom_op("archc::global_avg_pool", mutates_args=(), schema="(Tensor x) -> Tensor")
def global_avg_pool(x):
    from .global_avg_pool import global_avg_pool as kernel

    return kernel(x)


@global_avg_pool.register_fake
def _(x):
    if capturing():
        from .global_avg_pool import global_avg_pool as kernel

        return kernel(x)
    return x.new_empty((x.shape[0], x.shape[1], 1, 1)).contiguous(
        memory_format=torch.channels_last)


def _global_avg_pool_context(ctx, inputs, output):
    ctx.shape = inputs[0].shape


def _global_avg_pool_backward(ctx, grad):
    n, c, h, w = ctx.shape
    return (grad / (h * w)).expand(n, c, h, w)


global_avg_pool.register_autograd(_global_avg_pool_backward,
                                  setup_context=_global_avg_pool_context)


def torch_pool(x, kind, window, stride, pad, ceil):
    """The same pooling with torch's functions: the fallback, and the backward's reference."""
    if kind == "max":
        return F.max_pool2d(x, tuple(window), tuple(stride), tuple(pad), ceil_mode=ceil)
    return F.avg_pool2d(x, tuple(window), tuple(stride), tuple(pad), ceil_mode=ceil)
