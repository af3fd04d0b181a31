"""Blocks by structure alone: where the source names no modules (an ONNX file without torch's
name scopes, the ONNX Model Zoo's), the net's statements cut into segments, and the segments
that recur made uses of one block.

Cutting, along the net's top-level statements (archc.importer.layout.structure):

- a join (`sum`, `concat`, `mul`) ends a segment, with the chain of layers since the last cut
  before it (SqueezeNet's squeeze conv before its expand concat) and the activations right
  after it (ResNet's ReLU after its sum): one residual or inception unit;
- a pool ends a segment too, with the chain before it (VGG's stages), or after it (NIN's
  mlpconvs, each followed by another kind of pool): the caller tries both;
- a chain before a residual `sum` that is the sum's branch again but for its numbers (a
  stride, a width) is a segment of its own: the stage's first block, which changes the size
  and so has no shortcut (MobileNet's, MnasNet's).

Segments are compared as the Writer prints them with their numbers taken out, so units that
differ only in widths share one block whose parameters are those widths (the Writer finds
them, windows and strides included), and a segment that occurs once stays inline. The caller
keeps the layout that prints the shortest file, none included (`--blocks auto`).
"""

from __future__ import annotations

from archc.importer.layout import Stmt
from archc.importer.writer import UNIT_STRIDE, Writer
from archc.ops.activation import ACTIVATION_LAYERS

POOLS = ("maxpool", "avgpool", "gap")
NAMES = {"sum": "residual", "concat": "branches", "mul": "gated"}  # a unit's block, by its join


def segmented(stmts: list[Stmt], pools_inside: bool = True) -> list[Stmt]:
    """`stmts` (the net's, the input first) with each recurring segment one block use; a pool
    ends the segment before it as its last statement or, `pools_inside=False`, on its own
    (NIN's mlpconvs, followed by three kinds of pool)."""
    segments = _cut(stmts[1:], pools_inside)
    counts: dict[tuple[str, str], int] = {}
    for segment in segments:
        counts[_key(segment)] = counts.get(_key(segment), 0) + 1
    out = [stmts[0]]
    for segment in segments:
        kind, _ = key = _key(segment)
        # a block of a layer and its activation would say less than the two lines it saves
        if counts[key] > 1 and (len(segment) > 2 or any(s.branches for s in segment)):
            out.append(Stmt(block=kind, body=segment))
        else:
            out += segment
    return out


def _cut(stmts: list[Stmt], pools_inside: bool) -> list[list[Stmt]]:
    segments: list[list[Stmt]] = []
    pending: list[Stmt] = []
    twins = _unjoined_twins(stmts)
    i = 0
    while i < len(stmts):
        stmt, word = stmts[i], _word(stmts[i])
        if i in twins:  # a stage's first block before its residual ones: a unit of its own
            segments += [part for part in (pending, stmts[i:twins[i]]) if part]
            pending, i = [], twins[i]
            continue
        if stmt.branches:  # a join ends a unit
            segments.append(pending + [stmt])
            pending = []
        elif word in ACTIVATION_LAYERS and not pending and segments and \
                segments[-1][-1].branches:  # the join's activation: its unit's
            segments[-1].append(stmt)
        elif word in POOLS:
            segments += [pending + [stmt]] if pools_inside else [pending, [stmt]]
            pending = []
        else:
            pending.append(stmt)
        i += 1
    return [segment for segment in segments + [pending] if segment]


def _unjoined_twins(stmts: list[Stmt]) -> dict[int, int]:
    """{start: end} of each run of statements right before a residual `sum` that is the
    sum's branch again but for its numbers (strides, widths): a block that changes the size,
    so has no shortcut (MobileNet's, MnasNet's, EfficientNet's first block of a stage, its
    gate's `mul` inside it)."""
    twins: dict[int, int] = {}
    last = 0  # runs do not overlap
    for j, stmt in enumerate(stmts):
        branches = [b for b in stmt.branches if b]
        if _word(stmt) != "sum" or len(branches) != 1 or len(stmt.branches) != 2:
            continue
        n = len(branches[0])
        if n >= 2 and j - n >= last and not any(_word(s) == "sum" for s in stmts[j - n:j]) \
                and _skeleton(stmts[j - n:j]) == _skeleton(branches[0]):
            twins[j - n] = last = j
    return twins


def _skeleton(stmts: list[Stmt]) -> str:
    """The statements as the Writer prints them, their numbers taken out and a conv's unit
    stride written, so that a stride-1 and a stride-2 twin compare alike."""
    text = "\n".join(Writer().body([_copy(s) for s in stmts], ""))
    return Writer.NUMBER.sub("#", UNIT_STRIDE.sub(r"\1/1", text))


def _key(segment: list[Stmt]) -> tuple[str, str]:
    """The block a segment would be (named by its last join, else `stage` or `unit`) and
    its text with the numbers taken out."""
    joins = [s.layer.text for s in segment if s.branches]
    kind = NAMES.get(joins[-1], "unit") if joins else \
        "stage" if _word(segment[-1]) in POOLS else "unit"
    return kind, _skeleton(segment)


def _word(stmt: Stmt) -> str:
    return stmt.layer.text.split()[0] if stmt.layer is not None else ""


def _copy(stmt: Stmt) -> Stmt:
    """A statement the Writer may merge (`xN`) without touching the original."""
    return Stmt(stmt.layer, [[_copy(s) for s in b] for b in stmt.branches], stmt.block,
                stmt.args, [_copy(s) for s in stmt.body], stmt.label)
