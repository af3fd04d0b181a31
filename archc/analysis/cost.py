"""Count: `ir.Graph` + shapes -> the cost of every layer (weights, biases, MACs), by each
op's cost rule (`ops.spec(op).cost`, in its family file).

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
from dataclasses import replace

from archc import ops
from archc.errors import ArchError
from archc.ir.graph import Graph
from archc.ops.base import Cost, Shape

__all__ = ["MAX_PARAMS", "Cost", "count_costs", "fold_bn", "total"]

MAX_PARAMS = 10**12


def count_costs(graph: Graph, shapes: dict[int, Shape]) -> dict[int, Cost]:
    costs: dict[int, Cost] = {}
    params = 0
    for node_id in graph.order():
        node = graph.node(node_id)
        inputs = [shapes[i] for i in node.inputs]
        cost = ops.spec(node.op).cost(node.op, inputs, shapes[node_id])
        params += cost.params
        if params > MAX_PARAMS:
            raise ArchError(f"the network needs more than {MAX_PARAMS:.0e} parameters "
                            f"({params:,} up to here)", node.span, node.notes)
        costs[node_id] = cost
    return costs


def total(costs: dict[int, Cost], nodes: Iterable[int]) -> Cost:
    return sum((costs[n] for n in nodes), Cost())


def fold_bn(graph: Graph, costs: dict[int, Cost]) -> dict[int, Cost]:
    """The costs at inference with each batch norm folded into the layer right before it (of
    which it is the only user, and whose op `folds_bn`: a conv): the conv gains a bias per
    channel if it had none, and the bn's scale, shift and running statistics are gone.
    `archc stats --fold-bn`."""
    folded = dict(costs)
    for n in graph.order():
        node = graph.node(n)
        source = node.inputs[0] if node.inputs else None
        if isinstance(node.op, ops.BatchNorm) and ops.spec(graph.node(source).op).folds_bn \
                and graph.users(source) == [n]:
            folded[source] = replace(costs[source], biases=costs[n].affine // 2)  # one a channel
            folded[n] = Cost()
    return folded
