"""Sweep: a net's counts over a grid of its parameters, the points a budget admits, the front.

`grid({"alpha": "0.5:1.5:0.25", "classes": "10"})` is every combination of the values each
range gives (LO:HI:STEP, both ends included, or one value); `sweep(path, grid)` analyses the
net at each point (the front end only: tens of milliseconds a point) and keeps each point's
params, weights, MACs and activations, or the error that point's program has, located as
`archc check` prints it. `where("macs<600M and params<5M")` is a budget over those counts and
the parameters; `front(points)` marks the points no other point beats on both params and MACs
(the Pareto front of the two costs). Torch-free.
"""

from __future__ import annotations

import itertools
import operator
import re
from dataclasses import dataclass, field
from decimal import Decimal

from archc.errors import ArchError, UsageError
from archc.lang.units import parse_count

COUNTS = ("params", "weights", "macs", "activations", "depth")
OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
             "==": operator.eq, "!=": operator.ne}
MAX_POINTS = 100_000  # a sweep is seconds to minutes; more is a typo in a step


@dataclass
class Point:
    values: dict[str, int | float]
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # the point's located error, as archc check prints it
    admitted: bool = True  # within --where
    front: bool = False  # on the Pareto front of params and MACs
    latency_ms: float | None = None  # `--latency`: the modelled time of its Triton kernels

    def to_json(self) -> dict:
        data = {"set": self.values, **self.counts}
        if self.latency_ms is not None:
            data["latency_ms"] = self.latency_ms
        if self.error:
            data["error"] = self.error
        return {**data, "admitted": self.admitted and not self.error, "front": self.front}


def grid(ranges: dict[str, str]) -> list[dict[str, int | float]]:
    axes = {name: _values(name, text) for name, text in ranges.items()}
    total = 1
    for values in axes.values():
        total *= len(values)
    if total > MAX_POINTS:
        raise UsageError(f"the sweep has {total:,} points, over {MAX_POINTS:,}: widen a step")
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def _values(name: str, text: str) -> list[int | float]:
    """`0.5:1.5:0.25` (ends included, decimal steps exact) or a single value."""
    parts = text.split(":")
    try:
        numbers = [Decimal(p) for p in parts]
    except ArithmeticError:
        raise UsageError(f"--set {name}={text}: give a number or LO:HI:STEP") from None
    if len(parts) == 1:
        return [_number(numbers[0])]
    if len(parts) != 3 or numbers[2] <= 0 or numbers[1] < numbers[0]:
        raise UsageError(f"--set {name}={text}: a range is LO:HI:STEP with LO <= HI and a "
                         "step above 0")
    low, high, step = numbers
    count = int((high - low) / step) + 1
    if count > MAX_POINTS:
        raise UsageError(f"--set {name}={text}: {count:,} values, over {MAX_POINTS:,}")
    return [_number(low + i * step) for i in range(count)]


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() and "." not in str(value) \
        and "E" not in str(value) else float(value)


def sweep(path: str, points: list[dict[str, int | float]], progress=None) -> list[Point]:
    from archc.pipeline import analyse
    from archc.report.stats import stats

    out = []
    for values in points:
        point = Point(dict(values))
        try:
            net = stats(analyse(path, values).raise_errors())
        except ArchError as error:
            point.error = str(error)
        else:
            point.counts = {"params": net.total.params, "weights": net.total.weights,
                            "macs": net.total.macs, "activations": net.activations,
                            "depth": net.depth}
        out.append(point)
        if progress:
            progress()
    return out


def where(text: str, points: list[Point]) -> None:
    """Mark the points that meet `text`: conditions joined by `and`, each `NAME OP VALUE`
    with NAME a count (params, weights, macs, activations, depth) or a swept parameter and
    VALUE a number with an optional unit (600M, 5M, 2.5G, 512Ki)."""
    conditions = [_condition(part.strip()) for part in re.split(r"\band\b", text)]
    for point in points:
        known = {**point.values, **point.counts}
        for name, _, _ in conditions:
            if name not in known and not point.error:
                raise UsageError(f"--where: unknown name '{name}' (counts: "
                                 f"{', '.join(COUNTS)}; parameters: "
                                 f"{', '.join(point.values) or 'none swept'})")
        point.admitted = not point.error and all(compare(known[name], value)
                                                 for name, compare, value in conditions)


def _condition(text: str):
    match = re.fullmatch(r"([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*([0-9.]+(?:Ki|Mi|Gi|K|M|G)?)",
                         text)
    if match is None:
        raise UsageError(f"--where: cannot read '{text}'; write e.g. macs<600M and params<5M")
    name, op, value = match.groups()
    try:
        number = parse_count(value).value
    except ValueError:
        raise UsageError(f"--where: '{value}' is not a number") from None
    return name, OPERATORS[op], number


def front(points: list[Point]) -> None:
    """Mark the admitted points that no other admitted point beats on params and MACs."""
    kept = [p for p in points if p.admitted and not p.error]
    for p in kept:
        p.front = not any(q.counts["params"] <= p.counts["params"] and
                          q.counts["macs"] <= p.counts["macs"] and
                          (q.counts["params"], q.counts["macs"]) !=
                          (p.counts["params"], p.counts["macs"]) for q in kept)
