"""Layout: traced layers -> readable .arch text, its blocks recovered from the modules.

1. Structure: the layers form a series-parallel graph; a join (`sum`, `concat`, `mul`) takes
   the branches from its immediate dominator (networkx), each a chain, the one that is the
   fork itself written `id`. A graph that is not series-parallel is an ImportFailure.
2. Blocks (`blocks="modules"`): statements that all sit in one instance of a module class of
   the user's (torchvision's BasicBlock, Inception) become a use of a block named after the
   class; an `nn.Sequential` a labelled group (`layer1: { ... }`, so the keys read as
   torchvision's `layer1.0...`). The instances of one class with the same structure share a
   definition, the numbers that differ between them its parameters (`c`, or `c1`, `c2`...);
   repeated equal uses are written `xN`. `blocks="none"` writes every layer in the net.
3. The text goes through archc's formatter (archc.lang.printer), which also proves it parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import networkx as nx

from archc.importer.trace import ImportFailure, Layer
from archc.ops.activation import TABLE

# a conv's stride written in a block's text while its instances are compared (so that one of
# stride 1 and one of stride 2 are one block with a parameter), dropped where it stays 1
UNIT_STRIDE = re.compile(r"(\bconv [^\s/]+)(?=\s)")
WRITTEN_UNIT_STRIDE = re.compile(r"(\bconv [^\s/]+)/1(?=\s)")
ONE_LINE = 80  # the longest group or block written on one line (an `expect` may follow)
REPEATED_USE = re.compile(r"[a-z_]\w*(\(.*\))? x\d+$")  # a block's uses in a row, unlabelled
FUNCTIONAL = {row.name for row in TABLE} | {"flatten", "softmax"}


@dataclass
class Stmt:
    layer: Layer | None = None  # a layer statement, or the join of `branches`
    branches: list[list[Stmt]] = field(default_factory=list)
    block: str | None = None  # a block use: its definition's name ...
    args: tuple = ()  # ... and arguments
    body: list[Stmt] = field(default_factory=list)  # a group's or a block's statements
    label: str | None = None
    repeat: int = 1
    last: Stmt | None = None  # written `xN`: its last repetition, whose value it makes

    def layers(self):
        if self.layer is not None:
            yield self.layer
        for branch in self.branches:
            for stmt in branch:
                yield from stmt.layers()
        for stmt in self.body:
            yield from stmt.layers()


def structure(layers: list[Layer]) -> list[Stmt]:
    """The net's statements, joins with their branches, from the input to the output."""
    layers = _unflattened(layers)
    by_name = {layer.name: layer for layer in layers}
    graph = nx.DiGraph()
    graph.add_nodes_from(by_name)
    graph.add_edges_from((i, layer.name) for layer in layers for i in layer.inputs)
    start, end = layers[0].name, layers[-1].name
    dominators = nx.immediate_dominators(graph, start)
    order = {layer.name: i for i, layer in enumerate(layers)}  # execution order

    def chain(source: str, target: str) -> list[Stmt]:
        out: list[Stmt] = []
        while target != source:
            layer = by_name[target]
            if order[target] < order[source]:  # walked back past the branch's start
                raise ImportFailure(f"{layer.name} reads a value from before its branch "
                                    "began: the net is not series-parallel")
            if layer.join:
                fork = dominators[target]
                out.insert(0, Stmt(layer, [chain(fork, i) for i in layer.inputs]))
                target = fork
            else:
                out.insert(0, Stmt(layer))
                target = layer.inputs[0]
        return out

    return [Stmt(layers[0])] + chain(start, end)


def _unflattened(layers: list[Layer]) -> list[Layer]:
    """The layers without a flatten only an fc reads: an fc flattens its input itself, as
    archc's nets are written (`gap; fc classes`). New layers where an input changes: the
    caller's stay as they are."""
    readers: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    skipped = {layer.name: layer.inputs[0] for layer in layers[:-1] if layer.text == "flatten"
               and [u.text.split()[0] for u in readers.get(layer.name, [])] == ["fc"]}
    return [replace(layer, inputs=[skipped.get(i, i) for i in layer.inputs])
            if set(layer.inputs) & set(skipped) else layer
            for layer in layers if layer.name not in skipped]


# ---- blocks ----------------------------------------------------------------------------------


