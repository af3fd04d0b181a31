"""Read an ONNX file as layers: each node a .arch statement, with the modules it came from.

The file is parsed (the `onnx` package's protobuf reader), never run: sizes come from the
nodes' attributes and the weights' shapes, the input's from the graph (or `--input` where
they are dynamic). The helpers, one stage each: archc.importer.onnx_values (the file read,
its shapes inferred, the values that do not depend on the image folded), onnx_patterns
(what an exporter writes as several nodes: LRN, SiLU, the shuffle), onnx_scopes (the modules
a node torch exported sits in, which archc.importer.layout makes blocks of, as it does
torch.fx's; a file without them, the ONNX Model Zoo's, reads as one flat net). What .arch
cannot say (an asymmetric pad, a Transpose, a Mul by a constant) is an ImportFailure naming
the node and its op.
"""

from __future__ import annotations

from pathlib import Path

from archc.importer.onnx_patterns import options, patterns
from archc.importer.onnx_scopes import folded, placed, scoped, stack_of
from archc.importer.onnx_values import attributes, constants, inferred, load
from archc.importer.trace import ImportFailure, Layer, Unsupported, _within
from archc.ops.activation import TABLE
from archc.ops.args import BUILTIN_DEFAULTS

# ONNX's ops that are one of archc's activations, from the op registry's table
ACTIVATIONS = {row.onnx[0]: row for row in TABLE if row.onnx is not None}
JOINS = {"Add": "sum", "Sum": "sum", "Mul": "mul", "Concat": "concat"}
CONSTANTS = {"Constant", "ConstantOfShape"}


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
        placed(self.layers, {output for node in model.graph.node if not scoped(node)
                             for output in node.output})
        for layer in self.layers:  # as ONNX's shape inference gives them, one image
            dims = self.shapes.get(layer.name)
            layer.shape = tuple(dims[1:]) if dims and all(dims[1:]) else None
        self.macs = sum(self._macs(node) for node in model.graph.node
                        if node.op_type in ("Conv", "Gemm"))
        self.folded_norms = sum(folded(node) for node in model.graph.node
                                if node.op_type == "Conv")

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
        stack = stack_of(node)
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
        where = stack_of(node)
        module = f" in {where[-1][0]}" if where else ""
        return ImportFailure(f"node '{node.name or node.output[0]}' ({node.op_type}){module} "
                             f"{what}")


def _ceil_size(n: int, k: int, stride: int, pad: int) -> int:
    """A pool's output size with ceil rounding, as PyTorch and Caffe compute it: the last
    window must start inside the input or its left padding."""
    out = -(-(n + 2 * pad - k) // stride) + 1
    return out - 1 if (out - 1) * stride >= n + pad else out
