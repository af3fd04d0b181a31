"""The cpu backend's calls: a conv and what follows it as one oneDNN primitive, at inference.

A module compiled with `backend="cpu"` calls these where the torch backend writes
`F.relu(self.bn(self.conv(x)) + shortcut)` or `F.local_response_norm(...)`. In eval mode,
with autograd not recording, on a float32 CPU tensor where oneDNN is available:

- `conv`: one oneDNN convolution (the primitive `torch.compile`'s freezing pass emits,
  `mkldnn::_convolution_pointwise`): the batch norm folded into its weight and bias, the
  weight reordered once into oneDNN's blocked layout for this input size, the shortcut added
  and the activation applied as post-ops, so the activations are read and written once.
- `linear`: one oneDNN inner product, the weight reordered once per batch size, the
  activation a post-op.
- `inference`: the decorator of an emitted net's forward: the net's own calls, or at a shape
  seen often, its oneDNN Graph where that measures faster (archc.backends.cpu.graph); only
  inside it does `conv` write a sum over a value no later layer reads (archc.backends.cpu.owner).
- `local_response_norm`: the window's sum of squares as shifted channel slices added in
  place; torch's own pads the squares and runs a 3-D average pool over them, three times
  slower on channels-last activations.

The first call that runs on oneDNN also keeps freed memory in the process (`keep_freed_memory`;
glibc only; `ARCHC_KEEP_CPU_MEMORY=0` opts out): by default glibc hands large blocks and the
heap's free top back to the kernel, and the next forward faults each 4 KiB page in again,
which on this project's machines cost more than the convolution that writes it (a 38 MB
activation: 15 ms of faults, 4 ms of conv). onnxruntime keeps an arena for the same reason.

Otherwise (training, autograd recording, another device or dtype, while torch.compile,
torch.export or torch.jit.trace records the module, or where a hook or torch mode must see
each layer called: archc.backends.hooks) each computes the same with the torch backend's
modules, batch statistics and running averages included. The reordered weights are a
cache beside the module, never state: the `state_dict` is the torch backend's, and a weight
changed in place (an optimiser step, `load_state_dict`) is reordered again.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import weakref

import torch

from archc.ops.activation import TABLE

from ..activation import TORCH_ACTS
from ..folding import fold_bn
from ..hooks import unfused
from . import graph, owner
from .graph import inference  # noqa: F401  (emitted nets decorate their forward)

owns_activations = inference  # its name in cpu-backend files emitted before 2026-12-06

# An activation as oneDNN's post-op: (attribute, scalars, algorithm), from the op registry.
POST_OPS = {row.name: (row.onednn[0], list(row.onednn[1]), row.onednn[2]) for row in TABLE
            if row.onednn is not None}

_packed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> (versions,
#                                                 {input size: what it made})


def conv(x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d | None = None,
         residual: torch.Tensor | None = None, act: str = "linear",
         into_residual: bool = False) -> torch.Tensor:
    """`act(bn(conv(x)) + residual)`, one oneDNN primitive at inference; with `into_residual`
    (no later layer reads the residual: archc.backends.cpu.plan.sums_in_place) written over
    the residual where the net's forward owns it (archc.backends.cpu.owner)."""
    if not _fuses(x, conv, bn, residual) or act not in ("linear", *POST_OPS) or \
            unfused(conv, bn):  # a hook sees each module called
        y = conv(x)
        y = bn(y) if bn is not None else y
        y = y + residual if residual is not None else y
        return TORCH_ACTS[act](y)
    keep_freed_memory()
    weight, bias, geometry = _conv_weights(x, conv, bn)
    if residual is None:
        unary, scalars, algorithm = POST_OPS.get(act, ("none", [], ""))
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, *geometry, unary,
                                                       scalars, algorithm)
    residual = residual.contiguous(memory_format=torch.channels_last)
    after = "relu" if act == "relu" else None  # oneDNN fuses no other activation after a sum
    if into_residual and owner.may_overwrite():  # the sum post-op: no copy of the residual
        y = torch.ops.mkldnn._convolution_pointwise_.binary(
            residual, x, weight, bias, *geometry, "add", None, after, [], "")
    else:
        y = torch.ops.mkldnn._convolution_pointwise.binary(
            x, residual, weight, bias, *geometry, "add", None, after, [], "")
    return y if after or act == "linear" else TORCH_ACTS[act](y)


