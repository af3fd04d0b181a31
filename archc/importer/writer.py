"""The Writer: the statements archc.importer.layout recovered, as .arch text.

Block definitions, one per class (or unit) and structure, innermost first: the values that
differ between a block's instances are its parameters, named by what they are (`c` a width,
`k` a window, `s` a stride, `p` a padding, `act` an activation), a width that follows the
block's input written from `in_channels`; equal uses in a row `xN`; short groups and blocks
on one line; the classifier's width the net's `classes`; with the source's totals, an
`expect` on each of the net's statements (the file proves itself).
"""

from __future__ import annotations

import re

from archc.importer.layout import Stmt, functional, repeats
from archc.importer.trace import Layer
from archc.ops.activation import TABLE

# a conv's stride written in a block's text while its instances are compared (so that one of
# stride 1 and one of stride 2 are one block with a parameter), dropped where it stays 1
UNIT_STRIDE = re.compile(r"(\bconv [^\s/]+)(?=\s)")
WRITTEN_UNIT_STRIDE = re.compile(r"(\bconv [^\s/]+)/1(?=\s)")
ONE_LINE = 80  # the longest group written on one line (an `expect` may follow it)
ONE_LINE_BLOCK = 96  # the longest block definition on one line (nothing follows it)
REPEATED_USE = re.compile(r"[a-z_]\w*(\(.*\))? x\d+$")  # a block's uses in a row, unlabelled


