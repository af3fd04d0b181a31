"""Blocks recovered without names (issue 37): a shipped net compiled, exported to ONNX with
its batch norms kept, every node's name and metadata stripped, imported (`--blocks auto`,
which finds blocks by structure where nothing is named). A block instance of the hand-written
net is recovered exactly when the import has a block instance over the same layers.

Layers are told by their place among the net's weighted layers (convs, batch norms, fcs) in
execution order, which an export and an import keep (`signature` says so: the kinds and
shapes of those layers agree). Instances are sets of such places; a block whose only content
is another block (MobileNet's inverted_res around expand_dw_project) is one set.
Used by tests/test_import_onnx_zoo.py and bench/import_recovery.py.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stripped_export(name: str, folder: Path) -> Path:
    """nets/NAME.arch compiled and exported with its batch norms kept, then stripped of every
    node's name and metadata (what a file from elsewhere looks like)."""
    import onnx
    import torch

    from archc import compile as compile_arch
    from archc.pipeline import analyse

    source = analyse(ROOT / "nets" / f"{name}.arch")
    module = compile_arch(ROOT / "nets" / f"{name}.arch").eval()
    path = folder / f"{name}.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(module, (torch.zeros(1, *source.shapes[source.graph.input]),),
                          str(path), dynamo=True, optimize=False, verbose=False)
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.name = ""
    onnx.save(model, str(path))
    return path


def instances(analysis) -> set[frozenset[int]]:
    """The net's block instances on its main path, each as the places of its weighted layers."""
    place = {n: i for i, n in enumerate(_weighted(analysis))}
    found: dict[int, set[int]] = {}
    for n, i in place.items():
        for use in analysis.graph.node(n).blocks:
            found.setdefault(use, set()).add(i)
    return {frozenset(layers) for layers in found.values()}


def signature(analysis) -> list[tuple[str, tuple]]:
    return [(type(analysis.graph.node(n).op).__name__, tuple(analysis.shapes[n]))
            for n in _weighted(analysis)]


def _weighted(analysis) -> list[int]:
    return [n for n in analysis.graph.main_nodes() if analysis.costs[n].params]


def recovered(name: str, folder: Path) -> tuple[int, int]:
    """(instances of nets/NAME.arch recovered exactly, its instances)."""
    from archc.importer import imported_onnx
    from archc.pipeline import analyse

    source = analyse(ROOT / "nets" / f"{name}.arch")
    text = imported_onnx(stripped_export(name, folder)).text
    back = analyse("<import>.arch", text=text)
    assert signature(back) == signature(source), f"{name}: the layers do not correspond"
    ours = instances(source)
    return len(ours & instances(back)), len(ours)
