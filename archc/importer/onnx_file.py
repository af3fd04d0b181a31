"""Read an ONNX file as layers: each node a .arch statement, with the modules it came from.

The file is parsed (the `onnx` package's protobuf reader), never run: sizes come from the
nodes' attributes and the weights' shapes, the input's from the graph (or `--input` where
they are dynamic). A node of a file torch exported carries its module path and class
(`pkg.torch.onnx.name_scopes`, `pkg.torch.onnx.class_hierarchy`), which archc.importer.layout
makes blocks of, as it does torch.fx's; a file without them (the ONNX Model Zoo's) reads as
one flat net. Constants (initializers, `Constant`, `ConstantOfShape` fills) are values,
not layers. What .arch cannot say (an asymmetric pad, a Transpose, a Mul by a constant) is an
ImportFailure naming the node and its op.
"""

from __future__ import annotations

import ast as pyast
from pathlib import Path

from torch import nn

from archc.importer.onnx_patterns import options, patterns
from archc.importer.onnx_values import attributes, constants, inferred, load
from archc.importer.trace import ImportFailure, Layer, Unsupported, _within
from archc.ops.activation import TABLE
from archc.ops.args import BUILTIN_DEFAULTS

# ONNX's ops that are one of archc's activations, from the op registry's table
ACTIVATIONS = {row.onnx[0]: row for row in TABLE if row.onnx is not None}
JOINS = {"Add": "sum", "Sum": "sum", "Mul": "mul", "Concat": "concat"}
CONSTANTS = {"Constant", "ConstantOfShape"}
SCOPES = "pkg.torch.onnx.name_scopes"  # a node's modules, as torch's exporter writes them
REWRITES, FOLDED = "pkg.onnxscript.rewriter.rule_name", "FuseBatchNormIntoConv"  # the exporter's


