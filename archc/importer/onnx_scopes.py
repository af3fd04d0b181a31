"""The modules a node of an ONNX file torch exported sits in, as torch.fx gives them: each
node's `pkg.torch.onnx.name_scopes` and `class_hierarchy` as (path, class) pairs, outermost
first, with the containers a forward reaches through without calling them put in; a conv a
batch norm was folded into (onnxscript's FuseBatchNormIntoConv) named by its weight; a node
the optimiser made without scopes placed where its readers are.
"""

from __future__ import annotations

import ast as pyast

from torch import nn

from archc.importer.trace import Layer

SCOPES = "pkg.torch.onnx.name_scopes"  # a node's modules, as torch's exporter writes them
REWRITES, FOLDED = "pkg.onnxscript.rewriter.rule_name", "FuseBatchNormIntoConv"  # the exporter's


def scoped(node) -> bool:
    """Whether the exporter wrote the node's modules."""
    return SCOPES in _meta(node)


def folded(node) -> bool:
    """Whether the exporter's optimiser folded a batch norm into this conv."""
    return FOLDED in _meta(node).get(REWRITES, "")


def stack_of(node) -> tuple[tuple[str, type], ...]:
    """The modules a node torch exported sits in, outermost first, as torch.fx gives them:
    (path, class), the class a stand-in named as the exporter wrote it."""
    meta = _meta(node)
    try:
        scopes = pyast.literal_eval(meta.get(SCOPES, "[]"))
        classes = pyast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
    except (ValueError, SyntaxError):
        return ()
    called = [(path, _class(name)) for path, name in zip(scopes[1:], classes[1:])
              if not name.startswith("aten.")]
    weight = node.input[1] if node.op_type == "Conv" else ""
    if FOLDED in meta.get(REWRITES, "") and called and weight.endswith(".weight") and \
            "BatchNorm" in called[-1][1].__name__:  # a conv the exporter folded a bn into: in
        called[-1] = (weight.removesuffix(".weight"), nn.Conv2d)  # the bn's scope, named by
    return _containers(called)                                    # its weight


def _containers(stack: list) -> tuple:
    """The stack with the containers a forward reaches through without calling them put in
    (`self.branch3x3[0](x)`: 'inception3a.branch3x3.0' sits in 'inception3a.branch3x3', an
    nn.ModuleList never called, so in no exporter's scopes), as archc.importer.trace does
    for torch.fx: they group too."""
    out: list = []
    for path, kind in stack:
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if not out or prefix.startswith(out[-1][0] + "."):
                out.append((prefix, nn.ModuleList if parts[i].isdigit() else nn.ModuleDict))
        out.append((path, kind))
    return tuple(out)


def placed(layers: list[Layer], unnamed: set[str]) -> None:
    """A layer from a node the exporter's optimiser made anew (its Split for torch's chunk)
    carries no modules: where the file names them elsewhere, it sits in the modules that
    all of its readers sit in."""
    if not any(layer.stack for layer in layers):
        return
    readers: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    def around(stack: tuple) -> tuple:  # a reader's modules but the layer it is itself
        leaf = stack and stack[-1][1].__module__.startswith("torch.nn.modules") and \
            stack[-1][1] not in (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        return stack[:-1] if leaf else stack

    for layer in layers:
        stacks = [around(r.stack) for r in readers.get(layer.name, [])]
        if layer.name in unnamed and not layer.stack and stacks:
            common = stacks[0]
            for stack in stacks[1:]:
                common = common[:next((i for i, (a, b) in enumerate(zip(common, stack))
                                       if a != b), min(len(common), len(stack)))]
            layer.stack = common


def _meta(node) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


_CLASSES: dict[str, type] = {}


def _class(qualified: str) -> type:
    """The exported module's class: torch's own (nn.Sequential groups, and the layout tells
    containers apart), a stand-in with the class's name and module for others (the layout
    reads `__name__` and `__module__`), one per name so instances compare alike."""
    if qualified not in _CLASSES:
        module, _, name = qualified.rpartition(".")
        found = None
        if module.startswith("torch.nn."):
            import importlib

            found = getattr(importlib.import_module(module), name, None)
        _CLASSES[qualified] = found if isinstance(found, type) else \
            type(name, (), {"__module__": module})
    return _CLASSES[qualified]
