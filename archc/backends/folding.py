"""Batch norm folding: `bn(conv(x))` with the running statistics as one conv's weight and bias.

Shared by the triton backend (`functional.conv1x1`, `functional.conv_bn`) and the cpu backend
(`cpu.conv`): in eval mode both run one conv where the torch backend runs two passes.
"""

from __future__ import annotations

import torch


def fold_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d):
    """The weight and bias of `bn(conv(x))` with the running statistics: one conv's.
    Differentiable torch ops, so gradients reach conv's and bn's parameters alike."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    scale = scale * bn.weight if bn.weight is not None else scale
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    return weight, (bias - bn.running_mean) * scale + shift