class OnnxGraph:
    """The layers of an ONNX file and each layer's tensors, by the roles torch gives them."""

    def __init__(self, path: str | Path, input_shape: tuple[int, int, int] | None = None,
                 report: bool = False):
        """`report`: go on past what .arch cannot say and raise `Unsupported` with all of it."""
        model = load(Path(path))
        self.graph = model.graph
        self.shapes, types = inferred(model)  # value -> its dims, where ONNX infers them
        self.values = constants(model, self.shapes, types)
        self.weights = {t.name for t in model.graph.initializer}  # the file's parameters
        self.tensors: dict[str, dict[str, object]] = {}  # layer name -> role -> array
        self.layers: list[Layer] = [self._input(input_shape)]
        self.alias: dict[str, str] = {}  # a value a skipped node passes on -> its source
        self.sequences: dict[str, tuple[int, str]] = {}  # SplitToSequence -> (parts, source)
        self.patterns, inside = patterns(model.graph, self.values)
        unsupported = []
        for node in model.graph.node:
            if node.op_type in CONSTANTS or node.output[0] in self.values or \
                    node.output[0] in inside:
                continue
            try:
                self._node(node)
            except ImportFailure as failure:
                if not report:
                    raise
                unsupported.append((node.op_type, str(failure)))
                inputs = [i for i in node.input if i and i not in self.values]
                for output in node.output[:1] if inputs else ():  # go on past it
                    self.alias[output] = self.alias.get(inputs[0], inputs[0])
        if unsupported:
            raise Unsupported(unsupported)
        _placed(self.layers, {output for node in model.graph.node if SCOPES not in _meta(node)
                              for output in node.output})
        for layer in self.layers:  # as ONNX's shape inference gives them, one image
            dims = self.shapes.get(layer.name)
            layer.shape = tuple(dims[1:]) if dims and all(dims[1:]) else None
        self.macs = sum(self._macs(node) for node in model.graph.node
                        if node.op_type in ("Conv", "Gemm"))
        self.folded_norms = sum(FOLDED in _meta(node).get(REWRITES, "")
                                for node in model.graph.node if node.op_type == "Conv")

    # ---- the graph's input -----------------------------------------------------------------

    def _input(self, given: tuple[int, int, int] | None) -> Layer:
        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise ImportFailure(f"the graph takes {len(inputs)} inputs "
                                f"({', '.join(i.name for i in inputs)}); archc's nets take one "
                                "image")
        (image,) = inputs
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                for d in image.type.tensor_type.shape.dim]
        if len(dims) != 4:
            raise ImportFailure(f"input '{image.name}' is {len(dims)}-D "
                                f"({' x '.join(map(str, dims))}); archc's nets take "
                                "N x C x H x W images")
        if given is None:
            if not all(isinstance(d, int) and d > 0 for d in dims[1:]):
                raise ImportFailure(f"input '{image.name}' is {' x '.join(map(str, dims))}: its "
                                    "size is not fixed; give it with --input CxHxW")
            given = tuple(dims[1:])
        c, h, w = given
        return Layer(image.name, f"input {c}x{h}x{w}", False, [], ())

    # ---- one node ----------------------------------------------------------------------------

    def _node(self, node) -> None:
        op, attrs = node.op_type, attributes(node)
        tensors = [self.alias.get(i, i) for i in node.input if i and i not in self.values]
        stack = _stack(node)
        if op not in JOINS and tensors:  # F.relu(self.branch[0](x)): in the branch's list
            source = next((layer for layer in reversed(self.layers)
                           if layer.name == tensors[0]), None)
            stack = _within(stack, source.stack, op in ACTIVATIONS) if source is not None \
                else stack
        if op in ("Identity", "Dropout"):
            self.alias[node.output[0]] = tensors[0]
            return
        if node.output[0] in self.patterns:  # several nodes, one statement
            text, source = self.patterns[node.output[0]]
            self.layers.append(Layer(node.output[0], text, False,
                                     [self.alias.get(source, source)], stack))
            return
        if op in ("Split", "SplitToSequence", "SequenceAt"):
            self._chunks(node, op, attrs, tensors, stack)
            return
        if op in JOINS:
            if len(tensors) < 2:
                raise self._failure(node, "of a tensor and a constant (a per-channel scale or "
                                          "shift has no .arch statement)")
            if op == "Concat" and attrs.get("axis") != 1:
                raise self._failure(node, f"along axis {attrs.get('axis')}; archc concatenates "
                                          "channels (axis 1)")
            self.layers.append(Layer(node.output[0], JOINS[op], True, tensors, stack))
            return
        text = self._statement(node, op, attrs)
        self.layers.append(Layer(node.output[0], text, False, tensors[:1], stack))

    def _chunks(self, node, op: str, attrs: dict, tensors: list[str], stack) -> None:
        """Equal parts of the channels, each read on its own: `chunk n i` per part (torch's
        `x.chunk(n, dim=1)`: Split, or SplitToSequence and a SequenceAt per part)."""
        if op == "SequenceAt":
            n, source = self.sequences[tensors[0]]
            index = int(self.values[node.input[1]])
            self.layers.append(Layer(node.output[0], f"chunk {n} {index % n}", False, [source],
                                     stack))
            return
        channels = (self.shapes.get(tensors[0]) or [0, 0])[1]
        sizes = self.values.get(node.input[1]) if len(node.input) > 1 and node.input[1] else \
            attrs.get("split")
        n = len(node.output) if op == "Split" else \
            channels // int(sizes.reshape(-1)[0]) if sizes is not None and channels else 0
        equal = sizes is None or len(set(int(v) for v in sizes.reshape(-1))) == 1 and \
            (op == "Split" or sizes.size == 1 or sizes.size == n)
        if attrs.get("axis", 0) != 1 or not n or not equal or not attrs.get("keepdims", 1):
            raise self._failure(node, "into other than equal parts of the channels")
        if op == "SplitToSequence":
            self.sequences[node.output[0]] = (n, tensors[0])
            return
        for i, output in enumerate(node.output):
            self.layers.append(Layer(output, f"chunk {n} {i}", False, tensors[:1], stack))

    def _statement(self, node, op: str, attrs: dict) -> str:
        row = ACTIVATIONS.get(op)
        if row is not None and self._has(node, attrs, row.onnx[1]):
            return row.name + options(**{key: attrs.get(name, BUILTIN_DEFAULTS[key])
                                          for key, _, name in row.keys})
        if op == "Conv":
            return self._conv(node, attrs)
        if op == "BatchNormalization":
            names = ("weight", "bias", "running_mean", "running_var")
            self.tensors[node.output[0]] = {r: self.values[i] for r, i in zip(names,
                                                                               node.input[1:])}
            return "bn" + options(eps=attrs.get("epsilon", 1e-5))
        if op in ("MaxPool", "AveragePool"):
            return self._pool(node, op, attrs)
        if op == "GlobalAveragePool" or op == "ReduceMean" and self._axes(node, attrs) == [2, 3]:
            return "gap"
        if op == "Flatten" and attrs.get("axis", 1) == 1 or op == "Reshape" and \
                len(self.values.get(node.input[1], ())) == 2:
            return "flatten"
        if op == "Gemm":
            return self._fc(node, attrs)
        if op == "LRN":
            return f"lrn {attrs['size']}" + options(alpha=attrs.get("alpha", 1e-4),
                                                     beta=attrs.get("beta", 0.75),
                                                     k=attrs.get("bias", 1.0))
        if op == "Softmax" and attrs.get("axis", 1) in (1, -1):
            return "softmax"
        raise self._failure(node, "has no .arch statement")

    def _conv(self, node, attrs: dict) -> str:
        weight = self.values.get(node.input[1])
        if weight is None:
            raise self._failure(node, "with a weight computed at run time")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])) or \
                attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self._failure(node, "with dilation or auto_pad has no .arch form")
        roles = {"weight": weight}
        if len(node.input) > 2 and node.input[2] and not self._filler(node.input[2]):
            roles["bias"] = self.values[node.input[2]]
        self.tensors[node.output[0]] = roles
        (kh, kw), stride = weight.shape[2:], self._stride(node, attrs)
        text = f"conv {kh}x{kw}{f'/{stride}' if stride != 1 else ''} {weight.shape[0]}"
        text += self._pads(node, attrs)
        group = attrs.get("group", 1)
        return text + (f" groups={group}" if group != 1 else "") + \
            ("" if "bias" in roles else " bias=false")

    def _pool(self, node, op: str, attrs: dict) -> str:
        kh, kw = attrs["kernel_shape"]
        stride = self._stride(node, attrs)
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        size, out = self.shapes.get(node.input[0], ())[2:], self.shapes.get(node.output[0], ())[2:]
        if op == "AveragePool" and not attrs.get("count_include_pad", 0) and any(pads):
            if list(out) == [1, 1] and len(size) == 2 and (kh, kw) == \
                    (size[0] + pads[0] + pads[2], size[1] + pads[1] + pads[3]):
                return "gap"  # one window over all of it, its padding left out: the mean
            raise self._failure(node, "leaves the padding out of its averages "
                                      "(count_include_pad=0); archc's avgpool counts it")
        ceil = bool(attrs.get("ceil_mode"))
        if op == "MaxPool" and pads[:2] != pads[2:] and len(size) == 2 and \
                all(after >= before for before, after in zip(pads[:2], pads[2:])) and \
                list(out) == [_ceil_size(n, k, stride, p) for n, k, p in
                              zip(size, (kh, kw), pads[:2])]:
            pads, ceil = pads[:2] * 2, True  # Caffe's ceil rounding, written as padding after
        text = f"{'max' if op == 'MaxPool' else 'avg'}pool {kh}x{kw}/{stride}"
        return text + self._pads(node, {"pads": pads}) + (" round=ceil" if ceil else "")

    def _fc(self, node, attrs: dict) -> str:
        weight = self.values.get(node.input[1])
        if weight is None or attrs.get("transA") or attrs.get("alpha", 1.0) != 1.0 or \
                attrs.get("beta", 1.0) != 1.0:
            raise self._failure(node, "is no plain x W^T + b")
        weight = weight if attrs.get("transB") else weight.T
        roles = {"weight": weight}
        if len(node.input) > 2 and node.input[2]:
            bias = self.values[node.input[2]].reshape(-1)
            if bias.size not in (1, weight.shape[0]):
                raise self._failure(node, f"adds {bias.size} biases to {weight.shape[0]} outputs")
            roles["bias"] = bias if bias.size == weight.shape[0] else \
                bias.repeat(weight.shape[0])  # one bias for all, as ONNX broadcasts it
        self.tensors[node.output[0]] = roles
        return f"fc {weight.shape[0]}" + ("" if "bias" in roles else " bias=false")

    def _filler(self, name: str) -> bool:
        """A bias of zeros the exporter computed (torch's exporter writes a conv without a
        bias with one, expanded from a zero): no parameter of the source's, no bias."""
        return name not in self.weights and not self.values[name].any()

    def _macs(self, node) -> int:
        """A conv's or an fc's multiply-accumulates for one image, from the file's weights
        and ONNX's inferred output size (None where it infers none: not counted)."""
        weight, out = self.values.get(node.input[1]), self.shapes.get(node.output[0])
        if weight is None or not out:
            return 0
        per_output = int(weight[0].size) if node.op_type == "Conv" else \
            int(weight.size // out[-1])
        outputs = 1
        for d in out[1:]:
            outputs *= d
        return per_output * outputs

    # ---- attributes ------------------------------------------------------------------------

    def _stride(self, node, attrs: dict) -> int:
        sh, sw = attrs.get("strides", [1, 1])
        if sh != sw:
            raise self._failure(node, f"with a stride of {sh}x{sw} has no .arch form")
        return sh

    def _pads(self, node, attrs: dict) -> str:
        top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        if (top, left) != (bottom, right):
            raise self._failure(node, f"pads {top},{left} before and {bottom},{right} after: "
                                      "an asymmetric pad has no .arch form")
        return f" pad={top}" if top == left and top else \
            f" pad={top}x{left}" if (top, left) != (0, 0) else ""

    def _has(self, node, attrs: dict, wanted: dict[str, float]) -> bool:
        """Whether an activation node has the attributes archc's activation needs (a Clip's
        bounds are inputs since opset 11, attributes before)."""
        given = dict(attrs)
        if node.op_type == "Clip":
            given.update({bound: self.values[name] for bound, name in
                          zip(("min", "max"), node.input[1:]) if name in self.values})
        return all(bound in given and abs(float(given[bound]) - value) < 1e-6
                   for bound, value in wanted.items())

    def _axes(self, node, attrs: dict) -> list[int] | None:
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.values.get(node.input[1])
        return sorted(int(a) % 4 for a in axes) if axes is not None else None

    def _failure(self, node, what: str) -> ImportFailure:
        where = _stack(node)
        module = f" in {where[-1][0]}" if where else ""
        return ImportFailure(f"node '{node.name or node.output[0]}' ({node.op_type}){module} "
                             f"{what}")


def _ceil_size(n: int, k: int, stride: int, pad: int) -> int:
    """A pool's output size with ceil rounding, as PyTorch and Caffe compute it: the last
    window must start inside the input or its left padding."""
    out = -(-(n + 2 * pad - k) // stride) + 1
    return out - 1 if (out - 1) * stride >= n + pad else out


def _stack(node) -> tuple[tuple[str, type], ...]:
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


def _placed(layers: list[Layer], unnamed: set[str]) -> None:
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
