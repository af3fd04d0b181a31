"""archc.backends against torch: the fused 1x1 conv and the pools, on odd shapes.

Without a GPU the kernels run on CPU tensors in Triton's interpreter (conftest sets
TRITON_INTERPRET=1), on tiny shapes. The `gpu` tests run the same comparisons at full size on
a CUDA device and skip without one.
"""

from __future__ import annotations

import pytest
import torch
from conftest import has_cuda
from torch.nn import functional as F

from archc.backends.triton.conv1x1 import conv1x1
from archc.backends.triton.global_avg_pool import global_avg_pool
from archc.backends.triton.pool2d import pool2d

DEVICE = "cuda" if has_cuda() else "cpu"
gpu = pytest.mark.skipif(not has_cuda(), reason="needs a CUDA device")


def nhwc(*shape, dtype=torch.float32, seed=0, device=DEVICE):
    torch.manual_seed(seed)
    return torch.randn(*shape, dtype=dtype).to(device).contiguous(
        memory_format=torch.channels_last)


def close(dtype, device=DEVICE):
    """Tolerances: fp32 exact to rounding in the interpreter (IEEE dot); TF32 on a GPU, as
    cuDNN uses for PyTorch's fp32 convolutions; fp16 at its 11-bit mantissa."""
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-5} if device == "cpu" else {"rtol": 5e-3, "atol": 5e-3}
    return {"rtol": 1e-2, "atol": 1e-2}


# ---- conv1x1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("n, c_in, c_out, h, w", [
    (1, 3, 5, 1, 1), (2, 17, 33, 3, 5), (1, 40, 7, 7, 3), (3, 16, 16, 2, 2), (1, 1, 20, 5, 5),
])
@pytest.mark.parametrize("relu, has_bias", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_conv1x1_equals_torch(n, c_in, c_out, h, w, relu, has_bias, dtype):
    x = nhwc(n, c_in, h, w, dtype=dtype)
    weight = nhwc(c_out, c_in, 1, 1, dtype=dtype, seed=1)
    bias = torch.randn(c_out, dtype=dtype).to(DEVICE) if has_bias else None
    want = F.conv2d(x.float(), weight.float(), None if bias is None else bias.float())
    want = F.relu(want) if relu else want
    got = conv1x1(x, weight, bias, relu=relu)
    assert got.dtype == dtype and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.float(), want, **close(dtype))


def test_conv1x1_writes_its_channel_slice_of_a_concat_buffer_and_nothing_else():
    x = nhwc(2, 12, 5, 3)
    weight, bias = nhwc(9, 12, 1, 1, seed=1), torch.randn(9).to(DEVICE)
    buffer = torch.full((2, 30, 5, 3), 7.0, device=DEVICE).contiguous(
        memory_format=torch.channels_last)
    conv1x1(x, weight, bias, relu=True, out=buffer[:, 11:20])
    torch.testing.assert_close(buffer[:, 11:20], F.relu(F.conv2d(x, weight, bias)), **close(
        torch.float32))
    assert (buffer[:, :11] == 7).all() and (buffer[:, 20:] == 7).all()


def test_conv1x1_reads_a_channel_slice_too():
    big = nhwc(2, 20, 3, 3)
    x = big[:, 5:13]  # a branch of a concat, read in place
    weight = nhwc(4, 8, 1, 1, seed=2)
    torch.testing.assert_close(conv1x1(x, weight), F.conv2d(x, weight), **close(torch.float32))


@pytest.mark.parametrize("make, error, message", [
    (lambda: (torch.randn(1, 4, 3, 3), torch.randn(2, 4, 1, 1)), ValueError, "channels last"),
    (lambda: (nhwc(1, 4, 3, 3).int(), torch.randn(2, 4, 1, 1).int()), TypeError, "float32"),
    (lambda: (nhwc(1, 4, 3, 3), torch.randn(2, 4, 1, 1).half()), TypeError, "share a dtype"),
    (lambda: (nhwc(1, 4, 3, 3), torch.randn(2, 5, 1, 1)), ValueError, "takes 5 channels"),
])
def test_conv1x1_refuses_what_it_cannot_take(make, error, message):
    x, weight = make()
    with pytest.raises(error, match=message):
        conv1x1(x, weight.to(x.device))


