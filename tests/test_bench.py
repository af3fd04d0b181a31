"""The benchmarks run end to end: bench/gpu.py's smoke mode, on the CPU in Triton's
interpreter, goes through every kernel and peer it times on a GPU and writes its tables and
JSON; bench/cpu_peers.py on one small net."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow  # a bench script's whole run, in a process: CI runs it (make test-slow)
def test_gpu_benchmark_smoke_run(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    kernels = [row["kernel"].split()[0] for row in figures["kernels"]]
    assert kernels == ["conv1x1"] * 5 + ["mlp1x1", "maxpool", "maxpool", "avgpool", "global"]
    assert all(row["ms"] > 0 and row["vs_torch"] > 0 for row in figures["kernels"])
    depthwise = figures["depthwise"]
    assert [row["kernel"].split()[1] for row in depthwise] == ["MobileNet-v2", "ConvNeXt-T"]
    assert all(row["ms"] > 0 and row["vs_eager"] > 0 for row in depthwise)
    assert "| depthwise (fused) | ms |" in result.stdout
    (net,) = figures["nets"]
    assert net["eager_img_s"] > 0 and net["triton_img_s"] > 0
    assert "| kernel | ms | rate | % of ceiling | vs torch | first call s |" in result.stdout


@pytest.mark.slow
def test_cpu_peers_benchmark_runs_each_engine_in_its_process_and_compares_outputs():
    result = subprocess.run([sys.executable, "bench/cpu_peers.py", "--nets", "nin_cifar10",
                             "--batch", "2", "--rounds", "2", "--threads", "1", "--engines",
                             "archc", "onnxruntime", "eager", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["net"], row["batch"]) == ("nin_cifar10", 2)
    assert set(row["median_ms"]) == {"archc", "onnxruntime", "eager"}
    assert all(ms > 0 for ms in row["median_ms"].values())
    assert all(ms > 0 for ms in row["first_call_ms"].values())
    assert row["max_rel_diff"]["eager"] == 0.0  # the reference, against itself
    assert row["max_rel_diff"]["archc"] < 1e-5 and row["max_rel_diff"]["onnxruntime"] < 1e-5


def test_the_nets_model_counts_the_passes_eager_makes_for_the_absorbed_layers():
    """bench/model_nets.py's "eager's extra passes", on a net small enough to count by hand."""
    import importlib.util

    from test_triton_mobile import TINY_EFFICIENTNET

    from archc.backends.triton.plan import plan
    from archc.pipeline import analyse

    spec = importlib.util.spec_from_file_location("model_nets", ROOT / "bench/model_nets.py")
    model_nets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_nets)
    analysis = analyse(ROOT / "nets/tiny_efficientnet.arch", text=TINY_EFFICIENTNET)
    stem, expand, dw1, project1 = 8 * 6 * 6, 32 * 6 * 6, 32 * 3 * 3, 16 * 3 * 3
    want = (2 * stem  # the stem's folded bn (its SiLU stays torch's)
            + 2 * 2 * expand  # mbconv's expansion: bn and SiLU
            + 2 * 2 * dw1 + dw1  # its depthwise conv: bn and SiLU, and the squeeze's read
            + 2 * dw1  # the gate's product, written and read
            + 2 * project1  # the projection's bn
            + 2 * 2 * dw1  # mbconv_res: the expansion's bn and SiLU (32 x 3 x 3)
            + 2 * 2 * dw1 + dw1 + 2 * dw1  # its depthwise conv, squeeze and gate
            + 2 * project1  # and its projection's bn
            + 2 * project1)  # the shortcut sum, which runs that projection deferred
    assert model_nets.eager_extra_passes(analysis, plan(analysis)) == want


def test_cpu_layers_pairs_each_engines_convs_by_geometry():
    result = subprocess.run([sys.executable, "bench/cpu_layers.py", "nin_cifar10", "--batch",
                             "1", "--forwards", "2", "--threads", "1", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    convs = report["convs"]
    # NIN-CIFAR's nine convs: three mlpconv blocks of a spatial conv and two 1x1s
    assert sum(r["convs"] for r in convs) == 9 == sum(r["onnxruntime_convs"] for r in convs)
    assert ([1, 3, 32, 32], [192, 3, 5, 5]) in [(r["input"], r["weight"]) for r in convs]
    assert all(r["archc_ms"] > 0 for r in convs if r["convs"])
    for engine in ("archc", "onnxruntime"):
        totals = report[engine]
        assert totals["convs_ms"] > 0 and totals["forward_ms"] > 0  # from other forwards:
        # which is the larger on a busy machine is not for a test to say
        assert totals["rest_ms"] == totals["forward_ms"] - totals["convs_ms"]
