"""`archc diff` (issue 39): two nets aligned by label, then by kind of row in order; the rows
changed, added and removed, the block definitions that differ, the totals. Exit 0 identical,
1 different. Golden outputs for the papers' and torchvision's pairs."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

PAIRS = {
    "vgg_a-vgg_e": ("nets/vgg_a.arch", "nets/vgg_e.arch"),
    "resnet18-resnet34": ("nets/resnet18.arch", "nets/resnet34.arch"),
    "googlenet-separable": ("nets/googlenet.arch", "nets/googlenet_conv1_separable.arch"),
    "mnasnet1_0-alpha1_3": ("nets/mnasnet1_0.arch", "nets/mnasnet1_0.arch", "--set-b",
                            "alpha=1.3"),
}


@pytest.mark.parametrize("pair", list(PAIRS))
def test_the_papers_and_torchvisions_pairs(archc, golden, pair):
    status, out, err = archc("diff", *PAIRS[pair])
    assert status == 1, err
    golden(ROOT / "tests/golden/diff" / f"{pair}.txt", out)


@pytest.mark.parametrize("net", ["nets/googlenet.arch", "nets/efficientnet_b0.arch",
                                 "nets/shufflenet_v2_x0_5.arch"])
def test_a_net_against_itself_is_identical(archc, net):
    status, out, _ = archc("diff", net, net)
    assert status == 0 and out.rstrip().endswith("identical") and "no row differs" in out


@pytest.mark.parametrize("pair", list(PAIRS))
def test_the_totals_change_by_the_difference_of_archc_stats(archc, pair):
    a, b, *sets = PAIRS[pair]
    stats_a = json.loads(archc("stats", a, "--json")[1])
    stats_b = json.loads(archc("stats", b, "--json", *[s.replace("--set-b", "--set")
                                                         for s in sets])[1])
    status, out, _ = archc("diff", a, b, *sets, "--json")
    totals = json.loads(out)["totals"]
    for key in ("params", "weights", "macs"):
        assert totals[key]["delta"] == stats_b["total"][key] - stats_a["total"][key], key
    assert totals["activations"]["delta"] == stats_b["activations"] - stats_a["activations"]
    rows = json.loads(out)["rows"]
    changed = sum(r["params_delta"] for r in rows)
    heads = sum(h["params"] for h in stats_b["heads"]) - sum(h["params"] for h in stats_a["heads"])
    assert changed == totals["params"]["delta"] + heads


def test_rows_added_and_removed_and_a_changed_block(archc, tmp_path):
    (tmp_path / "a.arch").write_text(
        "block unit(c) { conv 3x3 c pad=1 relu }\n"
        "net n {\n    input 3x16x16\n    stem: conv 3x3 8 pad=1\n    unit(8)\n"
        "    maxpool 2x2/2\n    head: { gap; fc 10 }\n}\n")
    (tmp_path / "b.arch").write_text(
        "block unit(c) { conv 3x3 c pad=1; bn; relu }\n"
        "net n {\n    input 3x16x16\n    stem: conv 3x3 8 pad=1\n    unit(8)\n"
        "    conv 1x1 16\n    head: { gap; fc 10 }\n}\n")
    status, out, _ = archc("diff", str(tmp_path / "a.arch"), str(tmp_path / "b.arch"))
    assert status == 1
    lines = out.splitlines()
    assert any(line.startswith("-") and "maxpool1" in line for line in lines)
    assert any(line.startswith("+") and "conv2" in line and "+144" in line for line in lines)
    assert any(line.startswith("~") and "unit1" in line and "+16" in line for line in lines)
    assert "block 'unit' changed:" in out
    assert "-block unit(c) { conv 3x3 c pad=1 relu }" in out
    assert "+block unit(c) { conv 3x3 c pad=1; bn; relu }" in out
    assert not any("stem" in line for line in lines[:8])  # unchanged rows are not listed


def test_a_usage_error_is_two(archc):
    assert archc("diff", "nets/vgg_a.arch", "nets/nothere.arch")[0] == 2
    assert archc("diff", "nets/vgg_a.arch", "nets/vgg_a.arch", "--set-b", "depth=3")[0] == 2
