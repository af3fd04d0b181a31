"""bench/gpu.py's depthwise rows: the fused depthwise conv + bn + activation (and ConvNeXt's
7x7 + layer norm) against eager PyTorch's separate kernels and torch.compile of the same
layers, on the depthwise shapes of MobileNet-v2, EfficientNet-B0 and ConvNeXt-T at batch 256,
fp16, channels last, eval. The issue's target: the fused kernel at least 1.5x eager.

Imported by bench/gpu.py, which passes its `Bench` (device, dtype, batch, timer) and the
measured copy ceiling; in smoke mode (CPU, Triton's interpreter) the shapes shrink and
torch.compile is left out.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from archc.backends import functional as K
from archc.backends.activation import TORCH_ACTS

DEPTHWISE = [  # name, C, H (input), window, stride, activation, layer norm after it
    ("MobileNet-v2 b3", 144, 56, 3, 1, "relu6", False),
    ("MobileNet-v2 b4 /2", 192, 28, 3, 2, "relu6", False),
    ("EfficientNet-B0 s3 5x5 /2", 144, 56, 5, 2, "silu", False),
    ("EfficientNet-B0 s5 5x5", 672, 14, 5, 1, "silu", False),
    ("ConvNeXt-T stage1 + LN", 96, 56, 7, 1, "linear", True),
    ("ConvNeXt-T stage3 + LN", 384, 14, 7, 1, "linear", True),
]


class LayerNorm2d(nn.LayerNorm):
    """torchvision's: a layer norm over each pixel's channels of an N x C x H x W tensor."""

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return y.permute(0, 3, 1, 2)


def depthwise(b, limits: dict) -> list[dict]:
    """The rows; in smoke mode one with a batch norm and one with a layer norm (the
    interpreter takes seconds a row)."""
    cases = [DEPTHWISE[0], DEPTHWISE[-2]] if b.smoke else DEPTHWISE
    return [_row(b, limits, *case) for case in cases]


def _row(b, limits: dict, name: str, c: int, h: int, window: int, stride: int, act: str,
         norm: bool) -> dict:
    c, h = b.size(c), max(b.size(h), window)
    x = b.nhwc(b.batch, c, h, h)
    conv = nn.Conv2d(c, c, window, stride, window // 2, groups=c, bias=norm)
    after = LayerNorm2d(c, eps=1e-6) if norm else nn.BatchNorm2d(c)
    conv, after = (m.to(b.device, b.dtype).eval() for m in (conv, after))
    conv = conv.to(memory_format=torch.channels_last)

    def eager():  # what the torch backend runs: conv, then the norm, then the activation
        return TORCH_ACTS[act](after(conv(x)))

    def fused():
        if norm:
            return K.dwconv(x, conv, norm=after, act=act)
        return K.dwconv(x, conv, bn=after, act=act)

    with torch.inference_mode():
        first = b.first_call_s(fused)
        out = fused()
        error = (out.float() - eager().float()).norm() / eager().float().norm()
        assert error < 1e-2, f"{name}: relative error {error:.2e}"
        ours, theirs = b.ms(fused), b.ms(eager)
        compiled = None
        if not b.smoke:
            torch._dynamo.reset()
            peer = torch.compile(eager)
            peer()
            compiled = b.ms(peer)
    moved = (x.numel() + out.numel()) * x.element_size()
    return {"kernel": f"dwconv {name} C={c} {h}x{h} {window}x{window}/{stride} {act}",
            "ms": ours, "rate": f"{moved / ours / 1e6:.0f} GB/s",
            "of_limit": moved / ours / 1e6 / limits["copy_GBps"], "vs_eager": theirs / ours,
            "vs_compile": compiled / ours if compiled else None, "first_call_s": first}


def report(rows: list[dict]) -> None:
    print("\n| depthwise (fused) | ms | rate | % of copy | vs eager | vs torch.compile | "
          "first call s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        versus = f"{r['vs_compile']:.2f}x" if r["vs_compile"] else "-"
        print(f"| {r['kernel']} | {r['ms']:.3f} | {r['rate']} | {r['of_limit']:.0%} | "
              f"{r['vs_eager']:.2f}x | {versus} | {r['first_call_s']:.2f} |")
