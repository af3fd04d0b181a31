"""Squeeze-and-excitation (`mul { id; gate }`) and the activations the nets of today use
(`silu`, `hardsigmoid`, `gelu`): counts, lowering against hand-written torch, both backends."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from test_lower import copy_weights
from test_triton_backend import assert_backends_agree
from torch import nn
from torch.nn import functional as F

import archc
from archc import ops
from archc.codegen.lower import compile_net
from archc.pipeline import analyse

SE_NET = """net se(c = 16) {{
    input 8x12x12
    conv 3x3 c pad=1 bias=false; bn; {act}
    mul {{
        id
        {{ gap; conv 1x1 (c / 4) relu; conv 1x1 c {gate} }}
    }}
    conv 1x1 c gelu
    gap
    fc 10
}}
"""


class Reference(nn.Module):
    """torchvision's SqueezeExcitation, written out: scale = gate(fc2(relu(fc1(pool(x)))))."""

    def __init__(self, act, gate, c=16):
        super().__init__()
        self.act, self.gate = act, gate
        self.conv = nn.Conv2d(8, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)
        self.conv2, self.fc = nn.Conv2d(c, c, 1), nn.Linear(c, 10)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        scale = self.gate(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        x = F.gelu(self.conv2(scale * x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize("act, gate", [("hardswish", "hardsigmoid"), ("silu", "sigmoid")])
@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_a_squeeze_excitation_net_equals_hand_written_torch(act, gate, backend):
    """The torch backend to the bit; the cpu backend within fp32 rounding (channels-last
    convs sum in another order; in eval mode oneDNN's, the bn folded, activations post-ops)."""
    net = compile_net(SE_NET.format(act=act, gate=gate), backend=backend)
    reference = Reference(getattr(F, act), getattr(F, gate) if gate != "sigmoid" else
                          torch.sigmoid)
    copy_weights(net, reference)
    torch.manual_seed(1)
    x = torch.randn(3, 8, 12, 12)
    for mode in ("train", "eval"):
        tolerance = 1e-5 if backend == "cpu" else 0
        with torch.no_grad():
            torch.testing.assert_close(getattr(net, mode)()(x), getattr(reference, mode)()(x),
                                       rtol=tolerance, atol=tolerance)


def test_the_gate_counts_its_convs_and_no_multiplies():
    analysis = analyse("<se>.arch", {}, text=SE_NET.format(act="silu", gate="hardsigmoid"))
    analysis.raise_errors()
    (mul,) = [n for n in analysis.graph.order() if isinstance(analysis.graph.node(n).op, ops.Mul)]
    assert analysis.shapes[mul] == (16, 12, 12)
    macs = sum(analysis.costs[n].macs for n in analysis.graph.order())
    assert macs == 16 * 8 * 9 * 144 + (16 * 4 + 4 * 16) + 16 * 16 * 144 + 16 * 10
    assert analysis.costs[mul].macs == 0


@pytest.mark.parametrize("act, gate", [("hardswish", "hardsigmoid"), ("silu", "sigmoid")])
def test_both_backends_agree_on_a_gate(act, gate):
    assert_backends_agree(SE_NET.format(act=act, gate=gate), (8, 12, 12))


def test_a_gate_of_flat_values_multiplies_features():
    net = archc.compile("net f { input 4x2x2; fc 6; mul { id; { fc 6 sigmoid } }; fc 3 }")
    assert net(torch.randn(2, 4, 2, 2)).shape == (2, 3)


# CI runs it; MobileNet-v3-small's triton module is compared whole by default
# (test_every_net_on_triton); 9 s here
@pytest.mark.slow
def test_both_backends_agree_on_mobilenet_v3s_blocks(monkeypatch):
    """The lib's bottlenecks at a small size: expansion, depthwise, gate, projection, the
    shortcut; ReLU and hard swish (the nets themselves: tests/test_torchvision.py)."""
    monkeypatch.chdir(ROOT / "nets")
    assert_backends_agree("""use "lib/mobilenet_v3.arch"
net tiny {
    input 3x16x16
    default bn eps=0.001 momentum=0.01
    conv 3x3/2 16 pad=1 bias=false; bn; hardswish
    { depthwise(3, 2, relu); gate(); project(16) }
    bneck_se(48, 5, 24, 1, hardswish)
    bneck_se_res(72, 3, hardswish)
    bneck_res(40, 3, relu)
    gap
    fc 10
}
""", (3, 16, 16))


def test_both_backends_agree_on_shufflenets_units(monkeypatch):
    """Split, branch, concat, shuffle: at a small size, in train and eval mode."""
    monkeypatch.chdir(ROOT / "nets")
    assert_backends_agree("""use "lib/shufflenet.arch"
net tiny {
    input 3x16x16
    conv 3x3/2 8 pad=1 bias=false; bn; relu
    shuffle_down(16)
    shuffle_unit() x2
    gap
    fc 10
}
""", (3, 16, 16))


def test_chunk_and_shuffle_rearrange_channels_as_torchvision_does():
    net = archc.compile("net s { input 4x1x1; concat { chunk 2 1; chunk 2 0 }; shuffle 2 }")
    x = torch.arange(4.0).reshape(1, 4, 1, 1)
    # chunks swapped: 2 3 0 1; shuffled as 2 groups of 2: 2 0 3 1
    assert net(x).flatten().tolist() == [2.0, 0.0, 3.0, 1.0]


def test_both_backends_agree_on_convnexts_blocks(monkeypatch):
    """Depthwise 7x7, layer norm over channels (channels last on the triton side), GELU,
    layer scale, stochastic depth (p 0: the draw would differ between the two runs)."""
    monkeypatch.chdir(ROOT / "nets")
    assert_backends_agree("""use "lib/convnext.arch"
net tiny {
    input 3x16x16
    default layernorm eps=1e-6
    conv 4x4/4 16; layernorm
    cn_block(16, 0.0)
    cn_down(32)
    cn_block(32, 0.0)
    gap
    layernorm
    fc 10
}
""", (3, 16, 16))


def test_a_layer_scale_is_a_learnt_parameter_a_channel_and_costs_no_macs():
    source = "net s { input 4x2x2; scale 0.5 }"
    net = archc.compile(source)
    assert [tuple(p.shape) for p in net.parameters()] == [(4, 1, 1)]
    x = torch.randn(1, 4, 2, 2)
    torch.testing.assert_close(net(x).reshape(1, 4, 2, 2), 0.5 * x, rtol=0, atol=0)
    analysis = analyse("<s>.arch", {}, text=source)
    assert [c.params for c in analysis.costs.values()] == [0, 4]
    assert sum(c.macs for c in analysis.costs.values()) == 0


def test_an_adaptive_pool_takes_pytorchs_windows():
    """14 to 4: windows 0-4, 3-7, 7-11, 10-14 (each 4 wide, overlapping): the field is 4."""
    analysis = analyse("<a>.arch", {}, text="net a { input 2x14x14; adaptivepool 4x4 }")
    pool = analysis.graph.output
    assert analysis.shapes[pool] == (2, 4, 4)
    assert (analysis.fields[pool].size, analysis.fields[pool].jump) == (4, 3)
    net = archc.compile("net a { input 2x14x14; adaptivepool 4x4 }")
    x = torch.randn(1, 2, 14, 14)
    torch.testing.assert_close(net(x), F.adaptive_avg_pool2d(x, 4), rtol=0, atol=0)
