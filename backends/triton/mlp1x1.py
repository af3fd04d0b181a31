"""Two 1x1 convolutions in one kernel, the hidden activation never leaving the SM: NIN's
"micro network" (an mlpconv's two cccp layers), `relu(conv_b(relu(conv_a(x))))` over NHWC.

Each program takes BLOCK_M pixels: it accumulates the hidden tile [BLOCK_M, HIDDEN] over the
input channels in fp32 (bias and ReLU on it), keeps it in registers in the input's dtype, and
multiplies it by conv_b's weight a BLOCK_N of output channels at a time, adding the bias and
the ReLU before each single store. The hidden width is padded to a power of two of at least
16 (as `tl.dot` needs); the padding's weights are masked to zero, so it adds nothing.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..activation import act_of
from ..hooks import unfused
from . import conv1x1
from .dispatch import in_place, nhwc, runs
from .launch import arch, launch
from .layout import check, interpreted, pixel_stride
from .roofline import Work, cdiv

MAX_HIDDEN = 256  # the hidden tile lives in registers: NIN's widths are 160 and 192


@triton.jit
def mlp1x1_kernel(
    x_ptr,  # input pixels: row m at x_ptr + m * stride_xm, channels contiguous
    wa_ptr, ba_ptr,  # conv_a: weight [HID, K] (element (j, k) at j*stride_wa + k), bias [HID]
    wb_ptr, bb_ptr,  # conv_b: weight [N, HID] (element (n, j) at n*stride_wb + j), bias [N]
    out_ptr,  # output pixels: row m at out_ptr + m * stride_om
    M, K, HID, N,  # pixels, input, hidden and output channels
    stride_xm, stride_wa, stride_wb, stride_om,
    RELU_A: tl.constexpr, RELU_B: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, HIDDEN: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    hidden = tl.arange(0, HIDDEN)
    depth = tl.arange(0, BLOCK_K)
    inside = rows[:, None] < M
    acc = tl.zeros((BLOCK_M, HIDDEN), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + depth
        x = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_xm + k[None, :],
                    mask=inside & (k[None, :] < K), other=0.0)
        wa = tl.load(wa_ptr + hidden[None, :] * stride_wa + k[:, None],
                     mask=(k[:, None] < K) & (hidden[None, :] < HID), other=0.0)
        acc = tl.dot(x, wa, acc, input_precision=PRECISION)
    acc += tl.load(ba_ptr + hidden, mask=hidden < HID, other=0.0).to(tl.float32)[None, :]
    if RELU_A:
        acc = tl.maximum(acc, 0.0)
    h = acc.to(x_ptr.dtype.element_ty)  # the hidden tile, kept on chip
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        wb = tl.load(wb_ptr + cols[None, :] * stride_wb + hidden[:, None],
                     mask=(hidden[:, None] < HID) & (cols[None, :] < N), other=0.0)
        y = tl.dot(h, wb, input_precision=PRECISION)
        y += tl.load(bb_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
        if RELU_B:
            y = tl.maximum(y, 0.0)
        tl.store(out_ptr + rows[:, None].to(tl.int64) * stride_om + cols[None, :],
                 y.to(out_ptr.dtype.element_ty), mask=inside & (cols[None, :] < N))


def mlp1x1(x: torch.Tensor, weight_a: torch.Tensor, bias_a: torch.Tensor,
           weight_b: torch.Tensor, bias_b: torch.Tensor, relu_a: bool = True,
           relu_b: bool = True) -> torch.Tensor:
    """`relu(conv2d(relu(conv2d(x, weight_a, bias_a)), weight_b, bias_b))` for 1x1 weights on
    a channels-last x: [N, C, H, W] -> [N, C_out, H, W], channels last. The hidden width
    (weight_a's C_out) must be at most MAX_HIDDEN; the biases are required (NIN's have them)."""
    n, c_in, h, w = check(x, "mlp1x1")
    weight_a = weight_a.reshape(weight_a.shape[0], -1)
    weight_b = weight_b.reshape(weight_b.shape[0], -1)
    hid, c_out = weight_a.shape[0], weight_b.shape[0]
    if weight_a.shape[1] != c_in or weight_b.shape[1] != hid:
        raise ValueError(f"mlp1x1: weights {list(weight_a.shape)} and {list(weight_b.shape)} "
                         f"do not chain from {c_in} channels")
    if hid > MAX_HIDDEN:
        raise ValueError(f"mlp1x1: a hidden width of {hid} is over {MAX_HIDDEN}")
    weight_a, weight_b = weight_a.contiguous(), weight_b.contiguous()
    tensors = (weight_a, bias_a, weight_b, bias_b)
    if any(t.dtype != x.dtype for t in tensors):
        raise TypeError(f"mlp1x1: x, weights and biases must share x's dtype {x.dtype}")
    if tuple(bias_a.shape) != (hid,) or tuple(bias_b.shape) != (c_out,):
        raise ValueError(f"mlp1x1: biases must be [{hid}] and [{c_out}]")
    out = torch.empty((n, c_out, h, w), device=x.device, dtype=x.dtype,
                      memory_format=torch.channels_last)
    m = n * h * w
    hidden = max(16, triton.next_power_of_2(hid))
    blocks, warps, stages = ({"BLOCK_M": 16, "BLOCK_K": 16, "BLOCK_N": 16}, 4, 1) \
        if interpreted() else launch_settings(hidden, arch())
    precision = "ieee" if interpreted() or x.dtype != torch.float32 else "tf32"
    grid = (triton.cdiv(m, blocks["BLOCK_M"]),)
    launch(mlp1x1_kernel, grid, x, weight_a, bias_a, weight_b, bias_b, out, m, c_in, hid, c_out,
                        pixel_stride(x, "mlp1x1"), weight_a.stride(0), weight_b.stride(0),
                        pixel_stride(out, "mlp1x1", "out"), RELU_A=relu_a,
                        RELU_B=relu_b, PRECISION=precision, HIDDEN=hidden, **blocks,
                        num_warps=warps, num_stages=stages)
    return out


def launch_settings(hidden: int, arch: int) -> tuple[dict, int, int]:
    """(blocks, warps, pipeline stages) on a GPU of compute capability `arch` for a hidden tile
    of `hidden` (a power of two), two pipeline stages (three buffered 168 KB in fp32 at hidden
    256, over an A100's 163 KB a block). Offline figures: tests/test_aot.py, BENCHMARKS.md.

    sm_90: 64-pixel tiles, the least Hopper's wgmma takes (at 32 pixels it fell back to
    mma.sync), which also halves the weight reloads per pixel; 32 output channels a step keep
    fp32 at 136 KB and fp16 at 68 KB (two blocks an SM). Before Hopper: mma.sync, 32-pixel
    tiles at hidden 256 (104 KB in fp32, no spill)."""
    if arch >= 90:
        return {"BLOCK_M": 64, "BLOCK_K": 32, "BLOCK_N": 32}, 8, 2
    return {"BLOCK_M": 64 if hidden <= 128 else 32, "BLOCK_K": 32, "BLOCK_N": 64}, 8, 2


# ---- the layer, as emitted modules call it (K.mlp1x1: archc.backends.functional) -------------


def layer(x: torch.Tensor, conv_a: torch.nn.Conv2d, conv_b: torch.nn.Conv2d,
          relu_a: bool = True, relu_b: bool = True) -> torch.Tensor:
    """NIN's micro network, `relu(conv_b(relu(conv_a(x))))` for two 1x1 conv layers: at
    inference one kernel (the hidden activation stays on chip); while autograd records, two
    fused GEMMs with their backwards; each conv its own call where one must be seen
    (hooks.unfused)."""
    if unfused(conv_a, conv_b):
        return conv1x1.one_by_one(conv1x1.one_by_one(x, conv_a, act=act_of(relu_a, None)),
                                  conv_b, act=act_of(relu_b, None))
    if not (runs(x, "conv1x1") and in_place(x, conv_a.weight, conv_b.weight)):
        return conv1x1.layer(conv1x1.layer(x, conv_a, relu_a), conv_b, relu_b)
    x = nhwc(x)
    a, b = (conv_a.weight, conv_a.bias), (conv_b.weight, conv_b.bias)
    return mlp1x1(x, *(t.to(x.dtype) for t in a), *(t.to(x.dtype) for t in b), relu_a, relu_b)


def work(a: dict, blocks: dict, target) -> Work:
    """A launch's work (roofline.py): both GEMMs on tensor cores, the hidden width
    padded to HIDDEN; x, both weights and biases and the output through DRAM once (the hidden
    tile never leaves the SM; the weights, reloaded by every program, come from L2)."""
    e = a["x_ptr"].element_size()
    m, k, hid, n = a["M"], a["K"], a["HID"], a["N"]
    bm, bk, bn, hidden = blocks["BLOCK_M"], blocks["BLOCK_K"], blocks["BLOCK_N"], blocks["HIDDEN"]
    compulsory = (m * k + m * n + hid * k + hid + n * hid + n) * e
    padded = 2 * cdiv(m, bm) * bm * hidden * (cdiv(k, bk) * bk + cdiv(n, bn) * bn)
    return Work(2 * m * hid * (k + n), padded, compulsory, compulsory)


def shape(a: dict) -> str:
    """A launch's sizes, as `archc kernels` prints them: pixels, and channels in, hidden, out."""
    return f"{a['M']}px {a['K']}>{a['HID']}>{a['N']}"
