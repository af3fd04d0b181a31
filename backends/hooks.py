"""Whether a layer must be called as its own module: the one test every fused call asks first.

A fused call (a Triton kernel's entry point, archc.backends.functional; a oneDNN primitive,
archc.backends.cpu) computes several layers without calling their modules, so nothing that
waits for a module's call would run: a forward or backward hook (feature extraction,
Grad-CAM, activation statistics), a global module hook, a torch function or dispatch mode
that counts or rewrites ops (FlopCounterMode). Where any of those is present, the call runs
each layer as its module, as the torch backend does, so a hook sees (and may change) that
layer's output. No triton here: the cpu backend asks too.
"""

from __future__ import annotations

import torch
from torch.nn.modules import module as nn_module


def watched() -> bool:
    """Whether a global module hook or a torch mode sees every op or module call."""
    return bool(nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks or
                nn_module._global_backward_hooks or nn_module._global_backward_pre_hooks or
                torch._C._is_torch_function_mode_enabled() or
                torch._C._len_torch_dispatch_stack())


def hooked(layer: torch.nn.Module) -> bool:
    """Whether a hook waits for this module's call (forward, pre-forward or backward)."""
    return bool(layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks or
                layer._backward_pre_hooks)


def unfused(*layers) -> bool:
    """Whether these layers (None: absent) must run as their own modules, called one by one:
    a hook on one of them, a global hook or torch mode (not while dynamo traces: it sees
    modes itself), or a batch norm that keeps no running statistics (it normalises by the
    batch in eval mode too, so there is nothing to fold)."""
    if not torch.compiler.is_compiling() and watched():
        return True
    for layer in layers:
        if not isinstance(layer, torch.nn.Module):
            continue  # absent, or a weight made by torch ops (folding.Pointwise)
        if hooked(layer):
            return True
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and \
                not layer.training and layer.running_mean is None:
            return True
    return False
