"""Import (`archc import`, `archc.import_module`): an existing PyTorch net as readable .arch.

The stages: `trace` (torch.fx: each layer's statement and the modules it sits in), `layout`
(the series-parallel structure with its joins, blocks recovered from the module classes,
the text through archc's formatter). `imported(module, input_shape)` gives the text and the
modules the trace ran; `weights` pairs their tensors with the imported net's by structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Imported:
    text: str  # the .arch source, canonical
    modules: frozenset[str]  # the paths of the modules the trace ran (their weights are the net's)


def imported(module, input_shape: tuple[int, int, int], name: str | None = None,
             blocks: str = "modules") -> Imported:
    """`module` (an nn.Module taking N x C x H x W) as .arch text, traced in eval mode:
    `blocks="modules"` makes a block of each class of the user's and a group of each
    nn.Sequential, "none" writes every layer in the net. Raises
    archc.importer.trace.ImportFailure for what .arch cannot say."""
    from archc.importer.layout import Writer, group, structure
    from archc.importer.trace import trace
    from archc.lang.printer import format_text

    layers = trace(module.eval(), input_shape)
    statements = structure(layers)
    if blocks == "modules":
        statements = group(statements)
    net = name or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(module).__name__).lower()
    text = format_text(Writer().text(net, statements), f"<import of {type(module).__name__}>")
    return Imported(text, frozenset(path for layer in layers for path, _ in layer.stack))


def weights(module, result: Imported) -> dict:
    """`module`'s tensors as the imported net's state_dict: those of the modules the trace
    ran (an auxiliary head an eval forward skips is left out), paired by structure."""
    from archc.codegen.weights import convert_net

    state = {key: value for key, value in module.state_dict().items()
             if key.rpartition(".")[0] in result.modules}
    return convert_net(result.text, state)
