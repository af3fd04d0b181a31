"""What a net's frozen graph was built from, and a cheap test, at every forward, that none of
it has changed (archc.backends.cpu.graph).

A frozen graph holds the net's weights as constants and none of its Python, so it computes
what the module would only while the net has the same modules, in eval mode, without hooks,
each of them the net's own code or torch.nn's (a user's module may do more than compute its
output; the graph would not call it), with the same tensors holding the same values. A
`Snapshot` records those; `unchanged` tests them again.

The full walk over the modules (`snapshot`) costs ~300 us a forward for MobileNet-v2 on this
project's machine, 7% of its forward at batch 1. So a structural change is noticed without
it: torch's global registration hooks count every parameter, buffer or submodule any module
registers (`_registrations`, hooks installed at the first snapshot, not at import), and the
dicts' sizes catch a deletion. What a registration cannot show is tested on the recorded
lists with C-level maps (~55 us): each module's mode and hooks, each tensor's version (an
in-place edit: `load_state_dict`, an optimizer step) and data pointer (`param.data = ...`).
An edit through `param.data` in place bumps no version (that tensor counts its own), so it
goes unseen, as by the own calls' prepacked weights (archc.backends.cpu): edit a parameter
under `torch.no_grad()` instead.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from operator import attrgetter

import torch
from torch.nn.modules import module as nn_module

from . import owner

_registrations = 0  # parameters, buffers and submodules registered by any module so far

_training, _version = attrgetter("training"), attrgetter("_version")
_hooks = (attrgetter("_forward_hooks"), attrgetter("_forward_pre_hooks"))
_members = (attrgetter("_modules"), attrgetter("_parameters"), attrgetter("_buffers"))


@dataclass(frozen=True)
class Snapshot:
    """The net's modules and tensors as a graph froze them. The net itself is not among
    `modules`: a snapshot is kept in a dict weakly keyed by the net (archc.backends.cpu.graph),
    and a reference to its key would keep the net alive for ever."""

    registrations: int
    modules: tuple[torch.nn.Module, ...]  # below the net
    tensors: tuple[torch.Tensor, ...]
    values: tuple  # each dict's size, each tensor's version and data pointer


def snapshot(net: torch.nn.Module) -> Snapshot | None:
    """The net as it is now, or None where a graph could not stand for it: a module trains,
    has a hook, or is neither the net's code nor torch.nn's."""
    _count_registrations()
    own = type(net).__module__
    modules, stack = [], [net]
    while stack:
        module = stack.pop()
        if module.training or module._forward_hooks or module._forward_pre_hooks or \
                not owner.ours(module, own):
            return None
        modules.append(module)
        stack.extend(m for m in module._modules.values() if m is not None)
    tensors = tuple(t for m in modules for members in (m._parameters, m._buffers)
                    for t in members.values() if t is not None)
    return Snapshot(_registrations, tuple(modules[1:]), tensors, _values(modules, tensors))


def unchanged(before: Snapshot, net: torch.nn.Module) -> bool:
    """Whether `net` still is as `before` recorded it, without walking it again."""
    modules = (net, *before.modules)
    return before.registrations == _registrations and not any(map(_training, modules)) and \
        not any(any(map(hooks, modules)) for hooks in _hooks) and \
        _values(modules, before.tensors) == before.values


def same(before: Snapshot, now: Snapshot) -> bool:
    """Whether two walks found the same modules and tensors with the same values."""
    return _identical(before.modules, now.modules) and \
        _identical(before.tensors, now.tensors) and before.values == now.values


def _identical(these: tuple, those: tuple) -> bool:
    return len(these) == len(those) and all(map(operator.is_, these, those))  # tensors'
    # `==` compares values


def _values(modules, tensors) -> tuple:
    sizes = tuple(tuple(map(len, map(members, modules))) for members in _members)
    return sizes, tuple(map(_version, tensors)), tuple(map(torch.Tensor.data_ptr, tensors))


@functools.cache
def _count_registrations() -> None:
    """Once per process: torch's global hooks count every registration from now on."""
    def count(module, name, value):
        global _registrations
        _registrations += 1
    nn_module.register_module_parameter_registration_hook(count)
    nn_module.register_module_buffer_registration_hook(count)
    nn_module.register_module_module_registration_hook(count)
