"""Who owns an activation: when the cpu backend may write a sum over a value the net made.

The cpu plan marks a conv's shortcut sum `into_residual` where no later layer of the net
reads the shortcut (archc.codegen.cpu.plan.sums_in_place): oneDNN then adds the conv's result
into the shortcut's memory (its sum post-op), as Inductor's freezing pass does, instead of
copying the shortcut first (ResNet-50 on 2 cores, in one process: 4 to 6% faster at batch
8). The graph proves that for the net's own forward only. A block called on its own may be
given a tensor its caller reads again; a forward hook may keep a block's output, a pre-hook
its input, a torch mode any tensor. So the sum is written in place only while
`owns_activations` runs the net's forward and nothing else can hold the net's activations:
no hook on a module of the net (the net's own sees only its input and output, which are never
written over), no global module hook, no torch function or dispatch mode, and every module of
the net the net's own code or torch.nn's (a module of the user's put in its place could keep
what it is given). Asked once a forward.
"""

from __future__ import annotations

import functools
import threading

import torch
from torch.nn.modules import module as nn_module

_owner = threading.local()  # net: whose forward runs in this thread; free: may it overwrite


def owns_activations(forward):
    """`forward` of an emitted net, run as the owner of the activations it makes."""
    @functools.wraps(forward)
    def owning(net: torch.nn.Module, *args, **kwargs):
        if torch.compiler.is_compiling():  # traced: torch's ops, nothing in place
            return forward(net, *args, **kwargs)
        outer = getattr(_owner, "net", None), getattr(_owner, "free", None)
        _owner.net, _owner.free = net, None
        try:
            return forward(net, *args, **kwargs)
        finally:
            _owner.net, _owner.free = outer
    return owning


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
    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks or \
            torch._C._is_torch_function_mode_enabled() or torch._C._len_torch_dispatch_stack():
        return False
    own = type(net).__module__
    for module in net.modules():
        if module is net:
            continue
        if module._forward_hooks or module._forward_pre_hooks or \
                type(module).__module__ != own and not type(module).__module__.startswith(
                    "torch.nn."):
            return False
    return True
