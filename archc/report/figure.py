"""Figure: `Analysis` -> a paper's block-level figure of the net (`archc graph --style paper`).

One box per statement of the net (a block use, a group, a layer), as the stats table has one
row per statement: its name (`inception (3a)`, `layer2: bottleneck_proj, bottleneck x3`,
`conv 7x7/2 64`) and its output shape. Consecutive boxes with one output size are one stage
(a frame labelled `28x28`); a statement whose blocks add a shortcut is followed by a `+` that
the shortcut joins (dashed; `projection` where a conv computes it); an auxiliary head is a
dashed column beside the box it reads. Black on white, small type, one column: it fits a
paper's column. Written as Graphviz (SVG, PDF, PNG, DOT: `draw_figure`) or as TikZ
(`tikz`: a tikzpicture to `\\input` in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc import ops
from archc.pipeline import Analysis


@dataclass
class Box:
    key: str  # r3
    title: str
    shape: str  # its output, `256x28x28`
    head: str | None  # the head it belongs to
    skip: str | None = None  # "identity" or "projection": a shortcut joins after it
    reads: list[str] = field(default_factory=list)  # the boxes it reads


def boxes(analysis: Analysis) -> list[Box]:
    """The net's statements as boxes, in source order, each with the boxes it reads."""
    graph = analysis.graph
    row_of = {n: graph.node(n).row for n in graph.order()}
    out = []
    for row in graph.rows:
        if not row.nodes or row.title == "input":
            continue
        inside = set(row.nodes)
        reads = dict.fromkeys(f"r{row_of[i]}" for n in row.nodes for i in graph.node(n).inputs
                              if i not in inside and row_of.get(i) is not None and
                              graph.rows[row_of[i]].title != "input")
        out.append(Box(f"r{row.index}", _title(analysis, row), str(analysis.shapes[row.output]),
                       row.head, _skip(analysis, row.nodes), list(reads)))
    return out


def stages(items: list[Box]) -> list[tuple[str, list[Box]]]:
    """The main path's boxes in runs of one output size: (`28x28`, boxes)."""
    runs: list[tuple[str, list[Box]]] = []
    for box in (b for b in items if b.head is None):
        dims = box.shape.split("x")
        size = "x".join(dims[1:]) if len(dims) == 3 and dims[1:] != ["1", "1"] else ""
        if runs and runs[-1][0] == size:
            runs[-1][1].append(box)
        else:
            runs.append((size, [box]))
    return runs


# ---- Graphviz ---------------------------------------------------------------------------------


# A statement's fill where `archc diff --graph` marks it (ColorBrewer, legible in grey).
MARKS = {"changed": "#fdd49e", "added": "#c7e9c0"}


def draw_figure(analysis: Analysis, marks: dict[str, str] | None = None, title: str = ""):
    """The figure as Graphviz; `marks`: statement name -> "changed" or "added", filled so
    (archc diff --graph), `title` above it."""
    import graphviz

    dot = graphviz.Digraph(analysis.graph.name, graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "fontsize": "9", "nodesep": "0.25",
        "ranksep": "0.18", "margin": "0", "label": title, "labelloc": "t"}, node_attr={
        "shape": "box", "style": "rounded", "fontname": "Helvetica", "fontsize": "9",
        "width": "1.9", "height": "0.3", "margin": "0.05,0.03"},
        edge_attr={"arrowsize": "0.5", "fontname": "Helvetica", "fontsize": "7"})
    items = boxes(analysis)
    fills = {f"r{row.index}": MARKS[marks[row.name]] for row in analysis.graph.rows
             if row.name in (marks or {})}
    dot.node("input", f"input {analysis.shapes[analysis.graph.input]}", shape="plaintext")
    for size, run in stages(items):
        if size and len(run) > 1:
            with dot.subgraph(name=f"cluster_{run[0].key}") as frame:
                frame.attr(label=size, labeljust="r", style="dotted", fontsize="8")
                for box in run:
                    _node(frame, box, fills.get(box.key))
        else:
            for box in run:
                _node(dot, box, fills.get(box.key))
    for box in (b for b in items if b.head is not None):
        fill = fills.get(box.key)
        dot.node(box.key, _label(box), style="rounded,dashed" + (",filled" if fill else ""),
                 **({"fillcolor": fill} if fill else {}))
    for box in items:
        for source in box.reads or ["input"]:
            dot.edge(_out(items, source), box.key, style="dashed" if box.head else "solid")
        if box.skip:
            dot.edge(box.key, f"{box.key}_sum")
            for source in box.reads or ["input"]:
                dot.edge(_out(items, source), f"{box.key}_sum", style="dashed",
                         label="" if box.skip == "identity" else "projection", constraint="false")
    return dot


def _node(dot, box: Box, fill: str | None = None) -> None:
    dot.node(box.key, _label(box), **({"style": "rounded,filled", "fillcolor": fill}
                                      if fill else {}))
    if box.skip:
        dot.node(f"{box.key}_sum", "+", shape="circle", width="0.18", height="0.18",
                 fixedsize="true", fontsize="8")


def _label(box: Box) -> str:
    return f"{box.title}\n{box.shape}"


def _out(items: list[Box], key: str, suffix: str = "_sum") -> str:
    """The node a box's value leaves from: its `+` (the box's key and `suffix`) where a
    shortcut joins it."""
    box = next((b for b in items if b.key == key), None)
    return f"{key}{suffix}" if box is not None and box.skip else key