def group(stmts: list[Stmt], depth: int = 0) -> list[Stmt]:
    """`stmts`, with each run inside one module instance at `depth` of the module stack made
    a group (an nn.Sequential) or a block use (a class of the user's)."""
    out: list[Stmt] = []
    i = 0
    while i < len(stmts):
        owner = _owner(stmts[i], depth)
        j = i + 1
        while owner is not None and j < len(stmts) and _owner(stmts[j], depth) == owner:
            j += 1
        run = stmts[i:j]
        if owner is None or (len(run) == 1 and _leaf(run[0], owner)):
            stmt = run[0]
            stmt.branches = [group(b, depth) for b in stmt.branches]
            if owner is not None and stmt.layer is not None and not stmt.branches and \
                    _learns(stmt.layer):  # conv1, bn1, fc: torchvision's member names
                stmt.label = _label(owner[0])
            out.append(stmt)
            i = j
            continue
        path, kind = owner
        body = group(run, depth + 1)
        if kind.__module__.startswith("torch.nn"):  # Sequential, ModuleList: a group
            out += _dissolved(Stmt(body=_repeats(body), label=_label(path)))
        else:
            out.append(Stmt(block=kind.__name__, body=body, label=_label(path)))
        i = j
    return out


def _owner(stmt: Stmt, depth: int):
    """The module instance at `depth` that every layer of `stmt` sits in, or None."""
    stacks = [layer.stack for layer in stmt.layers()]
    if not stacks or any(len(s) <= depth for s in stacks):
        return None
    first = stacks[0][depth]
    return first if all(s[depth][0] == first[0] for s in stacks) else None


def _leaf(stmt: Stmt, owner) -> bool:
    """A layer that is the module itself (conv1), not a statement inside a module."""
    return stmt.layer is not None and not stmt.branches and \
        stmt.layer.stack and stmt.layer.stack[-1][0] == owner[0]


def _dissolved(stmt: Stmt) -> list[Stmt]:
    """A group of one module (a layer's or a block use's) and activations around it is that
    module, labelled with the group's name, among them: what archc emits for it (a member of
    one layer or one block is that module, its activations functions)."""
    def plain(s: Stmt) -> bool:
        return s.layer is not None and not s.branches and not s.body and s.block is None

    members = [s for s in stmt.body if s.block is not None or plain(s) and
               not _functional(s.layer)]
    rest = [s for s in stmt.body if plain(s) and _functional(s.layer)]
    if len(members) != 1 or len(members) + len(rest) != len(stmt.body) or members[0].label \
            or members[0].repeat != 1:
        return [stmt]
    members[0].label = stmt.label
    return stmt.body


def _functional(layer: Layer) -> bool:
    """A layer archc emits as a function, no module: an activation, flatten, softmax."""
    return layer.text.split()[0] in FUNCTIONAL


def _learns(layer: Layer) -> bool:
    """A layer with weights: labelled by its module's name (an activation used twice is not)."""
    return layer.text.split()[0] in ("conv", "bn", "fc", "layernorm", "scale")


def _label(path: str) -> str | None:
    last = path.rsplit(".", 1)[-1]
    return last if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", last) else None


# ---- text ------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    """BasicBlock as basic_block, _DenseLayer as dense_layer, Unit2 as unit_2."""
    name = re.sub(r"(?<=[a-z])(?=[0-9]+$)", "_", name.lstrip("_"))  # Unit2: unit_2, as written
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower() or "block"


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
            line = _one_line(f"block {name}{signature} ", body.split("\n"), "")
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
        for stmt in _repeats(stmts):  # equal uses in a row: `basic_block(64) x2`
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
        if not _functional(stmt.layer) and not stmt.layer.text.startswith("dropout"):
            return None
    return None


def _one_line(start: str, body: list[str], end: str) -> str | None:
    """`start{ a; b; c }end` where the body is a few simple statements (no braces) and the
    line stays short, as archc's nets write a conv, its bn and its activation; else None."""
    if len(body) > 4 or any("{" in line or "}" in line for line in body):
        return None
    line = f"{start}{{ {'; '.join(s.strip() for s in body)} }}{end}"
    return line if len(line) <= ONE_LINE else None


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


def _repeats(stmts: list[Stmt]) -> list[Stmt]:
    """Consecutive equal layer statements written once with `xN` (VGG's conv 3x3 512 x3)."""
    out: list[Stmt] = []
    for stmt in stmts:
        last = out[-1] if out else None
        if last is not None and last.layer is not None and stmt.layer is not None and \
                not last.branches and not stmt.branches and not last.label and \
                not stmt.label and last.layer.text == stmt.layer.text:
            last.repeat += 1
            last.last = stmt.last or stmt
        else:
            out.append(stmt)
    return out


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate
