"""Fused 1x1 convolution + bias + activation, as one GEMM over NHWC activations.

A 1x1 convolution of a channels-last tensor is a matrix product: the input seen as
`[M = N*H*W, K = C_in]` (no copy: its rows are the pixels) times the weight seen as
`[K, C_out]` (the transpose of `[C_out, C_in, 1, 1]`, again no copy). The kernel tiles the
output `[M, C_out]`, accumulates over K in fp32, adds the bias (and a shortcut) and applies
the activation (any of archc.backends.triton.epilogue's) to the accumulator, and stores once, in the
output's dtype.

A squeeze-and-excitation gate (`gate`, one factor an image and input channel) is multiplied
into x as the kernel loads it: the gated tensor, as large as x, is never written or read.

The output may be a channel slice of a larger channels-last tensor (`buffer[:, 64:192]`): its
rows are then `buffer`'s channel count apart, and a concat of branches costs nothing. Channel
counts under 16, which `tl.dot` cannot take as a block, are masked loads of a 16-wide block.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.nn import functional as F

from ..activation import TORCH_ACTS, act_of, activation_grad
from ..folding import fold_bn, scaled
from ..hooks import unfused
from . import pool2d
from .concat import Part
from .dispatch import in_place, nhwc, recording, runs
from .epilogue import activate
from .gate import Gated, Pending
from .launch import capturing, launch, shared_limit
from .layout import check, interpreted, pixel_stride
from .roofline import Work, cdiv, held_by_l2

# A small list, tuned per (M, N, K) and flags and cached by Triton's autotuner: compile time
# is a cost users feel. Block K is at least 16, as tl.dot needs; GROUP_M m-tiles share their
# rows of x across every n-tile before the grid moves on (an L2 swizzle). `prune_configs`
# leaves out, for each launch, the tiles wider than its N and those over the device's shared
# memory, so the tuner only ever times configs that can launch.
CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=8,
                  num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4,
                  num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4,
                  num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=4,
                  num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4,
                  num_stages=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 16, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=4,
                  num_stages=4),
    # For few pixels (batch 1 at 7x7) and channel counts that are not multiples of 16 (every
    # load then scalar, an address register an element): small tiles that do not spill.
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4,
                  num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4,
                  num_stages=3),
]
# Correctness, not speed; two m-tiles a group, so the interpreter tests walk the swizzle.
INTERPRETER_BLOCKS = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "GROUP_M": 2}


@triton.jit
def conv1x1_kernel(
    x_ptr,  # input pixels: row m at x_ptr + m * stride_xm, channels contiguous
    w_ptr,  # weight [C_out, C_in]: element (k, n) of the [K, N] matrix at n*stride_wn + k*stride_wk
    b_ptr,  # bias [C_out], or any pointer when HAS_BIAS is false
    out_ptr,  # output pixels: row m at out_ptr + m * stride_om, channels contiguous
    rest_ptr,  # with a SPLIT: output channels SPLIT.. go here, row m at rest_ptr + m * stride_rm
    res_ptr,  # with HAS_RESIDUAL: a tensor like the output, added before the activation
    gate_ptr,  # with HAS_GATE: [N_images, K] factors, contiguous, multiplied into x's rows
    M, N, K,  # pixels (N*H*W), output channels, input channels
    H, W,  # the image size, for POOL's neighbours
    SPLIT,  # channels 0..SPLIT go to out, the others to rest (SPLIT = N: all to out)
    stride_xm, stride_wn, stride_wk, stride_om, stride_rm, stride_resm,
    HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr, HAS_GATE: tl.constexpr,
    ACT: tl.constexpr,  # the activation's name (archc.backends.activation.ACTS)
    POOL: tl.constexpr,  # the input is max-pooled 3x3/1 (pad 1) as it is loaded
    ALIGNED: tl.constexpr,  # N, K, SPLIT and every row stride are multiples of 8
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    # Programs in groups of GROUP_M m-tiles, n fastest within a group: the group's rows of x
    # stay in L2 while every n-tile reads them (in m-fastest order, an x larger than L2 was
    # read from DRAM once per n-tile).
    if ALIGNED:  # said so, Triton issues 128-bit accesses in fp16 for widths like 24 or 72,
        # which it does not see are multiples of 8 (it specialises on multiples of 16)
        K, stride_xm, stride_wn = (K // 8) * 8, (stride_xm // 8) * 8, (stride_wn // 8) * 8
        N, SPLIT = (N // 8) * 8, (SPLIT // 8) * 8
        stride_om, stride_rm = (stride_om // 8) * 8, (stride_rm // 8) * 8
        stride_resm = (stride_resm // 8) * 8
    pid = tl.program_id(0)
    tiles_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_size = tl.minimum(tl.cdiv(M, BLOCK_M) - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_size
    pid_n = (pid % per_group) // group_size
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    depth = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if POOL:
        w_of = rows % W
        h_of = (rows // W) % H
    if HAS_GATE:
        image = rows // (H * W)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + depth
        valid = (rows[:, None] < M) & (k[None, :] < K)
        if POOL:  # GoogLeNet's pool projection: the max of each pixel's 3x3 neighbourhood
            x = tl.full((BLOCK_M, BLOCK_K), float("-inf"), tl.float32)
            # Loops, not unrolled (tl.static_range): unrolled, the nine loads were all in
            # flight and the pipeliner buffered each, 295-483 KB of shared memory in fp32
            # (over sm_90's 227 KB and sm_80's 163 KB) and 255 registers with spills; as
            # loops, every config fits both (tests/test_aot.py).
            for dh in range(3):
                for dw in range(3):
                    h = h_of + dh - 1
                    w_ = w_of + dw - 1
                    near = (h >= 0) & (h < H) & (w_ >= 0) & (w_ < W)
                    pixel = (rows + (dh - 1) * W + (dw - 1)).to(tl.int64)
                    v = tl.load(x_ptr + pixel[:, None] * stride_xm + k[None, :],
                                mask=valid & near[:, None], other=float("-inf"))
                    x = tl.maximum(x, v.to(tl.float32))
            x = tl.where(valid, x, 0.0).to(x_ptr.dtype.element_ty)
        else:
            x = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_xm + k[None, :],
                        mask=valid, other=0.0)
            if HAS_GATE:  # the image's factor for each input channel, from L1/L2 (N*K small)
                g = tl.load(gate_ptr + image[:, None] * K + k[None, :], mask=valid, other=0.0)
                x = (x.to(tl.float32) * g.to(tl.float32)).to(x_ptr.dtype.element_ty)
        w = tl.load(w_ptr + k[:, None] * stride_wk + cols[None, :] * stride_wn,
                    mask=(k[:, None] < K) & (cols[None, :] < N), other=0.0)
        acc = tl.dot(x, w, acc, input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
    if HAS_RESIDUAL:  # a residual connection's shortcut, added in the epilogue
        acc += tl.load(res_ptr + rows[:, None].to(tl.int64) * stride_resm + cols[None, :],
                       mask=(rows[:, None] < M) & (cols[None, :] < N), other=0.0).to(tl.float32)
    acc = activate(acc, ACT).to(out_ptr.dtype.element_ty)
    row = rows[:, None].to(tl.int64)
    inside = rows[:, None] < M
    tl.store(out_ptr + row * stride_om + cols[None, :], acc,
             mask=inside & (cols[None, :] < SPLIT))
    if SPLIT < N:  # a merged GEMM whose first conv writes into a concat: the rest elsewhere
        tl.store(rest_ptr + row * stride_rm + (cols[None, :] - SPLIT), acc,
                 mask=inside & (cols[None, :] >= SPLIT) & (cols[None, :] < N))


# The key holds the flags too: a config tuned for a plain GEMM of some size must not be reused
# for a launch with a residual or a pool, whose registers and shared memory differ.
TUNING_KEY = ["M", "N", "K", "HAS_BIAS", "HAS_RESIDUAL", "HAS_GATE", "ACT", "POOL",
              "ALIGNED", "PRECISION"]


def shared_estimate(config: triton.Config, element_size: int, gated: bool = False) -> int:
    """An upper bound on a config's shared memory: every pipeline stage buffering one x tile
    and one w tile, and with a gate one tile of its factors (tests/test_aot.py holds it above
    what ptxas reports, for every launch)."""
    kw = config.kwargs
    x_tile = kw["BLOCK_M"] * kw["BLOCK_K"]
    tiles = x_tile * (2 if gated else 1) + kw["BLOCK_K"] * kw["BLOCK_N"]
    return config.num_stages * tiles * element_size


def prune_configs(configs: list, named_args: dict, **flags) -> list:
    """The configs a launch may be tuned over. Within the device's shared memory (a config
    over it cannot launch; when Triton's tuner finds every config failing it launches the
    first anyway). Tiles matched to the problem: none wider than N's power of two (a 128-wide
    tile for N = 32 computes three quarters padding), none narrower than 32 unless N is (a
    16-wide tile reads x once per 16 output channels), none taller than M's power of two (64
    at least: Hopper's wgmma). And lean tiles where ptxas spilled (tests/test_aot.py, every
    shipped net): rows of x or of the output not 16-aligned make every load or store scalar,
    an address register an element, so at most 16 accumulators a thread and K blocks of 32;
    a POOL launch keeps K blocks of 32, a gated one x tiles of 16 elements a thread. Raises
    when nothing fits."""
    limit = shared_limit()
    size, gated = named_args["x_ptr"].element_size(), bool(flags.get("HAS_GATE"))
    fitting = [c for c in configs if shared_estimate(c, size, gated) <= limit]
    if not fitting:
        raise RuntimeError(f"conv1x1: no config fits this device's {limit // 1024} KB of shared "
                           "memory a block")
    matched = [c for c in fitting if _matched(c, named_args, flags)]
    return matched or [min(fitting, key=lambda c: shared_estimate(c, size, gated))]


def _matched(config: triton.Config, a: dict, flags: dict) -> bool:
    kw = config.kwargs
    widest = max(16, triton.next_power_of_2(a["N"]))
    tallest = max(64, triton.next_power_of_2(a.get("M", 64)))
    aligned = all(a.get(k, 16) % 16 == 0 for k in ("K", "stride_xm", "stride_om"))
    per_thread = kw["BLOCK_M"] * kw["BLOCK_N"] // (32 * config.num_warps)
    lean = per_thread <= 16 and kw["BLOCK_K"] <= 32  # 32 spilled: RegNetX-1.6GF's 408-wide
    # A gate scales each x tile in registers: at most 16 of its elements a thread (32 spilled:
    # m128 n64 k32 w4 on sm_80 in fp32, EfficientNet-B0's projections).
    gate_fits = kw["BLOCK_M"] * kw["BLOCK_K"] <= 16 * 32 * config.num_warps
    return (min(32, widest) <= kw["BLOCK_N"] <= widest and kw["BLOCK_M"] <= tallest and
            (aligned or lean) and (not flags.get("POOL") or kw["BLOCK_K"] <= 32) and
            (not flags.get("HAS_GATE") or gate_fits))


tuned_conv1x1_kernel = triton.autotune(CONFIGS, key=TUNING_KEY, prune_configs_by={
    "early_config_prune": prune_configs})(conv1x1_kernel)


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
            relu: bool = False, out: torch.Tensor | None = None,
            rest: torch.Tensor | None = None,
            residual: torch.Tensor | None = None, pool: bool = False,
            act: str | None = None, gate: torch.Tensor | None = None) -> torch.Tensor:
    """`act(conv2d(x * gate, weight, bias))` for a 1x1 weight, on channels-last tensors.

    x: [N, C_in, H, W], channels last (or a channel slice of such a tensor). weight:
    [C_out, C_in, 1, 1] or [C_out, C_in]. bias: [C_out] or None. out: where to write, an
    [N, C_out, H, W] channels-last tensor or channel slice of one; allocated if None.
    rest: with it, `out` takes the first channels only and `rest` the others (a merged GEMM
    whose first conv writes into a concat's buffer). residual: an [N, C_out, H, W] NHWC
    tensor added to the accumulator before the activation (a ResNet block's shortcut). act:
    the activation's name (archc.backends.activation.ACTS; `relu=True` says "relu"). pool: x is
    max-pooled 3x3, stride 1, pad 1 as it is loaded (GoogLeNet's pool projection, whose pooled
    tensor then never exists). gate: [N, C_in] or [N, C_in, 1, 1], a factor an image and
    input channel multiplied into x as it is loaded (a squeeze-and-excitation gate, whose gated
    tensor then never exists). Returns `out`.
    """
    n, c_in, h, w = check(x, "conv1x1")
    weight = weight.reshape(weight.shape[0], -1)
    c_out = weight.shape[0]
    if weight.shape[1] != c_in:
        raise ValueError(f"conv1x1: weight takes {weight.shape[1]} channels, x has {c_in}")
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"conv1x1: x, weight and bias must share a dtype, got {x.dtype}, "
                        f"{weight.dtype}, {None if bias is None else bias.dtype}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"conv1x1: bias must be [{c_out}], got {list(bias.shape)}")
    split = c_out if rest is None else c_out - rest.shape[1]
    out = _output(out, (n, split, h, w), x, "out")
    rest = out if rest is None else _output(rest, (n, c_out - split, h, w), x, "rest")
    if residual is not None:
        if split != c_out or tuple(residual.shape) != (n, c_out, h, w) or \
                residual.dtype != x.dtype:
            raise ValueError(f"conv1x1: residual must be [{n}, {c_out}, {h}, {w}] {x.dtype} "
                             f"and the output whole, got {list(residual.shape)} "
                             f"{residual.dtype}")
        check(residual, "conv1x1", "residual")
    if gate is not None:
        if gate.numel() != n * c_in or gate.dtype != x.dtype or pool:
            raise ValueError(f"conv1x1: gate must be [{n}, {c_in}] {x.dtype} (and no pool), "
                             f"got {list(gate.shape)} {gate.dtype}")
        gate = gate.reshape(n, c_in).contiguous()
    m = n * h * w
    # (args 13 to 18: the row strides of x, the weight (its stride_wk is 1), out, rest, residual)
    args = (x, weight, bias if bias is not None else weight, out, rest,
            residual if residual is not None else out, gate if gate is not None else weight,
            m, c_out, c_in, h, w, split,
            pixel_stride(x, "conv1x1"), weight.stride(0), weight.stride(1),
            pixel_stride(out, "conv1x1", "out"), pixel_stride(rest, "conv1x1", "rest"),
            pixel_stride(residual, "conv1x1", "residual") if residual is not None else 0)
    # fp32: TF32 on the tensor cores, as cuDNN's convolutions do by default in PyTorch.
    flags = {"HAS_BIAS": bias is not None, "HAS_RESIDUAL": residual is not None,
             "HAS_GATE": gate is not None, "ACT": act_of(relu, act), "POOL": pool,
             "ALIGNED": all(v % 8 == 0 for v in (c_in, c_out, split, args[13], args[14],
                                                 *args[16:19])),
             "PRECISION": "ieee" if interpreted() or x.dtype != torch.float32 else "tf32"}
    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(c_out, meta["BLOCK_N"]),)

    if interpreted():
        blocks = INTERPRETER_BLOCKS
        launch(conv1x1_kernel, grid(blocks), *args, **flags, **blocks)
    else:
        launch(tuned_conv1x1_kernel, grid, *args, **flags)
    return out


def _output(given: torch.Tensor | None, shape: tuple, x: torch.Tensor, name: str):
    """`given`, checked to be an NHWC-writable `shape` of x's dtype, or a new one."""
    if given is None:
        return torch.empty(shape, device=x.device, dtype=x.dtype,
                           memory_format=torch.channels_last)
    if tuple(given.shape) != shape or given.dtype != x.dtype or given.device != x.device:
        raise ValueError(f"conv1x1: {name} must be {list(shape)} {x.dtype} on {x.device}, "
                         f"got {list(given.shape)} {given.dtype} on {given.device}")
    check(given, "conv1x1", name)
    return given


# ---- as a torch custom op: one node to autograd, torch.compile and torch.export ------------
# The schema is written out rather than inferred from annotations, so it registers the same on
# every torch from 2.4 on (the GPU image has 2.11, CI installs 2.13). Meta tensors reach the
# fake too: while launches are captured (launch.capture), it calls the launcher, which records.


@torch.library.custom_op(
    "archc::conv1x1", mutates_args=(),
    schema="(Tensor x, Tensor weight, Tensor? bias, Tensor? residual, str act, "
           "Tensor? gate=None) -> Tensor")
def conv1x1_op(x, weight, bias, residual, act, gate=None):
    return conv1x1(x, weight, bias, residual=residual, act=act, gate=gate)


@conv1x1_op.register_fake
def _(x, weight, bias, residual, act, gate=None):
    if capturing():
        return conv1x1(x, weight, bias, residual=residual, act=act, gate=gate)
    n, _, h, w = x.shape
    return x.new_empty((n, weight.shape[0], h, w)).contiguous(memory_format=torch.channels_last)


def _conv1x1_context(ctx, inputs, output):
    x, weight, bias, residual, act, gate = inputs
    # ReLU's gradient is read off its output; another activation's from its input, recomputed
    # in the backward (`layer` records torch's activation instead, in training, where the
    # input is kept anyway).
    recompute = act not in ("linear", "relu")
    ctx.save_for_backward(x, weight, output if act == "relu" else None,
                          bias if recompute else None, residual if recompute else None, gate)
    ctx.has_bias, ctx.has_residual, ctx.act = bias is not None, residual is not None, act


def _conv1x1_backward(ctx, grad):
    """Torch's own convolution gradients: correct first; the forward is where the kernel
    saves memory traffic."""
    x, weight, out, bias, residual, gate = ctx.saved_tensors
    gated = x * gate.reshape(*gate.shape[:2], 1, 1) if gate is not None else x
    if ctx.act == "relu":
        grad = grad * (out > 0)
    elif ctx.act != "linear":
        before = F.conv2d(gated, weight.reshape(*weight.shape[:2], 1, 1), bias)
        before = before + residual if residual is not None else before
        grad = activation_grad(before, ctx.act, grad)
    grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad)
    grad_w = torch.nn.grad.conv2d_weight(gated, weight.shape, grad)
    grad_b = grad.sum((0, 2, 3)) if ctx.has_bias else None
    grad_gate = None
    if gate is not None:  # d(x * gate): the gate's gradient sums over each image's pixels
        grad_gate = (grad_x * x).sum((2, 3)).reshape(gate.shape)
        grad_x = grad_x * gate.reshape(*gate.shape[:2], 1, 1)
    return grad_x, grad_w, grad_b, grad if ctx.has_residual else None, None, grad_gate


conv1x1_op.register_autograd(_conv1x1_backward, setup_context=_conv1x1_context)


# ---- the layer, as emitted modules call it (K.conv1x1: archc.backends.functional) ------------


def layer(x: torch.Tensor, conv: torch.nn.Conv2d, relu: bool = False,
          out: Part | None = None, bn: torch.nn.BatchNorm2d | None = None,
          residual: torch.Tensor | None = None, pool: torch.nn.Module | bool = False,
          act: str | None = None, scale: torch.nn.Module | None = None,
          deferred: bool = False) -> torch.Tensor:
    """`act(bn(conv(x)) + residual)` for a 1x1 conv layer as one GEMM: bias, the residual
    and the activation in its epilogue (`relu=True` is `act="relu"`). A batch norm in eval
    mode is folded into the GEMM's weight and bias; in training mode (batch statistics,
    running averages to update) it runs after the GEMM as torch's own, and the addition and
    activation with it. A layer scale (`scale`, ConvNeXt's: a learnt factor a channel, its
    `.scale` [C, 1, 1]) is folded into the weight and bias in every mode (the fold is torch
    ops, so autograd reaches the factors). An activation other than ReLU is torch's own
    while autograd records. x may be a `Gated` value (archc.backends.triton.gate).
    `pool`: x is first max-pooled 3x3/1 (pad 1) by that module (True: files emitted before
    2026-12-07, which name none); at inference while the GEMM loads it, else as its own op.
    Where a layer must be seen called (hooks.unfused: a hook on one), each module is
    called in turn, as the torch backend does.
    `deferred`: the output's one reader is a sum with a shortcut (the plan says so); at
    inference a `Pending` value that `gate.add` runs with the shortcut in the epilogue."""
    act = act_of(relu, act)
    if unfused(conv, bn, scale, pool):
        return one_by_one(x, conv, bn, scale, residual, pool, act)
    if scale is not None:
        return layer(x, scaled(conv, scale.scale.flatten()), relu, out, bn, residual, pool,
                     act, deferred=deferred)
    if deferred and residual is None and out is None and not pool and act == "linear" and \
            runs(x, "conv1x1") and (bn is None or not bn.training) and \
            in_place(x, conv.weight):
        return _pending(x, conv, bn)
    x, gate = _ungate(x, conv, bn, pool)
    if pool:
        if runs(x, "conv1x1") and in_place(x, conv.weight) and bn is None and \
                residual is None and act in ("linear", "relu"):
            return _pooled_gemm(x, conv, act == "relu", out)
        x = pool2d.layer(x, pool) if isinstance(pool, torch.nn.Module) else \
            pool2d.layer(x, "max", (3, 3), (1, 1), (1, 1), True)
    if act not in ("linear", "relu") and recording(x, conv.weight):
        return TORCH_ACTS[act](layer(x, conv, bn=bn, residual=residual))
    if bn is None and residual is None and gate is None:
        return siblings(x, [conv], relu, out, act=act)[0]
    if not runs(x, "conv1x1") or (bn is not None and bn.training):
        y = layer(x, conv) if runs(x, "conv1x1") else F.conv2d(x, conv.weight, conv.bias)
        y = bn(y) if bn is not None else y
        y = y + residual if residual is not None else y
        return TORCH_ACTS[act](y)
    weight, bias = (conv.weight, conv.bias) if bn is None else fold_bn(conv, bn)
    x, weight = nhwc(x), weight.to(x.dtype)
    bias = bias.to(x.dtype) if bias is not None else None
    residual = nhwc(residual) if residual is not None else None
    if out is not None and in_place(x, weight, *(t for t in (residual,) if t is not None)):
        n, _, h, w = x.shape
        return conv1x1(x, weight, bias, out=out.tensor(x, h, w), residual=residual, act=act,
                       gate=gate)
    return torch.ops.archc.conv1x1(x, weight, bias, residual, act, gate)


def siblings(x: torch.Tensor, convs: list[torch.nn.Conv2d], relu: bool = False,
             out: Part | None = None, act: str | None = None) -> list[torch.Tensor]:
    """Several 1x1 conv layers of one input as one GEMM over their weights side by side
    (concatenated at run time, so each layer keeps its parameters); their outputs. `out`:
    where the first conv's output goes (a concat's slice), at inference."""
    act = act_of(relu, act)
    if unfused(*convs):
        return [TORCH_ACTS[act](conv(x)) for conv in convs]
    weight = torch.cat([c.weight for c in convs]) if len(convs) > 1 else convs[0].weight
    bias = None
    if any(c.bias is not None for c in convs):
        bias = torch.cat([c.bias if c.bias is not None else c.weight.new_zeros(c.out_channels)
                          for c in convs])
    widths = [c.out_channels for c in convs]
    if not runs(x, "conv1x1"):
        return list(TORCH_ACTS[act](F.conv2d(x, weight, bias)).split(widths, dim=1))
    x, weight = nhwc(x), weight.to(x.dtype)  # under autocast activations are half, weights not
    bias = bias.to(x.dtype) if bias is not None else None
    if out is not None and in_place(x, weight):
        return _gemm_into(x, weight, bias, act, widths, out)
    y = torch.ops.archc.conv1x1(x, weight, bias, None, act)
    return list(y.split(widths, dim=1)) if len(convs) > 1 else [y]


def one_by_one(x, conv: torch.nn.Conv2d, bn=None, scale=None, residual=None, pool=False,
               act: str = "linear") -> torch.Tensor:
    """`act(scale(bn(conv(pool(x)))) + residual)` as the torch backend computes it, each layer
    its own module's call, so that its hooks see (and may change) its output."""
    x = x.value() if isinstance(x, Gated) else x
    if isinstance(pool, torch.nn.Module):
        x = pool(x)
    elif pool:
        x = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
    y = conv(x)
    y = bn(y) if bn is not None else y
    y = scale(y) if scale is not None else y
    return TORCH_ACTS[act](y + residual if residual is not None else y)


def _pending(x: torch.Tensor, conv, bn) -> Pending:
    """The GEMM `layer(x, conv, bn=bn)` as a `Pending` value: run by `add` with its shortcut."""
    n, _, h, w = x.shape

    def run(residual: torch.Tensor | None) -> torch.Tensor:
        return layer(x, conv, bn=bn, residual=residual)

    return Pending(run, (n, conv.out_channels, h, w), x)


def _ungate(x: torch.Tensor, conv, bn, pool: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x, its gate) when the GEMM can multiply the gate in as it loads x, else (the product,
    None): not with a pool, nor before a batch norm in training."""
    if not isinstance(x, Gated):
        return x, None
    if not pool and (bn is None or not bn.training) and in_place(x.x, conv.weight):
        return nhwc(x.x), x.gate.to(x.x.dtype)
    return x.value(), None


def _pooled_gemm(x: torch.Tensor, conv: torch.nn.Conv2d, relu: bool, out: Part | None):
    x = nhwc(x)
    bias = conv.bias.to(x.dtype) if conv.bias is not None else None
    n, _, h, w = x.shape
    target = out.tensor(x, h, w) if out is not None else None
    return conv1x1(x, conv.weight.to(x.dtype), bias, relu=relu, out=target, pool=True)


def _gemm_into(x, weight, bias, act, widths, out: Part) -> list[torch.Tensor]:
    n, _, h, w = x.shape
    head = out.tensor(x, h, w)
    rest = None
    if len(widths) > 1:
        rest = torch.empty((n, sum(widths[1:]), h, w), dtype=x.dtype, device=x.device,
                           memory_format=torch.channels_last)
    conv1x1(x, weight, bias, out=head, rest=rest, act=act)
    return [head, *(rest.split(widths[1:], dim=1) if rest is not None else ())]


def work(a: dict, blocks: dict, target) -> Work:
    """A launch's work (archc.backends.triton.roofline): 2*M*N*K FLOPs on tensor cores; x, the
    weight, the bias, the residual, the gate and the output through DRAM once each, x again
    per group of rows when it is larger than L2 can hold for a group's n-tiles."""
    e = a["x_ptr"].element_size()
    m, n, k = a["M"], a["N"], a["K"]
    bm, bn, bk = blocks["BLOCK_M"], blocks["BLOCK_N"], blocks["BLOCK_K"]
    x, w, out = m * k * e, n * k * e, m * n * e
    rest = (n * e if a["HAS_BIAS"] else 0) + (out if a["HAS_RESIDUAL"] else 0) + \
        (a["x_ptr"].shape[0] * k * e if a["HAS_GATE"] else 0)
    group_rows = blocks["GROUP_M"] * bm * k * e  # the x a group reads across its n-tiles
    x_moved = x if held_by_l2(group_rows + w, target) else x * cdiv(n, bn)
    padded = 2 * cdiv(m, bm) * bm * cdiv(n, bn) * bn * cdiv(k, bk) * bk
    return Work(2 * m * n * k, padded, x + w + out + rest, x_moved + w + out + rest)


def shape(a: dict) -> str:
    """A launch's sizes, as `archc kernels` prints them: M x N x K, and a split's widths."""
    split = f" ({a['SPLIT']}+{a['N'] - a['SPLIT']})" if a["SPLIT"] < a["N"] else ""
    return f"{a['M']}x{a['N']}x{a['K']}{split}"
