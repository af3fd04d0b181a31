"""Count: `ir.Graph` + shapes -> the cost of every layer (weights, biases, MACs).

Conventions (printed in every table footer): params = weights + biases (+ batch norm's scale
and shift), as PyTorch's `sum(p.numel())` counts them; buffers = batch norm's running mean and
variance, state that is not learnt (PyTorch's step counter `num_batches_tracked` is left out);
MACs are the multiply-accumulates of conv and fc layers for one image (FLOPs = 2 x MACs);
pooling, LRN, batch norm, activations, softmax and the additions of a `sum` cost no MACs here
(at inference a batch norm folds into the conv before it). A network needing more
than `MAX_PARAMS` parameters is refused at the layer that crosses the limit, before anything
is allocated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from archc import ops
from archc.analysis.shapes import Shape
from archc.errors import ArchError
from archc.ir.graph import Graph

MAX_PARAMS = 10**12


@dataclass(frozen=True)
class Cost:
    weights: int = 0
    biases: int = 0
    macs: int = 0
    affine: int = 0  # batch norm's learnt scale and shift: params, but not a weight layer
    buffers: int = 0  # batch norm's running statistics: state, not params

    @property
    def params(self) -> int:
        return self.weights + self.biases + self.affine

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.weights + other.weights, self.biases + other.biases,
                    self.macs + other.macs, self.affine + other.affine,
                    self.buffers + other.buffers)


def count_costs(graph: Graph, shapes: dict[int, Shape]) -> dict[int, Cost]:
    costs: dict[int, Cost] = {}
    params = 0
    for node_id in graph.order():
        node = graph.node(node_id)
        inputs = [shapes[i] for i in node.inputs]
        cost = COST_RULES[type(node.op)](node.op, inputs, shapes[node_id])
        params += cost.params
        if params > MAX_PARAMS:
            raise ArchError(f"the network needs more than {MAX_PARAMS:.0e} parameters "
                            f"({params:,} up to here)", node.span, node.notes)
        costs[node_id] = cost
    return costs


def total(costs: dict[int, Cost], nodes: Iterable[int]) -> Cost:
    return sum((costs[n] for n in nodes), Cost())


def fold_bn(graph: Graph, costs: dict[int, Cost]) -> dict[int, Cost]:
    """The costs at inference with each batch norm folded into the conv right before it (of
    which it is the only user): the conv gains a bias per channel if it had none, and the bn's
    scale, shift and running statistics are gone. `archc stats --fold-bn`."""
    folded = dict(costs)
    for n in graph.order():
        node = graph.node(n)
        source = node.inputs[0] if node.inputs else None
        if isinstance(node.op, ops.BatchNorm) and isinstance(graph.node(source).op, ops.Conv) \
                and graph.users(source) == [n]:
            folded[source] = replace(costs[source], biases=graph.node(source).op.channels)
            folded[n] = Cost()
    return folded


def conv_cost(op: ops.Conv, inputs: list[Shape], out: Shape) -> Cost:
    weights = op.channels * (inputs[0].c // op.groups) * op.window[0] * op.window[1]
    return Cost(weights, op.channels if op.bias else 0, weights * out.h * out.w)


def fc_cost(op: ops.FC, inputs: list[Shape], out: Shape) -> Cost:
    weights = inputs[0].numel() * op.features  # fc flattens its input, as Caffe's does
    return Cost(weights, op.features, weights)


def free(op, inputs, out) -> Cost:
    return Cost()


COST_RULES = {
    ops.Input: free,
    ops.Conv: conv_cost,
    ops.Pool: free,
    ops.GlobalAvgPool: free,
    ops.LRN: free,
    ops.Dropout: free,
    ops.FC: fc_cost,
    ops.Flatten: free,
    ops.Softmax: free,
    ops.Concat: free,
    ops.BatchNorm: lambda op, inputs, out: Cost(affine=2 * out.c, buffers=2 * out.c),
    ops.Act: free,
    ops.Sum: free,
}
