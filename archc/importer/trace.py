"""Trace: an nn.Module -> its layers as .arch statements, with the modules each sits in.

torch.fx traces the module symbolically (each torch.nn layer a leaf, so its settings are read
from the module itself). Every node becomes a `Layer`: the .arch text of a layer statement
(`conv 3x3/2 64 pad=1 bias=false`), or a join (`sum`, `concat`, `mul`) of its inputs, and the
stack of modules it was called from (fx's `nn_module_stack`: `layer1.0` a BasicBlock), from
which archc.importer.layout recovers blocks. What has no .arch counterpart is an ImportFailure
naming the node and its module.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archc.ops.activation import TABLE

JOINS = {operator.add: "sum", torch.add: "sum", operator.mul: "mul", torch.mul: "mul",
         torch.cat: "concat"}


def _activations() -> tuple[dict, dict, dict]:
    """From the op registry's table: torch's module classes -> the activation, its functions
    (torch's aliases of them too: `torch.relu`, `F.sigmoid`) -> the name, and the tensor
    methods (`x.relu()`) that are one."""
    modules, functions, methods = {}, {}, {}
    for row in TABLE:
        modules[getattr(nn, row.module.split(".")[1])] = row
        if row.keys:
            continue  # a slope: the module's, never a bare function call
        short = row.torch.split(".")[1]
        for namespace in (F, torch):
            if hasattr(namespace, short):
                functions[getattr(namespace, short)] = row.name
        if hasattr(torch.Tensor, short):
            methods[short] = row.name
    return modules, functions, methods


ACTIVATION_MODULES, ACTIVATIONS, ACTIVATION_METHODS = _activations()
FLATTENS = {torch.flatten, "flatten", "view", "reshape"}
SHUFFLE = "channel_shuffle"  # the function archc's and torchvision's ShuffleNets call


class ImportFailure(Exception):
    """A module archc cannot write: which node, in which module, and why."""


class Unsupported(ImportFailure):
    """Every node .arch has no statement for (`archc import --report`): (op, why) each."""

    def __init__(self, found: list[tuple[str, str]]):
        super().__init__(f"{len(found)} nodes have no .arch statement; first: {found[0][1]}")
        self.found = found


@dataclass
class Layer:
    name: str  # the fx node's
    text: str  # the statement (a layer), or the join's keyword (sum, concat, mul)
    join: bool
    inputs: list[str]
    stack: tuple[tuple[str, type], ...]  # (module path, its class), outermost first
    shape: tuple[int, ...] | None = None  # its output's, one image, as the source computes it


def trace(module: nn.Module, input_shape: tuple[int, int, int],
          report: bool = False) -> list[Layer]:
    """The layers of `module` in execution order, the first `input CxHxW`, each with its
    output's shape (the module run once on zeros: torch.fx's ShapeProp). `report`: go on past
    what .arch cannot say and raise `Unsupported` with all of it at the end."""
    from torch.fx.passes.shape_prop import ShapeProp

    traced = _traced(module)
    with torch.no_grad():
        ShapeProp(traced).propagate(torch.zeros(1, *input_shape))
    modules = dict(module.named_modules())
    layers: list[Layer] = []
    made: dict[str, Layer] = {}
    unsupported: list[tuple[str, str]] = []
    for node in traced.graph.nodes:
        stack = _completed(tuple((path.split("@")[0], kind) for path, (_, kind) in
                                 node.meta.get("nn_module_stack", {}).items()), node, modules)
        inputs = [a.name for a in node.args if isinstance(a, torch.fx.Node)]
        if node.op == "call_function" and inputs and inputs[0] in made:
            stack = _within(stack, made[inputs[0]].stack, node.target in ACTIVATIONS)
        try:
            layer = _layer(node, inputs, stack, modules, input_shape)
        except ImportFailure as failure:
            if not report:
                raise
            unsupported.append((_op(node, modules), str(failure)))
            layer = Layer(node.name, "identity", False, inputs[:1], stack) if inputs else None
        if layer is not None:
            meta = node.meta.get("tensor_meta")
            layer.shape = tuple(meta.shape[1:]) if hasattr(meta, "shape") else None
            layers.append(layer)
            made[layer.name] = layer
    if unsupported:
        raise Unsupported(unsupported)
    return _joined(layers)


def _traced(module: nn.Module) -> torch.fx.GraphModule:
    """torch.fx's trace of `module`, called as leaves: a function of its file that only
    checks the input (archc's emitted `check_input`), and one that shuffles channels
    (`channel_shuffle(x, groups)`, archc's and torchvision's: `shuffle g`, where its body's
    view of x.shape would not trace). A forward that branches on its input's values or sizes
    cannot be traced: an ImportFailure that says so."""
    home = getattr(type(module).forward, "__globals__", {})  # the forward's own file
    leaves = tuple(f for name, f in home.items() if (name.startswith("check_") or
                                                     name == SHUFFLE) and callable(f)
                   and getattr(f, "__globals__", None) is home)
    tracer = torch.fx.Tracer(autowrap_functions=leaves)
    try:
        graph = tracer.trace(module)
    except torch.fx.proxy.TraceError as error:
        raise ImportFailure(f"torch.fx cannot trace {type(module).__name__}: {error} (its "
                            "forward branches on its input's values or sizes; import a "
                            "module whose forward does not, or its ONNX export)") from None
    return torch.fx.GraphModule(tracer.root, graph)


def _completed(stack: tuple, node, modules: dict) -> tuple:
    """The stack with the containers a forward reaches through without calling them (archc's
    `self.dw1.conv1(x)`, an nn.ModuleDict) put in, outermost first: they group too."""
    leaf = node.target if node.op == "call_module" else stack[-1][0] if stack else ""
    parts = leaf.split(".") if leaf else []
    known = {path for path, _ in stack}
    missing = [(".".join(parts[:i]), type(modules[".".join(parts[:i])]))
               for i in range(1, len(parts) + 1) if ".".join(parts[:i]) not in known and
               ".".join(parts[:i]) in modules]
    return tuple(sorted((*stack, *missing), key=lambda entry: entry[0].count(".") +
                        (1 if entry[0] else 0)))


def _within(stack: tuple, source: tuple, activation: bool = False) -> tuple:
    """F.relu(self.dw1.conv1(x)): the function sits in the containers its input's module was
    reached through (nn.ModuleDict, nn.ModuleList: never called, so in no trace's stack), below
    the modules it is called in itself. An activation on an nn.Sequential's output sits in
    the Sequential too: archc writes a group that ends in one as the Sequential before it."""
    if source[:len(stack)] != stack:
        return stack
    deeper = []
    for entry in source[len(stack):]:
        if entry[1] not in (nn.ModuleDict, nn.ModuleList) + ((nn.Sequential,) if activation
                                                             else ()):
            break
        deeper.append(entry)
    return stack + tuple(deeper)


def _layer(node, inputs: list[str], stack, modules: dict, input_shape) -> Layer | None:
    if node.op == "call_function" and not node.users and \
            getattr(node.target, "__name__", "").startswith("check_"):
        return None  # the input's check: its value is never read
    if node.op == "placeholder":
        c, h, w = input_shape
        return Layer(node.name, f"input {c}x{h}x{w}", False, [], ())
    if node.op == "output":
        return None
    if node.op == "call_module":
        return Layer(node.name, _module_text(modules[node.target], node), False, inputs[:1],
                     stack)
    if _is_chunk(node):
        return None  # its parts are read by index: each a `chunk n i` (below)
    if node.op in ("call_function", "call_method"):
        return _function(node, inputs, stack)
    raise ImportFailure(f"{node.name} ({node.op} {node.target}): archc has no "  # get_attr
                        "statement for a parameter used as a value")


def _op(node, modules: dict) -> str:
    """What a node computes, as `--report` counts it: a module's class, a function's name."""
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    return getattr(node.target, "__name__", str(node.target))


def _joined(layers: list[Layer]) -> list[Layer]:
    """The layers with identities passed through and DenseNet's concats nested."""
    alias: dict[str, str] = {}  # an identity's name -> what it passes on
    kept, concats = [], []
    for layer in layers:
        layer.inputs = [alias.get(i, i) for i in layer.inputs]
        if layer.text == "identity":
            alias[layer.name] = layer.inputs[0]
            continue
        if layer.text == "concat":
            written = list(layer.inputs)
            layer.inputs = _nested(written, concats)
            concats.append((layer.name, written))
        kept.append(layer)
    return kept


def _nested(inputs: list[str], concats: list[tuple[str, list[str]]]) -> list[str]:
    """DenseNet's `cat([x0, x1, x2])` after `cat([x0, x1])` as `cat([that, x2])`: each dense
    layer a concat of the block so far and its own output (series-parallel, as .arch is)."""
    for name, earlier in reversed(concats):  # the latest: the longest prefix
        if len(earlier) < len(inputs) and inputs[:len(earlier)] == earlier:
            return [name, *inputs[len(earlier):]]
    return inputs


def _is_chunk(node) -> bool:
    """`x.chunk(n, dim=1)` or `torch.chunk(x, n, 1)`: equal parts of the channels."""
    return (node.op == "call_method" and node.target == "chunk") or \
        (node.op == "call_function" and node.target is torch.chunk)


def _part(node, stack) -> Layer:
    """`x.chunk(n, dim=1)[i]`: the statement `chunk n i`, reading x."""
    whole, index = node.args
    parts = whole.kwargs.get("chunks", whole.args[1] if len(whole.args) > 1 else None)
    dim = whole.kwargs.get("dim", whole.args[2] if len(whole.args) > 2 else 0)
    if dim != 1 or not isinstance(parts, int) or not isinstance(index, int):
        raise ImportFailure(f"{node.name}: a chunk along dim {dim}; archc splits channels (dim 1)")
    return Layer(node.name, f"chunk {parts} {index % parts}", False, [whole.args[0].name], stack)


def _function(node, inputs: list[str], stack) -> Layer:
    target = node.target
    if getattr(target, "__name__", "") == SHUFFLE and isinstance(node.args[1], int):
        return Layer(node.name, f"shuffle {node.args[1]}", False, inputs[:1], stack)
    if target is operator.getitem and isinstance(node.args[0], torch.fx.Node) and \
            _is_chunk(node.args[0]):
        return _part(node, stack)
    if target in JOINS:
        if target is torch.cat:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            if dim != 1:
                raise ImportFailure(f"{node.name}: torch.cat along dim {dim}; archc concatenates "
                                    "channels (dim 1)")
            inputs = [a.name for a in node.args[0]]
        if len(inputs) == 1 and target is torch.cat:  # DenseNet's first layer: one tensor
            return Layer(node.name, "identity", False, inputs, stack)
        if len(inputs) < 2:
            raise ImportFailure(f"{node.name}: {target.__name__} of a tensor and a constant")
        return Layer(node.name, JOINS[target], True, inputs, stack)
    activation = ACTIVATION_METHODS.get(target) if node.op == "call_method" else \
        ACTIVATIONS.get(target)
    if activation is not None:
        return Layer(node.name, activation, False, inputs[:1], stack)
    if target == "mean" and list(node.args[1:2]) in ([[2, 3]], [(2, 3)], [[-2, -1]]) \
            and not node.kwargs.get("keepdim", False):  # MnasNet's x.mean([2, 3])
        return Layer(node.name, "gap", False, inputs[:1], stack)
    if target in (F.avg_pool2d, F.max_pool2d):  # Inception-v3's pool branches
        pool = (nn.AvgPool2d if target is F.avg_pool2d else nn.MaxPool2d)(
            *node.args[1:], **node.kwargs)
        return Layer(node.name, _pool(pool), False, inputs[:1], stack)
    if getattr(target, "__name__", "") == "stochastic_depth" and node.args[2] == "row":
        return Layer(node.name, f"droppath {node.args[1]:g}", False, inputs[:1], stack)
    if target in FLATTENS:
        return Layer(node.name, "flatten", False, inputs[:1], stack)
    if target is F.adaptive_avg_pool2d and node.args[1] in (1, (1, 1)):
        return Layer(node.name, "gap", False, inputs[:1], stack)
    if target in (F.softmax, torch.softmax) and node.kwargs.get(
            "dim", node.args[1] if len(node.args) > 1 else None) in (1, -1):
        return Layer(node.name, "softmax", False, inputs[:1], stack)
    if target is F.dropout or target is torch.dropout:
        return Layer(node.name, "identity", False, inputs[:1], stack)
    where = stack[-1][0] if stack else "the net"
    raise ImportFailure(f"{node.name}: {getattr(target, '__name__', target)} in {where} has no "
                        ".arch statement")


def _module_text(m: nn.Module, node) -> str:
    if isinstance(m, nn.Conv2d):
        return _conv(m)
    if isinstance(m, nn.BatchNorm2d):
        return "bn" + _options(eps=(m.eps, 1e-5), momentum=(m.momentum, 0.1))
    if type(m) in ACTIVATION_MODULES:
        row = ACTIVATION_MODULES[type(m)]
        return " ".join([row.name, *(f"{key}={getattr(m, attr):g}" for key, attr, _ in row.keys)])
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(m)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        size = _pair(m.output_size)
        return "gap" if size == (1, 1) else f"adaptivepool {size[0]}x{size[1]}"
    if isinstance(m, nn.Linear):
        return f"fc {m.out_features}" + ("" if m.bias is not None else " bias=false")
    if isinstance(m, nn.LocalResponseNorm):
        return f"lrn {m.size}" + "".join(f" {key}={value:g}" for key, value, default in (
            ("alpha", m.alpha, 1e-4), ("beta", m.beta, 0.75), ("k", m.k, 1.0))
            if value != default)
    if isinstance(m, nn.Softmax) and m.dim in (1, -1):
        return "softmax"
    if isinstance(m, nn.Flatten):
        return "flatten"
    if isinstance(m, nn.Dropout):
        return f"dropout {m.p:g}" if m.p else "identity"
    if isinstance(m, nn.Identity):
        return "identity"
    raise ImportFailure(f"{node.name}: {type(m).__name__} ({node.target}) has no .arch statement")


def _conv(m: nn.Conv2d) -> str:
    if m.dilation not in (1, (1, 1)) or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ImportFailure(f"{m}: dilation, padding modes and string padding have no .arch form")
    kh, kw = m.kernel_size
    sh, sw = m.stride
    if sh != sw:
        raise ImportFailure(f"{m}: a stride of {sh}x{sw} has no .arch form")
    ph, pw = m.padding
    text = f"conv {kh}x{kw}{f'/{sh}' if sh != 1 else ''} {m.out_channels}"
    text += f" pad={ph}" if ph == pw and ph else f" pad={ph}x{pw}" if (ph, pw) != (0, 0) else ""
    text += f" groups={m.groups}" if m.groups != 1 else ""
    return text + ("" if m.bias is not None else " bias=false")


def _pool(m) -> str:
    kind = "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"
    (kh, kw), (sh, sw), (ph, pw) = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), \
        _pair(m.padding)
    if sh != sw or getattr(m, "dilation", 1) not in (1, (1, 1)):
        raise ImportFailure(f"{m}: this pool has no .arch form")
    if kind == "avgpool" and not m.count_include_pad and (ph, pw) != (0, 0):
        raise ImportFailure(f"{m}: count_include_pad=False with padding has no .arch form")
    text = f"{kind} {kh}x{kw}/{sh}"
    text += f" pad={ph}" if ph == pw and ph else f" pad={ph}x{pw}" if (ph, pw) != (0, 0) else ""
    return text + (" round=ceil" if m.ceil_mode else "")


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _options(**options) -> str:
    return "".join(f" {k}={v:g}" for k, (v, default) in options.items() if v != default)
