"""Layers an exporter writes as several ONNX nodes, recognised whole by their structure (no
names needed): torch's local response norm (`F.local_response_norm` decomposed into squares,
a 3-D average over channels, a scale, a shift, a power and a division).

`local_response_norms(graph, values)` maps each such division's output to its `lrn`
statement and the tensor it normalises, and gives the nodes inside it, which are no layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnx import helper

PASSED = {"Reshape", "Squeeze", "Unsqueeze"}  # moves between 4-D and 5-D, no arithmetic


@dataclass(frozen=True)
class Norm:
    size: int
    alpha: float
    beta: float
    k: float
    source: str  # the tensor normalised


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
