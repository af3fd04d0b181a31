"""Diff: two nets' tables aligned row by row, the block definitions that changed, and totals.

Rows are aligned as a person reads two tables: by label where both sides have it (`4a`,
`layer3`), then, between those anchors, by kind of row in order (difflib's longest matching
runs of `type`, the repetition count left out: VGG-A's conv x1 against VGG-E's conv x2).
Rows that pair but differ in shape, type, arguments, depth, params or MACs are changed; the
rest of either side are added or removed. Block definitions of one name are compared as
programs (their canonical text, archc.lang.printer, shown as a unified diff where it
differs). Torch-free: counts come from archc.report.stats.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from archc.lang import ast
from archc.lang.printer import print_definition
from archc.pipeline import Analysis
from archc.report.stats import NetStats, RowStats, stats


@dataclass(frozen=True)
class RowDiff:
    kind: str  # "same", "changed", "added", "removed"
    a: RowStats | None
    b: RowStats | None

    def to_json(self) -> dict:
        data = {"kind": self.kind, "a": self.a.name if self.a else None,
                "b": self.b.name if self.b else None}
        for key in ("params", "macs"):
            data[f"{key}_delta"] = _count(self.b, key) - _count(self.a, key)
        if self.a and self.b and self.a.shape != self.b.shape:
            data["shape"] = [list(self.a.shape), list(self.b.shape)]
        return data


@dataclass(frozen=True)
class BlockDiff:
    name: str
    kind: str  # "changed", "added", "removed"
    text: str  # a unified diff of the definitions' canonical text, or the one definition


@dataclass(frozen=True)
class NetDiff:
    a: NetStats
    b: NetStats
    rows: tuple[RowDiff, ...]
    blocks: tuple[BlockDiff, ...]

    @property
    def identical(self) -> bool:
        return not self.blocks and all(r.kind == "same" for r in self.rows) and \
            _totals(self.a) == _totals(self.b)

    def to_json(self) -> dict:
        return {"a": {"net": self.a.net, "file": self.a.file, "params": dict(self.a.params)},
                "b": {"net": self.b.net, "file": self.b.file, "params": dict(self.b.params)},
                "identical": self.identical,
                "rows": [r.to_json() for r in self.rows if r.kind != "same"],
                "blocks": [{"name": b.name, "kind": b.kind, "diff": b.text}
                           for b in self.blocks],
                "totals": {k: {"a": va, "b": vb, "delta": vb - va} for k, va, vb in
                           zip(TOTALS, _totals(self.a), _totals(self.b))}}


TOTALS = ("params", "weights", "macs", "activations", "depth")


def diff(a: Analysis, b: Analysis) -> NetDiff:
    net_a, net_b = stats(a), stats(b)
    rows = tuple(_aligned(list(net_a.rows + net_a.heads), list(net_b.rows + net_b.heads)))
    return NetDiff(net_a, net_b, rows, tuple(_blocks(a, b)))


def _aligned(a: list[RowStats], b: list[RowStats]) -> list[RowDiff]:
    """Labels both sides share anchor the alignment; between anchors, kinds of row in order."""
    labels_b = {r.name: i for i, r in enumerate(b) if r.labelled}
    anchors = [(i, labels_b[r.name]) for i, r in enumerate(a)
               if r.labelled and r.name in labels_b]
    kept, last_b = [], -1  # anchors in order on both sides
    for i, j in anchors:
        if j > last_b:
            kept.append((i, j))
            last_b = j
    out, start_a, start_b = [], 0, 0
    for i, j in [*kept, (len(a), len(b))]:
        out += _by_kind(a[start_a:i], b[start_b:j])
        if i < len(a):
            out.append(_pair(a[i], b[j]))
        start_a, start_b = i + 1, j + 1
    return out


def _by_kind(a: list[RowStats], b: list[RowStats]) -> list[RowDiff]:
    matcher = difflib.SequenceMatcher(None, [_kind(r) for r in a], [_kind(r) for r in b],
                                      autojunk=False)
    out = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        paired = i2 - i1 if tag == "equal" else 0  # other kinds: removed, then added
        out += [_pair(a[i1 + k], b[j1 + k]) for k in range(paired)]
        out += [RowDiff("removed", r, None) for r in a[i1 + paired:i2]]
        out += [RowDiff("added", None, r) for r in b[j1 + paired:j2]]
    return out


def _pair(a: RowStats, b: RowStats) -> RowDiff:
    same = (a.type, a.shape, a.args, a.depth, a.counts.params, a.counts.macs, a.patch) == \
        (b.type, b.shape, b.args, b.depth, b.counts.params, b.counts.macs, b.patch)
    return RowDiff("same" if same else "changed", a, b)


def _kind(row: RowStats) -> str:
    return re.sub(r" x\d+$", "", row.type.split(" (")[0])


def _blocks(a: Analysis, b: Analysis) -> list[BlockDiff]:
    blocks_a, blocks_b = a.program.blocks, b.program.blocks
    out = []
    for name in sorted(set(blocks_a) | set(blocks_b)):
        if name not in blocks_b:
            out.append(BlockDiff(name, "removed", print_definition(blocks_a[name])))
        elif name not in blocks_a:
            out.append(BlockDiff(name, "added", print_definition(blocks_b[name])))
        elif ast.meaning(blocks_a[name]) != ast.meaning(blocks_b[name]):
            text_a, text_b = (print_definition(x[name]) for x in (blocks_a, blocks_b))
            lines = difflib.unified_diff(text_a.splitlines(True), text_b.splitlines(True),
                                         _where(blocks_a[name]), _where(blocks_b[name]))
            out.append(BlockDiff(name, "changed", "".join(lines)))
    return out


def _where(block: ast.BlockDef) -> str:
    return f"{block.span.source.path}:{block.span.line}"


def _count(row: RowStats | None, key: str) -> int:
    return 0 if row is None else getattr(row.counts, key)


def _totals(net: NetStats) -> tuple[int, ...]:
    t = net.total
    return (t.params, t.weights, t.macs, net.activations, net.depth)


# ---- text ----------------------------------------------------------------------------------

MARKS = {"changed": "~", "added": "+", "removed": "-", "same": " "}


def render(d: NetDiff, every_row: bool = False) -> str:
    from tabulate import tabulate

    title = f"{_name(d.a)}  ->  {_name(d.b)}"
    shown = [r for r in d.rows if every_row or r.kind != "same"]
    lines = [title, ""]
    if shown:
        table = [[MARKS[r.kind], r.a.name if r.a else "", r.b.name if r.b else "",
                  _type(r), _shape(r.a), _shape(r.b), _delta(_count(r.b, "params") -
                                                             _count(r.a, "params")),
                  _delta(_count(r.b, "macs") - _count(r.a, "macs"))] for r in shown]
        lines += [tabulate(table, ["", "row A", "row B", "type", "output A", "output B",
                                   "params", "MACs"], tablefmt="simple",
                           disable_numparse=True,
                           colalign=["left"] * 4 + ["right"] * 4), ""]
    else:
        lines += ["no row differs", ""]
    for block in d.blocks:
        lines += [f"block '{block.name}' {block.kind}:", block.text.rstrip(), ""]
    totals = [[key, f"{va:,}", f"{vb:,}", _delta(vb - va) + _percent(va, vb)]
              for key, va, vb in zip(TOTALS, _totals(d.a), _totals(d.b))]
    lines += [tabulate(totals, ["total (inference)", "A", "B", "change"], tablefmt="simple",
                       disable_numparse=True, colalign=["left", "right", "right", "right"])]
    changed = sum(r.kind == "changed" for r in d.rows)
    added = sum(r.kind == "added" for r in d.rows)
    removed = sum(r.kind == "removed" for r in d.rows)
    lines += ["", "identical" if d.identical else
              f"{_many(changed, 'row')} changed, {added} added, {removed} removed; "
              f"{_many(len(d.blocks), 'block definition')} "
              f"{'differs' if len(d.blocks) == 1 else 'differ'} (~ changed, + added, "
              "- removed; params and MACs as B minus A)"]
    return "\n".join(lines) + "\n"


def _many(count: int, what: str) -> str:
    return f"{count} {what}{'s' * (count != 1)}"


def _name(net: NetStats) -> str:
    params = ", ".join(f"{k}={v}" for k, v in net.params.items())
    return f"{net.net}({params}) {net.file}"


def _type(r: RowDiff) -> str:
    if r.a and r.b and r.a.type != r.b.type:
        return f"{r.a.type} -> {r.b.type}"
    return (r.b or r.a).type


def _shape(row: RowStats | None) -> str:
    if row is None:
        return ""
    c, h, w = row.shape
    return f"{h}x{w}x{c}"


def _delta(value: int) -> str:
    return "0" if value == 0 else f"{value:+,}"


def _percent(a: int, b: int) -> str:
    return f" ({(b - a) / a:+.1%})" if a and a != b else ""