class Writer:
    """Block definitions, one per class and structure, and the net's text. Definitions are
    made innermost first (a block's body shows the uses inside it with their arguments)."""

    # a number of a statement (not an exponent), a window's size or its stride: `3x3/2`
    NUMBER = re.compile(r"(?<![\w.])(?<!e-)(?<!e\+)\d+(?![\w.])|(?<=\dx)\d+(?![\w.])"
                        r"|(?<=\d/)\d+(?![\w.])|(?<![\w.])\d+(?=x\d)")
    # a number, or an activation word (a statement, a flag, a block's argument)
    VALUE = re.compile(NUMBER.pattern + r"|(?<![\w.])(?:" + "|".join(
        sorted((row.name for row in TABLE), key=len, reverse=True)) + r")(?![\w.=:])")

    def __init__(self):
        self.taken: set[str] = set()
        self.blocks: list[str] = []
        self.names: dict[int, tuple[str, tuple]] = {}  # id(use) -> (block, arguments)
        self.expects = False  # the net's own statements claim their source's shapes
        self.classes: int | None = None  # id() of the classifier's statement: `fc classes`
        self.shapes: dict[str, tuple | None] = {}  # layer name -> its output's shape
        self.labels: set[str] = set()  # written in the definition being written: a label is
        #                                 one statement's in it, so a later namesake goes bare

    def text(self, net: str, stmts: list[Stmt], totals: tuple[int, int] | None = None) -> str:
        """The file; with `totals` (the source's params and MACs), self-verifying: each of the
        net's statements expects the shape its source computes, the net its counts, so that
        `archc check` proves the text equals the source."""
        self.shapes = {layer.name: layer.shape for stmt in stmts for layer in stmt.layers()}
        uses = list(_uses(stmts))
        for height in sorted({_height(u) for u in uses}):
            self._define([u for u in uses if _height(u) == height])
        self.expects = totals is not None
        self.labels = set()
        classifier = _classifier(stmts)
        self.classes = id(classifier) if classifier is not None else None
        body = self.body(stmts, "    ", top=True)
        if totals is not None:
            body += ["", f"    expect params={totals[0]} macs={totals[1]}"]
        signature = f"(classes = {classifier.layer.text.split()[1]})" if classifier else ""
        return "\n".join([*self.blocks, f"net {net}{signature} {{", *body, "}"]) + "\n"

    def _define(self, uses: list[Stmt]) -> None:
        by_skeleton: dict[tuple[str, str], list[tuple[Stmt, list[int]]]] = {}
        for use in uses:
            self.labels = set()
            text = UNIT_STRIDE.sub(r"\1/1", "\n".join(self.body(use.body, "    ")))
            values = self.VALUE.findall(text)  # what may differ between instances
            # classes named alike but for a number (archc's Expand, Expand1: one per
            # activation) are one block where they differ only in values
            kind = re.sub(r"(?<=[A-Za-z])_?\d+$", "", use.block)
            by_skeleton.setdefault((kind, self.VALUE.sub("#", text)), []).append(
                (use, values))
        for (kind, skeleton), instances in by_skeleton.items():
            name = _fresh(_snake(kind), self.taken)
            columns = list(zip(*(numbers for _, numbers in instances)))
            varying = [k for k, column in enumerate(columns) if len(set(column)) > 1]
            derived = _derived(skeleton, columns, varying,
                               [self.channels_in(use) for use, _ in instances])
            varying = [k for k in varying if k not in derived]
            distinct = list(dict.fromkeys(columns[k] for k in varying))
            params = _parameters(skeleton, [[k for k in varying if columns[k] == column]
                                            for column in distinct], instances[0][1])
            slot = {k: params[distinct.index(columns[k])] for k in varying} | derived
            body = WRITTEN_UNIT_STRIDE.sub(r"\1", _filled(skeleton, instances[0][1], slot))
            signature = f"({', '.join(params)})" if params else ""
            line = _one_line(f"block {name}{signature} ", body.split("\n"), "",
                             ONE_LINE_BLOCK)
            self.blocks += [line, ""] if line else \
                [f"block {name}{signature} {{", body, "}", ""]
            for use, numbers in instances:
                values = tuple(numbers[next(k for k in varying if slot[k] == p)]
                               for p in params)
                self.names[id(use)] = (name, values)

    def channels_in(self, use: Stmt) -> int | None:
        """The channels a block use reads: those of the value that enters it."""
        inside = {layer.name for layer in use.layers()}
        entering = next((i for layer in use.layers() for i in layer.inputs
                         if i not in inside), None)
        shape = self.shapes.get(entering)
        return shape[0] if shape else None

    def body(self, stmts: list[Stmt], indent: str, top: bool = False) -> list[str]:
        merged: list[Stmt] = []
        for stmt in repeats(stmts):  # equal uses in a row: `basic_block(64) x2`
            last = merged[-1] if merged else None
            if last is not None and stmt.block is not None and last.block is not None and \
                    not stmt.label and not last.label and \
                    self.names.get(id(stmt)) == self.names.get(id(last)) is not None:
                last.repeat += 1
                last.last = stmt.last or stmt
                continue
            merged.append(stmt)
        lines = []
        for stmt in merged:
            written = self.stmt(stmt, indent)
            shape = _output(stmt).shape
            if top and self.expects and shape and stmt.layer is not None and \
                    stmt.layer.text.startswith("input "):
                shape = None  # the input's size is its statement
            if top and self.expects and shape:
                written[-1] += "  expect " + "x".join(map(str, (*shape, 1, 1)[:3]))
            lines += written
        for stmt in merged:
            stmt.repeat = 1 if stmt.block is not None else stmt.repeat  # printed: undo
        return lines

    def stmt(self, stmt: Stmt, indent: str) -> list[str]:
        fresh = stmt.label and stmt.label not in self.labels
        label = f"{stmt.label}: " if fresh else ""
        if fresh:
            self.labels.add(stmt.label)
        repeat = f" x{stmt.repeat}" if stmt.repeat > 1 else ""
        if stmt.block is not None:
            name, args = self.names[id(stmt)]
            call = f"{name}({', '.join(map(str, args))})" if args else name
            return [f"{indent}{label}{call}{repeat}"]
        if stmt.layer is None:  # a group
            body = self.body(stmt.body, indent + "    ")
            if label and not repeat and len(body) == 1 and REPEATED_USE.match(body[0].strip()):
                return [f"{indent}{label}{body[0].strip()}"]  # `b5: bneck(120) x2`
            line = _one_line(f"{indent}{label}", body, repeat)
            return [line] if line else [f"{indent}{label}{{", *body, f"{indent}}}{repeat}"]
        if not stmt.branches:
            text = stmt.layer.text
            if id(stmt) == self.classes:  # the classifier's width: the net's parameter
                text = " ".join(["fc", "classes", *text.split()[2:]])
            return [f"{indent}{label}{text}{repeat}"]
        lines = [f"{indent}{label}{stmt.layer.text} {{"]
        for branch in stmt.branches:
            if not branch:
                lines.append(f"{indent}    id")
            elif len(branch) == 1:
                lines += self.stmt(branch[0], indent + "    ")
            else:
                lines += [f"{indent}    {{", *self.body(branch, indent + "        "),
                          f"{indent}    }}"]
        return lines + [f"{indent}}}{repeat}"]


def _classifier(stmts: list[Stmt]) -> Stmt | None:
    """The net's last fc, after which only functions (softmax, an activation) come: the
    classifier, whose width the file makes the net's parameter `classes`."""
    for stmt in reversed(stmts):
        if stmt.layer is None or stmt.branches or stmt.repeat != 1:
            return None
        if stmt.layer.text.startswith("fc "):
            return stmt
        if not functional(stmt.layer) and not stmt.layer.text.startswith("dropout"):
            return None
    return None


