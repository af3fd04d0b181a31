"""The kernels on a real GPU's rules: the launches the triton backend really makes (captured on
meta tensors by archc.backends.triton.launch), every config the tuner may pick for them, compiled
offline for sm_80 (A100) and sm_90 (H100) with Triton's bundled ptxas.

The default run compiles one launch of each kernel, flag and activation group (GoogLeNet in
eval and train mode, ResNet-50, NIN, MobileNet-v2, EfficientNet-B0, ConvNeXt-T) in fp32 and
fp16 for both targets; `pytest -m aot` (CI's `make test-aot`) sweeps one shipped net of each
op family (tests/conftest.py's FAMILIES) at batch 1 and 64, eval and train, fp32, fp16 and
bf16: every launch compiled for every config its tuner may pick, most of it ptxas's time.
Every net at every batch size took hours of compiling on a 2-core machine; `archc kernels
NET.arch --target sm_90` checks any other net and batch the same way.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import pytest
from conftest import FAMILIES

from archc.backends.triton import conv1x1 as gemm
from archc.backends.triton.aot import TARGETS, compile_all
from archc.backends.triton.launch import targeting
from archc.cli.kernels import capture_launches, compile_and_model, configs_of, kernel_name
from archc.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
NETS = sorted(f"nets/{name}.arch" for name in FAMILIES)
REPRESENTATIVE = [("nets/googlenet.arch", False), ("nets/googlenet.arch", True),
                  ("nets/resnet50.arch", False), ("nets/nin_cifar10.arch", False),
                  ("nets/mobilenet_v2.arch", False), ("nets/efficientnet_b0.arch", False),
                  ("nets/convnext_tiny.arch", False)]
DEFAULT = list(itertools.product(("sm_90", "sm_80"), ("fp32", "fp16")))
SWEEP = [(n, t, d, b, train) for n in NETS for t in TARGETS for d in ("fp32", "fp16", "bf16")
         for b in (1, 64) for train in (False, True)]


def group_of(launch) -> tuple:
    flags = tuple(sorted(k for k, v in launch.kwargs.items() if v is True))
    flags += (launch.kwargs.get("ACT", "linear"),)
    split = kernel_name(launch) == "conv1x1_kernel" and launch.args[11] < launch.args[7]
    return kernel_name(launch), flags, split


def representative(target, dtype: str) -> list:
    """One launch of each kernel and flag group, from the nets above at batch 64."""
    chosen = {}
    with warnings.catch_warnings():  # "runs as torch ops here": the layers left to torch
        warnings.simplefilter("ignore")
        for net, train in REPRESENTATIVE:
            for launch in capture_launches(str(ROOT / net), target, dtype, 64, train):
                chosen.setdefault(group_of(launch), launch)
    return list(chosen.values())


@pytest.fixture(scope="module")
def reports() -> dict:
    """Every default case compiled at once (one child process a core), then modelled."""
    launches = {case: representative(TARGETS[case[0]], case[1]) for case in DEFAULT}
    jobs = [job for (t, _), group in launches.items() for launch in group
            for _, job, _ in configs_of(launch, TARGETS[t])[0]]
    compile_all(jobs)  # fills the cache that compile_and_model then reads
    return {case: compile_and_model(group, TARGETS[case[0]], quiet=True)
            for case, group in launches.items()}


def problems(results, target, dtype: str) -> list[str]:
    """What breaks the offline targets, for every config a launch may be tuned over."""
    found = []
    for r in results:
        dot = r.kernel in ("conv1x1_kernel", "mlp1x1_kernel")
        for c in r.configs:
            where = f"{r.kernel} {r.flags} {r.shape} {c.name}"
            u = c.usage
            if u is None:
                found.append(f"{where}: did not compile: {c.error}")
                continue
            if not u.fits(target) or u.blocks_per_sm(target) < 1:
                found.append(f"{where}: {u}")
            if dot and u.tensor_cores != ("wgmma" if target.arch >= 90 else "mma"):
                found.append(f"{where}: tensor cores {u.tensor_cores}")
            if r.kernel == "conv1x1_kernel" and dtype != "fp32" and "aligned" in r.flags and \
                    min(u.widest_load, u.widest_store) < 16:
                found.append(f"{where}: widest load/store {u.widest_load}/{u.widest_store}")
            if r.kernel in ("pool2d_kernel", "dwconv_kernel") and dtype != "fp32" and \
                    "aligned" in r.flags.split(",") and \
                    int(r.shape.split("ch")[0]) >= 64 and u.widest_load < 16:
                found.append(f"{where}: widest load {u.widest_load} bytes")
        if r.refused or r.best(target) is None:
            found.append(f"{r.kernel} {r.shape}: cannot launch ({r.refused})")
    return found


@pytest.mark.parametrize("case", DEFAULT, ids=lambda c: "-".join(c))
def test_every_config_the_tuner_may_pick_fits(reports, case):
    """Before: GoogLeNet's pool projection needed 295-483 KB of shared memory in fp32 (limits:
    227 KB on sm_90, 163 KB on sm_80) and spilled; mlp1x1 was on mma.sync on sm_90 and over
    sm_80's limit in fp32; fp16 pools never issued a 128-bit load. The depthwise conv and
    each activation in the GEMM's epilogue are held to the same."""
    results = reports[case]
    kinds = {r.kernel for r in results}
    assert kinds == {"conv1x1_kernel", "mlp1x1_kernel", "pool2d_kernel",
                     "global_avg_pool_kernel", "dwconv_kernel"}
    assert problems(results, TARGETS[case[0]], case[1]) == []


