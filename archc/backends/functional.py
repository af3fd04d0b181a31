"""The kernels as differentiable functions: what a module compiled with the triton backend calls.

Each kernel is a torch custom op (`archc::conv1x1`, `archc::dwconv`, `archc::pool2d`,
`archc::global_avg_pool`, registered in its kernel's file) with a backward written with torch
ops, so autograd and `torch.compile` see an ordinary operator. `conv1x1_siblings` runs
sibling 1x1 convs (an inception's #1x1, #3x3 reduce and #5x5 reduce) as one GEMM over their
weights concatenated at run time, so the module keeps one parameter per conv and its
`state_dict` is the torch backend's.

Concats cost nothing at inference: the kernels that make a branch write their slice of the
concat's `ConcatBuffer` (archc.backends.concat; `out=buffer.part(i)`). Nor do SE gates:
`gated(x, gate)` hands the 1x1 GEMM after it a `Gated` value (archc.backends.gate), whose
factors the GEMM multiplies in as it loads x. While autograd records, or under
`torch.compile`, `out` is ignored, `join` is `torch.cat` and `gated` the product.

Where no kernel can run (a CPU tensor without `TRITON_INTERPRET=1`), each function computes
the same with torch ops and says so once. Inputs in another memory format are made channels
last first (a documented conversion: the kernels read pixels as rows).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from . import conv1x1 as _conv1x1  # noqa: F401  (registers torch.ops.archc.conv1x1)
from . import dwconv as _dwconv  # noqa: F401
from . import global_avg_pool as _global_avg_pool  # noqa: F401
from .activation import TORCH_ACTS, act_of
from .concat import ConcatBuffer, Part  # noqa: F401  (emitted modules call K.ConcatBuffer)
from .concat import in_place as _in_place
from .concat import recording as _recording
from .folding import fold_bn
from .gate import Gated, Pending
from .launch import capturing
from .layout import interpreted
from .pool2d import torch_pool

_warned: set[str] = set()


# ---- the ops -------------------------------------------------------------------------------


def conv1x1(x: torch.Tensor, conv: torch.nn.Conv2d, relu: bool = False,
            out: Part | None = None, bn: torch.nn.BatchNorm2d | None = None,
            residual: torch.Tensor | None = None, pool: bool = False,
            act: str | None = None, scale: torch.nn.Module | None = None,
            deferred: bool = False) -> torch.Tensor:
    """`act(bn(conv(x)) + residual)` for a 1x1 conv layer as one GEMM: bias, the residual
    and the activation in its epilogue (`relu=True` is `act="relu"`). A batch norm in eval
    mode is folded into the GEMM's weight and bias; in training mode (batch statistics,
    running averages to update) it runs after the GEMM as torch's own, and the addition and
    activation with it. A layer scale (`scale`, ConvNeXt's: a learnt factor a channel, its
    `.scale` [C, 1, 1]) is folded into the weight and bias in every mode (the fold is torch
    ops, so autograd reaches the factors). An activation other than ReLU is torch's own
    while autograd records.
    `pool`: x is first max-pooled 3x3/1 (pad 1); at inference while the GEMM loads it, else
    as its own op.
    `deferred`: the output's one reader is a sum with a shortcut (the plan says so); at
    inference a `Pending` value that `add` runs with the shortcut in the epilogue."""
    act = act_of(relu, act)
    if scale is not None:
        return conv1x1(x, _scaled(conv, scale.scale.flatten()), relu, out, bn, residual, pool,
                       act, deferred=deferred)
    if deferred and residual is None and out is None and not pool and act == "linear" and \
            _runs(x, "conv1x1") and (bn is None or not bn.training) and \
            _in_place(x, conv.weight):
        return _pending(x, conv, bn)
    x, gate = _ungate(x, conv, bn, pool)
    if pool:
        if _runs(x, "conv1x1") and _in_place(x, conv.weight) and bn is None and \
                residual is None and act in ("linear", "relu"):
            return _pooled_gemm(x, conv, act == "relu", out)
        x = pool2d(x, "max", (3, 3), (1, 1), (1, 1), True)
    if act not in ("linear", "relu") and _recording(x, conv.weight):
        return TORCH_ACTS[act](conv1x1(x, conv, bn=bn, residual=residual))
    if bn is None and residual is None and gate is None:
        return conv1x1_siblings(x, [conv], relu, out, act=act)[0]
    if not _runs(x, "conv1x1") or (bn is not None and bn.training):
        y = conv1x1(x, conv) if _runs(x, "conv1x1") else F.conv2d(x, conv.weight, conv.bias)
        y = bn(y) if bn is not None else y
        y = y + residual if residual is not None else y
        return TORCH_ACTS[act](y)
    weight, bias = (conv.weight, conv.bias) if bn is None else fold_bn(conv, bn)
    x, weight = _nhwc(x), weight.to(x.dtype)
    bias = bias.to(x.dtype) if bias is not None else None
    residual = _nhwc(residual) if residual is not None else None
    if out is not None and _in_place(x, weight, *(t for t in (residual,) if t is not None)):
        from .conv1x1 import conv1x1 as kernel

        n, _, h, w = x.shape
        return kernel(x, weight, bias, out=out.tensor(x, h, w), residual=residual, act=act,
                      gate=gate)
    return torch.ops.archc.conv1x1(x, weight, bias, residual, act, gate)


def _pending(x: torch.Tensor, conv, bn) -> Pending:
    """The GEMM `conv1x1(x, conv, bn=bn)` as a `Pending` value: run by `add` with its shortcut."""
    n, _, h, w = x.shape

    def run(residual: torch.Tensor | None) -> torch.Tensor:
        return conv1x1(x, conv, bn=bn, residual=residual)

    return Pending(run, (n, conv.out_channels, h, w), x)


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a + b` for a shortcut sum: where one is a GEMM's `Pending` output (the plan deferred
    it here) that no other op has made yet, that GEMM run with the other added in its
    epilogue."""
    for pending, shortcut in ((a, b), (b, a)):
        if isinstance(pending, Pending) and not isinstance(shortcut, Pending) and \
                shortcut.shape == pending.shape and getattr(pending, "_value", None) is None:
            return pending.run(shortcut)
    return a + b