def _one_line(start: str, body: list[str], end: str, longest: int = ONE_LINE) -> str | None:
    """`start{ a; b; c }end` where the body is a few simple statements (no braces) and the
    line stays short, as archc's nets write a conv, its bn and its activation; else None."""
    if len(body) > 4 or any("{" in line or "}" in line for line in body):
        return None
    line = f"{start}{{ {'; '.join(s.strip() for s in body)} }}{end}"
    return line if len(line) <= longest else None


def _derived(skeleton: str, columns: list[tuple], varying: list[int],
             entering: list[int | None]) -> dict[int, str]:
    """The widths that differ between a block's instances as their input channels do, each
    as `in_channels` times or over one number (MobileNet's `in_channels * 6`, a gate's
    `in_channels / 4`): {position: the expression}. Not a parameter then; but a block keeps
    its last width a parameter (`basic_block(64)`, not a bare `basic_block` whose width only
    its input tells)."""
    from fractions import Fraction

    parts = skeleton.split("#")
    if not all(entering):
        return {}
    found = {}
    for k in varying:
        if parts[k].endswith(("x", "/")) or parts[k + 1].startswith(("x", "/")) or \
                not all(v.isdigit() for v in columns[k]) or parts[k].endswith("pad="):
            continue  # a window, a stride, a padding or an activation: not a width
        ratios = {Fraction(int(v), c) for v, c in zip(columns[k], entering)}
        if len(ratios) != 1:
            continue
        (ratio,) = ratios
        if ratio == 1:
            found[k] = "in_channels"
        elif ratio.denominator == 1:
            found[k] = f"(in_channels * {ratio.numerator})"
        elif ratio.numerator == 1:
            found[k] = f"(in_channels / {ratio.denominator})"
    widths = [k for k in varying if columns[k][0].isdigit() and not parts[k].endswith(
        ("x", "/", "pad=")) and not parts[k + 1].startswith(("x", "/"))]
    if widths and set(widths) <= set(found):  # the block keeps its last width a parameter
        found = {k: text for k, text in found.items() if columns[k] != columns[widths[-1]]}
    return found


def _parameters(skeleton: str, positions: list[list[int]], values: list[str]) -> list[str]:
    """A block's parameters' names, by what their values are in `skeleton` (the positions
    of each): `act` an activation, `s` a stride, `k` a window, `p` a padding, `c` a width or
    anything else; numbered where a block has several of one kind."""
    parts = skeleton.split("#")

    def kind(k: int) -> str:
        if not values[k].isdigit():
            return "act"
        if parts[k].endswith("/"):
            return "s"
        if parts[k].endswith("x") or parts[k + 1].startswith(("x", "/")):
            return "k"
        return "p" if parts[k].endswith("pad=") else "c"

    kinds = [{kind(k) for k in ks} for ks in positions]
    kinds = [found.pop() if len(found) == 1 else "c" for found in kinds]
    count = {k: kinds.count(k) for k in kinds}
    seen: dict[str, int] = {}
    names = []
    for k in kinds:
        seen[k] = seen.get(k, 0) + 1
        names.append(k if count[k] == 1 else f"{k}{seen[k]}")
    return names


def _filled(skeleton: str, numbers: list[int], slot: dict[int, str]) -> str:
    """The skeleton's `#`s, in order: the parameter that number is, else the number; a
    parameter inside a window parenthesised, as the language writes it: `(k)x(k)/(s)`."""
    parts = skeleton.split("#")

    def fill(k: int) -> str:
        if k not in slot:
            return str(numbers[k])
        window = parts[k].endswith(("x", "/")) or parts[k + 1].startswith(("x", "/"))
        return f"({slot[k]})" if window else slot[k]

    return "".join(p + (fill(k) if k < len(numbers) else "") for k, p in enumerate(parts))


def _uses(stmts: list[Stmt]):
    for stmt in stmts:
        if stmt.block is not None:
            yield stmt
        yield from _uses(stmt.body)
        for branch in stmt.branches:
            yield from _uses(branch)


def _height(use: Stmt) -> int:
    inner = [_height(u) for u in _uses(use.body)]
    return 1 + max(inner) if inner else 0


def _output(stmt: Stmt) -> Layer:
    """The layer whose value a statement makes: its own, or its body's last statement's (of
    its last repetition, where it is written `xN`)."""
    stmt = stmt.last or stmt
    return stmt.layer if stmt.layer is not None else _output(stmt.body[-1])


def _snake(name: str) -> str:
    """BasicBlock as basic_block, _DenseLayer as dense_layer, Unit2 as unit_2."""
    name = re.sub(r"(?<=[a-z])(?=[0-9]+$)", "_", name.lstrip("_"))  # Unit2: unit_2, as written
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower() or "block"


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate
