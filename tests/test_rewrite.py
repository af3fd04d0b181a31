"""The plan applied to one class before it is written (archc.codegen.rewrite): the statement
that stands at each item, what each reads, and the kernels that write into a concat buffer."""

from __future__ import annotations

import pytest
from conftest import ROOT

from archc.backends.registry import BACKENDS
from archc.codegen.rewrite import rewrite
from archc.codegen.scopes import Scope, items_of
from archc.lang import ast
from archc.pipeline import analyse


def first_block(net: str, backend: str):
    """The first block use of `net`: the graph, the block's items and their rewrite."""
    analysis = analyse(ROOT / "nets" / f"{net}.arch")
    graph = analysis.graph
    main = [n for n in graph.main_nodes() if n != graph.input]
    scope = Scope("net", (), main, graph.input, graph.syntax.body, "Net")
    block = next(i for i in items_of(graph, scope) if isinstance(i, Scope))
    items = items_of(graph, block)
    plan = BACKENDS[backend].planner(analysis) if BACKENDS[backend].planner else None
    return graph, items, rewrite(plan, graph, items, block.input), block.input


def test_an_inception_block_on_the_triton_plan():
    """GoogLeNet's inception (3a): the three 1x1 convs that read the block's input are one
    merged GEMM standing at the first; the pool projection reads through the max pool; both
    GEMMs write their slices of the concat's buffer."""
    graph, items, rewritten, x = first_block("googlenet", "triton")
    kinds = [(ast.title(graph.node(i).syntax), s and s.kind)
             for i, s in zip(items, rewritten.statements)]
    assert kinds == [("conv", "merged"), ("conv", None), ("conv", "layer"), ("conv", None),
                     ("conv", "layer"), ("maxpool", None), ("conv", "fused"),
                     ("concat", "layer")]
    merged = rewritten.at(0)
    assert merged.siblings == (items[0], items[1], items[3])
    pool, projection, concat = items[5], items[6], items[7]
    assert rewritten.reads[5] == [] and rewritten.reads[6] == [x]  # the pool's input
    assert rewritten.at(6).step.pool == pool and rewritten.at(6).output == projection
    assert rewritten.writes == {items[0]: (concat, 0), projection: (concat, 3)}


def test_a_bottleneck_on_the_triton_plan_fuses_its_bn_sum_and_relu():
    """ResNet-50's first bottleneck: each 1x1 conv with its bn (and the last with the
    shortcut sum and the ReLU) is one statement; the layers it computes have none."""
    graph, items, rewritten, _ = first_block("resnet50", "triton")
    fused = [s for s in rewritten.statements if s is not None and s.kind == "fused"]
    assert len(fused) >= 2
    for statement in fused:
        position = items.index(statement.item)
        for layer in statement.tail:
            assert rewritten.at(items.index(layer)) is None
        assert items.index(statement.tail[-1]) > position
    last = fused[-1]
    assert last.step.residual is not None and last.output == last.tail[-1]


@pytest.mark.parametrize("net", ["googlenet", "resnet50"])
def test_without_a_plan_every_layer_is_its_own_statement(net):
    graph, items, rewritten, _ = first_block(net, "torch")
    assert [s.kind for s in rewritten.statements] == ["layer" if isinstance(i, int) else "use"
                                                      for i in items]
    assert rewritten.writes == {}
    assert rewritten.reads == [list(graph.node(i).inputs) for i in items]