# ---- pools ---------------------------------------------------------------------------------

POOLS = [  # window, stride, pad, ceil: GoogLeNet's and NIN's, and the rounding corner cases
    (3, 2, 0, True), (3, 1, 1, True), (3, 2, 1, True), (2, 2, 1, True), (3, 3, 1, True),
    (5, 3, 0, False), (7, 1, 0, True), (2, 2, 0, False), (3, 2, 1, False), (4, 3, 2, True),
]


@pytest.mark.parametrize("window, stride, pad, ceil", POOLS)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size", [(7, 7), (8, 9)])
def test_pool2d_equals_torch(kind, window, stride, pad, ceil, size):
    x = nhwc(2, 5, *size)
    layer = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(
        window, stride, pad, ceil_mode=ceil)
    want = layer(x)
    got = pool2d(x, kind, (window, window), (stride, stride), (pad, pad), ceil)
    assert got.shape == want.shape
    if kind == "max":
        assert torch.equal(got, want)
    else:  # the divisor at clipped windows too
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_pool2d_in_fp16_accumulates_in_fp32():
    x = nhwc(1, 3, 9, 9, dtype=torch.float16) + 100  # sums past fp16's integer precision
    got = pool2d(x, "avg", (5, 5), (2, 2))
    want = F.avg_pool2d(x.float(), 5, 2).half()
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_pool2d_writes_into_a_channel_slice():
    x = nhwc(1, 4, 6, 6)
    buffer = torch.zeros(1, 10, 3, 3, device=DEVICE).contiguous(memory_format=torch.channels_last)
    pool2d(x, "max", (3, 3), (2, 2), (0, 0), True, out=buffer[:, 2:6])
    assert torch.equal(buffer[:, 2:6], F.max_pool2d(x, 3, 2, ceil_mode=True))
    assert not buffer[:, :2].any() and not buffer[:, 6:].any()


def test_pool2d_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind must be"):
        pool2d(nhwc(1, 2, 4, 4), "min", (2, 2), (2, 2))
    with pytest.raises(ValueError, match="at most half the window"):
        pool2d(nhwc(1, 2, 4, 4), "max", (2, 2), (2, 2), (2, 2))


@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 20, 3, 1), (3, 1, 4, 4)])
def test_global_avg_pool_equals_torch(shape):
    x = nhwc(*shape)
    torch.testing.assert_close(global_avg_pool(x), F.adaptive_avg_pool2d(x, 1),
                               rtol=1e-6, atol=1e-6)


# ---- full size, on a GPU -------------------------------------------------------------------

INCEPTION_1X1 = [  # (C_in, C_out, H): GoogLeNet's merged 1x1 GEMMs of 3a, 4a and 5b
    (192, 64 + 96 + 16, 28), (480, 192 + 96 + 16, 14), (832, 384 + 192 + 48, 7)]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("c_in, c_out, h", INCEPTION_1X1)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_conv1x1_full_size_on_the_gpu(c_in, c_out, h, dtype):
    x = nhwc(64, c_in, h, h, dtype=dtype)
    weight, bias = nhwc(c_out, c_in, 1, 1, dtype=dtype, seed=1), torch.randn(c_out).to(
        DEVICE, dtype)
    want = F.relu(F.conv2d(x, weight, bias))
    tolerance = close(dtype) if dtype != torch.bfloat16 else {"rtol": 2e-2, "atol": 5e-2}
    torch.testing.assert_close(conv1x1(x, weight, bias, relu=True), want, **tolerance)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_pools_full_size_on_the_gpu(kind, dtype):
    x = nhwc(64, 192, 56, 56, dtype=dtype)
    layer = torch.nn.MaxPool2d(3, 2, ceil_mode=True) if kind == "max" else \
        torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True)
    torch.testing.assert_close(pool2d(x, kind, (3, 3), (2, 2), (0 if kind == "max" else 1,) * 2,
                                      True), layer(x), **close(dtype))


