"""archc: a compiler for convolutional network architectures.

`archc.compile(path_or_source)` returns a torch.nn.Module; the front end (archc.pipeline)
needs neither torch nor triton, so importing archc stays light until `compile` is called.
"""

from __future__ import annotations


def compile(path_or_source, backend: str = "torch", heads: bool = True, overrides=None,
            logits: bool = False):
    """Parse, check and lower a network to a torch.nn.Module (archc.codegen.lower.compile_net)."""
    from archc.codegen.lower import compile_net

    return compile_net(path_or_source, backend, heads, overrides, logits)
