"""`archc kernels`: the launches it reports, its roofline numbers, its exit status and what bad
input gets. Compiles offline for sm_90 / sm_80 (Triton's bundled ptxas; no GPU)."""

from __future__ import annotations

import json
import re

import pytest

from archc.backends.triton import aot


def test_help(archc):
    status, out, err = archc("kernels", "--help")
    assert status == 0 and "usage: archc kernels" in out and "--target" in out
    assert "not a measurement" in out


def run_json(archc, *args):
    status, out, err = archc("kernels", *args, "--json")
    assert status == 0, err
    return json.loads(out)


def test_nin_launches_and_their_ideal_times(archc):
    """NIN-CIFAR at inference: three mlpconvs as mlp1x1 (the 5x5/3x3 convs stay on cuDNN),
    two max pools, global average pooling; each ideal time the roofline of its own sizes."""
    report = run_json(archc, "nets/nin_cifar10.arch", "--batch", "64", "--dtype", "fp16")
    kernels = [launch["kernel"] for launch in report["launches"]]
    assert kernels == ["mlp1x1_kernel", "pool2d_kernel", "mlp1x1_kernel", "pool2d_kernel",
                       "mlp1x1_kernel", "global_avg_pool_kernel"]
    h100 = aot.TARGETS["sm_90"]
    gap = report["launches"][-1]
    assert gap["shape"] == "10ch 64px"
    expected = 64 * (64 + 1) * 10 * 2 / h100.hbm_bytes_per_s * 1e6  # read 8x8x10, write 10
    assert all(c["ideal_us"] == pytest.approx(expected) for c in gap["configs"])
    for launch in report["launches"]:
        assert not launch["fails"] and launch["best"] is not None
        for c in launch["configs"]:
            assert c["model_us"] >= c["ideal_us"] * (1 - 1e-9) > 0
            assert c["launchable"] and c["spill_bytes"] == 0
    assert report["model_us"] >= report["ideal_us"] > 0
    assert report["device"] == "H100 SXM5 80GB" and report["mode"] == "eval"


def test_a_gemm_ideal_is_its_flops_or_its_bytes(archc):
    """GoogLeNet's stem 1x1 (64 -> 64 channels at 56x56): 2*M*N*K FLOPs at the tensor-core
    peak against x, weight, bias and output through HBM once."""
    report = run_json(archc, "nets/googlenet.arch", "--batch", "2", "--target", "sm_80")
    stem = next(r for r in report["launches"] if r["kernel"] == "conv1x1_kernel")
    m, n, k = 2 * 56 * 56, 64, 64
    assert stem["shape"] == f"{m}x{n}x{k}" and stem["flags"] == "bias,relu,aligned,tf32"
    a100 = aot.TARGETS["sm_80"]
    ideal = max(2 * m * n * k / a100.tensor_flops["fp32"],
                (m * k + n * k + n + m * n) * 4 / a100.hbm_bytes_per_s)
    assert all(c["ideal_us"] == pytest.approx(ideal * 1e6) for c in stem["configs"])
    pooled = [r for r in report["launches"] if "pool" in r["flags"].split(",")]
    assert sum(r["count"] for r in pooled) == 9  # one per inception module, fused in its GEMM


# CI runs it (`make test-slow`); the eval launches are tested by default; 8 s here
@pytest.mark.slow
def test_training_launches_leave_the_bn_and_the_pool_unfused(archc):
    """In training mode the pool projection's pool runs before its GEMM (autograd needs the
    pooled tensor): no POOL launch, and more launches than at inference."""
    train = run_json(archc, "nets/googlenet.arch", "--batch", "2", "--train")
    infer = run_json(archc, "nets/googlenet.arch", "--batch", "2")
    assert train["mode"] == "train"
    assert not any("pool" in r["flags"].split(",") for r in train["launches"])
    assert sum(r["count"] for r in train["launches"]) > sum(r["count"] for r in infer["launches"])


def test_text_report(archc):
    status, out, err = archc("kernels", "nets/nin_cifar10.arch", "--batch", "8", "--configs")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == ("nets/nin_cifar10.arch: 6 launches (6 distinct) on sm_90 "
                        "(H100 SXM5 80GB), fp32, batch 8, eval")
    assert lines[2].split()[:6] == ["kernel", "flags", "shape", "n", "config", "regs"]
    assert sum(line.endswith("memory") or line.endswith("compute") for line in lines) >= 6
    marked = [line for line in lines if re.search(r" s\d \*", line)]  # each launch's best
    assert len(marked) == 6
    assert "not a measurement" in lines[-1]


def test_a_launch_over_the_target_exits_1(archc, monkeypatch):
    """A target whose blocks get 8 KB of shared memory: no GEMM config fits, the pruner says
    so, and the command exits 1 naming the launch."""
    small = aot.Target(**{**aot.TARGETS["sm_80"].__dict__, "shared_per_block": 8192})
    monkeypatch.setitem(aot.TARGETS, "sm_80", small)
    status, out, err = archc("kernels", "nets/nin_cifar10.arch", "--target", "sm_80",
                             "--batch", "2", "--train")
    assert status == 1
    assert "error: conv1x1_kernel 128x192x192: conv1x1: no config fits this device's 8 KB " \
           "of shared memory a block" in out


def test_a_net_without_triton_launches(archc, tmp_path):
    net = tmp_path / "plain.arch"
    net.write_text("net plain {\n    input 3x8x8\n    conv 3x3 4\n    fc 10\n}\n")
    status, out, err = archc("kernels", str(net))
    assert status == 0 and out == ""
    assert "launches no Triton kernel" in err


@pytest.mark.parametrize("args, message", [
    (["missing.arch"], "archc: error: cannot read missing.arch"),
    (["nets/nin_cifar10.arch", "--batch", "0"], "expected an integer from 1 to 65536"),
    (["nets/nin_cifar10.arch", "--target", "sm_75"], "invalid choice: 'sm_75'"),
    (["nets/nin_cifar10.arch", "--set", "nope=3"], "nope"),
])
def test_usage_errors_exit_2(archc, args, message):
    status, out, err = archc("kernels", *args)
    assert status == 2 and message in err


def test_a_broken_net_is_a_located_error(archc, tmp_path):
    net = tmp_path / "broken.arch"
    net.write_text("net broken {\n    input 3x8x8\n    conv 3x3 4 stride=9x\n}\n")
    status, out, err = archc("kernels", str(net))
    assert status == 1 and f"{net}:3:" in err and "error:" in err


def test_a_training_batch_torch_refuses_is_a_usage_error(archc):
    """Inception-v3's auxiliary head batch-normalises 1x1 maps: one image cannot train it."""
    status, out, err = archc("kernels", "nets/inception_v3.arch", "--batch", "1", "--train")
    assert status == 2 and out == ""
    assert "--train at batch 1: a batch norm of the net would see one value per channel" in err