# ---- TikZ -------------------------------------------------------------------------------------


TIKZ_PREAMBLE = r"\usepackage{tikz}\usetikzlibrary{positioning,fit,arrows.meta}"


def tikz(analysis: Analysis) -> str:
    """A tikzpicture to `\\input` in a paper (its preamble needs TIKZ_PREAMBLE): the main path a
    column of boxes, heads to its right."""
    items = boxes(analysis)
    lines = [f"% {analysis.graph.name}, drawn by archc (archc graph --style paper).",
             f"% The document's preamble needs: {TIKZ_PREAMBLE}",
             r"\begin{tikzpicture}[font=\sffamily\scriptsize, node distance=2.2mm and 6mm,",
             r"  box/.style={draw, rounded corners=1pt, align=center, text width=44mm,",
             r"    inner sep=1.5pt, execute at begin node={\hyphenpenalty=10000}},",
             r"  sum/.style={draw, circle, inner sep=0.4pt},",
             r"  >={Stealth[length=1.4mm]}]",
             rf"\node (input) {{input {_tex(str(analysis.shapes[analysis.graph.input]))}}};"]
    previous = "input"
    for box in (b for b in items if b.head is None):
        lines.append(rf"\node[box, below=of {previous}] ({box.key}) {{{_tex_label(box)}}};")
        previous = box.key
        if box.skip:
            lines.append(rf"\node[sum, below=1.2mm of {box.key}] ({box.key}s) {{+}};")
            previous = f"{box.key}s"
    side: dict[str, str] = {}
    for box in (b for b in items if b.head is not None):
        anchor = side.get(box.head)
        where = f"below=of {anchor}" if anchor else f"right=of {box.reads[0]}"
        lines.append(rf"\node[box, dashed, {where}] ({box.key}) {{{_tex_label(box)}}};")
        side[box.head] = box.key
    for box in items:
        for source in box.reads or ["input"]:
            start = _out(items, source, "s")
            style = "->, dashed" if box.head else "->"
            lines.append(rf"\draw[{style}] ({start}) -- ({box.key});")
        if box.skip:
            lines.append(rf"\draw[->] ({box.key}) -- ({box.key}s);")
            for source in box.reads or ["input"]:
                label = "" if box.skip == "identity" else \
                    r" node[midway, right, font=\tiny] {projection}"
                start = _out(items, source, "s")  # just below it, out to the right, down
                lines.append(rf"\draw[->, dashed] ([yshift=-0.6mm]{start}.south) -| "
                             rf"([xshift=2.5mm]{box.key}.east){label} |- ({box.key}s.east);")
    for size, run in stages(items):
        if size and len(run) > 1:
            members = "".join(f"({b.key})" + (f"({b.key}s)" if b.skip else "") for b in run)
            lines.append(rf"\node[draw, dotted, inner sep=1.5mm, fit={members}, "
                         rf"label={{[font=\sffamily\tiny]west:{_tex(size)}}}] {{}};")
    return "\n".join([*lines, r"\end{tikzpicture}", ""])


def _tex_label(box: Box) -> str:
    return rf"{_tex(box.title)}\\ {_tex(box.shape)}"


def _tex(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"),
                          ("%", r"\%"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(char, escaped)
    return text.replace("x", r"$\times$") if _is_shape(text) else text


def _is_shape(text: str) -> bool:
    return all(part.isdigit() for part in text.split("x"))


# ---- what a box says ---------------------------------------------------------------------------


def _title(analysis: Analysis, row) -> str:
    graph = analysis.graph
    times = f" x{row.repeat}" if row.repeat > 1 else ""
    if row.title == "group":  # its block uses (`bottleneck x2`), else its layers
        uses: dict[str, set[int]] = {}
        for n in row.nodes:
            if graph.node(n).blocks:
                use = graph.node(n).blocks[0]
                uses.setdefault(graph.block_uses[use].name, set()).add(use)
        parts = [f"{name} x{len(ids)}" if len(ids) > 1 else name for name, ids in uses.items()]
        layers = [ops.describe(graph.node(n).op).replace("/1 ", " ") for n in row.nodes]
        parts = parts or (layers if len(layers) <= 3 else [*layers[:2], "..."])
        return f"{row.name}: {', '.join(parts)}" + times
    if any(use.name == row.title for use in graph.block_uses):
        name = row.title if row.name.rstrip("0123456789") == row.title else \
            f"{row.title} ({row.name})"
        return name + times
    if row.head is not None:  # a head: its name (aux1)
        return row.name + times
    first = ops.describe(graph.node(row.nodes[0]).op).replace("/1 ", " ")  # a layer's row
    return (f"{row.name}: {first}" if row.labelled else first) + times


def _skip(analysis: Analysis, nodes: list[int]) -> str | None:
    """Whether a shortcut sum ends one of the row's block uses: "identity" where it adds the
    use's input itself, "projection" where every input is computed inside the use."""
    graph, found = analysis.graph, None
    for n in nodes:
        node = graph.node(n)
        if not isinstance(node.op, ops.Sum) or not node.blocks:
            continue
        use = node.blocks[-1]
        outside = any(use not in graph.node(i).blocks for i in node.inputs)
        found = "identity" if outside or found == "identity" else "projection"
    return found
