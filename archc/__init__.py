"""archc: a compiler for convolutional network architectures.

`archc.compile(path_or_source)` returns a torch.nn.Module; the front end (archc.pipeline)
needs neither torch nor triton, so importing archc stays light until `compile` is called.
"""

from __future__ import annotations


def compile(path_or_source, backend: str = "cpu", heads: bool = True, overrides=None,
            logits: bool = False):
    """Parse, check and lower a network to a torch.nn.Module (archc.codegen.lower.compile_net):
    by default the cpu backend (oneDNN's fused convs at CPU inference, torch's ops otherwise);
    `backend="torch"` for the plain reference, `"triton"` for the GPU kernels."""
    from archc.codegen.lower import compile_net

    return compile_net(path_or_source, backend, heads, overrides, logits)


def convert_weights(path_or_source, checkpoint, heads: bool = True, overrides=None) -> dict:
    """A torchvision checkpoint (a path, or a state_dict) as a state_dict for
    `archc.compile(path_or_source)`: paired by structure, every shape checked
    (archc.codegen.weights). Raises ArchError at the first layer that does not pair."""
    from archc.codegen.lower import compile_net  # noqa: F401  (torch starts here)
    from archc.codegen.weights import convert_net

    return convert_net(path_or_source, checkpoint, heads, overrides)
