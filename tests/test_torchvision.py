"""The nets named as torchvision's builders equal torchvision's models: parameter and MAC
counts (the `expect` in each file, and FlopCounterMode on torchvision's model), and eval
logits with torchvision's weights copied in."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from torchvision_oracle import copy_by_order, macs, model

import archc
from archc.pipeline import analyse

NETS = ["alexnet", "mobilenet_v2", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
        "vgg16_bn", "vgg19", "vgg19_bn", "resnext50_32x4d", "resnext101_32x8d",
        "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161",
        "densenet169", "densenet201", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
        "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf"]


@pytest.mark.parametrize("name", NETS)
def test_counts_equal_torchvisions(name):
    analysis = analyse(str(ROOT / "nets" / f"{name}.arch")).raise_errors()
    nodes = analysis.graph.order()
    params = sum(analysis.costs[n].params for n in nodes)
    total_macs = sum(analysis.costs[n].macs for n in nodes)
    reference = model(name)
    assert params == sum(p.numel() for p in reference.parameters())
    assert total_macs == macs(reference, (3, 224, 224))


@pytest.mark.parametrize("name", NETS)
def test_logits_equal_torchvisions_with_its_weights(name):
    reference, net = model(name), archc.compile(str(ROOT / "nets" / f"{name}.arch")).eval()
    copy_by_order(reference, net)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-4)
