"""The depthwise conv kernel and the activations every kernel's epilogue applies, against torch.

Under Triton's interpreter on tiny shapes (conftest sets TRITON_INTERPRET=1); the `gpu` test
runs MobileNet's and ConvNeXt's sizes on a CUDA device and skips without one.
"""

from __future__ import annotations

import pytest
import torch
from conftest import has_cuda
from test_kernels import DEVICE, close, nhwc
from torch import nn

from archc.backends import functional as K
from archc.backends.activation import ACTS, TORCH_ACTS
from archc.backends.triton import conv1x1 as conv1x1_file
from archc.backends.triton.conv1x1 import conv1x1
from archc.backends.triton.dwconv import channel_block, dwconv, torch_dwconv
from archc.backends.triton.gate import Gated, Pending

SHAPES = [  # n, c, h, w, window, stride, pad
    (1, 5, 7, 7, 3, 1, 1), (2, 19, 9, 6, 3, 2, 1), (1, 33, 11, 11, 5, 2, 2),
    (1, 8, 9, 9, 7, 1, 3), (1, 3, 4, 5, 3, 2, 0),
]


@pytest.mark.parametrize("n, c, h, w, window, stride, pad", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_dwconv_equals_torchs_grouped_conv(n, c, h, w, window, stride, pad, dtype):
    x = nhwc(n, c, h, w, dtype=dtype)
    weight = torch.randn(c, 1, window, window, dtype=dtype, generator=torch.Generator()
                         .manual_seed(1)).to(DEVICE)
    bias = torch.randn(c, dtype=dtype).to(DEVICE)
    got = dwconv(x, weight, bias, (stride, stride), (pad, pad), "relu6")
    want = torch_dwconv(x.float(), weight.float(), bias.float(), (stride, stride), (pad, pad),
                        "relu6")
    assert got.shape == want.shape and got.dtype == dtype
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.float(), want, **close(dtype))


@pytest.mark.parametrize("act", ACTS)
def test_every_activation_in_both_epilogues_equals_torchs(act):
    """The conv1x1 GEMM and the depthwise conv apply each activation as torch does; the
    inputs span where the activations bend (-6 to 6) and saturate."""
    x = nhwc(2, 16, 3, 5) * 4
    weight = nhwc(24, 16, 1, 1, seed=1) / 4
    shortcut = nhwc(2, 24, 3, 5, seed=2)
    want = TORCH_ACTS[act](torch.nn.functional.conv2d(x, weight) + shortcut)
    torch.testing.assert_close(conv1x1(x, weight, residual=shortcut, act=act), want,
                               **close(torch.float32))
    depthwise = nhwc(16, 1, 3, 3, seed=3)
    want = torch_dwconv(x, depthwise, None, (1, 1), (1, 1), act)
    torch.testing.assert_close(dwconv(x, depthwise, None, (1, 1), (1, 1), act), want,
                               **close(torch.float32))


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # the interpreter's numpy
def test_the_activations_saturate_without_nans():
    x = nhwc(1, 16, 2, 2) * 1e4
    weight = torch.eye(16).reshape(16, 16, 1, 1).to(DEVICE)
    for act in ACTS:
        got = conv1x1(x, weight, act=act)
        assert not got.isnan().any(), act
        torch.testing.assert_close(got, TORCH_ACTS[act](x), **close(torch.float32))