@pytest.mark.parametrize("case", DEFAULT, ids=lambda c: "-".join(c))
def test_the_pruners_shared_memory_bound_holds(reports, case):
    """prune_configs keeps a config by an estimate of its shared memory: the estimate must
    never be under what ptxas allocates, or a kept config could fail to launch."""
    size = 4 if case[1] == "fp32" else 2
    by_name = {f"m{c.kwargs['BLOCK_M']} n{c.kwargs['BLOCK_N']} k{c.kwargs['BLOCK_K']} "
               f"g{c.kwargs['GROUP_M']} w{c.num_warps} s{c.num_stages}": c for c in gemm.CONFIGS}
    checked = 0
    for r in reports[case]:
        for c in r.configs if r.kernel == "conv1x1_kernel" else ():
            estimate = gemm.shared_estimate(by_name[c.name], size, "gate" in r.flags.split(","))
            assert estimate >= c.usage.shared, (r.shape, c)
            checked += 1
    assert checked >= 8


def test_hot_gemms_hold_two_blocks_an_sm_on_sm_90(reports):
    """The plain GEMMs (no pool) in fp16 on sm_90 each have a config with two resident
    blocks an SM, on wgmma."""
    target = TARGETS["sm_90"]
    for r in reports[("sm_90", "fp16")]:
        if r.kernel == "conv1x1_kernel" and "pool" not in r.flags:
            assert max(c.usage.blocks_per_sm(target) for c in r.configs) >= 2, r


def test_a_launch_that_cannot_fit_is_refused_before_it_runs():
    """When no config fits the device's shared memory, the pruner says so (Triton's tuner,
    finding every config failing, would launch the first anyway and fail)."""
    small = TARGETS["sm_80"].__class__(**{**TARGETS["sm_80"].__dict__, "shared_per_block": 8192})
    launches = capture_launches(str(ROOT / "nets/nin_cifar10.arch"), TARGETS["sm_80"], "fp32",
                                4, True)
    launch = next(one for one in launches if kernel_name(one) == "conv1x1_kernel")
    named = dict(zip(launch.kernel.fn.arg_names, launch.args))
    with targeting(small), pytest.raises(RuntimeError, match="no config fits this device's 8 KB"):
        gemm.prune_configs(gemm.CONFIGS, named, **launch.kwargs)
    assert configs_of(launch, small)[0] == []


def test_small_n_gets_matched_tiles():
    """A GEMM with N = 10 is tuned over 16-wide tiles only; N = 296 over 32- to 128-wide."""
    import torch

    with targeting(TARGETS["sm_90"]):
        for n, widths in ((10, {16}), (64, {32, 64}), (296, {32, 64, 128})):
            x = torch.empty((4, 64, 8, 8), device="meta")
            named = {"x_ptr": x, "N": n, "M": 4096, "K": 64, "stride_xm": 64}
            kept = gemm.prune_configs(gemm.CONFIGS, named)
            assert {c.kwargs["BLOCK_N"] for c in kept} == widths


def test_a_second_run_compiles_nothing(reports, monkeypatch):
    """The results are cached: the same jobs again start no compiler process."""
    import subprocess

    case = DEFAULT[0]
    launches = representative(TARGETS[case[0]], case[1])
    jobs = [job for launch in launches for _, job, _ in configs_of(launch, TARGETS[case[0]])[0]]
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("compiled again"))
    done = []
    usages = compile_all(jobs, progress=lambda: done.append(1))
    assert len(done) == len(jobs) and all(hasattr(u, "shared") for u in usages)


@pytest.mark.aot
@pytest.mark.parametrize("case", SWEEP, ids=lambda c: "-".join(map(str, c)).replace("/", "_"))
def test_every_shipped_net_fits_both_targets(case):
    net, target, dtype, batch, train = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            launches = capture_launches(str(ROOT / net), TARGETS[target], dtype, batch, train)
        except UsageError as error:  # Inception-v3's head cannot train on one image
            pytest.skip(str(error))
    results = compile_and_model(launches, TARGETS[target], quiet=True)
    assert problems(results, TARGETS[target], dtype) == []
