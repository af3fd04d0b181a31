"""torchvision's model code as a test oracle (never a runtime dependency).

`pip install --no-deps torchvision==0.28.0` is the release built for torch 2.13.0; its C++
ops do not load against the CPU torch, so the `torchvision::nms` and `::qnms` schemas are
defined here before it is imported (its detection code registers fakes for them at import; the
classification models never call them).
"""

from __future__ import annotations

import importlib.util
from functools import cache

import pytest
import torch


@cache
def torchvision():
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (make test installs it)")
    for name in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{name}",
                                 "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # defined already: its C++ ops loaded, or an earlier call
    import torchvision as module

    return module


def model(name: str) -> torch.nn.Module:
    """torchvision.models.<name>() in eval mode, its random weights seeded."""
    torch.manual_seed(0)
    return getattr(torchvision().models, name)().eval()


def macs(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one image, as torch's FlopCounterMode counts them (convs and
    linears; FLOPs are two per MAC): how torchvision's published GFLOPS are made."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


def copy_by_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """target's state_dict filled with source's tensors in declaration order, each shape
    checked (the names differ; the order is each net's layer order)."""
    src, dst = list(source.state_dict().items()), list(target.state_dict().items())
    assert len(src) == len(dst), (len(src), len(dst))
    state = {}
    for (name_s, value), (name_d, slot) in zip(src, dst):
        assert value.shape == slot.shape, f"{name_s} {tuple(value.shape)} -> {name_d} " \
                                          f"{tuple(slot.shape)}"
        state[name_d] = value
    target.load_state_dict(state)