@pytest.mark.parametrize("act", ["relu", "silu", "gelu"])
def test_the_custom_ops_backwards_are_torchs(act):
    """Gradients through torch.ops.archc.dwconv and .conv1x1 (with a shortcut) equal those
    of torch's own conv2d and activation."""
    x = nhwc(2, 8, 5, 5).requires_grad_()
    weight = nhwc(8, 1, 3, 3, seed=1).requires_grad_()
    bias = torch.randn(8).requires_grad_()
    torch.ops.archc.dwconv(x, weight, bias, [2, 2], [1, 1], act).square().sum().backward()
    got = [t.grad for t in (x, weight, bias)]
    for t in (x, weight, bias):
        t.grad = None
    torch_dwconv(x, weight, bias, (2, 2), (1, 1), act).square().sum().backward()
    for g, t in zip(got, (x, weight, bias)):
        torch.testing.assert_close(g, t.grad, rtol=1e-4, atol=1e-4)
    x.grad = None
    w1 = nhwc(12, 8, 1, 1, seed=4).requires_grad_()
    shortcut = nhwc(2, 12, 5, 5, seed=5).requires_grad_()
    torch.ops.archc.conv1x1(x, w1, None, shortcut, act).square().sum().backward()
    got = [t.grad.clone() for t in (x, w1, shortcut)]
    for t in (x, w1, shortcut):
        t.grad = None
    TORCH_ACTS[act](torch.nn.functional.conv2d(x, w1) + shortcut).square().sum().backward()
    for g, t in zip(got, (x, w1, shortcut)):
        torch.testing.assert_close(g, t.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c", [24, 40])
def test_dwconv_takes_a_layer_norm_over_channels_in_its_epilogue(c):
    """ConvNeXt's 7x7 then layer norm: a program holds all of a pixel's channels (24 and 40:
    padding channels that must not count in the mean or the variance)."""
    x = nhwc(2, c, 6, 5)
    weight, bias = nhwc(c, 1, 7, 7, seed=1), torch.randn(c).to(DEVICE)
    norm = (torch.rand(c).to(DEVICE) + 0.5, torch.randn(c).to(DEVICE), 1e-6)
    got = dwconv(x, weight, bias, (1, 1), (3, 3), "gelu", norm)
    want = torch_dwconv(x, weight, bias, (1, 1), (3, 3), "gelu", *norm)
    torch.testing.assert_close(got, want, **close(torch.float32))
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias, norm[0], norm[1])]
    torch.ops.archc.dwconv(leaves[0], leaves[1], leaves[2], [1, 1], [3, 3], "linear", leaves[3],
                           leaves[4], 1e-6).square().sum().backward()
    twins = [t.clone().requires_grad_() for t in (x, weight, bias, norm[0], norm[1])]
    torch_dwconv(*twins[:3], (1, 1), (3, 3), "linear", *twins[3:], 1e-6).square().sum() \
        .backward()
    for leaf, twin in zip(leaves, twins):
        torch.testing.assert_close(leaf.grad, twin.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_conv1x1_multiplies_an_se_gate_in_as_it_loads(dtype):
    """The gate: one factor an image and input channel; 3 images of 5x7 pixels, so that the
    16-row tiles straddle images."""
    x = nhwc(3, 24, 5, 7, dtype=dtype)
    weight = nhwc(20, 24, 1, 1, dtype=dtype, seed=1)
    gate = torch.rand(3, 24, 1, 1, dtype=dtype).to(DEVICE)
    want = torch.nn.functional.conv2d((x * gate).float(), weight.float())
    got = conv1x1(x, weight, gate=gate, act="silu")
    torch.testing.assert_close(got.float(), TORCH_ACTS["silu"](want), **close(dtype))


def test_the_gated_gemms_backward_is_torchs():
    x, gate = nhwc(2, 16, 3, 3).requires_grad_(), torch.rand(2, 16, 1, 1).requires_grad_()
    weight = nhwc(8, 16, 1, 1, seed=1).requires_grad_()
    torch.ops.archc.conv1x1(x, weight, None, None, "gelu", gate).square().sum().backward()
    got = [t.grad for t in (x, gate, weight)]
    twins = [t.detach().clone().requires_grad_() for t in (x, gate, weight)]
    TORCH_ACTS["gelu"](torch.nn.functional.conv2d(twins[0] * twins[1], twins[2])).square() \
        .sum().backward()
    for g, twin in zip(got, twins):
        torch.testing.assert_close(g, twin.grad, rtol=1e-4, atol=1e-4)


def test_a_gated_value_is_the_product_to_every_other_op():
    x, gate = nhwc(2, 8, 3, 3), torch.rand(2, 8, 1, 1)
    with torch.no_grad():
        value = K.gated(x, gate)
        assert isinstance(value, Gated) and value.shape == x.shape and value.dtype == x.dtype
        assert value.is_contiguous(memory_format=torch.channels_last)
        product = x * gate
        torch.testing.assert_close(value + 1, product + 1)
        torch.testing.assert_close(torch.relu(value).sum((2, 3)), torch.relu(product).sum((2, 3)))
        torch.testing.assert_close(K.gated(gate, x), product)  # either order
        conv = nn.Conv2d(8, 4, 1).to(DEVICE)
        torch.testing.assert_close(K.conv1x1(value, conv), conv(product), **close(torch.float32))
    recorded = K.gated(x.requires_grad_(), gate)  # autograd records: the product itself
    assert not isinstance(recorded, Gated) and recorded.grad_fn is not None


def test_a_deferred_gemm_is_run_by_the_sum_with_the_shortcut_in_its_epilogue(monkeypatch):
    conv, bn = nn.Conv2d(8, 6, 1, bias=False).to(DEVICE), nn.BatchNorm2d(6).to(DEVICE).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x, shortcut = nhwc(2, 8, 3, 4), nhwc(2, 6, 3, 4, seed=1)
    residuals = []
    real = conv1x1_file.launch
    monkeypatch.setattr(conv1x1_file, "launch", lambda kernel, *args, **kwargs: (
        residuals.append(kwargs["HAS_RESIDUAL"]), real(kernel, *args, **kwargs))[1])
    with torch.no_grad():
        want = bn(conv(x)) + shortcut
        pending = K.conv1x1(x, conv, bn=bn, deferred=True)
        assert isinstance(pending, Pending) and pending.shape == want.shape and residuals == []
        torch.testing.assert_close(K.add(shortcut, pending), want, **close(torch.float32))
        assert residuals == [True]  # one GEMM, the shortcut added in its epilogue
        assert not isinstance(K.add(shortcut, shortcut), Pending)
        other = K.conv1x1(x, conv, bn=bn, deferred=True)  # made by another op first: once
        torch.testing.assert_close(other * 2, 2 * bn(conv(x)), **close(torch.float32))
        torch.testing.assert_close(K.add(other, shortcut), want, **close(torch.float32))
        assert residuals == [True, False]
    recorded = K.conv1x1(x, conv.requires_grad_(), bn=bn, deferred=True)  # autograd records
    assert not isinstance(recorded, Pending) and recorded.grad_fn is not None


def _layers(c: int, window: int, stride: int):
    torch.manual_seed(0)
    conv = nn.Conv2d(c, c, window, stride, window // 2, groups=c, bias=False)
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    return conv.to(DEVICE), bn.to(DEVICE)


def test_functional_dwconv_folds_the_bn_in_eval_mode():
    conv, bn = _layers(12, 5, 2)
    x = nhwc(2, 12, 9, 9)
    with torch.no_grad():
        want = nn.functional.hardswish(bn.eval()(conv(x)))
        got = K.dwconv(x, conv, bn, act="hardswish")
    torch.testing.assert_close(got, want, **close(torch.float32))


def test_functional_dwconv_trains_as_torchs_layers():
    """In training mode: the batch statistics, the running averages and the gradients."""
    conv, bn = _layers(6, 3, 1)
    twin_conv, twin_bn = _layers(6, 3, 1)
    x = nhwc(2, 6, 5, 5)
    K.dwconv(x, conv, bn.train(), act="silu").sum().backward()
    nn.functional.silu(twin_bn.train()(twin_conv(x))).sum().backward()
    torch.testing.assert_close(bn.running_mean, twin_bn.running_mean)
    torch.testing.assert_close(bn.running_var, twin_bn.running_var)
    torch.testing.assert_close(conv.weight.grad, twin_conv.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bn.weight.grad, twin_bn.weight.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n, c, h, w, window, stride, pad", [
    (3, 5, 7, 7, 3, 2, 1),  # 4x4 outputs: programs of 4 pixels, one image each
    (2, 19, 5, 6, 3, 1, 1),  # 30 pixels: the last program of each image half empty
    (4, 3, 2, 2, 3, 2, 1),  # one pixel an image: most of each program outside it
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_dwconv_sums_the_squeeze_as_it_stores(n, c, h, w, window, stride, pad, dtype):
    """The output is the plain launch's, and the fp32 means are its global average pool."""
    x = nhwc(n, c, h, w, dtype=dtype)
    weight = nhwc(c, 1, window, window, seed=1, dtype=dtype)
    bias = torch.randn(c, dtype=dtype).to(DEVICE)
    geometry = ((stride, stride), (pad, pad))
    plain = dwconv(x, weight, bias, *geometry, "silu")
    got, means = dwconv(x, weight, bias, *geometry, "silu", squeeze=True)
    assert torch.equal(got, plain) and means.shape == (n, c) and means.dtype == torch.float32
    want = torch_dwconv(x.float(), weight.float(), bias.float(), *geometry, "silu")
    torch.testing.assert_close(means, want.mean((2, 3)), **close(dtype))


def test_the_gap_of_a_squeezed_dwconv_is_its_means_until_it_changes():
    conv, bn = _layers(12, 3, 1)
    x = nhwc(2, 12, 6, 6)
    with torch.no_grad():
        y = K.dwconv(x, conv, bn.eval(), act="silu", squeeze=True)
        want = nn.functional.silu(bn(conv(x))).mean((2, 3), keepdim=True)
        means = K.global_avg_pool(y)
        assert means is y._archc_squeeze.means  # not computed again
        torch.testing.assert_close(means, want, **close(torch.float32))
        y.mul_(2)  # an in-place change: the sums are stale, the pool reads y again
        torch.testing.assert_close(K.global_avg_pool(y), 2 * want, **close(torch.float32))
    y = K.dwconv(x, conv, bn, act="silu", squeeze=True)  # autograd records: no side sums
    assert not hasattr(y, "_archc_squeeze")


@pytest.mark.parametrize("make, error, message", [
    (lambda: dwconv(nhwc(1, 4, 5, 5), nhwc(5, 1, 3, 3)), ValueError, r"weight must be \[4, 1"),
    (lambda: dwconv(nhwc(1, 4, 5, 5), nhwc(4, 1, 3, 3), act="swish"), ValueError,
     "unknown activation 'swish'"),
    (lambda: dwconv(nhwc(1, 4, 2, 2), nhwc(4, 1, 5, 5)), ValueError, "larger than the padded"),
    (lambda: dwconv(nhwc(1, 4, 5, 5), nhwc(4, 1, 3, 3, dtype=torch.float16)), TypeError,
     "share a dtype"),
    (lambda: conv1x1(nhwc(1, 4, 2, 2), nhwc(4, 4, 1, 1), relu=True, act="silu"), ValueError,
     "disagree"),
])
def test_dwconv_refuses_what_it_cannot_take(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_the_channel_tile_pads_least():
    assert [channel_block(c) for c in (16, 96, 144, 384, 960, 1152)] == [32, 32, 32, 128, 64,
                                                                        128]


@pytest.mark.gpu
@pytest.mark.skipif(not has_cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("c, size, window, stride", [(144, 56, 3, 2), (96, 56, 7, 1),
                                                     (672, 14, 5, 1)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_dwconv_full_size_on_the_gpu(c, size, window, stride, dtype):
    x = nhwc(8, c, size, size, dtype=dtype)
    weight = torch.randn(c, 1, window, window, device=DEVICE, dtype=dtype)
    bias = torch.randn(c, device=DEVICE, dtype=dtype)
    pad = (window // 2, window // 2)
    got = dwconv(x, weight, bias, (stride, stride), pad, "silu")
    want = torch_dwconv(x.float(), weight.float(), bias.float(), (stride, stride), pad, "silu")
    torch.testing.assert_close(got.float(), want, **close(dtype))


@pytest.mark.gpu
@pytest.mark.skipif(not has_cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("c_in, c_out, size", [(144, 24, 56), (672, 112, 14), (120, 40, 28)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_gated_gemm_full_size_on_the_gpu(c_in, c_out, size, dtype):
    """EfficientNet's and MobileNet-v3's projections: the SE gate multiplied in as x loads,
    and (120 and 40 channels) widths that are multiples of 8 but not of 16."""
    x = nhwc(64, c_in, size, size, dtype=dtype)
    weight = nhwc(c_out, c_in, 1, 1, dtype=dtype, seed=1)
    gate = torch.rand(64, c_in, 1, 1, device=DEVICE, dtype=dtype)
    got = conv1x1(x, weight, gate=gate)
    want = torch.nn.functional.conv2d((x * gate).float(), weight.float())
    torch.testing.assert_close(got.float(), want, **close(dtype))
