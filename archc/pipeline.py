"""The compiler front end as one straight line of named stages.

  path -load-> Program -build-> Graph -infer-> shapes -count-> costs -check-> diagnostics

Under --set, the net is also built with its defaults, which its `expect` and `paper` claims
were written for (archc.analysis.check says how the two builds are compared).

Each stage is a function taking and returning a named value, so a reader (or a test) can stop
at any of them. Nothing on this path imports torch or triton.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from archc.analysis.check import Checked, compare_claims, diagnose, under_defaults, unused_blocks
from archc.analysis.cost import Cost, count_costs
from archc.analysis.params import width_params
from archc.analysis.shapes import Field, Shape, flat_values, infer_shapes, receptive_fields
from archc.errors import ArchError, Diagnostic, Note
from archc.ir.build import build_graph, build_partial
from archc.ir.graph import Graph
from archc.lang.loader import Program, load


@dataclass(frozen=True)
class Analysis:
    path: str
    graph: Graph
    shapes: dict[int, Shape]
    fields: dict[int, Field]
    costs: dict[int, Cost]
    checks: list[Checked]  # every expect and paper claim, compared
    diagnostics: list[Diagnostic]
    program: Program  # what was loaded: the net and its blocks, to build again

    # What code generation asks of the analysis, computed on first use and kept, so that
    # the emitters and plans of every backend share one answer.
    @cached_property
    def flat(self) -> dict[int, bool]:
        """Which values are N x C rather than N x C x H x W (archc.ir.shapes.flat_values)."""
        return flat_values(self.graph)

    @cached_property
    def width_params(self) -> tuple[str, ...]:
        """The net parameters a net class takes as constructor arguments (the net built again
        for each: archc.analysis.params); never needed by the front end's own commands."""
        return width_params(self.program, self.graph)

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
    try:
        graph = build_graph(program, overrides)         # expand blocks into layers
        shapes = infer_shapes(graph)                    # C x H x W of every layer
    except ArchError as error:
        raise _naming_set(error, program, overrides) from None
    fields = receptive_fields(graph, shapes)            # receptive field, cumulative stride
    costs = count_costs(graph, shapes)                  # weights, biases, MACs
    checks = compare_claims(graph, shapes, costs)       # expect and paper against the counts
    if overrides:                                       # claims speak of the defaults' build
        checks = under_defaults(checks, _default_checks(program))
    diagnostics = diagnose(checks) + unused_blocks(graph, program.local)
    return Analysis(str(path), graph, shapes, fields, costs, checks, diagnostics, program)


def analyse_partial(path: str | Path, text: str | None = None) -> Analysis:
    """`analyse` for an editor: the statements that build keep their shapes and counts, and
    the errors of the rest are diagnostics (`analysis.errors`), not an exception. Raises
    ArchError only where nothing builds (a syntax error, no input)."""
    program = load(path, text)
    graph, errors = build_partial(program)
    shapes = infer_shapes(graph)
    fields = receptive_fields(graph, shapes)
    costs = count_costs(graph, shapes)
    checks = compare_claims(graph, shapes, costs)
    diagnostics = [d for e in errors for d in [e.diagnostic()]] + diagnose(checks) + \
        (unused_blocks(graph, program.local) if not errors else [])  # as `check`: a use
    #                                                   that failed leaves its block unused
    return Analysis(str(path), graph, shapes, fields, costs, checks, diagnostics, program)


def _default_checks(program: Program) -> list[Checked] | None:
    """The claims as the defaults build the net; None where the defaults do not build (a
    sweep's net whose default is one of the failing points): then no claim is compared."""
    try:
        graph = build_graph(program)
        shapes = infer_shapes(graph)
    except ArchError:
        return None
    return compare_claims(graph, shapes, count_costs(graph, shapes))


def _naming_set(error: ArchError, program: Program, overrides) -> ArchError:
    """An error that the net's defaults do not make is --set's doing: say so, with the values
    (the error itself points at the line where the value was used)."""
    if not overrides:
        return error
    try:
        infer_shapes(build_graph(program))
    except ArchError as default_error:
        if default_error.diagnostics() == error.diagnostics():
            return error  # the net is wrong whatever --set says
    given = " ".join(f"--set {name}={value}" for name, value in overrides.items())
    note = Note(None, f"the net was built with {given}; its defaults build without this error")
    return ArchError(error.message, error.span, error.notes + (note,), error.more)
