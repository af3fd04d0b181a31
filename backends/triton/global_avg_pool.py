"""Global average pooling over NHWC activations: the mean of each channel over H x W.

Each program reduces one image's H x W pixels for a block of channels, walking the pixels in
blocks and accumulating in fp32, then stores one pixel of the [N, C, 1, 1] output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch.nn import functional as F

from ..hooks import unfused
from .dispatch import nhwc, runs
from .launch import capturing, launch
from .layout import check, interpreted, pixel_stride
from .roofline import Work


@triton.jit
def global_avg_pool_kernel(
    x_ptr,  # input: pixel p of image n at x_ptr + (n * P + p) * stride_xp, channels contiguous
    out_ptr,  # output: image n's C means at out_ptr + n * stride_on
    P, C,  # pixels per image (H * W), channels
    stride_xp, stride_on,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    n = tl.program_id(0)
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    for p0 in range(0, P, BLOCK_P):
        pixels = p0 + tl.arange(0, BLOCK_P)
        rows = (n * P + pixels).to(tl.int64) * stride_xp
        mask = (pixels[:, None] < P) & (channels[None, :] < C)
        acc += tl.load(x_ptr + rows[:, None] + channels[None, :], mask=mask,
                       other=0.0).to(tl.float32)
    mean = tl.sum(acc, axis=0) / P
    tl.store(out_ptr + n * stride_on + channels, mean.to(out_ptr.dtype.element_ty),
             mask=channels < C)


tuned_global_avg_pool_kernel = triton.autotune(  # warps per program, cached per shape
    [triton.Config({}, num_warps=w) for w in (2, 4, 8)], key=["P", "C"])(global_avg_pool_kernel)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """`adaptive_avg_pool2d(x, 1)` of a channels-last tensor: [N, C, H, W] -> [N, C, 1, 1]."""
    n, c, h, w = check(x, "global_avg_pool")
    out = torch.empty((n, c, 1, 1), device=x.device, dtype=x.dtype,
                      memory_format=torch.channels_last)
    # [16 pixels, 128 channels] a step: eight channels a thread (128-bit loads in fp16), and an
    # fp32 accumulator that fits in registers (64 x 128 spilled at 8 warps on sm_80).
    block_p = 16 if interpreted() else min(16, triton.next_power_of_2(h * w))
    block_c = 16 if interpreted() else min(128, triton.next_power_of_2(c))
    grid = (n, triton.cdiv(c, block_c))
    kernel = global_avg_pool_kernel if interpreted() else tuned_global_avg_pool_kernel
    launch(kernel, grid, x, out, h * w, c, pixel_stride(x, "global_avg_pool"),
                 out.stride(0), BLOCK_P=block_p, BLOCK_C=block_c)
    return out


# ---- as a torch custom op: one node to autograd, torch.compile and torch.export ------------
# The schema is written out rather than inferred from annotations, so it registers the same on
# every torch from 2.4 on (the GPU image has 2.11, CI installs 2.13). Meta tensors reach the
# fake too: while launches are captured (launch.capture), it calls the launcher, which records.


@torch.library.custom_op("archc::global_avg_pool", mutates_args=(), schema="(Tensor x) -> Tensor")
def global_avg_pool_op(x):
    return global_avg_pool(x)


@global_avg_pool_op.register_fake
def _(x):
    if capturing():
        return global_avg_pool(x)
    return x.new_empty((x.shape[0], x.shape[1], 1, 1)).contiguous(
        memory_format=torch.channels_last)


def _global_avg_pool_context(ctx, inputs, output):
    ctx.shape = inputs[0].shape


def _global_avg_pool_backward(ctx, grad):
    n, c, h, w = ctx.shape
    return (grad / (h * w)).expand(n, c, h, w)


global_avg_pool_op.register_autograd(_global_avg_pool_backward,
                                     setup_context=_global_avg_pool_context)


# ---- the layer, as emitted modules call it (K.global_avg_pool: archc.backends.functional) ----


def layer(x: torch.Tensor, pool: torch.nn.Module | None = None) -> torch.Tensor:
    """adaptive_avg_pool2d(x, 1), the layer `pool` (None in files emitted before 2026-12-07);
    the means the depthwise conv that made x summed, if it did (`dwconv.layer(...,
    squeeze=True)`) and x is unchanged since; the module's own call where it must be seen
    (archc.backends.hooks.unfused: a hook on it)."""
    if pool is not None and unfused(pool):
        return pool(x)
    known = getattr(x, "_archc_squeeze", None)
    if known is not None and known.version == x._version:
        return known.means
    if not runs(x, "global_avg_pool"):
        return F.adaptive_avg_pool2d(x, 1)
    return torch.ops.archc.global_avg_pool(nhwc(x))


@dataclass(frozen=True)
class _Squeeze:
    """A tensor's channel means, [N, C, 1, 1], as of its `version` (in-place ops bump it)."""

    means: torch.Tensor
    version: int


def with_means(y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """y, carrying its channel means (made as y was) for `layer` to return."""
    y._archc_squeeze = _Squeeze(means, y._version)
    return y


def work(a: dict, blocks: dict, target) -> Work:
    """A launch's work (archc.backends.triton.roofline): no dot; the input read once, one pixel an
    image written."""
    x = a["x_ptr"]
    moved = x.shape[0] * (a["P"] + 1) * a["C"] * x.element_size()
    return Work(0, 0, moved, moved)


def shape(a: dict) -> str:
    """A launch's sizes, as `archc kernels` prints them."""
    return f"{a['C']}ch {a['P']}px"
