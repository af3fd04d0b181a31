"""`archc import FILE.onnx` (archc.importer.onnx_file): an ONNX file as readable .arch, parsed
and never run; its logits against onnxruntime's on the file itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import ROOT

import archc
from archc import compile as compile_arch
from archc.importer import imported_onnx, weights
from archc.importer.trace import ImportFailure
from archc.ops.activation import TABLE
from archc.pipeline import analyse

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

MODELS = ROOT / "tests/data/import/models.py"
# The ONNX Model Zoo's nets that ship inside the onnx wheel, their weights ConstantOfShape
# fills: converted from Caffe and Caffe2 at opset 9, nobody here wrote them.
LIGHT = Path(onnx.__file__).parent / "backend/test/data/light"
IMPORTS = ["bvlc_alexnet", "inception_v1", "resnet50", "squeezenet", "vgg19", "zfnet512"]
DEFAULT = {"bvlc_alexnet", "inception_v1"}  # Caffe's ceil pools as pads, a padded average
REFUSED = {  # what the language lacks, named at the node
    "densenet121": "node 'n3' (Mul) of a tensor and a constant (a per-channel scale or shift",
    "inception_v2": "node 'n3' (Mul) of a tensor and a constant (a per-channel scale or shift",
    "shufflenet": "node 'n14' (AveragePool) leaves the padding out of its averages",
}


def _onnxruntime(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def _same_as_onnxruntime(path: Path, result, shape) -> None:
    net = archc.compile(result.text).eval()
    net.load_state_dict(weights(None, result))  # strict: every tensor paired
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = net(x), _onnxruntime(path, x)
    # a net that ends C x 1 x 1 returns N x C (archc's emitted modules, as torchvision's do)
    torch.testing.assert_close(ours, theirs.reshape(ours.shape), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow)
                                  for n in IMPORTS])
def test_the_onnx_zoos_nets_import_with_onnxruntimes_logits(name):
    path = LIGHT / f"light_{name}.onnx"
    result = imported_onnx(path)
    analysis = analyse("<import>.arch", text=result.text)
    assert analysis.diagnostics == []  # its expects, from ONNX's shapes and weights, hold
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    (output,) = model.graph.output
    out = [d.dim_value for d in output.type.tensor_type.shape.dim]
    shape = analysis.shapes[analysis.graph.output]
    assert [shape.c, shape.h, shape.w][:len(out) - 1] == out[1:]
    params = sum(t.numel() for key, t in result.tensors.items()  # a bn's statistics: state,
                 if not key.endswith(("running_mean", "running_var")))  # not parameters
    assert sum(c.params for c in analysis.costs.values()) == params
    _same_as_onnxruntime(path, result, (3, 224, 224))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_the_language_lacks_is_named_at_its_node(name):
    with pytest.raises(ImportFailure) as failure:
        imported_onnx(LIGHT / f"light_{name}.onnx")
    assert str(failure.value).startswith(REFUSED[name])


def test_bvlc_googlenets_floor_pools_and_its_padded_average_read_as_onnx_wrote_them():
    """The zoo's GoogLeNet came from Caffe through Caffe2 at opset 9, whose MaxPool has no
    ceil_mode: Caffe's ceil pools (56, 28, 14, 7 in the paper) became floor pools (55, 27,
    13, 6), and the final 7x7 average, on 6x6 now, pads 1 after with the padding left out:
    the mean of the 6x6, which is `gap`. Its parameters are nets/googlenet.arch's less the
    two auxiliary classifiers (this file has none)."""
    text = archc.import_onnx(LIGHT / "light_inception_v1.onnx")
    analysis = analyse("<import>.arch", text=text)
    pooled = [analysis.shapes[n].h for n in analysis.graph.main_nodes()
              if analysis.graph.node(n).op.__class__.__name__ == "Pool" and
              analysis.graph.node(n).op.stride == 2]
    assert pooled == [55, 27, 13, 6]
    assert "gap" in text and "round=ceil" not in text
    paper = analyse(ROOT / "nets/googlenet.arch")
    main = set(paper.graph.main_nodes())
    ours = sum(c.params for n, c in paper.costs.items() if n in main)
    assert sum(c.params for c in analysis.costs.values()) == ours


def test_a_torch_export_imports_with_its_blocks_and_weights(archc, tmp_path):
    """torch's exporter names each node's module and class: the user's Unit becomes a block
    again, the batch norms come back folded into their convs (the exporter's optimiser folds
    them), and the imported net gives onnxruntime's logits on the file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("models", MODELS)
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    torch.manual_seed(0)
    module = models.tiny().eval()
    for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
        torch.nn.init.uniform_(bn.running_var, 0.5, 1.5)
        torch.nn.init.normal_(bn.running_mean)
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(module, (torch.randn(1, 3, 32, 32),), str(path), dynamo=True,
                      verbose=False)
    status, _, err = archc("import", str(path), "-o", str(tmp_path / "tiny.arch"),
                           "--weights", str(tmp_path / "tiny.pt"))
    assert status == 0, err
    text = (tmp_path / "tiny.arch").read_text()
    assert "block unit(c) {" in text and "unit(16) x2" in text
    assert text.startswith("# The exporter folded 4 batch norms into the convs before them")
    graph = analyse("<import>.arch", text=text).graph
    assert "BatchNorm" not in {type(graph.node(n).op).__name__ for n in graph.order()}
    net = compile_arch(text).eval()
    net.load_state_dict(torch.load(tmp_path / "tiny.pt"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), module(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable ONNX file"),
    (b"\x08\x07\x12\x04junk\xff\xff", "not a readable ONNX file"),
])
def test_a_broken_file_is_refused_and_nothing_is_written(archc, tmp_path, content, message):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    status, _, err = archc("import", str(path), "-o", str(tmp_path / "x.arch"))
    assert status == 1 and message in err, err
    assert not (tmp_path / "x.arch").exists()


