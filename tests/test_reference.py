"""The papers' tables, reproduced: `archc stats --json` against the oracles in tests/data."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

TABLE1 = json.loads((ROOT / "tests/data/googlenet_table1.json").read_text())
NETS = json.loads((ROOT / "tests/data/nets.json").read_text())


def stats_json(archc, *args):
    status, out, err = archc("stats", *args, "--json")
    assert status == 0, err
    return json.loads(out)


def test_googlenet_table1_rows(archc):
    data = stats_json(archc, "nets/googlenet.arch")
    rows = data["rows"]
    assert [r["name"] for r in rows] == [r["name"] for r in TABLE1["rows"]]
    for got, want in zip(rows, TABLE1["rows"]):
        c, h, w = got["shape"]
        assert [h, w, c] == want["output"], got["name"]
        assert (got["weights"], got["macs"], got["depth"]) == \
            (want["weights"], want["macs"], want["depth"]), got["name"]


def test_googlenet_totals_exclude_heads(archc):
    data = stats_json(archc, "nets/googlenet.arch")
    assert data["total"]["weights"] == TABLE1["total"]["weights"]
    assert data["total"]["macs"] == TABLE1["total"]["macs"]
    assert data["depth"] == TABLE1["total"]["depth"]
    heads = data["training_total"]["params"] - data["total"]["params"]
    assert heads == sum(h["params"] for h in data["heads"]) > 0
    assert [(h["name"], h["from"], h["weight"]) for h in data["heads"]] == \
        [("aux1", "4a", 0.3), ("aux2", "4d", 0.3)]


def test_googlenet_spatial_sizes_and_widths(archc):
    rows = stats_json(archc, "nets/googlenet.arch")["rows"]
    sizes = list(dict.fromkeys(r["shape"][1] for r in rows))
    assert sizes == [112, 56, 28, 14, 7, 1]
    widths = {r["name"]: r["shape"][0] for r in rows}
    assert widths["3a"] == 256 and widths["4e"] == 832 and widths["5b"] == 1024


def test_paper_differences_are_the_known_ones(archc):
    rows = stats_json(archc, "nets/googlenet.arch")["rows"]
    differing = [r["name"] for r in rows if any(not p["agrees"] for p in r.get("paper", []))]
    assert differing == TABLE1["paper_disagrees"]


def test_separable_conv1_hypothesis_matches_the_printed_numbers(archc):
    rows = stats_json(archc, "nets/googlenet_conv1_separable.arch")["rows"]
    conv1 = rows[0]
    want = NETS["googlenet_conv1_separable.arch"]
    assert (conv1["weights"], conv1["macs"]) == (want["conv1_weights"], want["conv1_macs"])
    assert all(p["agrees"] for p in conv1["paper"])


@pytest.mark.parametrize("name", [n for n in NETS if n.startswith("vgg")])
def test_vgg_table2_params(archc, name):
    data = stats_json(archc, f"nets/{name}")
    want = NETS[name]
    assert data["total"]["params"] == want["params"]
    assert data["depth"] == want["depth"]
    if "macs" in want:
        assert data["total"]["macs"] == want["macs"]
    assert all(p["agrees"] for p in data["paper"])


def test_nin_cifar10(archc):
    data = stats_json(archc, "nets/nin_cifar10.arch")
    want = NETS["nin_cifar10.arch"]
    assert data["total"] == {**{k: want[k] for k in ("params", "weights", "macs")}, "buffers": 0}
    assert list(dict.fromkeys(r["shape"][1] for r in data["rows"])) == want["spatial"]


@pytest.mark.parametrize("name", ["resnet18.arch", "resnet34.arch", "resnet50.arch",
                                  "vgg_a_bn.arch"])
def test_torchvisions_counts(archc, name):
    """Params, MACs and depth as torchvision counts them; buffers (running statistics) apart."""
    data = stats_json(archc, f"nets/{name}")
    want = NETS[name]
    assert data["total"]["params"] == want["params"]
    assert data["depth"] == want["depth"]
    if "macs" in want:
        assert data["total"]["macs"] == want["macs"]
    bn_channels = data["total"]["buffers"] // 2
    assert data["total"]["buffers"] > 0 and data["total"]["params"] - data["total"]["weights"] \
        >= 2 * bn_channels  # scale and shift are params, not weights


def test_several_files_give_a_list(archc):
    datas = stats_json(archc, "nets/vgg_a.arch", "nets/vgg_e.arch")
    assert [d["net"] for d in datas] == ["vgg_a", "vgg_e"]


def test_receptive_field_of_stacked_3x3_equals_7x7(archc, tmp_path):
    """VGG's argument: three stacked 3x3 convs see as far as one 7x7."""
    rows = stats_json(archc, "nets/vgg_e.arch")["rows"]
    # conv3 x2 (1+2+2), maxpool 2x2/2 (+1), conv3 x2 at stride 2 (+4+4)
    assert [(r["receptive_field"], r["stride"]) for r in rows[:3]] == [(5, 1), (6, 2), (14, 2)]
    path = tmp_path / "stack.arch"
    path.write_text("net n {\n input 3x32x32\n conv 3x3 8 x3\n conv 7x7 8\n}\n")
    rows = stats_json(archc, str(path))["rows"]
    assert [r["receptive_field"] for r in rows] == [7, 13]
    assert rows[0]["depth"] == 3
    assert rows[0]["weights"] == 3 * 3 * 3 * 8 + 2 * (3 * 3 * 8 * 8)


def test_set_overrides_a_net_parameter(archc):
    data = stats_json(archc, "nets/googlenet.arch", "--set", "classes=10")
    assert data["rows"][-1]["shape"] == [10, 1, 1]
    assert data["params"] == {"classes": 10}
    assert data["total"]["weights"] == TABLE1["total"]["weights"] - 1024 * (1000 - 10)


def test_folding_bn_trades_its_scale_and_shift_for_a_conv_bias(archc):
    written = stats_json(archc, "nets/resnet18.arch")
    folded = stats_json(archc, "nets/resnet18.arch", "--fold-bn")
    bn_channels = written["total"]["buffers"] // 2  # running mean and variance: 2 per channel
    assert folded["bn_folded"] and not written["bn_folded"]
    assert folded["total"]["params"] == written["total"]["params"] - bn_channels
    assert folded["total"]["buffers"] == 0 and folded["total"]["macs"] == written["total"]["macs"]
    assert folded["total"]["weights"] == written["total"]["weights"]
