"""The kernels on a real GPU's rules, compiled offline for sm_80 (A100) and sm_90 (H100).

ptxas, bundled with Triton, compiles each config the autotuners may pick, and the test holds
it to the target's limits: shared memory within a block's maximum, no register spilled. The
default run compiles a representative set (half a minute on 2 cores); `pytest -m aot` compiles
the rest of the sweep, every dtype and flag combination.
"""

from __future__ import annotations

import pytest
from archc.backends import conv1x1 as gemm
from archc.backends import mlp1x1 as mlp
from archc.backends.aot import TARGETS, Job, compile_all, pointer_signature

FULL = pytest.mark.aot

GEMM_POINTERS = ("x_ptr", "w_ptr", "b_ptr", "out_ptr", "rest_ptr", "res_ptr")
GEMM_INTEGERS = ("M", "N", "K", "H", "W", "SPLIT", "stride_xm", "stride_wn", "stride_wk",
                 "stride_om", "stride_rm", "stride_resm")
MLP_POINTERS = ("x_ptr", "wa_ptr", "ba_ptr", "wb_ptr", "bb_ptr", "out_ptr")
MLP_INTEGERS = ("M", "K", "HID", "N", "stride_xm", "stride_wa", "stride_wb", "stride_om")


# What a launch specialises on: torch's allocations are aligned, and input channels, strides
# and N*H*W are multiples of 16 for every 1x1 of the shipped nets; the output channels need
# not be (a merged GEMM of GoogLeNet's 4b has 160 + 112 + 24 = 296), so N and SPLIT are not.
ALIGNED_GEMM = GEMM_POINTERS + ("M", "K", "stride_xm", "stride_wn", "stride_om", "stride_rm",
                                "stride_resm")


def precision(dtype: str) -> str:
    return "tf32" if dtype == "fp32" else "ieee"  # as the launchers choose


def gemm_job(kind: str, index: int, dtype: str, target: str) -> Job:
    config = gemm.CONFIGS[index]
    flags = {"HAS_BIAS": True, "HAS_RESIDUAL": kind == "residual", "RELU": True,
             "POOL": kind == "pool", "PRECISION": precision(dtype), **config.kwargs}
    return Job("archc.backends.conv1x1", "conv1x1_kernel",
               pointer_signature(dtype, GEMM_POINTERS, GEMM_INTEGERS), flags, target,
               config.num_warps, config.num_stages, ALIGNED_GEMM)


def mlp_job(hidden: int, dtype: str, target: str) -> Job:
    blocks, warps, stages = mlp.launch_settings(hidden)
    flags = {"RELU_A": True, "RELU_B": True, "PRECISION": precision(dtype), "HIDDEN": hidden,
             **blocks}
    return Job("archc.backends.mlp1x1", "mlp1x1_kernel",
               pointer_signature(dtype, MLP_POINTERS, MLP_INTEGERS), flags, target, warps, stages,
               MLP_POINTERS + ("M", "K", "N", "stride_xm", "stride_wa", "stride_wb", "stride_om"))


# (kernel kind, config index or hidden width, dtype, target): the default run's set, and the
# full sweep's additions (`pytest -m aot`).
DEFAULT = [("pool", i, d, t) for i in range(len(gemm.CONFIGS)) for d in ("fp32", "fp16")
           for t in TARGETS] + \
    [("residual", i, "fp32", t) for i in range(len(gemm.CONFIGS)) for t in TARGETS] + \
    [("mlp", h, "fp32", t) for h in (128, 256) for t in TARGETS]
SWEEP = [("pool", i, "bf16", t) for i in range(len(gemm.CONFIGS)) for t in TARGETS] + \
    [(k, i, d, t) for k in ("plain", "residual") for i in range(len(gemm.CONFIGS))
     for d in ("fp16", "bf16") for t in TARGETS] + \
    [("mlp", h, d, t) for h in (128, 256) for d in ("fp16", "bf16") for t in TARGETS]


def job_of(case) -> Job:
    kind, which, dtype, target = case
    return mlp_job(which, dtype, target) if kind == "mlp" else \
        gemm_job(kind, which, dtype, target)


@pytest.fixture(scope="module")
def usages(request) -> dict:
    """The selected cases compiled at once, in one child process (see archc.backends.aot)."""
    cases = [item.callspec.params["case"] for item in request.session.items
             if item.path == request.path and hasattr(item, "callspec")]
    return dict(zip(cases, compile_all([job_of(c) for c in cases])))


@pytest.mark.parametrize("case", DEFAULT + [pytest.param(c, marks=FULL) for c in SWEEP],
                         ids=lambda c: "-".join(map(str, c)))
def test_every_config_fits_its_target(usages, case):
    """GoogLeNet's pool projection needed 295-483 KB of shared memory in fp32 (limits: 227 KB
    on sm_90, 163 KB on sm_80) and spilled at 255 registers in every dtype; NIN's mlp1x1
    needed 168 KB in fp32 at hidden 256, over sm_80's limit."""
    usage, target = usages[case], TARGETS[case[3]]
    assert usage.fits(target), usage
    assert usage.blocks_per_sm(target) >= 1, usage
    assert usage.tensor_cores != "none", usage  # every kernel here is a dot
    if case[0] != "mlp" and case[3] == "sm_90":  # mlp1x1 at hidden 256 (32-pixel tiles) is
        assert usage.tensor_cores == "wgmma", usage  # on mma.sync still: issue 15


def test_a_pool_launch_never_shares_a_tuned_config_with_a_plain_gemm():
    """The autotune key was (M, N, K): a POOL or residual launch reused the config tuned for a
    plain GEMM of the same sizes, whose registers and shared memory differ."""
    assert {"HAS_RESIDUAL", "POOL", "RELU", "HAS_BIAS"} <= set(gemm.tuned_conv1x1_kernel.keys)
