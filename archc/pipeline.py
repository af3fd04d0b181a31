"""The compiler front end as one straight line of named stages.

  path -load-> Program -build-> Graph -infer-> shapes -count-> costs -check-> diagnostics

Each stage is a function taking and returning a named value, so a reader (or a test) can stop
at any of them. Nothing on this path imports torch or triton.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archc.build import build_graph
from archc.check import check_claims, unused_blocks
from archc.cost import Cost, count_costs
from archc.errors import ArchError, Diagnostic
from archc.ir import Graph
from archc.loader import load
from archc.shapes import Field, Shape, infer_shapes, receptive_fields


@dataclass(frozen=True)
class Analysis:
    path: str
    graph: Graph
    shapes: dict[int, Shape]
    fields: dict[int, Field]
    costs: dict[int, Cost]
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def raise_errors(self) -> Analysis:
        """Itself, for a caller that needs a valid net; else the first error (failed expect)."""
        if self.errors:
            first = self.errors[0]
            raise ArchError(first.message, first.span, first.notes)
        return self


def analyse(path: str | Path, overrides: dict[str, int | float] | None = None,
            text: str | None = None) -> Analysis:
    """Run the front end on a file (or on `text`, reported as `path`). Raises ArchError."""
    program = load(path, text)                          # parse, follow `use`
    graph = build_graph(program, overrides)             # expand blocks into layers
    shapes = infer_shapes(graph)                        # C x H x W of every layer
    fields = receptive_fields(graph, shapes)            # receptive field, cumulative stride
    costs = count_costs(graph, shapes)                  # weights, biases, MACs
    diagnostics = check_claims(graph, shapes, costs)    # expect (errors), paper (warnings)
    diagnostics += unused_blocks(graph, program.local)  # warnings
    return Analysis(str(path), graph, shapes, fields, costs, diagnostics)
