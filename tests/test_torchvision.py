"""The nets named as torchvision's builders equal torchvision's models: parameter and MAC
counts (the `expect` in each file, and FlopCounterMode on torchvision's model), and eval
logits with torchvision's weights copied in."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT, sweep
from torchvision_oracle import copy_by_order, macs, model

import archc
from archc.pipeline import analyse

NETS = ["alexnet", "mobilenet_v2", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
        "vgg16_bn", "vgg19", "vgg19_bn", "resnext50_32x4d", "resnext101_32x8d",
        "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161",
        "densenet169", "densenet201", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
        "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "inception_v3",
        "mobilenet_v3_large", "mobilenet_v3_small", *(f"efficientnet_b{i}" for i in range(8)),
        "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "convnext_tiny",
        "convnext_small", "googlenet_torchvision"]
# Files named otherwise than torchvision's builder: the paper's GoogLeNet is googlenet.arch.
BUILDERS = {"googlenet_torchvision": "googlenet"}
# torchvision lists ConvNeXt's layer scale before the block's convs in its state_dict: these
# pair by archc's converter (children first), not by the state_dict's order.
BY_STRUCTURE = {"convnext_tiny", "convnext_small"}


@pytest.mark.parametrize("name", sweep(NETS))
def test_counts_equal_torchvisions(name):
    """Params of every layer (auxiliary heads included, as torchvision's modules hold them);
    MACs of the deployed net (torchvision counts eval mode, where heads do not run)."""
    analysis = analyse(str(ROOT / "nets" / f"{name}.arch")).raise_errors()
    params = sum(analysis.costs[n].params for n in analysis.graph.order())
    total_macs = sum(analysis.costs[n].macs for n in analysis.graph.main_nodes())
    reference = model(BUILDERS.get(name, name))
    assert params == sum(p.numel() for p in reference.parameters())
    assert total_macs == macs(reference, tuple(analysis.shapes[analysis.graph.input]))


@pytest.mark.parametrize("name", sweep(NETS))
def test_logits_equal_torchvisions_with_its_weights(name):
    """The plain torch backend element by element; archc.compile's default (the cpu backend:
    oneDNN convs, bn folded) within fp32 rounding of the output's scale: with random weights
    deep nets' logits reach 1e11, and a sum in another order moves the small ones by more
    than 1e-4 (on ResNet-152 and Inception-v3 both are 1e-6 of the scale from float64's)."""
    path = str(ROOT / "nets" / f"{name}.arch")
    reference, net = model(BUILDERS.get(name, name)), archc.compile(path).eval()
    if name in BY_STRUCTURE:
        net.load_state_dict(archc.convert_weights(path, reference.state_dict()))
    else:
        copy_by_order(reference, net)
    plain = archc.compile(path, backend="torch").eval()
    plain.load_state_dict(net.state_dict())
    torch.manual_seed(1)
    analysis = analyse(str(ROOT / "nets" / f"{name}.arch"))
    x = torch.randn(1, *analysis.shapes[analysis.graph.input])
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(plain(x), expected, rtol=1e-4, atol=1e-4)
        scale = expected.abs().max().item()
        torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5 * scale)


def test_efficientnet_trains_as_torchvisions_stochastic_depth_and_dropout_draw_alike():
    """Training mode, same weights and seed: the same batch-norm statistics, the same blocks
    dropped by stochastic depth, the same dropout; so the same logits and gradients."""
    path = str(ROOT / "nets" / "efficientnet_b0.arch")
    reference = model("efficientnet_b0").train()
    net = archc.compile(path, backend="torch", overrides={"size": 64}).train()
    copy_by_order(reference, net)
    x = torch.randn(4, 3, 64, 64)
    outputs = []
    for module in (reference, net):
        torch.manual_seed(7)
        out = module(x)
        out.square().sum().backward()
        outputs.append((out, next(iter(module.parameters())).grad))
    (ref_out, ref_grad), (out, grad) = outputs
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-3, atol=1e-5)
    rates = [m.p for m in net.modules() if type(m).__name__ == "StochasticDepth"]
    applied = [m.stochastic_depth.p for m in reference.modules()
               if getattr(m, "use_res_connect", False)]  # the blocks with a shortcut
    assert rates == applied and len(rates) == 9  # to the bit: 0.2 * i / 16, as torchvision
