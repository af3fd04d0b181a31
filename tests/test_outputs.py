"""`archc graph` and `archc export`: drawings with shapes on the edges; ONNX that runs."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import ROOT

from archc.draw import draw
from archc.export import export_onnx
from archc.lower import lower
from archc.pipeline import analyse

# Exported outputs are softmax probabilities in [0, 1]; onnxruntime and PyTorch run different
# kernels, so they may differ by float32 rounding, far below this.
ONNX_ATOL = 1e-6


def test_collapsed_graph_has_one_node_per_block_use_and_shapes_on_edges():
    dot = draw(analyse(ROOT / "nets/googlenet.arch")).source
    assert dot.count("inception (") == 9 and "aux_classifier (aux1)" in dot
    assert '-> use0 [label="192x28x28"]' in dot  # maxpool 3x3/2 into inception 3a
    assert 'use5 -> use6 [label="528x14x14"]' in dot  # 4d into 4e
    assert dot.count("->") == 22 + 2  # a chain of 23 nodes, and the two heads


def test_expanded_graph_draws_every_layer_in_clusters():
    analysis = analyse(ROOT / "nets/googlenet.arch")
    dot = draw(analysis, expand=True).source
    assert dot.count("subgraph cluster_use") == len(analysis.graph.block_uses) == 11
    nodes = dot.count("[label=") - dot.count("->")  # edges carry labels too
    assert nodes == len(analysis.graph)


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
