"""`archc sweep` (issue 39): a net's counts over a grid of its parameters, a budget, the Pareto
front of params and MACs; a failing point reported with its located error, the rest kept."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import ROOT

TWO_KNOBS = """
net knobs(w = 8, d = 2) {
    input 3x16x16
    conv 3x3 w pad=1 relu x(d)
    conv 1x1 (w / 3)
    gap
    fc 10
}
"""


def test_mnasnets_width_multiplier(archc, golden):
    status, out, err = archc("sweep", "nets/mnasnet1_0.arch", "--set", "alpha=0.5:1.5:0.25",
                             "--where", "macs<400M", "--json")
    assert status == 0, err
    golden(ROOT / "tests/golden/sweep/mnasnet_alpha.json", out)
    points = json.loads(out)
    assert [p["set"]["alpha"] for p in points] == [0.5, 0.75, 1.0, 1.25, 1.5]
    assert [p["admitted"] for p in points] == [True, True, True, False, False]
    for point in points:  # each point is archc stats at that point
        assert (point["params"], point["macs"]) == _totals(
            archc, "nets/mnasnet1_0.arch", "--set", f"alpha={point['set']['alpha']}")


def test_two_knobs_a_budget_the_front_and_a_failing_point(archc, tmp_path):
    net = tmp_path / "knobs.arch"
    net.write_text(TWO_KNOBS)
    status, out, err = archc("sweep", str(net), "--set", "w=6:12:2", "--set", "d=1:3:1",
                             "--where", "params<3K and d>=2", "--csv")
    assert status == 1  # w = 8 does not divide by 3: that point's error, the others go on
    assert f"{net}:5:15: error: channels must be an integer, got 2.6666666666666665" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["w"], r["d"]) for r in rows] == [(w, d) for w in ("6", "8", "10", "12")
                                                for d in ("1", "2", "3")]
    ok = [r for r in rows if not r["error"]]
    assert [r["w"] for r in ok] == ["6"] * 3 + ["12"] * 3 and all(int(r["params"]) for r in ok)
    admitted = [r for r in ok if r["admitted"] == "yes"]
    assert admitted and all(int(r["params"]) < 3000 and int(r["d"]) >= 2 for r in admitted)
    front = [r for r in admitted if r["front"] == "yes"]
    for r in admitted:  # the front: no admitted point beats it on both costs
        beaten = any(int(q["params"]) <= int(r["params"]) and int(q["macs"]) <= int(r["macs"])
                     and (q["params"], q["macs"]) != (r["params"], r["macs"])
                     for q in admitted)
        assert (r in front) == (not beaten)


def test_a_failing_point_is_listed_with_its_error(archc, tmp_path):
    net = tmp_path / "knobs.arch"
    net.write_text(TWO_KNOBS)
    status, out, err = archc("sweep", str(net), "--set", "w=8:9:1", "--json")
    assert status == 1
    first, second = json.loads(out)
    assert "channels must be an integer" in first["error"] and "params" not in first
    assert "error" not in second and second["params"] > 0


@pytest.mark.parametrize("args, message", [
    (["--set", "alpha=1.5:0.5:0.25"], "a range is LO:HI:STEP"),
    (["--set", "alpha=0.5:1.5:0"], "a range is LO:HI:STEP"),
    (["--set", "alpha=0:1000:0.001"], "over 100,000"),
    (["--set", "alpha"], "write NAME=LO:HI:STEP"),
    (["--set", "alpha=1", "--where", "flops<1G"], "unknown name 'flops'"),
    (["--set", "alpha=1", "--where", "macs is small"], "cannot read 'macs is small'"),
])
def test_bad_ranges_and_budgets_are_usage_errors(archc, args, message):
    status, _, err = archc("sweep", "nets/mnasnet1_0.arch", *args)
    assert status == 2 and message in err


def test_the_plot(archc, tmp_path):
    pytest.importorskip("matplotlib")
    status, _, err = archc("sweep", "nets/mnasnet1_0.arch", "--set", "alpha=0.5:1.0:0.25",
                           "--plot", str(tmp_path / "front.png"))
    assert status == 0, err
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.aot
def test_latency_is_archc_kernels_model_at_each_point(archc):
    """`--latency sm_90`: each point's modelled time of its Triton kernels, the total
    `archc kernels` reports for the net at that point (the same launches, the same model)."""
    status, out, err = archc("sweep", "nets/nin_cifar10.arch", "--set", "classes=10:20:10",
                             "--latency", "sm_90", "--batch", "64", "--json")
    assert status == 0, err
    points = json.loads(out)
    for point in points:
        status, report, err = archc("kernels", "nets/nin_cifar10.arch", "--batch", "64",
                                    "--dtype", "fp16", "--set",
                                    f"classes={point['set']['classes']}", "--json")
        assert status == 0, err
        assert point["latency_ms"] == pytest.approx(json.loads(report)["model_us"] / 1e3,
                                                    abs=1e-4)
    assert points[1]["latency_ms"] > points[0]["latency_ms"]  # 20 classes: a wider last mlp
    status, out, err = archc("sweep", "nets/nin_cifar10.arch", "--set", "classes=10",
                             "--latency", "sm_90", "--batch", "64")
    assert "triton ms" in out.splitlines()[0] and "not a measurement" in out


PUBLISHED = {"b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 288),
             "b3": (1.2, 1.4, 300), "b4": (1.4, 1.8, 380), "b5": (1.6, 2.2, 456),
             "b6": (1.8, 2.6, 528), "b7": (2.0, 3.1, 600)}  # (width, depth, size)


def _totals(archc, *args) -> tuple[int, int]:
    status, out, err = archc("stats", *args, "--json")
    assert status == 0, err
    total = json.loads(out)["total"]
    return total["params"], total["macs"]


def test_efficientnets_compound_scaling_gives_b0_to_b7(archc):
    """nets/efficientnet.arch at each published (width, depth, size) counts as the shipped
    B-file written out by hand (torchvision's stages, widths and depths)."""
    for name, (width, depth, size) in PUBLISHED.items():
        assert _totals(archc, "nets/efficientnet.arch", "--set", f"width={width}", "--set",
                       f"depth={depth}", "--set", f"size={size}") == \
            _totals(archc, f"nets/efficientnet_{name}.arch"), name


def test_efficientnets_depth_and_width(archc, golden):
    status, out, err = archc("sweep", "nets/efficientnet.arch", "--set", "width=1.0:2.0:0.5",
                             "--set", "depth=1.0:3.0:1.0", "--json")
    assert status == 0, err
    golden(ROOT / "tests/golden/sweep/efficientnet_width_depth.json", out)
    points = json.loads(out)
    assert [(p["set"]["width"], p["set"]["depth"]) for p in points] == [
        (w, d) for w in (1.0, 1.5, 2.0) for d in (1, 2, 3)]
    for point in points:  # each point is archc stats at that point
        assert (point["params"], point["macs"]) == _totals(
            archc, "nets/efficientnet.arch", "--set", f"width={point['set']['width']}",
            "--set", f"depth={point['set']['depth']}")
    assert [p["front"] for p in points].count(True) == 1  # B0's shape: fewest of both
