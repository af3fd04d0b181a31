"""The op registry: every op has every part, and the stages' tables are views of it."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from archc import ops
from archc.backends.registry import BACKENDS
from archc.ops import base
from archc.report.stats import TYPE_NAMES

SPECS = list(ops.REGISTRY.values())
FIELDS = typing.get_type_hints(base.OpSpec)


def test_the_registry_holds_every_op_type_once():
    assert set(ops.REGISTRY) == set(typing.get_args(ops.OpT))
    assert [s.type for s in SPECS] == list(ops.REGISTRY)  # no family defines a type twice


def test_an_op_cannot_lack_a_part():
    for field in dataclasses.fields(base.OpSpec):
        assert field.default is dataclasses.MISSING, field.name
        assert field.default_factory is dataclasses.MISSING, field.name
    parts = {f.name: getattr(ops.REGISTRY[ops.Dropout], f.name)
             for f in dataclasses.fields(base.OpSpec)}
    del parts["cost"]
    with pytest.raises(TypeError, match="cost"):
        base.OpSpec(**parts)


@pytest.mark.parametrize("spec", SPECS, ids=[s.type.__name__ for s in SPECS])
def test_every_part_has_its_kind(spec: base.OpSpec):
    for field in dataclasses.fields(base.OpSpec):
        value, hint = getattr(spec, field.name), FIELDS[field.name]
        if typing.get_origin(hint) is typing.Literal:
            assert value in typing.get_args(hint), (field.name, value)
        elif field.name == "module":
            assert value is None or callable(value)
        elif field.name == "group":
            assert value is None or (isinstance(value, base.Group) and callable(value.make))
        elif field.name in ("folds_bn", "aliases"):
            assert isinstance(value, bool), field.name
        elif field.name not in ("type", "statements", "titles", "given", "width", "helper"):
            assert callable(value), field.name
    assert dataclasses.is_dataclass(spec.type) and spec.type.__dataclass_params__.frozen
    for key in spec.given:  # constructor arguments a block parameter may give are op fields
        assert key in {f.name for f in dataclasses.fields(spec.type)}, key
    assert spec.width in ("same", "total", "flattened", "divided") or \
        spec.width in {f.name for f in dataclasses.fields(spec.type)}
    assert set(spec.titles) <= set(spec.statements) | {spec.name(_sample(spec))}


def test_groups_make_their_ops():
    assert set(ops.GROUPS) == {"concat", "sum", "mul"}
    for keyword, group in ops.GROUPS.items():
        op = group.make((False, True))
        assert ops.spec(op).group is group and ops.op_name(op) == keyword
    assert ops.GROUPS["sum"].make((False, True)).identities == (False, True)


def test_statement_names_are_unique_and_titled():
    names = [name for s in SPECS for name in s.statements]
    assert len(names) == len(set(names))
    assert set(names) == set(ops.SIGNATURES)
    assert set(names) - {"input"} <= set(TYPE_NAMES)
    assert {"concat", "sum"} <= set(TYPE_NAMES)  # made by groups, titled all the same


def test_every_kernel_an_op_is_planned_onto_has_a_triton_call():
    triton = BACKENDS["triton"]
    assert set(triton.calls) <= set(ops.REGISTRY)
    for spec in SPECS:
        if spec.plan in ("gemm", "pool", "gap"):
            assert spec.type in triton.calls, spec.type.__name__
    assert BACKENDS["torch"].calls == {}  # the reference: every op reads as its spec says


def test_every_kernel_step_the_triton_plan_makes_has_its_row():
    """A kind of step is a kernel's: its row (archc.backends.triton.calls) writes its call; only
    the steps left to torch (and the cpu plan's oneDNN steps) have none."""
    from archc.backends.fusion import KINDS

    triton = BACKENDS["triton"]
    assert set(triton.steps) == set(KINDS) - {"torch", "onednn"}
    assert all(op_type in ops.REGISTRY for op_type, _ in triton.steps.values())
    assert BACKENDS["torch"].steps == {} and BACKENDS["cpu"].steps == {}


def test_ops_are_named_as_the_language_writes_them():
    conv = ops.Conv((3, 3), 2, (1, 1), 64, 1, "relu", bias=False)
    assert ops.full_text(conv) == "conv 3x3/2 64 pad=1 bias=false relu"
    pool = ops.Pool("max", (3, 3), 2, (0, 1), True)
    assert ops.full_text(pool) == "maxpool 3x3/2 pad=0x1 ceil"
    assert ops.full_text(ops.Input((3, 32, 32))) == "input 3x32x32"
    assert ops.describe(ops.Dropout(0.4)) == "dropout 0.4"
    assert ops.op_name(ops.Act("leakyrelu", 0.2)) == "leakyrelu"


def _sample(spec: base.OpSpec):
    """An instance of the spec's op, for the rules that name one."""
    samples = {ops.Input: ops.Input((3, 8, 8)), ops.Conv: ops.Conv((1, 1), 1, (0, 0), 4, 1,
                                                                   "linear"),
               ops.Pool: ops.Pool("max", (2, 2), 2, (0, 0), False), ops.LRN: ops.LRN(5, 1, 1, 1),
               ops.BatchNorm: ops.BatchNorm(1e-5, 0.1), ops.Act: ops.Act("relu"),
               ops.Dropout: ops.Dropout(0.5), ops.DropPath: ops.DropPath(0.1),
               ops.FC: ops.FC(10, "linear"),
               ops.Sum: ops.Sum((False, True)), ops.Chunk: ops.Chunk(2, 1),
               ops.Shuffle: ops.Shuffle(2), ops.LayerNorm: ops.LayerNorm(1e-6),
               ops.LayerScale: ops.LayerScale(1e-6), ops.AdaptivePool: ops.AdaptivePool((4, 4))}
    return samples.get(spec.type) or spec.type()


# ---- activations: one table (archc.ops.activation.TABLE) ----------------------------------

# "relu" is also the kernels' flag (the pooled, mlp and merged GEMMs apply only a ReLU) and
# "linear" no activation: the other names are written in the table, and in the Triton
# epilogue's branches, only.
NAMED_ONCE = [row.name for row in ops.activation.TABLE if row.name != "relu"]


def test_an_activation_is_named_in_one_table():
    import re

    from conftest import ROOT

    homes = {"archc/ops/activation.py", "backends/triton/epilogue.py"}
    found = {}
    for path in [*ROOT.glob("archc/**/*.py"), *ROOT.glob("backends/**/*.py")]:
        where = str(path.relative_to(ROOT))
        for name in NAMED_ONCE:
            if where not in homes and re.search(rf"[\"']{name}[\"']", path.read_text()):
                found.setdefault(where, []).append(name)
    assert found == {}


def test_the_triton_epilogue_has_a_branch_for_each_activation_the_kernels_take():
    import re

    from conftest import ROOT

    source = (ROOT / "backends/triton/epilogue.py").read_text()
    branches = re.findall(r'ACT == "(\w+)"', source)
    assert sorted(branches) == sorted(row.name for row in ops.activation.TABLE if row.triton)


def test_the_backends_read_the_table():
    from archc.backends.cpu.plan import POST_OP_ACTS
    from archc.backends.triton.plan import TRITON_ACTS

    table = ops.activation.TABLE
    assert TRITON_ACTS == tuple(row.name for row in table if row.triton)
    assert POST_OP_ACTS == tuple(row.name for row in table if row.onednn)
    assert set(TYPE_NAMES) >= {row.name for row in table}  # each titled in `archc stats`
    for row in table:  # forward() calls torch's function, as the table writes it
        assert ops.activation.activate(row.name, "x").startswith(f"{row.torch}(x")