def linear(x: torch.Tensor, fc: torch.nn.Linear, act: str = "linear") -> torch.Tensor:
    """`act(fc(x))`, one oneDNN inner product at inference: the weight reordered once per
    batch size (MKL's GEMM behind `F.linear` packs a copy of it on every call, which for
    VGG's 25088x4096 fc at batch 8 cost four times the product itself)."""
    if not _fuses(x, fc, None, None) or act not in ("linear", *POST_OPS) or x.dim() != 2 or \
            unfused(fc):
        return TORCH_ACTS[act](fc(x))
    keep_freed_memory()
    key = (x.shape, *_versions(_tensors(fc, LINEAR)))
    weight = _cached(fc, key, lambda: torch.ops.mkldnn._reorder_linear_weight(
        fc.weight.detach(), x.shape[0]))
    unary, scalars, algorithm = POST_OPS.get(act, ("none", [], ""))
    return torch.ops.mkldnn._linear_pointwise(x, weight, fc.bias, unary, scalars, algorithm)


def local_response_norm(x: torch.Tensor, lrn: torch.nn.LocalResponseNorm) -> torch.Tensor:
    """lrn(x): x / (k + alpha/size * the sum of the squares of the `size` channels around
    each, zeros past the edges) ** beta."""
    if torch.is_grad_enabled() and x.requires_grad or x.device.type != "cpu" or \
            x.dim() != 4 or _tracing() and not graph.building() or unfused(lrn):
        return lrn(x)  # torch's op for torch.compile, ONNX and hooks; the channel sums for
    #                    archc's own graph
    size, alpha, beta, k = lrn.size, lrn.alpha, lrn.beta, lrn.k
    squares = x.square()
    window = squares.clone()
    channels = x.shape[1]
    for offset in range(1, min(size // 2, channels - 1) + 1):  # the channels before and
        window[:, offset:].add_(squares[:, :channels - offset])  # after, as torch pads; a
    for offset in range(1, min((size - 1) // 2, channels - 1) + 1):  # window wider than the
        window[:, :channels - offset].add_(squares[:, offset:])  # channels sums them all
    window.mul_(alpha / size).add_(k)
    if beta != 0.75:
        return x * window.pow_(-beta)
    scale = window.rsqrt_()  # AlexNet's and GoogLeNet's beta: d^-3/4 = d^-1/2 * (d^-1/2)^1/2,
    return (x * scale).mul_(scale.sqrt_())  # two square roots a fifth cheaper than a pow


@functools.cache
def keep_freed_memory() -> bool:
    """Once per process, on glibc: the memory a forward frees is kept for the next one, not
    handed back to the kernel and faulted in again (mallopt(3)). Blocks up to 32 MiB (the
    most glibc allows) come from the heap, whose free top is kept up to 1 GiB; larger ones
    stay mmap'd and return to the kernel, so a process that builds many nets does not keep
    their peak. `ARCHC_KEEP_CPU_MEMORY=all` serves every block from the heap and never trims
    it (VGG at batch 8, whose activations pass 32 MiB: 6% faster; the heap then keeps the
    process's peak and can fragment), `=0` leaves glibc as it is. Whether it applied."""
    policy = os.environ.get("ARCHC_KEEP_CPU_MEMORY", "1")
    if policy == "0" or platform.libc_ver()[0] != "glibc":
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold, m_mmap_max = -1, -2, -3, -4
    settings = ((m_mmap_max, 0), (m_trim_threshold, 2**31 - 1)) if policy == "all" else \
        ((m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30))
    libc = ctypes.CDLL(None)
    return all(libc.mallopt(option, value) == 1 for option, value in
               (*settings, (m_top_pad, 64 << 20)))


def _fuses(x, layer, bn, residual) -> bool:
    """Whether oneDNN runs the step: inference on float32 CPU tensors, oneDNN built in, and
    not while the module is traced (`_tracing`: asked first, so torch.compile, which knows
    it, traces none of the rest; torch.backends' checks would break its graph)."""
    if _tracing():
        return False
    weight = layer._parameters.get("weight")  # None: a parametrized weight (torch's path)
    if weight is None or bn is not None and bn._parameters.get("weight") is None:
        return False
    evaluating = not (layer.training or (bn is not None and bn.training))
    tensors = [x, weight] + ([residual] if residual is not None else [])
    recording = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    float32_cpu = x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
    plain = getattr(layer, "padding_mode", "zeros") == "zeros" and \
        not isinstance(getattr(layer, "padding", ()), str)  # "same": torch's own padding
    return evaluating and not recording and float32_cpu and plain and _onednn()


@functools.cache
def _onednn() -> bool:
    return torch.backends.mkldnn.is_available()  # fixed when torch was built


def _tracing() -> bool:
    """torch.compile, torch.export or torch.jit.trace is recording the module: they see
    torch's ops (and fuse them their own way), not a cache keyed on data pointers."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _conv_weights(x: torch.Tensor, conv: torch.nn.Conv2d, bn) -> tuple:
    """The conv's weight (bn folded, oneDNN's layout for this input), bias and geometry
    (padding, stride, dilation, groups: the primitive's arguments)."""
    sources = _tensors(conv, LINEAR) + (() if bn is None else _tensors(bn, NORM))
    return _cached(conv, (x.shape, *_versions(sources)), lambda: _pack_conv(x, conv, bn))


def _pack_conv(x: torch.Tensor, conv: torch.nn.Conv2d, bn) -> tuple:
    weight, bias = fold_bn(conv, bn) if bn is not None else (conv.weight, conv.bias)
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    packed = torch.ops.mkldnn._reorder_convolution_weight(weight.detach(), *geometry,
                                                          list(x.shape))
    return packed, bias.detach(), geometry


LINEAR = (("weight", "bias"), ())  # a conv's or an fc's tensors: (parameters, buffers)
NORM = (("weight", "bias"), ("running_mean", "running_var"))  # a batch norm's


def _tensors(layer: torch.nn.Module, names: tuple[tuple[str, ...], tuple[str, ...]]) -> tuple:
    """The layer's parameters and buffers by name, None where it has none, read from its
    dicts: nn.Module's attribute lookup costs ten times more, and this runs on every conv of
    every forward (a tenth of MobileNet-v2's time at batch 1)."""
    parameters, buffers = names
    return tuple(layer._parameters.get(n) for n in parameters) + \
        tuple(layer._buffers.get(n) for n in buffers)


def _versions(tensors) -> tuple[tuple[int, int], ...]:
    """Which tensors, in which version: an in-place update (an optimiser's step,
    `load_state_dict`'s copy) bumps `_version`, a new tensor changes the pointer."""
    return tuple((t.data_ptr(), t._version) for t in tensors if t is not None)


MAX_SHAPES = 4  # input sizes a layer keeps packed weights for (a server's few batch sizes)


def _cached(layer: torch.nn.Module, key: tuple, make):
    """`make()`, made once for each key (input size, then parameter versions) of each layer.
    A layer keeps what it made for its last `MAX_SHAPES` input sizes, so batches of
    alternating sizes do not repack every weight at every forward; new versions of its
    parameters drop them all."""
    shape, versions = key[0], key[1:]
    kept = _packed.get(layer)
    if kept is None or kept[0] != versions:
        kept = (versions, {})
        _packed[layer] = kept
    made = kept[1].pop(shape, None)
    if made is None:
        made = make()
        if len(kept[1]) >= MAX_SHAPES:
            del kept[1][next(iter(kept[1]))]  # the least recently used size
    kept[1][shape] = made  # last in the dict: the most recently used
    return made
