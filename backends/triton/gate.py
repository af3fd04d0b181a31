"""Values not yet computed, so the kernel that reads them computes them where it costs nothing.

Squeeze-and-excitation gates: an SE block ends `x * gate`, a gate of one factor an image and
channel ([N, C, 1, 1]), and the product, as large as x, is read once, by the 1x1 projection
after it. At inference the triton backend hands that GEMM a `Gated` value instead
(`gated`, below), and the GEMM multiplies the factors in as it loads x
(archc.backends.triton.conv1x1's `gate`): the gated tensor is never written nor read.

Shortcut sums across a block boundary: MobileNet-v2's and EfficientNet's projection GEMM ends
an inner block, and the sum with the shortcut is a line of its caller (after a stochastic
depth that does nothing at inference). At inference the GEMM returns a `Pending` value
instead (`conv1x1.layer(..., deferred=True)`), and the sum (`add`, below) runs the GEMM with the
shortcut in its epilogue: the projection's output is never written and read back.

To any other op each is the value it stands for, computed then (`__torch_dispatch__`): it
behaves as a tensor of its shape, dtype and layout.
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_map

from .dispatch import in_place, runs


class Unmade(torch.Tensor):
    """A value not yet computed, standing in for a tensor of its shape, dtype and layout. To
    any op but the kernel it waits for, it is its `value()`, computed once, then
    (`__torch_dispatch__`)."""

    def value(self) -> torch.Tensor:
        if getattr(self, "_value", None) is None:
            self._value = self.compute()
        return self._value

    def compute(self) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def value(t):
            return t.value() if isinstance(t, Unmade) else t
        return func(*tree_map(value, args), **tree_map(value, kwargs or {}))


class Gated(Unmade):
    """`x * gate` not yet computed: an SE gate ([N, C, 1, 1]) on x, for a 1x1 GEMM to multiply
    in as it loads x (`conv1x1`), so that the gated tensor is never written nor read."""

    @staticmethod
    def __new__(cls, x: torch.Tensor, gate: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(cls, x.shape, strides=x.stride(),
                                                   dtype=x.dtype, device=x.device)

    def __init__(self, x: torch.Tensor, gate: torch.Tensor):
        self.x, self.gate = x, gate

    def compute(self) -> torch.Tensor:
        return self.x * self.gate

    def __repr__(self) -> str:
        return f"Gated({list(self.shape)}, {self.dtype}: x * gate, not yet computed)"


class Pending(Unmade):
    """A conv's output not yet computed (`run(residual)` computes it, with a shortcut added in
    its epilogue or none): for a sum to run it with the shortcut."""

    @staticmethod
    def __new__(cls, run, shape: tuple, like: torch.Tensor):
        n, c, h, w = shape
        strides = (h * w * c, 1, w * c, c)  # channels last, as the kernels write it
        return torch.Tensor._make_wrapper_subclass(cls, shape, strides=strides,
                                                   dtype=like.dtype, device=like.device)

    def __init__(self, run, shape: tuple, like: torch.Tensor):
        self.run = run

    def compute(self) -> torch.Tensor:
        return self.run(None)

    def __repr__(self) -> str:
        return f"Pending({list(self.shape)}, {self.dtype}: a conv's output, not yet computed)"


# ---- the entry points: what emitted modules call for a gate and a shortcut sum -------------


def gated(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a * b` for a squeeze-and-excitation gate (the one of the two that is [N, C, 1, 1])
    whose one reader is a 1x1 GEMM (the plan says so): at inference a `Gated` value that the
    GEMM multiplies in as it loads x; while autograd records, under torch.compile, or without
    the kernels, the product."""
    x, gate = (a, b) if b.dim() == 4 and b.shape[2:] == (1, 1) else (b, a)
    if not isinstance(x, Gated) and x.dim() == 4 and gate.shape == (*x.shape[:2], 1, 1) and \
            runs(x, "conv1x1") and in_place(x, gate):
        return Gated(x, gate)
    return a * b


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a + b` for a shortcut sum: where one is a GEMM's `Pending` output (the plan deferred
    it here) that no other op has made yet, that GEMM run with the other added in its
    epilogue."""
    for pending, shortcut in ((a, b), (b, a)):
        if isinstance(pending, Pending) and not isinstance(shortcut, Pending) and \
                shortcut.shape == pending.shape and getattr(pending, "_value", None) is None:
            return pending.run(shortcut)
    return a + b
