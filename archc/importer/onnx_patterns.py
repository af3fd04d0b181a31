"""Layers an exporter writes as several ONNX nodes, recognised whole by their structure (no
names needed): torch's local response norm (`F.local_response_norm` decomposed into squares,
a 3-D average over channels, a scale, a shift, a power and a division), ShuffleNet's
channel shuffle (Reshape to 5-D, Transpose, Reshape back) and the activations ONNX has no op
for (SiLU: x * Sigmoid(x), from the op registry's activation table).

`patterns(graph, values)` maps the last node of each to its statement and the tensor it
reads, and gives the nodes inside them, which are no layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from onnx import helper

from archc.ops.activation import TABLE
from archc.ops.args import BUILTIN_DEFAULTS

GATED = {row.onnx_gate: row.name for row in TABLE if row.onnx_gate}  # x * Sigmoid(x): silu

PASSED = {"Reshape", "Squeeze", "Unsqueeze"}  # moves between 4-D and 5-D, no arithmetic


@dataclass(frozen=True)
class Norm:
    size: int
    alpha: float
    beta: float
    k: float
    source: str  # the tensor normalised


def patterns(graph, values: dict) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """{the output of a pattern's last node: (its statement, the tensor it reads)}, and the
    outputs of the nodes inside the patterns."""
    norms, inside = local_response_norms(graph, values)
    found = {name: (f"lrn {n.size}" + options(alpha=n.alpha, beta=n.beta, k=n.k), n.source)
             for name, n in norms.items()}
    producer = {output: node for node in graph.node for output in node.output}
    readers = Counter(i for node in graph.node for i in node.input)
    readers.update(o.name for o in graph.output)
    for node in graph.node:
        shuffle = _shuffle(node, producer, values)
        if shuffle is not None:
            found[node.output[0]] = shuffle[:2]
            inside.update(shuffle[2])
        gated = _gated(node, producer, readers)
        if gated is not None:
            found[node.output[0]] = gated[:2]
            inside.add(gated[2])
    return found, inside


def _gated(node, producer: dict, readers: Counter):
    """x * GATE(x), GATE read by nothing else: (the activation, x, GATE's output)."""
    if node.op_type != "Mul" or len(node.input) != 2:
        return None
    for x, gate in (node.input, node.input[::-1]):
        made = producer.get(gate)
        if made is not None and made.op_type in GATED and made.input[0] == x and \
                readers[gate] == 1:
            return GATED[made.op_type], x, gate
    return None


def _shuffle(node, producer: dict, values: dict):
    """Reshape N x C x H x W to N x g x C/g x H x W, Transpose (0, 2, 1, 3, 4), Reshape back:
    (`shuffle g`, the tensor shuffled, the two nodes inside)."""
    def target(reshape) -> list:
        shape = values.get(reshape.input[1]) if reshape.op_type == "Reshape" else None
        return list(shape) if shape is not None else []

    def made(name: str, passed: list):  # the node that makes `name`, past Identity (clone)
        node = producer.get(name)
        while node is not None and node.op_type == "Identity":
            passed.append(node.output[0])
            node = producer.get(node.input[0])
        return node

    if len(target(node)) != 4:
        return None
    passed: list[str] = []
    transpose = made(node.input[0], passed)
    if transpose is None or transpose.op_type != "Transpose" or \
            [list(a.ints) for a in transpose.attribute if a.name == "perm"] != [[0, 2, 1, 3, 4]]:
        return None
    split = made(transpose.input[0], passed)
    if split is None or len(target(split)) != 5:
        return None
    return (f"shuffle {int(target(split)[1])}", split.input[0],
            {transpose.output[0], split.output[0], *passed})


def local_response_norms(graph, values: dict) -> tuple[dict[str, Norm], set[str]]:
    """x / (k + alpha * avg_pool3d(pad(x*x), (size, 1, 1)))^beta, as torch exports it:
    {the Div's output: its Norm}, and the outputs of the nodes it is made of."""
    producer = {output: node for node in graph.node for output in node.output}
    found, inside = {}, set()
    for node in graph.node:
        if node.op_type != "Div":
            continue
        chain: list = []
        norm = _matched(node, producer, values, chain)
        if norm is not None:
            found[node.output[0]] = norm
            inside.update(n.output[0] for n in chain)
    return found, inside


def _matched(div, producer: dict, values: dict, chain: list) -> Norm | None:
    def take(name: str, op: str):
        node = producer.get(name)
        if node is None or node.op_type != op:
            return None
        chain.append(node)
        return node

    def constant(node) -> float | None:
        known = [values[i] for i in node.input if i in values]
        return float(known[0].reshape(-1)[0]) if len(known) == 1 and known[0].size == 1 \
            else None

    def other(node) -> str:
        return next(i for i in node.input if i not in values)

    power = take(div.input[1], "Pow")
    shift = power and take(other(power), "Add")
    scale = shift and take(other(shift), "Mul")
    if not scale or None in (constant(power), constant(shift), constant(scale)):
        return None
    name = other(scale)
    while producer.get(name) is not None and producer[name].op_type in PASSED:
        name = take(name, producer[name].op_type).input[0]
    pool = take(name, "AveragePool")
    if pool is None:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != 3 or kernel[1:] != [1, 1] or list(attrs.get("strides", [1] * 3)) != \
            [1] * 3 or not attrs.get("count_include_pad") or any(attrs.get("pads", [])):
        return None
    name, pads = pool.input[0], []
    while producer.get(name) is not None and producer[name].op_type in PASSED | {"Pad"}:
        node = take(name, producer[name].op_type)
        if node.op_type == "Pad":
            pads = [int(p) for p in values.get(node.input[1], [-1])]
        name = node.input[0]
    square = take(name, "Mul")
    if square is None or square.input[0] != square.input[1] or square.input[0] != div.input[0] \
            or not _over_channels(pads, kernel[0]):
        return None
    return Norm(kernel[0], constant(scale), constant(power), constant(shift), div.input[0])


def _over_channels(pads: list[int], size: int) -> bool:
    """The zeros torch pads the channels with: size // 2 before, (size - 1) // 2 after, on
    one axis (the channels of the 5-D view)."""
    before, after = pads[:len(pads) // 2], pads[len(pads) // 2:]
    axes = {i for i, p in enumerate(before) if p} | {i for i, p in enumerate(after) if p}
    return len(axes) <= 1 and sum(before) == size // 2 and sum(after) == (size - 1) // 2


def options(**values: float) -> str:
    """` key=value` for each that is not archc's default (archc.ops.args.BUILTIN_DEFAULTS),
    compared as float32, the precision ONNX stores them in."""
    import numpy

    return "".join(f" {key}={str(numpy.float32(value))}" for key, value in values.items()
                   if numpy.float32(value) != numpy.float32(BUILTIN_DEFAULTS[key]))
