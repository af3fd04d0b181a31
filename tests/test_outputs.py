"""`archc graph` and `archc export`: drawings with shapes on the edges; ONNX that runs."""

from __future__ import annotations

import re
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import ROOT

from archc.codegen.export import export_onnx
from archc.codegen.lower import lower
from archc.pipeline import analyse
from archc.report.draw import KINDS, draw

# Exported outputs are softmax probabilities in [0, 1]; onnxruntime and PyTorch run different
# kernels, so they may differ by float32 rounding, far below this.
ONNX_ATOL = 1e-6


def net_edges(dot: str) -> int:
    return dot.count("->") - dot.count("style=invis")  # the legend's column is invisible edges


def test_collapsed_graph_has_one_node_per_block_use_and_shapes_on_edges():
    dot = draw(analyse(ROOT / "nets/googlenet.arch")).source
    assert dot.count('"inception (') == 9 and '"aux_classifier (aux1)' in dot
    assert '-> use0 [label="192x28x28"]' in dot  # maxpool 3x3/2 into inception 3a
    assert 'use5 -> use6 [label="528x14x14"]' in dot  # 4d into 4e
    assert net_edges(dot) == 22 + 2  # a chain of 23 nodes, and the two heads
    assert "inception (4a)\n512x14x14\n376.2K params, 73.6M MACs" in dot


def test_nodes_are_coloured_by_kind_with_a_legend():
    dot = draw(analyse(ROOT / "nets/googlenet.arch")).source
    assert "subgraph cluster_legend" in dot
    for kind in ("conv", "pool", "normalisation", "fc", "block", "head"):
        assert f"legend_{kind} [label={kind} fillcolor=\"{KINDS[kind]}\"" in dot
    assert f'"conv 7x7/2 64 pad=3 + relu\n9.5K params, 118.0M MACs" fillcolor="{KINDS["conv"]}"' \
        in dot
    assert f'"lrn 5" fillcolor="{KINDS["normalisation"]}"' in dot


def test_expanded_graph_draws_every_layer_in_labelled_clusters():
    analysis = analyse(ROOT / "nets/googlenet.arch")
    dot = draw(analysis, expand=True).source
    assert dot.count("subgraph cluster_use") == len(analysis.graph.block_uses) == 11
    layers = re.findall(r"^\s*(\d+) \[label=", dot, re.M)  # layer nodes are named by their id
    assert sorted(map(int, layers)) == list(analysis.graph.order())
    assert 'label="inception (4a)\n376.2K params, 73.6M MACs"' in dot
    assert 'label="aux_classifier (aux2)\n' in dot
    assert "conv 5x5/1 48 pad=2 + relu" in dot


def test_an_inceptions_branches_are_drawn_in_source_order():
    """They share a rank, and `ordering=out` keeps the order they read the input in."""
    analysis = analyse(ROOT / "nets/googlenet.arch")
    dot = draw(analysis, expand=True).source
    assert "ordering=out" in dot
    first = [n for n in analysis.graph.order() if analysis.graph.node(n).blocks == (0,)]
    heads = [n for n in first if analysis.graph.node(n).inputs == (analysis.graph.node(
        first[0]).inputs[0],)]
    assert len(heads) == 4
    rank = "{\n\t\t\trank=same\n" + "".join(f"\t\t\t{n}\n" for n in heads) + "\t\t}"
    assert rank in dot


def test_graph_command_writes_dot_without_graphviz(archc, tmp_path):
    out = tmp_path / "nin.dot"
    status, _, err = archc("graph", "nets/nin_cifar10.arch", "-o", str(out))
    assert status == 0, err
    assert out.read_text().startswith("digraph nin_cifar10 {")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_graph_command_renders(archc, tmp_path, suffix, magic):
    out = tmp_path / f"vgg{suffix}"
    status, _, err = archc("graph", "nets/vgg_a.arch", "-o", str(out), "--expand")
    assert status == 0, err
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("args", [["-o", "x.jpg"], ["-o", "/no/such/folder/x.dot"]])
def test_graph_command_refuses_bad_outputs(archc, args):
    status, _, err = archc("graph", "nets/vgg_a.arch", *args)
    assert status == 2 and err.startswith("archc: error: cannot")


def test_export_command(archc, tmp_path):
    out = tmp_path / "nin.onnx"
    status, printed, err = archc("export", "nets/nin_cifar10.arch", "--onnx", str(out))
    assert status == 0, err
    assert printed.startswith(f"wrote {out} (opset 18): ONNX checker passed;")
    status, _, err = archc("export", "nets/nin_cifar10.arch", "--onnx", "/no/such/x.onnx")
    assert status == 2 and "no such folder" in err


@pytest.mark.parametrize("name", ["nin_cifar10", "googlenet"])
def test_onnx_export_checks_and_agrees_with_torch(tmp_path, name):
    analysis = analyse(ROOT / f"nets/{name}.arch")
    torch.manual_seed(0)
    module = lower(analysis, heads=False).module
    out = tmp_path / f"{name}.onnx"
    export_onnx(module, tuple(analysis.shapes[analysis.graph.input]), out)
    onnx.checker.check_model(str(out), full_check=True)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(3, *analysis.shapes[analysis.graph.input])  # batch 3: the batch is dynamic
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = module.eval()(x).numpy()
    assert got.shape == want.shape == (3, analysis.shapes[analysis.graph.output].c)
    np.testing.assert_allclose(got, want, rtol=0, atol=ONNX_ATOL)
    assert abs(want.sum(1) - 1).max() < 1e-5  # probabilities: the softmax was exported
