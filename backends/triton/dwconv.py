"""Depthwise convolution + bias + activation over NHWC activations: one read, one write.

A depthwise convolution (groups = input channels = output channels: the k x k spatial filter
of MobileNet, EfficientNet, MnasNet and ConvNeXt) sums no channels, so it has no dot: each
output is a k*k weighted sum of one channel's neighbourhood, bandwidth work like a pool. Eager
PyTorch runs it, its batch norm and its activation as three kernels, each a full read and
write of the activation; here it is one. Each program computes a block of output pixels for a
block of channels, like archc.backends.triton.pool2d: each window position is a [pixels, channels]
tile of contiguous channel vectors (128-bit loads in fp16), times that position's weights for
the block's channels (the launcher lays the weight out [KH*KW, C], channels contiguous),
accumulated in fp32; then the bias (a folded batch norm's, in eval mode), a layer norm over
the pixel's channels if asked (ConvNeXt's: a program then holds all C), the activation
(archc.backends.triton.epilogue), and one store in the output's dtype. Any window, stride and
symmetric padding; outside the image counts as zeros, as in torch's conv2d.

A squeeze-and-excitation block's squeeze (the global average pool of this conv's output)
costs no read of its own either: with `squeeze`, each program sums its tile's outputs over its
pixels and adds those sums, divided by the image's pixel count, into an fp32 [N, C] buffer
(one atomic add a channel a program; programs then tile one image each). The means are exact
to fp32 rounding, in an order that may differ from run to run.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.nn import functional as F

from ..activation import TORCH_ACTS
from ..folding import fold_bn
from ..hooks import unfused
from .dispatch import in_place, nhwc, recording, runs
from .epilogue import activate
from .global_avg_pool import with_means
from .launch import capturing, launch
from .layout import check, interpreted, pixel_stride
from .roofline import Work


@triton.jit
def dwconv_kernel(
    x_ptr,  # input: pixel (n, h, w) at x_ptr + ((n*H + h)*W + w) * stride_xp, channels contiguous
    w_ptr,  # weight [KH*KW, C]: window position (kh, kw)'s weights at w_ptr + (kh*KW + kw)*C
    b_ptr,  # bias [C], or any pointer when HAS_BIAS is false
    nw_ptr, nb_ptr,  # with NORM: the layer norm's weight and bias [C]
    out_ptr,  # output: pixel (n, oh, ow) likewise, with stride_op
    sq_ptr,  # with SQUEEZE: fp32 [N, C], zeroed, into which the channel means are added
    P, H, W, C, OH, OW,  # output pixels (N*OH*OW), input size, channels, output size
    stride_xp, stride_op,
    KH, KW, SH, SW, PH, PW,  # window, stride, padding
    eps,  # the layer norm's
    HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
    NORM: tl.constexpr,  # a layer norm over each pixel's channels (BLOCK_C holds them all)
    ALIGNED: tl.constexpr,  # C and both pixel strides are multiples of 8
    SQUEEZE: tl.constexpr,  # also add each image's channel means into sq_ptr
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    if ALIGNED:  # said so, Triton issues 128-bit loads in fp16 for channel counts like 72 or
        # 120, which it does not see are multiples of 8 (it specialises on multiples of 16)
        C, stride_xp, stride_op = (C // 8) * 8, (stride_xp // 8) * 8, (stride_op // 8) * 8
    pixels = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # n * OH * OW + oh * OW + ow
    real = pixels < P
    if SQUEEZE:  # a program's pixels lie in one image (axis 2), so its sums are that image's
        real = pixels < OH * OW
        pixels += tl.program_id(2) * (OH * OW)
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    keep = real[:, None] & (channels[None, :] < C)
    ow = pixels % OW
    oh = (pixels // OW) % OH
    n = pixels // (OW * OH)
    h0 = oh * SH - PH
    w0 = ow * SW - PW
    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    # Loops, not unrolled: as in pool2d, a 7x7 window unrolled would hold 49 tiles' loads in
    # flight (tests/test_aot.py holds every config to no spills on sm_80 and sm_90).
    for kh in range(0, KH):
        h = h0 + kh
        for kw in range(0, KW):
            w = w0 + kw
            inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
            row = ((n * H + h) * W + w).to(tl.int64) * stride_xp
            v = tl.load(x_ptr + row[:, None] + channels[None, :], mask=keep & inside[:, None],
                        other=0.0)
            weight = tl.load(w_ptr + (kh * KW + kw) * C + channels, mask=channels < C, other=0.0)
            acc += v.to(tl.float32) * weight.to(tl.float32)[None, :]
    if HAS_BIAS:
        acc += tl.load(b_ptr + channels, mask=channels < C, other=0.0).to(tl.float32)[None, :]
    if NORM:  # as F.layer_norm: the mean and biased variance of the pixel's C channels
        in_c = (channels < C)[None, :]
        mean = tl.sum(tl.where(in_c, acc, 0.0), axis=1) / C
        centred = tl.where(in_c, acc - mean[:, None], 0.0)
        inv_std = tl.rsqrt(tl.sum(centred * centred, axis=1) / C + eps)
        scale = tl.load(nw_ptr + channels, mask=channels < C, other=0.0).to(tl.float32)
        shift = tl.load(nb_ptr + channels, mask=channels < C, other=0.0).to(tl.float32)
        acc = centred * inv_std[:, None] * scale[None, :] + shift[None, :]
    acc = activate(acc, ACT)
    if SQUEEZE:
        sums = tl.sum(tl.where(keep, acc, 0.0), axis=0) / (OH * OW)
        tl.atomic_add(sq_ptr + tl.program_id(2) * C + channels, sums, mask=channels < C)
    out = out_ptr + pixels[:, None].to(tl.int64) * stride_op + channels[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=keep)


# One warp a program, each thread holding 16 of its [BLOCK_P, BLOCK_C] outputs (the pixels a
# program takes follow from the channel tile). ptxas kept loop-invariant values of the window
# loop on the stack (8 to 16 bytes) at 32 outputs a thread, and on 2 or 4 warps at 16
# (MobileNet's, MnasNet's, EfficientNet's and ShuffleNet's convs, sm_80 and sm_90, in eval
# and in training; tests/test_aot.py), so those are not offered to the tuner. One warp also
# keeps a layer norm's sums over a pixel's channels to shuffles. Each thread loads eight
# neighbouring channels of a pixel at a time when the tile allows (128 bits in fp16).
PER_THREAD = 16
CONFIGS = [triton.Config({"BLOCK_P": p}, num_warps=1) for p in (1, 2, 4, 8, 16, 32, 64)]


def prune_configs(configs: list, named_args: dict, **flags) -> list:
    """The config a launch may run with: PER_THREAD outputs a thread (at least one pixel a
    program)."""
    pixels = max(1, PER_THREAD * 32 // flags["BLOCK_C"])
    return [c for c in configs if c.kwargs["BLOCK_P"] == pixels]


tuned_dwconv_kernel = triton.autotune(
    CONFIGS, key=["C", "OH", "OW", "KH", "SH", "HAS_BIAS", "ACT", "NORM", "ALIGNED", "SQUEEZE",
                "BLOCK_C"],
    prune_configs_by={"early_config_prune": prune_configs})(dwconv_kernel)


def channel_block(c: int) -> int:
    """The channel tile: of 32, 64 and 128 wide, the one that pads `c` least, the widest of
    those that tie (MobileNet's 144 channels: 32, five tiles, not two of 128 that compute 112
    channels of padding)."""
    return min((128, 64, 32), key=lambda b: -(-c // b) * b)


def dwconv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: tuple[int, int] = (1, 1), pad: tuple[int, int] = (0, 0),
           act: str = "linear", norm: tuple | None = None, squeeze: bool = False):
    """`act(norm(conv2d(x, weight, bias, stride, pad, groups=C)))` of a channels-last tensor.

    x: [N, C, H, W], channels last or a channel slice of such a tensor. weight: [C, 1, KH, KW]
    (torch's layout for a depthwise conv). bias: [C] or None. norm: None, or (weight, bias,
    eps) of a layer norm over each pixel's C channels (ConvNeXt's, after its 7x7), computed
    in the epilogue: a program then holds all of a pixel's channels. act: an activation's
    name (archc.backends.activation.ACTS). Returns a new channels-last [N, C, OH, OW] tensor;
    with `squeeze`, that and its channel means, fp32 [N, C] (`adaptive_avg_pool2d(y, 1)`).
    """
    n, c, h, w = check(x, "dwconv")
    if weight.dim() != 4 or weight.shape[:2] != (c, 1):
        raise ValueError(f"dwconv: weight must be [{c}, 1, KH, KW], got {list(weight.shape)}")
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"dwconv: x, weight and bias must share a dtype, got {x.dtype}, "
                        f"{weight.dtype}, {None if bias is None else bias.dtype}")
    if bias is not None and tuple(bias.shape) != (c,):
        raise ValueError(f"dwconv: bias must be [{c}], got {list(bias.shape)}")
    if act not in TORCH_ACTS:
        raise ValueError(f"dwconv: unknown activation {act!r}")
    kh, kw = weight.shape[2:]
    (sh, sw), (ph, pw) = stride, pad
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"dwconv: stride {stride} must be positive and pad {pad} not negative")
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"dwconv: window {kh}x{kw} is larger than the padded input {h}x{w}")
    out = torch.empty((n, c, oh, ow), device=x.device, dtype=x.dtype,
                      memory_format=torch.channels_last)
    taps = weight.reshape(c, kh * kw).t().contiguous()  # [KH*KW, C]: channels contiguous
    if norm is not None and (tuple(norm[0].shape) != (c,) or tuple(norm[1].shape) != (c,)):
        raise ValueError(f"dwconv: the layer norm's weight and bias must be [{c}]")
    block_c = 16 if interpreted() else channel_block(c)
    if norm is not None:
        block_c = max(16, triton.next_power_of_2(c))
    pixels = n * oh * ow
    norm_weight, norm_bias, eps = norm if norm is not None else (taps, taps, 0.0)
    means = torch.zeros((n, c), device=x.device, dtype=torch.float32) if squeeze else taps
    strides = (pixel_stride(x, "dwconv"), pixel_stride(out, "dwconv", "out"))
    args = (x, taps, bias if bias is not None else taps, norm_weight, norm_bias, out, means,
            pixels, h, w, c, oh, ow, *strides, kh, kw, sh, sw, ph, pw, float(eps))
    flags = {"HAS_BIAS": bias is not None, "ACT": act, "NORM": norm is not None,
             "ALIGNED": all(v % 8 == 0 for v in (c, *strides)), "SQUEEZE": squeeze,
             "BLOCK_C": block_c}

    def grid(meta):  # with squeeze, an image's pixels a program's pixel axis, images axis 2
        if squeeze:
            return (triton.cdiv(oh * ow, meta["BLOCK_P"]), triton.cdiv(c, block_c), n)
        return (triton.cdiv(pixels, meta["BLOCK_P"]), triton.cdiv(c, block_c))

    # The tuner is left one config (prune_configs), so it never runs a launch twice to time
    # it, which would add the squeeze's means twice.
    if interpreted():
        launch(dwconv_kernel, grid({"BLOCK_P": 4}), *args, **flags, BLOCK_P=4)
    else:
        launch(tuned_dwconv_kernel, grid, *args, **flags)
    return (out, means) if squeeze else out


# ---- as a torch custom op: one node to autograd, torch.compile and torch.export ------------
# The schema is written out, as conv1x1's is, so it registers the same on torch 2.4 on.


@torch.library.custom_op(
    "archc::dwconv", mutates_args=(),
    schema="(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] pad, str act, "
           "Tensor? norm_weight=None, Tensor? norm_bias=None, float eps=0.0) -> Tensor")
def dwconv_op(x, weight, bias, stride, pad, act, norm_weight=None, norm_bias=None, eps=0.0):
    norm = (norm_weight, norm_bias, eps) if norm_weight is not None else None
    return dwconv(x, weight, bias, tuple(stride), tuple(pad), act, norm)


@dwconv_op.register_fake
def _(x, weight, bias, stride, pad, act, norm_weight=None, norm_bias=None, eps=0.0):
    if capturing():
        norm = (norm_weight, norm_bias, eps) if norm_weight is not None else None
        return dwconv(x, weight, bias, tuple(stride), tuple(pad), act, norm)
    (kh, kw), (n, c, h, w) = weight.shape[2:], x.shape
    oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1
    return x.new_empty((n, c, oh, ow)).contiguous(memory_format=torch.channels_last)


def torch_dwconv(x, weight, bias, stride, pad, act, norm_weight=None, norm_bias=None, eps=0.0):
    """The same with torch's functions: the fallback, and the backward's reference."""
    y = F.conv2d(x, weight, bias, tuple(stride), tuple(pad), groups=x.shape[1])
    if norm_weight is not None:
        y = F.layer_norm(y.permute(0, 2, 3, 1), (y.shape[1],), norm_weight, norm_bias, eps)
        y = y.permute(0, 3, 1, 2)
    return TORCH_ACTS[act](y)


def _dwconv_context(ctx, inputs, output):
    x, weight, bias, stride, pad, act, norm_weight, norm_bias, eps = inputs
    ctx.save_for_backward(x, weight, bias, norm_weight, norm_bias)
    ctx.args = (stride, pad, act)
    ctx.eps = eps


def _dwconv_backward(ctx, grad):
    """Torch's own depthwise convolution, layer norm and activation, recomputed and
    differentiated."""
    tensors = ctx.saved_tensors
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() if t is not None else None for t in tensors]
        x, weight, bias, norm_weight, norm_bias = leaves
        y = torch_dwconv(x, weight, bias, *ctx.args, norm_weight, norm_bias, ctx.eps)
        wrt = [t for t in leaves if t is not None]
        found = iter(torch.autograd.grad(y, wrt, grad))
    grads = [next(found) if t is not None else None for t in leaves]
    return (*grads[:3], None, None, None, *grads[3:], None)


dwconv_op.register_autograd(_dwconv_backward, setup_context=_dwconv_context)


# ---- the layer, as emitted modules call it (K.dwconv: archc.backends.functional) -------------


def layer(x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d | None = None,
          act: str = "linear", norm: torch.nn.LayerNorm | None = None,
          squeeze: bool = False) -> torch.Tensor:
    """`act(norm(bn(conv(x))))` for a depthwise conv layer as one kernel: in eval mode the
    batch norm folded into its weight and bias, the layer norm over channels (`norm`, a
    LayerNorm2d: ConvNeXt's) and the activation in its epilogue, one read and one write of
    the activations. While autograd records, or in training mode, the kernel makes the conv
    alone and the norms and activation are torch's own.
    `squeeze`: the output's global average pool is an SE block's squeeze; at inference the
    kernel sums it as it stores, and `global_avg_pool.layer` of this output returns it."""
    def after(y):
        y = bn(y) if bn is not None else y
        return TORCH_ACTS[act](norm(y) if norm is not None else y)

    if not runs(x, "dwconv") or unfused(conv, bn, norm):  # a hook sees each module called
        return after(conv(x))
    x = nhwc(x)
    geometry = (list(conv.stride), list(conv.padding))
    if recording(x, conv.weight) or (bn is not None and bn.training):
        bias = conv.bias.to(x.dtype) if conv.bias is not None else None
        return after(torch.ops.archc.dwconv(x, conv.weight.to(x.dtype), bias, *geometry,
                                            "linear"))
    weight, bias = (conv.weight, conv.bias) if bn is None else fold_bn(conv, bn)
    bias = bias.to(x.dtype) if bias is not None else None
    layer_norm = () if norm is None else (norm.weight, norm.bias, norm.eps)
    if squeeze and in_place(x):  # not through the custom op: the means are a second output
        y, means = dwconv(x, weight.to(x.dtype), bias, conv.stride, conv.padding, act,
                          layer_norm or None, squeeze=True)
        return with_means(y, means.view(*means.shape, 1, 1).to(x.dtype))
    return torch.ops.archc.dwconv(x, weight.to(x.dtype), bias, *geometry, act, *layer_norm)


def work(a: dict, blocks: dict, target) -> Work:
    """A launch's work (roofline.py): no dot (the multiply-adds run on CUDA cores,
    which the model does not count); the input read from DRAM once (the windows' overlap is
    served by L2), the weight and bias once, the output written once; with the squeeze, its
    fp32 means too (their atomic adds are served by L2)."""
    x = a["x_ptr"]
    e = x.element_size()
    pixels = x.shape[0] * (a["H"] * a["W"] + a["OH"] * a["OW"])
    moved = (pixels + a["KH"] * a["KW"] + 1) * a["C"] * e
    if a["SQUEEZE"]:
        moved += x.shape[0] * a["C"] * 4
    return Work(0, 0, moved, moved)


def shape(a: dict) -> str:
    """A launch's sizes, as `archc kernels` prints them."""
    return (f"{a['C']}ch {a['H']}x{a['W']}>{a['OH']}x{a['OW']} k{a['KH']}x{a['KW']} "
            f"s{a['SH']}")
