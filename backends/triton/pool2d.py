"""Max and average pooling over NHWC activations: any window, stride and padding; floor or
ceil rounding with Caffe's rule; exactly what torch's MaxPool2d and AvgPool2d compute.

Each program computes a block of output pixels for a block of channels, loading each window
position as a [pixels, channels] tile of contiguous channel vectors. Out-of-image positions
are skipped (max) or count as zeros (average), and the average divides as torch's AvgPool2d
does by default (count_include_pad): by the window clipped to the padded image, so a window
that ceil rounding lets run past the padding counts only what lies within it. Averages
accumulate in fp32. Pooling is bandwidth work: it reads each input once per window that covers
it (overlaps from L2) and writes each output once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

from ..hooks import unfused
from .concat import Part
from .dispatch import in_place, nhwc, runs
from .launch import capturing, launch
from .layout import check, interpreted, pixel_stride
from .roofline import Work


@triton.jit
def pool2d_kernel(
    x_ptr,  # input: pixel (n, h, w) at x_ptr + ((n*H + h)*W + w) * stride_xp, channels contiguous
    out_ptr,  # output: pixel (n, oh, ow) likewise, with stride_op
    P, H, W, C, OH, OW,  # output pixels (N*OH*OW), input size, channels, output size
    stride_xp, stride_op,
    KH, KW, SH, SW, PH, PW,  # window, stride, padding
    IS_MAX: tl.constexpr,
    ALIGNED: tl.constexpr,  # C and both pixel strides are multiples of 8
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    if ALIGNED:  # said so, Triton vectorises rows of 24 or 72 channels (dwconv.py)
        C, stride_xp, stride_op = (C // 8) * 8, (stride_xp // 8) * 8, (stride_op // 8) * 8
    pixels = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # n * OH * OW + oh * OW + ow
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    keep = (pixels[:, None] < P) & (channels[None, :] < C)
    ow = pixels % OW
    oh = (pixels // OW) % OH
    n = pixels // (OW * OH)
    h0 = oh * SH - PH
    w0 = ow * SW - PW
    if IS_MAX:
        acc = tl.full((BLOCK_P, BLOCK_C), float("-inf"), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    for kh in range(0, KH):
        h = h0 + kh
        for kw in range(0, KW):
            w = w0 + kw
            inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
            row = ((n * H + h) * W + w).to(tl.int64) * stride_xp
            v = tl.load(x_ptr + row[:, None] + channels[None, :], mask=keep & inside[:, None],
                        other=float("-inf") if IS_MAX else 0.0)
            if IS_MAX:  # positions outside the image load -inf: they never win
                acc = tl.maximum(acc, v.to(tl.float32))
            else:
                acc += v.to(tl.float32)
    if not IS_MAX:
        h1 = tl.minimum(h0 + KH, H + PH)  # torch's divisor: the window within the padded image
        w1 = tl.minimum(w0 + KW, W + PW)
        acc = acc / ((h1 - h0) * (w1 - w0)).to(tl.float32)[:, None]
    out = out_ptr + pixels[:, None].to(tl.int64) * stride_op + channels[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=keep)


# Warps per program, tuned per (C, output size) and cached. A program takes BLOCK_P output
# pixels of BLOCK_C contiguous channels: 1024 elements, so that each thread loads eight
# neighbouring channels of a pixel at a time (one 128-bit load in fp16) and a program has
# enough independent loads in flight (one pixel a program issued 16-bit loads, and 802,816
# programs for GoogLeNet's first pool at batch 256). Not 4 warps: ptxas then kept a 7x7 average
# pool at 32 registers and spilled (sm_80, fp16; tests/test_aot.py).
ELEMENTS = 1024
tuned_pool2d_kernel = triton.autotune(
    [triton.Config({}, num_warps=w) for w in (1, 2)], key=["C", "OH", "OW"])(pool2d_kernel)


def output_size(size: int, window: int, stride: int, pad: int, ceil: bool) -> int:
    """torch's (and Caffe's) rule: with ceil, a last window that would start inside the
    right/bottom padding is dropped."""
    span = size + 2 * pad - window
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool2d(x: torch.Tensor, kind: str, window: tuple[int, int], stride: tuple[int, int],
           pad: tuple[int, int] = (0, 0), ceil: bool = False,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """`max_pool2d` (kind "max") or `avg_pool2d` (kind "avg") of a channels-last tensor.

    x: [N, C, H, W], channels last or a channel slice of such a tensor. out: where to write
    (channels last, or a channel slice), allocated if None. Returns `out`.
    """
    if kind not in ("max", "avg"):
        raise ValueError(f"pool2d: kind must be 'max' or 'avg', got {kind!r}")
    n, c, h, w = check(x, "pool2d")
    (kh, kw), (sh, sw), (ph, pw) = window, stride, pad
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0 or ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"pool2d: window {window}, stride {stride} and pad {pad} must be "
                         "positive, with pad at most half the window")
    oh, ow = output_size(h, kh, sh, ph, ceil), output_size(w, kw, sw, pw, ceil)
    if oh < 1 or ow < 1:
        raise ValueError(f"pool2d: window {window} is larger than the padded input {h}x{w}")
    if out is None:
        out = torch.empty((n, c, oh, ow), device=x.device, dtype=x.dtype,
                          memory_format=torch.channels_last)
    elif tuple(out.shape) != (n, c, oh, ow) or out.dtype != x.dtype:
        raise ValueError(f"pool2d: out must be [{n}, {c}, {oh}, {ow}] {x.dtype}, got "
                         f"{list(out.shape)} {out.dtype}")
    check(out, "pool2d", "out")
    block_c = 16 if interpreted() else min(128, triton.next_power_of_2(c))
    block_p = 4 if interpreted() else ELEMENTS // block_c
    pixels = n * oh * ow
    grid = (triton.cdiv(pixels, block_p), triton.cdiv(c, block_c))
    kernel = pool2d_kernel if interpreted() else tuned_pool2d_kernel
    x_rows, out_rows = pixel_stride(x, "pool2d"), pixel_stride(out, "pool2d", "out")
    launch(kernel, grid, x, out, pixels, h, w, c, oh, ow, x_rows, out_rows, kh, kw, sh, sw, ph, pw,
           IS_MAX=kind == "max", ALIGNED=all(v % 8 == 0 for v in (c, x_rows, out_rows)),
           BLOCK_P=block_p, BLOCK_C=block_c)
    return out


# ---- as a torch custom op: one node to autograd, torch.compile and torch.export ------------
# The schema is written out rather than inferred from annotations, so it registers the same on
# every torch from 2.4 on (the GPU image has 2.11, CI installs 2.13). Meta tensors reach the
# fake too: while launches are captured (launch.capture), it calls the launcher, which records.


@torch.library.custom_op(
    "archc::pool2d", mutates_args=(),
    schema="(Tensor x, str kind, int[] window, int[] stride, int[] pad, bool ceil) -> Tensor")
def pool2d_op(x, kind, window, stride, pad, ceil):
    return pool2d(x, kind, tuple(window), tuple(stride), tuple(pad), ceil)


@pool2d_op.register_fake
def _(x, kind, window, stride, pad, ceil):
    if capturing():
        return pool2d(x, kind, tuple(window), tuple(stride), tuple(pad), ceil)
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


pool2d_op.register_autograd(_pool2d_backward, setup_context=_pool2d_context)


def torch_pool(x, kind, window, stride, pad, ceil):
    """The same pooling with torch's functions: the fallback, and the backward's reference."""
    if kind == "max":
        return F.max_pool2d(x, tuple(window), tuple(stride), tuple(pad), ceil_mode=ceil)
    return F.avg_pool2d(x, tuple(window), tuple(stride), tuple(pad), ceil_mode=ceil)


# ---- the layer, as emitted modules call it (K.pool2d: archc.backends.functional) -------------


def layer(x: torch.Tensor, pool: torch.nn.Module | str, *geometry,
          out: Part | None = None) -> torch.Tensor:
    """`pool(x)` for an nn.MaxPool2d or nn.AvgPool2d (torch's divisor, Caffe's ceil rounding)
    as one kernel; `out`: a concat's slice to write into, at inference. The module's own call
    where it must be seen (hooks.unfused: a hook on it) or asks what the kernel does not do
    (dilation, indices, padding left out of the average, a divisor). Files emitted before
    2026-12-07 give the pool as its kind and geometry: `"max", window, stride, pad, ceil`."""
    if isinstance(pool, str):
        kind, (window, stride, pad, ceil) = pool, geometry
    elif unfused(pool) or not _plain(pool):
        return pool(x)
    else:
        kind, window, stride, pad, ceil = _geometry(pool)
    if not runs(x, "pool2d"):
        return torch_pool(x, kind, window, stride, pad, ceil)
    x = nhwc(x)
    if out is not None and in_place(x):
        h, w = (output_size(x.shape[2 + i], window[i], stride[i], pad[i], ceil) for i in (0, 1))
        return pool2d(x, kind, window, stride, pad, ceil, out=out.tensor(x, h, w))
    return torch.ops.archc.pool2d(x, kind, list(window), list(stride), list(pad), ceil)


def _plain(pool: torch.nn.Module) -> bool:
    """Whether the kernel computes the module's pooling."""
    if isinstance(pool, torch.nn.MaxPool2d):
        return _pair(pool.dilation) == (1, 1) and not pool.return_indices
    return isinstance(pool, torch.nn.AvgPool2d) and pool.count_include_pad and \
        pool.divisor_override is None


def _geometry(pool: torch.nn.Module) -> tuple:
    """(kind, window, stride, pad, ceil) of a pooling module, as the kernel takes them."""
    kind = "max" if isinstance(pool, torch.nn.MaxPool2d) else "avg"
    return (kind, _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size),
            _pair(pool.padding), pool.ceil_mode)


def work(a: dict, blocks: dict, target) -> Work:
    """A launch's work (archc.backends.triton.roofline): no dot; the input read from DRAM once (the
    windows' overlap is served by L2) and the output written once."""
    x = a["x_ptr"]
    pixels = x.shape[0] * (a["H"] * a["W"] + a["OH"] * a["OW"])
    moved = pixels * a["C"] * x.element_size()
    return Work(0, 0, moved, moved)


def shape(a: dict) -> str:
    """A launch's sizes, as `archc kernels` prints them."""
    return (f"{a['C']}ch {a['H']}x{a['W']}>{a['OH']}x{a['OW']} k{a['KH']}x{a['KW']} "
            f"s{a['SH']}")
