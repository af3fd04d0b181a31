"""The values every op rule speaks in, and `OpSpec`, the one record of everything about an op.

A leaf module (it imports nothing of archc's but errors), so each op family file can define
its rules with these types and every stage can read the registry without a cycle. The stages
own the passes (archc.analysis.shapes infers, archc.analysis.cost counts, archc.codegen
emits); the rules they apply per op live in the op's family file, as fields of its `OpSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from archc.errors import Span


class Shape(NamedTuple):
    c: int
    h: int
    w: int

    def numel(self) -> int:
        return self.c * self.h * self.w

    def __str__(self) -> str:
        return f"{self.c}x{self.h}x{self.w}"


@dataclass(frozen=True)
class Field:
    """Receptive field (pixels of the input one output pixel sees) and cumulative stride."""

    size: int
    jump: int


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


class Context(NamedTuple):
    """What a shape rule may read besides its op and input shapes."""

    flat: dict[int, bool]  # archc.analysis.shapes.flat_values(graph)
    operands: tuple[int, ...]  # the layer's input node ids, in operand order
    describe: Callable[[int], str]  # a node id -> its op for messages: `conv 1x1/1 64`


@dataclass(frozen=True)
class Signature:
    positional: tuple[str, ...]
    keys: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # bare words; stored under the key "act"
    family: str = ""  # the name `default` uses, if it differs from the op's


Maker = Callable[[dict[str, Any], "Span"], Any]  # evaluated arguments by slot, op span -> op


@dataclass(frozen=True)
class Statement:
    """A statement of the language that makes the op: what it takes and how it is made."""

    signature: Signature
    make: Maker


@dataclass(frozen=True)
class Group:
    """A braced group that makes the op from its branches: `sum { ...; id }`."""

    keyword: str  # the grammar's keyword for it
    minimum: int  # branches it needs
    make: Callable[[tuple[bool, ...]], Any]  # per branch, whether it is `id` -> the op


ShapeRule = Callable[[Any, list[Shape], Context], Shape]  # may raise ArchError (no span)
FieldRule = Callable[[Any, list[tuple[Field, Shape]]], Field]
CostRule = Callable[[Any, list[Shape], Shape], Cost]
ModuleRule = Callable[[Any, dict[str, str]], str]  # op, constructor texts -> nn.Module source
CallRule = Callable[[Any, Any], str]  # op, codegen Site -> forward() expression

# Whether a value is N x C ("flat") or N x C x H x W: made flat, made spatial, kept as the
# input is, or flat when every input is.
Layout = Literal["flat", "spatial", "keeps", "joins"]
# How forward() hands it its inputs: 4-D, as they are, flattened to N x C, or joined.
Reads = Literal["spatial", "as-is", "flat", "flattened", "joins"]
# What the triton plan makes of it: a 1x1 GEMM (else cuDNN), a pool kernel, the global-pool
# kernel, a torch op, or nothing (the input).
PlanKind = Literal["gemm", "pool", "gap", "torch", "none"]
DrawKind = Literal["conv", "pool", "normalisation", "fc", "other"]


@dataclass(frozen=True)
class OpSpec:
    """Everything about one op type. Every field is required: an op cannot lack a part."""

    type: type
    statements: dict[str, Statement]  # language name -> statement; {} if a group makes it
    group: Group | None  # the group that makes it (concat, sum, mul), if one does
    name: Callable[[Any], str]  # the language's name of an instance: `maxpool`, `relu`
    describe: Callable[[Any], str]  # a short text for messages: `conv 1x1/1 64`
    options: Callable[[Any], str]  # what full_text adds to describe: ` pad=1 relu`
    titles: dict[str, str]  # language name -> the stats table's type column
    title_detail: Callable[[Any], str]  # appended to the title: dropout's ` (40%)`
    arity: Literal["none", "one", "many"]
    layout: Layout
    shape: ShapeRule
    field: FieldRule
    cost: CostRule
    folds_bn: bool  # a batch norm that is its only user folds into it at inference
    draw: DrawKind
    width: str  # its output width in emitted code: a slot it was given ("channels"),
    #             "same" (its first input's), "total" (its inputs' sum), "flattened", or
    #             "divided" (its input's over the op's `chunks`)
    given: tuple[str, ...]  # constructor arguments a block parameter may give ("stride")
    module: ModuleRule | None  # None: plain code in forward(), no member
    helper: str  # Python the emitted file defines once if the net has the op ("" if none)
    reads: Reads
    call: CallRule  # the torch backend's forward() expression
    plan: PlanKind
    aliases: bool  # its output may be its input or a view of it (dropout in eval mode, a
    #                chunk, a flatten): whoever reads the output reads the input's memory
