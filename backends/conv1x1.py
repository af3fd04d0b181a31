"""Fused 1x1 convolution + bias + optional ReLU, as one GEMM over NHWC activations.

A 1x1 convolution of a channels-last tensor is a matrix product: the input seen as
`[M = N*H*W, K = C_in]` (no copy: its rows are the pixels) times the weight seen as
`[K, C_out]` (the transpose of `[C_out, C_in, 1, 1]`, again no copy). The kernel tiles the
output `[M, C_out]`, accumulates over K in fp32, adds the bias and applies the ReLU to the
accumulator, and stores once, in the output's dtype.

The output may be a channel slice of a larger channels-last tensor (`buffer[:, 64:192]`): its
rows are then `buffer`'s channel count apart, and a concat of branches costs nothing. Channel
counts under 16, which `tl.dot` cannot take as a block, are masked loads of a 16-wide block.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .layout import check, interpreted, pixel_stride

# A small list, tuned per (M, N, K) and cached by Triton's autotuner: compile time is a cost
# users feel. Block K is at least 16, as tl.dot needs.
CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, num_warps=4, num_stages=4),
]
INTERPRETER_BLOCKS = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16}  # correctness, not speed


@triton.jit
def conv1x1_kernel(
    x_ptr,  # input pixels: row m at x_ptr + m * stride_xm, channels contiguous
    w_ptr,  # weight [C_out, C_in]: element (k, n) of the [K, N] matrix at n*stride_wn + k*stride_wk
    b_ptr,  # bias [C_out], or any pointer when HAS_BIAS is false
    out_ptr,  # output pixels: row m at out_ptr + m * stride_om, channels contiguous
    rest_ptr,  # with a SPLIT: output channels SPLIT.. go here, row m at rest_ptr + m * stride_rm
    res_ptr,  # with HAS_RESIDUAL: a tensor like the output, added before the ReLU
    M, N, K,  # pixels (N*H*W), output channels, input channels
    H, W,  # the image size, for POOL's neighbours
    SPLIT,  # channels 0..SPLIT go to out, the others to rest (SPLIT = N: all to out)
    stride_xm, stride_wn, stride_wk, stride_om, stride_rm, stride_resm,
    HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr, RELU: tl.constexpr,
    POOL: tl.constexpr,  # the input is max-pooled 3x3/1 (pad 1) as it is loaded
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    depth = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if POOL:
        w_of = rows % W
        h_of = (rows // W) % H
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
        w = tl.load(w_ptr + k[:, None] * stride_wk + cols[None, :] * stride_wn,
                    mask=(k[:, None] < K) & (cols[None, :] < N), other=0.0)
        acc = tl.dot(x, w, acc, input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
    if HAS_RESIDUAL:  # a residual connection's shortcut, added in the epilogue
        acc += tl.load(res_ptr + rows[:, None].to(tl.int64) * stride_resm + cols[None, :],
                       mask=(rows[:, None] < M) & (cols[None, :] < N), other=0.0).to(tl.float32)
    if RELU:
        acc = tl.maximum(acc, 0.0)
    acc = acc.to(out_ptr.dtype.element_ty)
    row = rows[:, None].to(tl.int64)
    inside = rows[:, None] < M
    tl.store(out_ptr + row * stride_om + cols[None, :], acc,
             mask=inside & (cols[None, :] < SPLIT))
    if SPLIT < N:  # a merged GEMM whose first conv writes into a concat: the rest elsewhere
        tl.store(rest_ptr + row * stride_rm + (cols[None, :] - SPLIT), acc,
                 mask=inside & (cols[None, :] >= SPLIT) & (cols[None, :] < N))


# The key holds the flags too: a config tuned for a plain GEMM of some size must not be reused
# for a launch with a residual or a pool, whose registers and shared memory differ.
TUNING_KEY = ["M", "N", "K", "HAS_BIAS", "HAS_RESIDUAL", "RELU", "POOL", "PRECISION"]
tuned_conv1x1_kernel = triton.autotune(CONFIGS, key=TUNING_KEY)(conv1x1_kernel)


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
            relu: bool = False, out: torch.Tensor | None = None,
            rest: torch.Tensor | None = None,
            residual: torch.Tensor | None = None, pool: bool = False) -> torch.Tensor:
    """`relu(conv2d(x, weight, bias))` for a 1x1 weight, on channels-last tensors.

    x: [N, C_in, H, W], channels last (or a channel slice of such a tensor). weight:
    [C_out, C_in, 1, 1] or [C_out, C_in]. bias: [C_out] or None. out: where to write, an
    [N, C_out, H, W] channels-last tensor or channel slice of one; allocated if None.
    rest: with it, `out` takes the first channels only and `rest` the others (a merged GEMM
    whose first conv writes into a concat's buffer). residual: an [N, C_out, H, W] NHWC
    tensor added to the accumulator before the ReLU (a ResNet block's shortcut). pool: x is
    max-pooled 3x3, stride 1, pad 1 as it is loaded (GoogLeNet's pool projection, whose pooled
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
    m = n * h * w
    args = (x, weight, bias if bias is not None else weight, out, rest,
            residual if residual is not None else out, m, c_out, c_in, h, w, split,
            pixel_stride(x, "conv1x1"), weight.stride(0), weight.stride(1),
            pixel_stride(out, "conv1x1", "out"), pixel_stride(rest, "conv1x1", "rest"),
            pixel_stride(residual, "conv1x1", "residual") if residual is not None else 0)
    # fp32: TF32 on the tensor cores, as cuDNN's convolutions do by default in PyTorch.
    flags = {"HAS_BIAS": bias is not None, "HAS_RESIDUAL": residual is not None, "RELU": relu,
             "POOL": pool,
             "PRECISION": "ieee" if interpreted() or x.dtype != torch.float32 else "tf32"}
    if interpreted():
        blocks = INTERPRETER_BLOCKS
        grid = (triton.cdiv(m, blocks["BLOCK_M"]), triton.cdiv(c_out, blocks["BLOCK_N"]))
        conv1x1_kernel[grid](*args, **flags, **blocks)
    else:
        def grid(meta):
            return triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(c_out, meta["BLOCK_N"])
        tuned_conv1x1_kernel[grid](*args, **flags)
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
