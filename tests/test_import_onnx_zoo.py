"""The zoo round trip through ONNX (issue 37, routes b and c): every shipped net, compiled,
exported by torch's exporter with its batch norms kept (`optimize=False`: the file keeps the
exporter's shape arithmetic, which the importer folds) and as exported by default (the
optimiser folds each batch norm into its conv), imported back:

- the import checks clean: its `expect` lines (the file's own shapes and counts) hold;
- its totals are the original's (the folded route's: `archc stats --fold-bn`'s), its convs',
  pools' and fcs' output shapes the original's;
- with its imported weights it computes what the exported module computes;
- it has at least as many block uses as the hand-written net, at most 1.5x its lines (the
  net's file and the libraries it uses);
- exporting the import and importing that gives the same text, byte for byte.

ConvNeXt (a permute around its layer norm) is what the importer cannot read back: refused
at its node."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import ROOT, nets

from archc import compile as compile_arch
from archc.analysis.cost import fold_bn, total
from archc.importer import imported_onnx, weights
from archc.importer.trace import ImportFailure
from archc.lang.parser import parse
from archc.pipeline import analyse

pytest.importorskip("onnxscript")  # torch's exporter

ROUTES = ("kept", "folded")  # batch norms kept (optimize=False), folded (the default)
# LRN and concats by default (folded batch norms: test_import_onnx's torch export, and here
# every net with one under -m slow)
DEFAULT = {("googlenet", "kept")}
REFUSED = {"convnext_small": "(Transpose) in layernorm1",  # its layer norm's permutes
           "convnext_tiny": "(Transpose) in layernorm1"}
COUNTED = ("Conv", "Pool", "Linear")  # the layers whose shapes are compared


def _cases() -> list:
    return [pytest.param(name, route, marks=() if (name, route) in DEFAULT else pytest.mark.slow,
                         id=f"{name}-{route}")
            for name in (n.removesuffix(".arch") for n in nets()) for route in ROUTES]


def _randomised(module: torch.nn.Module) -> torch.nn.Module:
    """Weights with something to fold: batch norms with scales, shifts and statistics, biases
    that are not zero (the exporter drops a zero bias), all of a size that keeps the logits
    finite through 200 layers."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if key.endswith(("running_var", "weight")) and tensor.dim() == 1:
                tensor.copy_(0.75 + 0.5 * torch.rand(tensor.shape, generator=generator))
            elif key.endswith(("running_mean", "bias")):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
    return module


def _exported(module: torch.nn.Module, shape, path: Path, route: str) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        torch.onnx.export(module, (torch.zeros(1, *shape),), str(path), dynamo=True,
                          optimize=route == "folded", verbose=False)
    return path


def _layers(analysis) -> list[tuple[str, tuple]]:
    graph = analysis.graph
    found = [(type(graph.node(n).op).__name__, tuple(analysis.shapes[n]))
             for n in graph.main_nodes()]
    return sorted(row for row in found if row[0] in COUNTED)


def _block_uses(analysis) -> int:
    main = analysis.graph.main_nodes()
    return len({b for n in main for b in analysis.graph.node(n).blocks})


def _lines(path: Path) -> int:
    """The lines of a net's file and of every library it uses."""
    used = [path.parent / u.path for u in parse(path.read_text(), str(path)).uses]
    return len(path.read_text().splitlines()) + sum(_lines(p) for p in used)


@pytest.mark.parametrize("name, route", _cases())
def test_a_shipped_net_exported_to_onnx_imports_back(name, route):
    """(See the module's docstring.) The exports live in a folder removed at the end: the
    largest nets' files are hundreds of megabytes, the zoo's some twenty gigabytes."""
    with tempfile.TemporaryDirectory() as folder:
        _round_trip(name, route, Path(folder))


def _round_trip(name: str, route: str, tmp_path: Path) -> None:
    path = ROOT / "nets" / f"{name}.arch"
    source = analyse(path)
    if route == "folded" and not any(type(source.graph.node(n).op).__name__ == "BatchNorm"
                                     for n in source.graph.order()):
        pytest.skip("no batch norm to fold: the same file as the route that keeps them")
    shape = tuple(source.shapes[source.graph.input])
    module = _randomised(compile_arch(path).eval())
    exported = _exported(module, shape, tmp_path / f"{name}.onnx", route)
    try:
        result = imported_onnx(exported)
    except ImportFailure as failure:
        assert name in REFUSED and REFUSED[name] in str(failure)
        return
    assert name not in REFUSED
    back = analyse("<import>.arch", text=result.text)
    assert back.diagnostics == []
    costs = fold_bn(source.graph, source.costs) if route == "folded" else source.costs
    ours, theirs = total(costs, source.graph.main_nodes()), total(back.costs, back.graph.order())
    assert (theirs.params, theirs.macs) == (ours.params, ours.macs)
    assert _layers(back) == _layers(source)
    assert _block_uses(back) >= _block_uses(source)
    assert len(result.text.splitlines()) <= 1.5 * _lines(path)

    net = compile_arch(result.text).eval()
    net.load_state_dict(weights(None, result))
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(net(x), expected, rtol=1e-4,
                                   atol=1e-5 * float(expected.abs().max()))

    again = tmp_path / "again"  # the same file name: the same net name
    again.mkdir()
    text = imported_onnx(_exported(net, shape, again / f"{name}.onnx", route)).text
    # the second export has no batch norm left to fold: the note that the first folded
    # some is all that differs
    folded = result.text.startswith("# The exporter folded")
    note = result.text.split("\n\n", 1)[0] + "\n\n" if folded else ""
    assert note + text == result.text


# Without names: the zoo's block instances recovered exactly by structure (tests/recovery.py),
# as bench/import_recovery.py counted them on 2026-12-07 (BENCHMARKS.md): the floor.
RECOVERED_FLOOR = 1160  # of 2,053


def test_without_names_resnet18s_blocks_come_back_whole(tmp_path):
    from recovery import recovered

    assert recovered("resnet18", tmp_path) == (8, 8)  # its eight basic blocks, no names


@pytest.mark.slow
def test_without_names_the_zoo_recovers_no_fewer_blocks_than_recorded():
    from recovery import recovered

    found = 0
    for name in (n.removesuffix(".arch") for n in nets()):
        with tempfile.TemporaryDirectory() as folder:  # each export gone before the next
            try:
                found += recovered(name, Path(folder))[0]
            except ImportFailure:
                assert name in REFUSED
    assert found >= RECOVERED_FLOOR
