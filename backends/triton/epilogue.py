"""The activations as Triton code, applied to a kernel's fp32 accumulator before its store.

`activate(acc, ACT)` with ACT a constexpr name from archc.backends.activation.ACTS: the
branch is resolved when the kernel compiles, so a launch pays only for its own activation.
Each equals torch's function (tests/test_kernels.py, under the interpreter): GELU is the exact
erf form (torch's default, ConvNeXt's), tanh is written 2 sigmoid(2x) - 1 (no tanh in
triton.language), and the sigmoid 1 / (1 + exp(-x)), which saturates to 0 and 1 without NaNs.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def activate(x, ACT: tl.constexpr):
    if ACT == "relu":
        x = tl.maximum(x, 0.0)
    elif ACT == "relu6":
        x = tl.minimum(tl.maximum(x, 0.0), 6.0)
    elif ACT == "sigmoid":
        x = _sigmoid(x)
    elif ACT == "tanh":
        x = 2.0 * _sigmoid(2.0 * x) - 1.0
    elif ACT == "hardswish":
        x = x * tl.minimum(tl.maximum(x + 3.0, 0.0), 6.0) / 6.0
    elif ACT == "hardsigmoid":
        x = tl.minimum(tl.maximum(x + 3.0, 0.0), 6.0) / 6.0
    elif ACT == "silu":
        x = x * _sigmoid(x)
    elif ACT == "gelu":
        x = 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))
    return x
