"""Who owns an activation: when the cpu backend may write a sum over a value the net made.

The cpu plan marks a conv's shortcut sum `into_residual` where no later layer of the net
reads the shortcut (archc.backends.cpu.plan.sums_in_place): oneDNN then adds the conv's result
into the shortcut's memory (its sum post-op), as Inductor's freezing pass does, instead of
copying the shortcut first (ResNet-50 on 2 cores, in one process: 4 to 6% faster at batch
8). The graph proves that for the net's own forward only. A block called on its own may be
given a tensor its caller reads again; a forward hook may keep a block's output, a pre-hook
its input, a torch mode any tensor. So the sum is written in place only while the net's
forward runs `owning` them (archc.backends.cpu.graph.inference) and nothing else can hold
the net's activations: no hook on a module of the net (the net's own sees only its input and
output, which are never written over), no global module hook, no torch function or dispatch
mode, and every module of the net the net's own code or torch.nn's (a module of the user's
put in its place could keep what it is given). Asked once a forward.
"""

from __future__ import annotations

import contextlib
import threading

import torch

from ..hooks import hooked, watched

_owner = threading.local()  # net: whose forward runs in this thread; free: may it overwrite


@contextlib.contextmanager
def owning(net: torch.nn.Module):
    """While the net's forward runs in it, that forward owns the activations it makes."""
    outer = getattr(_owner, "net", None), getattr(_owner, "free", None)
    _owner.net, _owner.free = net, None
    try:
        yield
    finally:
        _owner.net, _owner.free = outer


def may_overwrite() -> bool:
    """Whether a conv may write over a value the plan says no later layer reads: inside an
    owning forward with nothing that could hold the net's activations."""
    net = getattr(_owner, "net", None)
    if net is None:
        return False
    if _owner.free is None:
        _owner.free = _nothing_else_holds(net)
    return _owner.free


def _nothing_else_holds(net: torch.nn.Module) -> bool:
    if watched():
        return False
    own = type(net).__module__
    for module in net.modules():
        if module is net:
            continue
        if hooked(module) or not ours(module, own):
            return False
    return True


def ours(module: torch.nn.Module, own: str) -> bool:
    """Whether `module` is the emitted net's code (its module `own`) or torch.nn's, whose
    forward does nothing but compute its output."""
    where = type(module).__module__
    return where == own or where.startswith("torch.nn.")
