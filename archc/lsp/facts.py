"""Facts: what an editor shows of one analysed file, by position, without pygls or torch.

`Facts(analysis, path)` indexes a (partial) analysis (archc.pipeline.analyse_partial) of the
file at `path`: each top-level statement's row (output shape, params, MACs, receptive field,
stride), each line of a block with the shapes its every use gives it, the block uses with their
arguments, the definitions of blocks, labels and parameters. Positions are the editor's:
0-based lines and columns. archc.lsp.server turns these into LSP messages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from archc import ops
from archc.analysis.cost import Cost, total
from archc.errors import Span
from archc.lang import ast
from archc.lang.functions import FUNCTIONS
from archc.pipeline import Analysis


@dataclass(frozen=True)
class Place:
    """A span in a file, 0-based (LSP's), end exclusive."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def of(span: Span) -> Place:
        return Place(span.source.path, span.line - 1, span.col - 1, span.end_line - 1,
                     span.end_col - 1)

    def holds(self, line: int, col: int) -> bool:
        return (self.line, self.col) <= (line, col) < (self.end_line, self.end_col) or \
            (self.line == self.end_line == line and self.col <= col <= self.end_col)


def short(n: int) -> str:
    """159,696 as 160K, 128,049,152 as 128M: an inlay hint's width."""
    for size, unit in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


class Facts:
    def __init__(self, analysis: Analysis, path: str):
        self.a = analysis
        self.path = str(Path(path).resolve())
        graph = analysis.graph
        self.rows = [r for r in graph.rows if r.output >= 0]
        self.by_syntax: dict[int, list[int]] = defaultdict(list)  # id(written op) -> nodes
        for n in graph.order():
            self.by_syntax[id(graph.written(graph.node(n).syntax))].append(n)
        self.syntax = {id(graph.written(graph.node(n).syntax)): graph.written(graph.node(n).syntax)
                       for n in graph.order()}

    def here(self, span: Span) -> bool:
        return self.here_path(span.source.path)

    def here_path(self, path: str) -> bool:
        return str(Path(path).resolve()) == self.path

    # ---- hover -----------------------------------------------------------------------------

    def hover(self, line: int, col: int) -> str | None:
        for row in self.rows:
            if self.here(row.span) and Place.of(row.span).holds(line, col):
                return self._row_text(row)
        inner = [s for s in self.syntax.values()
                 if self.here(s.span) and Place.of(s.span).holds(line, col)]
        if inner:  # the innermost op or concat: a line of a block, at every use
            syntax = min(inner, key=lambda s: (s.span.end_line - s.span.line,
                                               s.span.end_col - s.span.col))
            return self._uses_text(syntax)
        return None

    def _row_text(self, row) -> str:
        shape = self.a.shapes[row.output]
        cost = total(self.a.costs, row.nodes)
        field = self.a.fields[row.output]
        args = ", ".join(f"{k}={v}" for k, v in row.block_args)
        title = f"**{row.name}** ({row.title}{f'({args})' if args else ''}"
        title += f" x{row.repeat})" if row.repeat > 1 else ")"
        return (f"{title}\n\noutput {shape} · {cost.params:,} params · {cost.macs:,} MACs\n\n"
                f"receptive field {field.size} · stride {field.jump}")

    def _uses_text(self, syntax) -> str:
        graph = self.a.graph
        nodes = self.by_syntax[id(syntax)]
        per_use: dict[str, list[int]] = defaultdict(list)
        for n in nodes:
            node = graph.node(n)
            row = graph.rows[node.row].name if node.row is not None else "net"
            per_use[row].append(n)
        shown = [f"{row} {self.a.shapes[ns[-1]]}" for row, ns in per_use.items()]
        what = ast.text(syntax.span).strip() or ops.describe(graph.node(nodes[0]).op)
        cost = total(self.a.costs, nodes)
        times = f"used {len(per_use)}x: " if len(per_use) > 1 else ""
        return (f"**{what}**\n\n{times}{', '.join(shown[:12])}"
                f"{' ...' * (len(shown) > 12)}\n\n{cost.params:,} params · {cost.macs:,} MACs "
                "in all")

    # ---- inlay hints and code lenses -------------------------------------------------------

    def inlay_hints(self) -> list[tuple[int, int, str]]:
        """(line, col, text) after each top-level statement of this file."""
        out = []
        for row in self.rows:
            if not self.here(row.span):
                continue
            cost = total(self.a.costs, row.nodes)
            text = f"-> {self.a.shapes[row.output]}"
            if cost.params or cost.macs:
                text += f" · {short(cost.params)} params · {short(cost.macs)} MACs"
            end = Place.of(row.span)
            out.append((end.end_line, end.end_col, text))
        return out

    def lenses(self) -> list[tuple[int, str]]:
        """(line, text): the totals above `net`, the share of each block above it."""
        graph = self.a.graph
        main = total(self.a.costs, graph.main_nodes())
        net = graph.syntax
        out = []
        if self.here(net.span):
            out.append((net.span.line - 1, f"{main.params:,} params · {main.macs:,} MACs · "
                                           f"{len(self.rows)} rows"))
        everything = total(self.a.costs, graph.order())  # heads included: a head's blocks
        uses: dict[str, list[int]] = defaultdict(list)
        for n in graph.order():
            for use in graph.node(n).blocks:
                uses[graph.block_uses[use].name].append(n)
        counts = defaultdict(int)
        for use in graph.block_uses:
            counts[use.name] += 1
        for name, block in self.a.program.blocks.items():
            if not self.here(block.span):
                continue
            cost = total(self.a.costs, set(uses.get(name, ())))
            share = cost.macs / everything.macs if everything.macs else 0
            out.append((block.span.line - 1, f"used {counts[name]} times · {share:.1%} of "
                                             f"MACs · {cost.params:,} params"))
        return out

    # ---- navigation ------------------------------------------------------------------------

    def definition(self, line: int, col: int, word: str) -> Place | None:
        program = self.a.program
        block = program.blocks.get(word)
        if block is not None:
            return Place.of(ast.first_line(block))
        for row in self.rows:  # a label: `head aux from 4a`
            if row.labelled and row.name == word:
                return Place.of(row.span)
        for definition in [program.net, *program.blocks.values()]:
            if not self.here(definition.span):
                continue
            if Place.of(definition.span).holds(line, col):
                for param in definition.params:
                    if param.name == word:
                        return Place.of(param.span)
        return None

    def symbols(self) -> list[tuple[str, str, Place]]:
        """(name, kind, place): the net, the blocks, the labels of this file."""
        program = self.a.program
        out = []
        if self.here(program.net.span):
            out.append((program.net.name, "net", Place.of(program.net.span)))
        out += [(b.name, "block", Place.of(b.span)) for b in program.local]
        out += [(r.name, "label", Place.of(r.span)) for r in self.rows
                if r.labelled and self.here(r.span)]
        return out

    def completions(self) -> list[tuple[str, str, str]]:
        """(label, kind, detail): the ops, the blocks in scope, the functions."""
        out = [(name, "op", _signature(name)) for name in sorted(ops.SIGNATURES)]
        out += [(name, "block", f"block {name}({', '.join(p.name for p in b.params)})")
                for name, b in sorted(self.a.program.blocks.items())]
        out += [(name, "function", f"{name}({', '.join(f.params)})")
                for name, f in sorted(FUNCTIONS.items())]
        return out

    def totals(self) -> Cost:
        return total(self.a.costs, self.a.graph.main_nodes())


def _signature(name: str) -> str:
    """`conv window channels [stride= pad= groups= bias=] [relu|...]`."""
    signature = ops.SIGNATURES[name]
    keys = " ".join(f"{k}=" for k in signature.keys)
    flags = "|".join(signature.flags[:6]) + ("|..." if len(signature.flags) > 6 else "")
    return " ".join(filter(None, [name, *signature.positional, keys and f"[{keys}]",
                                  flags and f"[{flags}]"]))
