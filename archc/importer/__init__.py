"""Import (`archc import`, `archc.import_module`, `archc.import_onnx`): an existing net as
readable .arch.

The stages: `trace` (torch.fx: each layer's statement and the modules it sits in) or
`onnx_file` (an ONNX file's nodes, the same), `layout` (the series-parallel structure with its
joins, blocks recovered from the module classes, the text through archc's formatter).
`imported(module, input_shape)` and `imported_onnx(path)` give the text and what the weights
need; `weights` pairs their tensors with the imported net's by structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Imported:
    text: str  # the .arch source, canonical
    modules: frozenset[str]  # the paths of the modules the trace ran (their weights are the net's)
    tensors: dict | None = None  # an ONNX file's weights, as a state_dict in its nodes' order


def imported(module, input_shape: tuple[int, int, int], name: str | None = None,
             blocks: str = "auto", report: bool = False) -> Imported:
    """`module` (an nn.Module taking N x C x H x W) as .arch text, traced in eval mode:
    `blocks="modules"` (what "auto" is here) makes a block of each class of the user's and a
    group of each nn.Sequential, "structure" blocks of recurring segments, "none" writes every
    layer in the net. Raises
    archc.importer.trace.ImportFailure for what .arch cannot say (with `report`, Unsupported:
    all of it)."""
    from archc.importer.trace import trace

    layers = trace(module.eval(), input_shape, report)
    net = name or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(module).__name__).lower()
    ran = frozenset(path for layer in layers for path, _ in layer.stack)
    params = sum(p.numel() for key, p in module.named_parameters()
                 if key.rpartition(".")[0] in ran)
    text = _text(layers, net, blocks, type(module).__name__,
                 (params, _macs(module, input_shape)))
    return Imported(text, ran)


def _macs(module, input_shape: tuple[int, int, int]) -> int:
    """The module's multiply-accumulates for one image, as torch counts them (FlopCounterMode:
    convolutions and matrix products, two FLOPs each), archc's convention too."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(torch.zeros(1, *input_shape))
    return counter.get_total_flops() // 2


def imported_onnx(path, input_shape: tuple[int, int, int] | None = None,
                  name: str | None = None, blocks: str = "auto",
                  report: bool = False) -> Imported:
    """An ONNX file as .arch text (parsed, never run): blocks from the module classes a torch
    export names, the weights its initializers. `input_shape` where the file's is dynamic."""
    from pathlib import Path

    import torch

    from archc.importer.onnx_file import OnnxGraph

    graph = OnnxGraph(path, input_shape, report)
    net = name or re.sub(r"\W+", "_", Path(path).stem).strip("_").lower() or "imported"
    net = net if net[0].isalpha() else f"net_{net}"
    state = {f"node{i}.{role}": torch.from_numpy(value.copy())
             for i, layer in enumerate(graph.layers) if layer.name in graph.tensors
             for role, value in graph.tensors[layer.name].items()}
    params = sum(t.numel() for key, t in state.items()  # a bn's statistics: not parameters
                 if not key.endswith(("running_mean", "running_var")))
    notes = [] if not graph.folded_norms else [  # said, as the weights are no longer a bn's
        f"# The exporter folded {graph.folded_norms} batch norms into the convs before them: "
        "those convs carry their", "# biases, and the counts are the folded net's (`archc "
        "stats --fold-bn` of the source's).", ""]
    text = _text(graph.layers, net, blocks, Path(path).name, (params, graph.macs), notes)
    return Imported(text, frozenset(), state)


def _text(layers, net: str, blocks: str, source: str, totals: tuple[int, int],
          notes: list[str] = ()) -> str:
    """The file, self-verifying: `expect` lines with the source's shapes and counts. Blocks
    (`blocks`): "modules" from the module classes the source names, "structure" from
    recurring segments (archc.importer.segments), "none"; "auto" the first where the source
    names modules, else the shorter file of the other two."""
    from archc.importer.layout import group, structure
    from archc.importer.segments import segmented
    from archc.importer.writer import Writer
    from archc.lang.printer import format_text

    def written(how: str, pools_inside: bool = True) -> str:
        statements = structure(layers)  # afresh: the Writer merges repeats in place
        if how == "modules":
            statements = group(statements)
        elif how == "structure":
            statements = segmented(statements, pools_inside)
        text = "\n".join([*notes, Writer().text(net, statements, totals)])
        return format_text(text, f"<import of {source}>")

    if blocks == "none":
        return written("none")
    if blocks == "modules" or blocks == "auto" and any(layer.stack for layer in layers):
        return written("modules")
    shortest = min(written("structure"), written("structure", pools_inside=False), key=len)
    return shortest if blocks == "structure" else min(shortest, written("none"), key=len)


def weights(module, result: Imported) -> dict:  # module: None for an ONNX file
    """`module`'s tensors as the imported net's state_dict: those of the modules the trace
    ran (an auxiliary head an eval forward skips is left out), paired by structure."""
    from archc.codegen.weights import convert_net

    if result.tensors is not None:
        return convert_net(result.text, result.tensors)
    state = {key: value for key, value in module.state_dict().items()
             if key.rpartition(".")[0] in result.modules}
    return convert_net(result.text, state)
