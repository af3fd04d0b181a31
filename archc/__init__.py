"""archc: a compiler for convolutional network architectures.

`archc.compile(path_or_source)` returns a torch.nn.Module, `archc.freeze(module)` a CPU
inference engine of it; the front end (archc.pipeline)
needs neither torch nor triton, so importing archc stays light until `compile` is called.
"""

from __future__ import annotations

from pathlib import Path


def _checkout_folders() -> None:
    """A checkout run without installing (PYTHONPATH=., as on the GPU machine): its top-level
    grammars/ and backends/ are archc.grammars and archc.backends, as pyproject.toml's
    package-dir maps them for an install. A wheel has them inside the package already."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "backends" / "__init__.py").is_file():
        __path__.append(str(root))


_checkout_folders()


def compile(path_or_source, backend: str = "torch", heads: bool = True, overrides=None,
            logits: bool = False):
    """Parse, check and lower a network to a torch.nn.Module (archc.codegen.lower.compile_net)
    that behaves as torch.nn promises: hooks, functional_call, autocast, FlopCounterMode,
    torch.compile. `backend="triton"` runs the fused 1x1 convs and pools as Triton kernels
    (same modules, same state_dict); `backend="cpu"` is `freeze(compile(...))`, the CPU
    inference engine."""
    from archc.codegen.lower import compile_net

    if backend == "cpu":
        return freeze(compile_net(path_or_source, "torch", heads, overrides, logits))
    return compile_net(path_or_source, backend, heads, overrides, logits)


def freeze(net):
    """`net`, a module archc.compile() made, as it is now, frozen into an inference engine for
    the CPU (archc.codegen.freeze): bn folded, weights packed for oneDNN per input size, the
    oneDNN Graph engine where faster. It holds no submodules, runs float32 inference only
    (anything else is a FrozenError), and does not see later edits of `net` until
    `engine.refresh()`."""
    from archc.codegen.freeze import freeze as freeze_net

    return freeze_net(net)


def convert_weights(path_or_source, checkpoint, heads: bool = True, overrides=None) -> dict:
    """A torchvision checkpoint (a path, or a state_dict) as a state_dict for
    `archc.compile(path_or_source)`: paired by structure, every shape checked
    (archc.codegen.weights). Raises ArchError at the first layer that does not pair."""
    from archc.codegen.lower import compile_net  # noqa: F401  (torch starts here)
    from archc.codegen.weights import convert_net

    return convert_net(path_or_source, checkpoint, heads, overrides)


def import_module(module, input_shape=(3, 224, 224), name: str | None = None,
                  blocks: str = "auto") -> str:
    """An nn.Module as readable .arch text (archc.importer): traced in eval mode, each module
    class of the user's a block, each nn.Sequential a labelled group."""
    from archc.importer import imported

    return imported(module, tuple(input_shape), name, blocks).text


def import_onnx(path, input_shape=None, name: str | None = None, blocks: str = "auto") -> str:
    """An ONNX file as readable .arch text (archc.importer.onnx_file): parsed, never run; the
    module classes a torch export names become blocks. `input_shape` (C, H, W) where the
    file's size is dynamic."""
    from archc.importer import imported_onnx

    return imported_onnx(path, tuple(input_shape) if input_shape else None, name, blocks).text


def __getattr__(name: str):
    """`archc.Engine` and `archc.FrozenError`, imported (with torch) when first asked for."""
    if name in ("Engine", "FrozenError"):
        from archc.codegen import freeze

        return getattr(freeze, name)
    raise AttributeError(f"module 'archc' has no attribute {name!r}")
