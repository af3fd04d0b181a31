"""bench/gpu.py runs end to end: its smoke mode, on the CPU in Triton's interpreter, goes
through every kernel and peer it times on a GPU and writes its tables and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_gpu_benchmark_smoke_run(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    kernels = [row["kernel"].split()[0] for row in figures["kernels"]]
    assert kernels == ["conv1x1"] * 5 + ["mlp1x1", "maxpool", "maxpool", "avgpool", "global"]
    assert all(row["ms"] > 0 and row["vs_torch"] > 0 for row in figures["kernels"])
    (net,) = figures["nets"]
    assert net["eager_img_s"] > 0 and net["triton_img_s"] > 0
    assert "| kernel | ms | rate | % of ceiling | vs torch | first call s |" in result.stdout