def test_conv1x1_splits_its_channels_between_a_concat_slice_and_a_buffer_of_their_own():
    x = nhwc(2, 12, 3, 5)
    weight, bias = nhwc(21, 12, 1, 1, seed=1), torch.randn(21).to(DEVICE)
    want = F.relu(F.conv2d(x, weight, bias))
    buffer = torch.full((2, 30, 3, 5), 7.0, device=DEVICE).contiguous(
        memory_format=torch.channels_last)
    rest = torch.full((2, 16, 3, 5), 7.0, device=DEVICE).contiguous(
        memory_format=torch.channels_last)
    conv1x1(x, weight, bias, relu=True, out=buffer[:, 4:9], rest=rest)
    torch.testing.assert_close(buffer[:, 4:9], want[:, :5], **close(torch.float32))
    torch.testing.assert_close(rest, want[:, 5:], **close(torch.float32))
    assert (buffer[:, :4] == 7).all() and (buffer[:, 9:] == 7).all()


def test_conv1x1_refuses_a_rest_of_the_wrong_size():
    x, weight = nhwc(1, 4, 3, 3), nhwc(6, 4, 1, 1)
    rest = torch.empty(1, 2, 3, 4, device=DEVICE).contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match=r"rest must be \[1, 2, 3, 3\]"):
        conv1x1(x, weight, rest=rest)


@pytest.mark.parametrize("n, c_in, c_out, h, w", [(2, 5, 7, 4, 3), (1, 20, 17, 5, 5),
                                                  (3, 3, 4, 1, 6), (1, 16, 16, 2, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_conv1x1_takes_a_3x3_max_pool_as_it_loads(n, c_in, c_out, h, w, dtype):
    """GoogLeNet's pool projection: max_pool2d(x, 3, 1, 1) then the 1x1 conv, in one kernel;
    the image borders (where the window is clipped) included."""
    x = nhwc(n, c_in, h, w, dtype=dtype)
    weight, bias = nhwc(c_out, c_in, 1, 1, dtype=dtype, seed=1), torch.randn(c_out).to(
        DEVICE, dtype)
    want = F.relu(F.conv2d(F.max_pool2d(x.float(), 3, 1, 1), weight.float(), bias.float()))
    got = conv1x1(x, weight, bias, relu=True, pool=True)
    torch.testing.assert_close(got.float(), want, **close(dtype))


# ---- mlp1x1: NIN's micro network in one kernel --------------------------------------------


@pytest.mark.parametrize("n, c_in, hidden, c_out, h, w", [
    (2, 5, 7, 9, 4, 3), (1, 20, 33, 17, 5, 5), (3, 3, 160, 10, 1, 6), (1, 16, 16, 16, 2, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_mlp1x1_equals_two_convs(n, c_in, hidden, c_out, h, w, dtype):
    from archc.backends.triton.mlp1x1 import mlp1x1

    x = nhwc(n, c_in, h, w, dtype=dtype)
    wa, wb = nhwc(hidden, c_in, 1, 1, dtype=dtype, seed=1), nhwc(c_out, hidden, 1, 1,
                                                                  dtype=dtype, seed=2)
    ba, bb = torch.randn(hidden).to(DEVICE, dtype), torch.randn(c_out).to(DEVICE, dtype)
    hidden_out = F.relu(F.conv2d(x.float(), wa.float(), ba.float()))
    if dtype == torch.float16:  # the kernel keeps the hidden tile in the input's dtype
        hidden_out = hidden_out.half().float()
    want = F.relu(F.conv2d(hidden_out, wb.float(), bb.float()))
    got = mlp1x1(x, wa, ba, wb, bb)
    assert got.dtype == dtype and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.float(), want, **close(dtype))


def test_mlp1x1_refuses_a_hidden_width_it_cannot_hold():
    from archc.backends.triton.mlp1x1 import mlp1x1

    x = nhwc(1, 4, 2, 2)
    with pytest.raises(ValueError, match="hidden width of 300 is over 256"):
        mlp1x1(x, nhwc(300, 4, 1, 1), torch.zeros(300, device=DEVICE), nhwc(2, 300, 1, 1),
               torch.zeros(2, device=DEVICE))