def test_a_truncated_file_is_refused(archc, tmp_path):
    data = (LIGHT / "light_bvlc_alexnet.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:len(data) // 2])
    status, _, err = archc("import", str(path), "-o", str(tmp_path / "x.arch"))
    assert status == 1 and "not a readable ONNX file" in err, err


def _graph_file(tmp_path, inputs) -> Path:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", [inputs[0][0]], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                           for n, s in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_a_dynamic_size_needs_the_input_option(archc, tmp_path):
    path = _graph_file(tmp_path, [("x", ["N", 3, "H", "W"])])
    status, _, err = archc("import", str(path), "-o", str(tmp_path / "x.arch"))
    assert status == 1 and "input 'x' is N x 3 x H x W: its size is not fixed; give it with " \
        "--input CxHxW" in err
    status, _, err = archc("import", str(path), "-o", str(tmp_path / "x.arch"), "--input",
                           "3x8x8")
    assert status == 0, err
    assert "input 3x8x8\n    relu\n" in (tmp_path / "x.arch").read_text()


@pytest.mark.parametrize("inputs, message", [
    ([("a", [1, 3, 8, 8]), ("b", [1, 3, 8, 8])], "the graph takes 2 inputs (a, b)"),
    ([("tokens", [1, 128])], "input 'tokens' is 2-D (1 x 128); archc's nets take N x C x H x W"),
])
def test_inputs_that_are_no_image_are_refused(archc, tmp_path, inputs, message):
    path = _graph_file(tmp_path, inputs)
    status, _, err = archc("import", str(path), "-o", str(tmp_path / "x.arch"))
    assert status == 1 and message in err, err


def test_report_lists_every_op_the_language_lacks_with_its_count(archc, tmp_path):
    """The zoo's DenseNet-121 writes each batch norm as a Mul and an Add by per-channel
    constants: --report counts them all (121 each) rather than stopping at the first, and
    writes nothing."""
    status, out, err = archc("import", str(LIGHT / "light_densenet121.onnx"), "-o",
                             str(tmp_path / "x.arch"), "--report")
    assert status == 1 and "242 nodes have no .arch statement" in err
    rows = [line.split()[:2] for line in out.splitlines()[1:]]
    assert rows == [["Mul", "121"], ["Add", "121"]]
    assert not (tmp_path / "x.arch").exists()
    status, out, _ = archc("import", str(LIGHT / "light_bvlc_alexnet.onnx"), "-o",
                           str(tmp_path / "a.arch"), "--report")
    assert status == 0 and "every node has an .arch statement" in out
    assert (tmp_path / "a.arch").exists()


def _uses(text: str) -> dict[str, int]:
    """Block name -> how many times the net uses it (`x3` counting three)."""
    import re

    net = text[re.search(r"^net ", text, re.M).start():]
    found: dict[str, int] = {}
    for name, times in re.findall(r"^\s+(\w+)\([^)]*\)(?: x(\d+))?", net, re.M):
        found[name] = found.get(name, 0) + int(times or 1)
    return found


def test_without_names_recurring_units_become_blocks():
    """The zoo's files name no modules: --blocks auto finds the units by structure. SqueezeNet's
    fire modules (the squeeze conv before its expand concat) are one block used 8 times,
    VGG-19's stages two blocks (two and four convs before a pool), and the files still prove
    themselves."""
    squeezenet = archc.import_onnx(LIGHT / "light_squeezenet.onnx")
    assert _uses(squeezenet) == {"branches": 8}
    assert "block branches(c1, c2) {\n    conv 1x1 c1\n    relu\n    concat {" in squeezenet
    vgg = archc.import_onnx(LIGHT / "light_vgg19.onnx")
    assert _uses(vgg) == {"stage": 2, "stage_2": 3}
    flat = archc.import_onnx(LIGHT / "light_vgg19.onnx", blocks="none")
    assert len(vgg) < len(flat) and "block" not in flat
    for text in (squeezenet, vgg):
        assert analyse("<import>.arch", text=text).diagnostics == []


@pytest.mark.slow
def test_resnet50s_bottlenecks_are_found_without_names_and_keep_the_logits():
    path = LIGHT / "light_resnet50.onnx"
    result = imported_onnx(path, blocks="structure")
    # each stage's first block (a projection shortcut, a stride) and the rest
    assert _uses(result.text) == {"residual": 4, "residual_2": 12}
    assert "residual(256, 2, 1024)" in result.text and "residual_2(1024) x5" in result.text
    _same_as_onnxruntime(path, result, (3, 224, 224))


def test_nins_mlpconvs_are_found_in_an_export_stripped_of_its_names(tmp_path):
    """archc's own NIN exported to ONNX, every node's names and metadata removed: the
    mlpconvs (three convs, each followed by another kind of pool) come back as one block, its
    window a parameter."""
    net = compile_arch(ROOT / "nets/nin_cifar10.arch").eval()
    path = tmp_path / "nin.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), str(path), dynamo=True, verbose=False)
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.name = ""
    onnx.save(model, str(path))
    result = imported_onnx(path)
    assert _uses(result.text) == {"unit": 3}
    assert "block unit(k, p, c1, c2) {\n    conv (k)x(k) 192 pad=p bias=false" in result.text
    assert analyse("<import>.arch", text=result.text).diagnostics == []
    _same_as_onnxruntime(path, result, (3, 32, 32))


@pytest.mark.parametrize("row", [r for r in TABLE if r.onnx], ids=lambda row: row.name)
def test_every_activation_of_the_table_imports_from_its_onnx_op(row, tmp_path):
    """The op registry's table names each activation's ONNX op and the attributes it needs
    (Clip's bounds as inputs, HardSigmoid's torch slope); the file's logits come back."""
    import numpy
    from onnx import TensorProto, helper, numpy_helper

    op, wanted = row.onnx
    inputs, attributes, initializers = ["x"], {}, []
    if op == "Clip":
        for bound in ("min", "max"):
            initializers.append(numpy_helper.from_array(numpy.array(wanted[bound], "float32"),
                                                        bound))
            inputs.append(bound)
    else:
        attributes = dict(wanted)
    node = helper.make_node(op, inputs, ["y"], **attributes)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 3, 4, 4])], initializers)
    path = tmp_path / f"{row.name}.onnx"
    opset = 20 if op == "Gelu" else 17
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]),
              str(path))
    result = imported_onnx(path)
    assert f"\n    {row.name}  " in result.text
    _same_as_onnxruntime(path, result, (3, 4, 4))


def test_a_channel_shuffle_exported_as_three_nodes_reads_as_one_statement(tmp_path):
    """ONNX has no shuffle: the exporter writes Reshape to 5-D, Transpose, Reshape back,
    which the importer reads whole (archc.importer.onnx_patterns), names or none."""
    source = "net shuffled {\n    input 3x8x8\n    conv 3x3 12 pad=1\n    shuffle 3\n" \
             "    conv 1x1 6\n    gap\n    fc 2\n}\n"
    net = compile_arch(source).eval()
    path = tmp_path / "shuffled.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), str(path), dynamo=True, verbose=False)
    result = imported_onnx(path)
    assert "    shuffle 3  " in result.text and "Transpose" not in result.text
    _same_as_onnxruntime(path, result, (3, 8, 8))
