"""Check: compare every `expect` and `paper` claim with the computed shapes and costs.

Contract: `compare` gives, for one claim, each printed value beside the computed one and
whether they agree; `compare_claims` does it for every claim (the `Analysis` keeps the result,
which the report reads); `diagnose` turns disagreements into diagnostics. `unused_blocks` warns
of a block the net's own file defines and never uses.

Claims and --set: an `expect` or `paper` value is written for the net as its defaults build it.
Under --set the pipeline builds the defaults too (`under_defaults`): a claim whose computed
values are the same in both builds is checked as usual; one whose values --set changed is not
checked, and a note says so with both values. An `expect` is
enforced (an error): a shape must be equal; a count must be equal, or within `tol=` (`1%`
relative, or an absolute count). A `paper` value is shown, never enforced (a warning): it
agrees when the computed value is within one unit of its last printed digit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from archc.analysis.cost import Cost, total
from archc.analysis.shapes import Shape
from archc.errors import ArchError, Diagnostic, Span
from archc.ir.graph import Claim, Graph
from archc.lang import ast
from archc.lang.units import Count, in_unit, parse_count

COUNT_KEYS = ("params", "weights", "macs")


@dataclass(frozen=True)
class Comparison:
    key: str  # "shape" or one of COUNT_KEYS
    printed: str
    computed: str  # in the printed unit
    agrees: bool
    span: Span
    default: str | None = None  # under --set: the value with the net's defaults, if it differs


def compare(claim: Claim, shapes: dict[int, Shape], costs: dict[int, Cost]) -> list[Comparison]:
    annotation = claim.annotation
    counts = dict(annotation.counts)
    for key, quantity in annotation.counts:
        if key not in COUNT_KEYS + ("tol",) or (key == "tol" and annotation.kind == "paper"):
            allowed = COUNT_KEYS + (("tol",) if annotation.kind == "expect" else ())
            raise ArchError(f"'{annotation.kind}' knows no '{key}' (it takes: "
                            f"{', '.join(allowed)})", quantity.span, claim.notes)
    tol = parse_count(counts["tol"].text) if "tol" in counts else None
    result = []
    if annotation.shape is not None:
        if len(annotation.shape.dims) != 3 or annotation.shape.stride is not None:
            raise ArchError("a shape is written CxHxW, e.g. 256x28x28", annotation.shape.span,
                            claim.notes)
        actual = shapes[claim.output]
        printed = "x".join(map(str, annotation.shape.dims))
        result.append(Comparison("shape", printed, str(actual), printed == str(actual),
                                 annotation.shape.span))
    cost = total(costs, claim.nodes)
    for key, quantity in annotation.counts:
        if key == "tol":
            continue
        count = parse_count(quantity.text)
        if count.percent:
            raise ArchError("a percentage is a tolerance: write tol=1%", quantity.span,
                            claim.notes)
        actual = getattr(cost, key)
        agrees = _agrees(actual, count, tol, annotation.kind)
        result.append(Comparison(key, quantity.text, in_unit(actual, count), agrees,
                                 quantity.span))
    return result


def _agrees(actual: int, count: Count, tol: Count | None, kind: str) -> bool:
    if kind == "paper":
        return abs(actual - count.value) <= count.ulp
    if tol is None:
        return actual == count.value
    allowed = count.value * tol.value / 100 if tol.percent else tol.value
    return abs(actual - count.value) <= allowed


@dataclass(frozen=True)
class Checked:
    claim: Claim
    comparisons: tuple[Comparison, ...]


def compare_claims(graph: Graph, shapes: dict[int, Shape],
                   costs: dict[int, Cost]) -> list[Checked]:
    return [Checked(claim, tuple(compare(claim, shapes, costs))) for claim in graph.claims]


def under_defaults(checked: list[Checked], defaults: list[Checked] | None) -> list[Checked]:
    """`checked` (a build with --set), each comparison given the value of the default build
    (`defaults`: the same claims in the same order) where the two differ; every one marked
    uncompared where the defaults do not build (None)."""
    if defaults is None:
        return [Checked(c.claim, tuple(replace(x, default="an error") for x in c.comparisons))
                for c in checked]

    def merge(now: Comparison, then: Comparison) -> Comparison:
        return now if now.computed == then.computed else replace(now, default=then.computed)

    return [Checked(now.claim, tuple(map(merge, now.comparisons, then.comparisons)))
            for now, then in zip(checked, defaults)]


def diagnose(checked: list[Checked]) -> list[Diagnostic]:
    """An error per failed `expect`, a warning per differing `paper` value, and a note per
    value that --set left unchecked."""
    diagnostics = []
    for check in checked:
        kind, notes = check.claim.annotation.kind, check.claim.notes
        for c in check.comparisons:
            what = "output" if c.key == "shape" else c.key
            if c.default is not None:
                message = (f"{kind} not checked: --set changed the {what} it speaks about "
                           f"({c.default} with the defaults, {c.computed} now)")
                diagnostics.append(Diagnostic("note", message, c.span, notes))
            elif not c.agrees and kind == "expect":
                message = f"expected {what} {c.printed}, computed {c.computed}"
                diagnostics.append(Diagnostic("error", message, c.span, notes))
            elif not c.agrees:
                message = f"the paper prints {c.key} {c.printed}; computed {c.computed}"
                diagnostics.append(Diagnostic("warning", message, c.span, notes))
    return diagnostics


def unused_blocks(graph: Graph, local: tuple[ast.BlockDef, ...]) -> list[Diagnostic]:
    """A warning at each block of the net's own file that the net never uses (a library's
    blocks are there to be picked from)."""
    used = {use.name for use in graph.block_uses}
    return [Diagnostic("warning", f"block '{block.name}' is never used", ast.first_line(block))
            for block in local if block.name not in used]

