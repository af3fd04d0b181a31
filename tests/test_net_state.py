"""archc.backends.cpu.net_state: a frozen graph's record of the net, and the cheap test at every
forward that nothing it froze has changed: an in-place edit, a tensor's storage swapped, a
module replaced, added or deleted, a mode switched, a hook added. A registration anywhere else
in the process costs one full walk, not the graph."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT

from archc.backends.cpu import net_state
from archc.codegen.lower import compile_net


@pytest.fixture
def net():
    return compile_net(ROOT / "nets/resnet_digits.arch", "cpu", heads=False, logits=True).eval()


def _edits(net):
    conv = net.stem[0]
    return {
        "in place": lambda: conv.weight.detach().mul_(2.0),  # as under no_grad; not
        # through `.data`, whose tensor has a version counter of its own (net_state's doc)
        "load_state_dict": lambda: net.load_state_dict(net.state_dict()),
        "storage swapped": lambda: setattr(conv.weight, "data", conv.weight.data.clone()),
        "module replaced": lambda: setattr(net, "fc1", torch.nn.Linear(64, 10)),
        "module deleted": lambda: delattr(net, "fc1"),
        "buffer added": lambda: conv.register_buffer("scale", torch.ones(1)),
        "train mode": lambda: net.layer1.train(),
        "forward hook": lambda: net.layer2.register_forward_hook(lambda *args: None),
        "pre-hook": lambda: conv.register_forward_pre_hook(lambda *args: None),
    }


@pytest.mark.parametrize("edit", [
    "in place", "load_state_dict", "storage swapped", "module replaced", "module deleted",
    "buffer added", "train mode", "forward hook", "pre-hook"])
def test_every_change_a_graph_would_miss_is_seen(net, edit):
    before = net_state.snapshot(net)
    assert before is not None and net_state.unchanged(before, net)
    _edits(net)[edit]()
    assert not net_state.unchanged(before, net)
    after = net_state.snapshot(net)
    assert after is None or not net_state.same(before, after)


def test_a_registration_elsewhere_costs_a_walk_that_finds_the_net_the_same(net):
    before = net_state.snapshot(net)
    torch.nn.Conv2d(3, 3, 1)  # someone else's module registers its parameters
    assert not net_state.unchanged(before, net)
    now = net_state.snapshot(net)
    assert net_state.same(before, now) and net_state.unchanged(now, net)


def test_a_users_module_or_a_training_net_has_no_snapshot(net):
    class Mine(torch.nn.Identity):
        pass
    assert net_state.snapshot(net.train()) is None
    net.eval().layer1.append(Mine())
    assert net_state.snapshot(net) is None