@dataclass(frozen=True)
class Pointwise:
    """A 1x1 conv's weight and bias as tensors, not parameters: one made by torch ops."""

    weight: torch.Tensor  # [C_out, C_in, 1, 1]
    bias: torch.Tensor | None

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]


def _scaled(conv: torch.nn.Conv2d, factor: torch.Tensor) -> Pointwise:
    """`factor * conv(x)` as one conv (a channel's factor on its weights and bias), made by
    torch ops from conv's parameters, so autograd reaches both."""
    return Pointwise(conv.weight * factor.reshape(-1, 1, 1, 1),
                     conv.bias * factor if conv.bias is not None else None)


def _pooled_gemm(x: torch.Tensor, conv: torch.nn.Conv2d, relu: bool, out: Part | None):
    from .conv1x1 import conv1x1 as kernel

    x = _nhwc(x)
    bias = conv.bias.to(x.dtype) if conv.bias is not None else None
    n, _, h, w = x.shape
    target = out.tensor(x, h, w) if out is not None else None
    return kernel(x, conv.weight.to(x.dtype), bias, relu=relu, out=target, pool=True)


def conv_bn(x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    """`bn(conv(x))` for a conv that stays on cuDNN: in eval mode one conv, the batch norm
    folded into its weight and bias (one pass over the activations fewer); in training mode
    the two as they are, batch statistics and running averages included."""
    if bn.training:
        return bn(conv(x))
    weight, bias = fold_bn(conv, bn)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def conv1x1_siblings(x: torch.Tensor, convs: list[torch.nn.Conv2d], relu: bool,
                     out: Part | None = None, act: str | None = None) -> list[torch.Tensor]:
    """Several 1x1 conv layers of one input as one GEMM over their weights side by side
    (concatenated at run time, so each layer keeps its parameters); their outputs. `out`:
    where the first conv's output goes (a concat's slice), at inference."""
    act = act_of(relu, act)
    weight = torch.cat([c.weight for c in convs]) if len(convs) > 1 else convs[0].weight
    bias = None
    if any(c.bias is not None for c in convs):
        bias = torch.cat([c.bias if c.bias is not None else c.weight.new_zeros(c.out_channels)
                          for c in convs])
    widths = [c.out_channels for c in convs]
    if not _runs(x, "conv1x1"):
        return list(TORCH_ACTS[act](F.conv2d(x, weight, bias)).split(widths, dim=1))
    x, weight = _nhwc(x), weight.to(x.dtype)  # under autocast activations are half, weights not
    bias = bias.to(x.dtype) if bias is not None else None
    if out is not None and _in_place(x, weight):
        return _gemm_into(x, weight, bias, act, widths, out)
    y = torch.ops.archc.conv1x1(x, weight, bias, None, act)
    return list(y.split(widths, dim=1)) if len(convs) > 1 else [y]


def dwconv(x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d | None = None,
           act: str = "linear", norm: torch.nn.LayerNorm | None = None,
           squeeze: bool = False) -> torch.Tensor:
    """`act(norm(bn(conv(x))))` for a depthwise conv layer as one kernel: in eval mode the
    batch norm folded into its weight and bias, the layer norm over channels (`norm`, a
    LayerNorm2d: ConvNeXt's) and the activation in its epilogue, one read and one write of
    the activations. While autograd records, or in training mode, the kernel makes the conv
    alone and the norms and activation are torch's own.
    `squeeze`: the output's global average pool is an SE block's squeeze; at inference the
    kernel sums it as it stores, and `global_avg_pool` of this output returns it."""
    def after(y):
        y = bn(y) if bn is not None else y
        return TORCH_ACTS[act](norm(y) if norm is not None else y)

    if not _runs(x, "dwconv"):
        return after(conv(x))
    x = _nhwc(x)
    geometry = (list(conv.stride), list(conv.padding))
    if _recording(x, conv.weight) or (bn is not None and bn.training):
        bias = conv.bias.to(x.dtype) if conv.bias is not None else None
        return after(torch.ops.archc.dwconv(x, conv.weight.to(x.dtype), bias, *geometry,
                                            "linear"))
    weight, bias = (conv.weight, conv.bias) if bn is None else fold_bn(conv, bn)
    bias = bias.to(x.dtype) if bias is not None else None
    layer_norm = () if norm is None else (norm.weight, norm.bias, norm.eps)
    if squeeze and _in_place(x):  # not through the custom op: the means are a second output
        from .dwconv import dwconv as kernel

        norm_args = layer_norm if layer_norm else None
        y, means = kernel(x, weight.to(x.dtype), bias, conv.stride, conv.padding, act, norm_args,
                          squeeze=True)
        return _with_means(y, means.view(*means.shape, 1, 1).to(x.dtype))
    return torch.ops.archc.dwconv(x, weight.to(x.dtype), bias, *geometry, act, *layer_norm)


def mlp1x1(x: torch.Tensor, conv_a: torch.nn.Conv2d, conv_b: torch.nn.Conv2d,
           relu_a: bool = True, relu_b: bool = True) -> torch.Tensor:
    """NIN's micro network, `relu(conv_b(relu(conv_a(x))))` for two 1x1 conv layers: at
    inference one kernel (the hidden activation stays on chip); while autograd records, two
    fused GEMMs with their backwards."""
    if not (_runs(x, "conv1x1") and _in_place(x, conv_a.weight, conv_b.weight)):
        return conv1x1(conv1x1(x, conv_a, relu_a), conv_b, relu_b)
    from .mlp1x1 import mlp1x1 as kernel

    x = _nhwc(x)
    a, b = (conv_a.weight, conv_a.bias), (conv_b.weight, conv_b.bias)
    return kernel(x, *(t.to(x.dtype) for t in a), *(t.to(x.dtype) for t in b), relu_a, relu_b)


def pool2d(x: torch.Tensor, kind: str, window: tuple[int, int], stride: tuple[int, int],
           pad: tuple[int, int], ceil: bool, out: Part | None = None) -> torch.Tensor:
    """max_pool2d or avg_pool2d (torch's AvgPool2d divisor), Caffe's ceil rounding. `out`:
    a concat's slice to write into, at inference."""
    if not _runs(x, "pool2d"):
        return torch_pool(x, kind, window, stride, pad, ceil)
    x = _nhwc(x)
    if out is not None and _in_place(x):
        from .pool2d import output_size
        from .pool2d import pool2d as kernel

        h, w = (output_size(x.shape[2 + i], window[i], stride[i], pad[i], ceil) for i in (0, 1))
        return kernel(x, kind, window, stride, pad, ceil, out=out.tensor(x, h, w))
    return torch.ops.archc.pool2d(x, kind, list(window), list(stride), list(pad), ceil)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """adaptive_avg_pool2d(x, 1); the means the depthwise conv that made x summed, if it did
    (`dwconv(..., squeeze=True)`) and x is unchanged since."""
    known = getattr(x, "_archc_squeeze", None)
    if known is not None and known.version == x._version:
        return known.means
    if not _runs(x, "global_avg_pool"):
        return F.adaptive_avg_pool2d(x, 1)
    return torch.ops.archc.global_avg_pool(_nhwc(x))


@dataclass(frozen=True)
class _Squeeze:
    """A tensor's channel means, [N, C, 1, 1], as of its `version` (in-place ops bump it)."""

    means: torch.Tensor
    version: int


def _with_means(y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    y._archc_squeeze = _Squeeze(means, y._version)
    return y


def _gemm_into(x, weight, bias, act, widths, out: Part) -> list[torch.Tensor]:
    from .conv1x1 import conv1x1 as kernel

    n, _, h, w = x.shape
    head = out.tensor(x, h, w)
    rest = None
    if len(widths) > 1:
        rest = torch.empty((n, sum(widths[1:]), h, w), dtype=x.dtype, device=x.device,
                           memory_format=torch.channels_last)
    kernel(x, weight, bias, out=head, rest=rest, act=act)
    return [head, *(rest.split(widths[1:], dim=1) if rest is not None else ())]


# ---- squeeze-and-excitation gates ----------------------------------------------------------


def gated(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a * b` for a squeeze-and-excitation gate (the one of the two that is [N, C, 1, 1])
    whose one reader is a 1x1 GEMM (the plan says so): at inference a `Gated` value that the
    GEMM multiplies in as it loads x; while autograd records, under torch.compile, or without
    the kernels, the product."""
    x, gate = (a, b) if b.dim() == 4 and b.shape[2:] == (1, 1) else (b, a)
    if not isinstance(x, Gated) and x.dim() == 4 and gate.shape == (*x.shape[:2], 1, 1) and \
            _runs(x, "conv1x1") and _in_place(x, gate):
        return Gated(x, gate)
    return a * b


def _ungate(x: torch.Tensor, conv, bn, pool: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x, its gate) when the GEMM can multiply the gate in as it loads x, else (the product,
    None): not with a pool, nor before a batch norm in training."""
    if not isinstance(x, Gated):
        return x, None
    if not pool and (bn is None or not bn.training) and _in_place(x.x, conv.weight):
        return _nhwc(x.x), x.gate.to(x.x.dtype)
    return x.value(), None


# ---- helpers -------------------------------------------------------------------------------


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _runs(x: torch.Tensor, op: str) -> bool:
    """Whether the kernel can run on `x`; if not, say once that torch ops stand in."""
    if capturing() or (x.device.type == "cuda") != interpreted():
        return True
    if op not in _warned:
        _warned.add(op)
        where = ("a CUDA tensor while TRITON_INTERPRET=1 is set" if x.device.type == "cuda"
                 else "a CPU tensor without TRITON_INTERPRET=1")
        warnings.warn(f"archc.backends: {op} runs as torch ops here ({where})", stacklevel=3)
    return False
