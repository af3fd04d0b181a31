"""Folding: `bn(conv(x))` with the running statistics, or `factor * conv(x)` (a layer scale), as
one conv's weight and bias.

Shared by the triton backend (`conv1x1.layer`, and `conv_bn` here for a conv cuDNN runs) and
the cpu backend (`cpu.conv`): in eval mode both run one conv where the torch backend runs two
passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .hooks import unfused


def fold_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d):
    """The weight and bias of `bn(conv(x))` with the running statistics: one conv's.
    Differentiable torch ops, so gradients reach conv's and bn's parameters alike."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    scale = scale * bn.weight if bn.weight is not None else scale
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    return weight, (bias - bn.running_mean) * scale + shift


def conv_bn(x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    """`bn(conv(x))` for a conv that stays on cuDNN: in eval mode one conv, the batch norm
    folded into its weight and bias (one pass over the activations fewer); in training mode
    the two as they are, batch statistics and running averages included; so too where one
    must be seen called (archc.backends.hooks.unfused: a hook on it)."""
    if bn.training or unfused(conv, bn):
        return bn(conv(x))
    weight, bias = fold_bn(conv, bn)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


@dataclass(frozen=True)
class Pointwise:
    """A 1x1 conv's weight and bias as tensors, not parameters: one made by torch ops."""

    weight: torch.Tensor  # [C_out, C_in, 1, 1]
    bias: torch.Tensor | None

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]


def scaled(conv: torch.nn.Conv2d, factor: torch.Tensor) -> Pointwise:
    """`factor * conv(x)` as one conv (a channel's factor on its weights and bias), made by
    torch ops from conv's parameters, so autograd reaches both."""
    return Pointwise(conv.weight * factor.reshape(-1, 1, 1, 1),
                     conv.bias * factor if conv.bias is not None else None)
