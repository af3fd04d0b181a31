"""Every kernel variant at the sizes the shipped nets launch, on a CUDA device (`pytest -m
gpu`; skipped without one): the pool projection, the residual epilogue, the split store into a
concat, mlp1x1, the pools and global average pooling, in fp32 (TF32), fp16 and bf16, with the
autotuner choosing among the configs `prune_configs` leaves for the device."""

from __future__ import annotations

import pytest
import torch
from conftest import has_cuda
from torch.nn import functional as F

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not has_cuda(), reason="needs a CUDA device")]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def nhwc(*shape, dtype, seed=0):
    torch.manual_seed(seed)
    return torch.randn(*shape).to("cuda", dtype).contiguous(memory_format=torch.channels_last)


def tolerance(dtype) -> dict:
    return {torch.float32: {"rtol": 5e-3, "atol": 5e-3}, torch.float16: {"rtol": 1e-2,
            "atol": 1e-2}, torch.bfloat16: {"rtol": 3e-2, "atol": 8e-2}}[dtype]


def reference(x, weight, bias, residual=None, pool=False):
    x = F.max_pool2d(x.float(), 3, 1, 1) if pool else x.float()
    y = F.conv2d(x, weight.float(), bias.float())
    return F.relu(y + residual.float() if residual is not None else y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c_in, c_out, h", [(192, 32, 28), (528, 128, 14), (832, 128, 7)])
def test_pool_projection(dtype, c_in, c_out, h):
    from archc.backends.triton.conv1x1 import conv1x1

    x, w = nhwc(64, c_in, h, h, dtype=dtype), nhwc(c_out, c_in, 1, 1, dtype=dtype, seed=1)
    b = torch.randn(c_out, device="cuda").to(dtype)
    got = conv1x1(x, w, b, relu=True, pool=True)
    torch.testing.assert_close(got.float(), reference(x, w, b, pool=True), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c_in, c_out, h", [(64, 256, 56), (512, 2048, 7)])
def test_residual_epilogue(dtype, c_in, c_out, h):
    from archc.backends.triton.conv1x1 import conv1x1

    x, w = nhwc(32, c_in, h, h, dtype=dtype), nhwc(c_out, c_in, 1, 1, dtype=dtype, seed=1)
    b, shortcut = torch.randn(c_out, device="cuda").to(dtype), nhwc(32, c_out, h, h,
                                                                     dtype=dtype, seed=2)
    got = conv1x1(x, w, b, relu=True, residual=shortcut)
    torch.testing.assert_close(got.float(), reference(x, w, b, shortcut), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_store_into_a_concat(dtype):
    """GoogLeNet's 4b: one GEMM of 512 -> 160 + 112 + 24, its first 160 channels into the
    concat's slice 0:160 of 512, the other 136 into a buffer of their own."""
    from archc.backends.triton.conv1x1 import conv1x1

    x, w = nhwc(64, 512, 14, 14, dtype=dtype), nhwc(296, 512, 1, 1, dtype=dtype, seed=1)
    b = torch.randn(296, device="cuda").to(dtype)
    concat = torch.zeros((64, 512, 14, 14), device="cuda", dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    rest = torch.empty((64, 136, 14, 14), device="cuda", dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    conv1x1(x, w, b, relu=True, out=concat[:, :160], rest=rest)
    want = reference(x, w, b)
    torch.testing.assert_close(concat[:, :160].float(), want[:, :160], **tolerance(dtype))
    torch.testing.assert_close(rest.float(), want[:, 160:], **tolerance(dtype))
    assert (concat[:, 160:] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c_in, hidden, c_out", [(192, 160, 96), (192, 192, 192), (192, 192, 10)])
def test_mlp1x1(dtype, c_in, hidden, c_out):
    from archc.backends.triton.mlp1x1 import mlp1x1

    x = nhwc(64, c_in, 32, 32, dtype=dtype)
    wa, wb = nhwc(hidden, c_in, 1, 1, dtype=dtype, seed=1), nhwc(c_out, hidden, 1, 1,
                                                               dtype=dtype, seed=2)
    wa, wb = wa / c_in ** 0.5, wb / hidden ** 0.5
    ba, bb = (torch.randn(n, device="cuda").to(dtype) for n in (hidden, c_out))
    want = F.relu(F.conv2d(F.relu(F.conv2d(x.float(), wa.float(), ba.float())), wb.float(),
                           bb.float()))
    torch.testing.assert_close(mlp1x1(x, wa, ba, wb, bb).float(), want, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, c, size, window, stride, pad", [
    ("max", 64, 112, 3, 2, 0), ("max", 480, 28, 3, 2, 0), ("avg", 1024, 7, 7, 1, 0),
    ("avg", 528, 14, 5, 3, 0), ("max", 96, 32, 3, 2, 1)])
def test_pools(dtype, kind, c, size, window, stride, pad):
    from archc.backends.triton.pool2d import pool2d

    x = nhwc(64, c, size, size, dtype=dtype)
    torch_pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    want = torch_pool(x.float(), window, stride, pad, ceil_mode=True)
    got = pool2d(x, kind, (window,) * 2, (stride,) * 2, (pad,) * 2, True)
    torch.testing.assert_close(got.float(), want, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c, size", [(2048, 7), (1024, 7), (10, 8)])
def test_global_avg_pool(dtype, c, size):
    from archc.backends.triton.global_avg_pool import global_avg_pool

    x = nhwc(64, c, size, size, dtype=dtype)
    want = F.adaptive_avg_pool2d(x.float(), 1)
    torch.testing.assert_close(global_avg_pool(x).float(), want, **tolerance(dtype))


def test_the_tuner_picks_only_pruned_configs():
    """After a launch, the config the autotuner chose is one prune_configs left for this
    device (so `archc kernels` compiled it offline)."""
    from archc.backends.triton import conv1x1 as gemm

    x, w = nhwc(64, 512, 14, 14, dtype=torch.float16), nhwc(296, 512, 1, 1,
                                                          dtype=torch.float16, seed=1)
    gemm.conv1x1(x, w, None, relu=True)
    named = {"x_ptr": x, "M": 64 * 14 * 14, "N": 296, "K": 512, "stride_xm": 512,
             "stride_om": 296}
    kept = gemm.prune_configs(gemm.CONFIGS, named, POOL=False)
    assert gemm.tuned_conv1x1_kernel.best_config.kwargs in [c.kwargs for c in kept]
