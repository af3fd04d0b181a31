"""What every kernel checks of its tensors: shape, dtype, device, and an NHWC layout.

The kernels read an [N, C, H, W] tensor as rows of pixels, each row C contiguous channels, the
rows evenly spaced: a channels-last tensor, or a channel slice of one (`buffer[:, 64:192]`,
whose rows are `buffer`'s channel count apart). `pixel_stride` gives that spacing, or refuses
the tensor with what to do instead.
"""

from __future__ import annotations

import os

import torch

from .launch import capturing

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def interpreted() -> bool:
    """Whether kernels run in Triton's interpreter (on CPU tensors); never while capturing
    launches for a GPU that is not here (archc.backends.triton.launch)."""
    return os.environ.get("TRITON_INTERPRET") == "1" and not capturing()


def check(x: torch.Tensor, op: str, name: str = "x") -> tuple[int, int, int, int]:
    if x.dim() != 4:
        raise ValueError(f"{op}: {name} must be [N, C, H, W], got {list(x.shape)}")
    if x.dtype not in DTYPES:
        raise TypeError(f"{op}: {name} must be float32, float16 or bfloat16, got {x.dtype}")
    if capturing():
        if x.device.type != "meta":
            raise RuntimeError(f"{op}: launches are captured from meta tensors, got {name} on "
                               f"{x.device}")
    elif x.device.type == "cuda" and interpreted():
        raise RuntimeError(f"{op}: TRITON_INTERPRET=1 runs kernels on CPU tensors only; "
                           "unset it to run on the GPU")
    elif x.device.type != "cuda" and not interpreted():
        raise RuntimeError(f"{op}: a CPU tensor needs TRITON_INTERPRET=1 (set before triton "
                           "is imported); the kernels run on CUDA devices")
    pixel_stride(x, op, name)
    return tuple(x.shape)


def pixel_stride(x: torch.Tensor, op: str, name: str = "x") -> int:
    """Elements from one pixel's channels to the next's, for an NHWC-readable tensor."""
    n, c, h, w = x.shape
    sizes = ((w, x.stride(3)), (h, x.stride(2)), (n, x.stride(0)))
    row, expected = None, 1
    for size, stride in sizes:  # w, then h, then n: each step spans the ones before
        if size > 1:
            row = row if row is not None else stride // expected
            if stride != row * expected:
                row = -1
                break
        expected *= size
    if row == -1 or (x.stride(1) != 1 and c > 1):
        raise ValueError(f"{op}: {name} must be channels last (x.contiguous(memory_format="
                         "torch.channels_last)) or a channel slice of such a tensor")
    return row if row is not None else max(c, 1)
