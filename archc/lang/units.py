"""Counts as printed in papers and annotations: `2.7Ki`, `34M`, `966986`, `1%`.

A unit is part of the number: Ki = 1024 (GoogLeNet's Table 1 counts params in units of 1024),
K = 1000, M = 10^6, G = 10^9. Values are exact fractions; `ulp` is one unit of the last printed
digit (2.7Ki -> 0.1Ki), which is how far a printed number may be from the truth and still match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
_COUNT = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?(?P<unit>Ki|Mi|Gi|K|M|G|%)?")


@dataclass(frozen=True)
class Count:
    text: str
    value: Fraction  # in plain units (or percent when `percent`)
    ulp: Fraction
    unit: str
    percent: bool


def parse_count(text: str) -> Count:
    match = _COUNT.fullmatch(text)
    if match is None:  # the grammar's QUANTITY token only admits this form
        raise ValueError(text)
    unit = match["unit"] or ""
    frac = match["frac"] or ""
    scale = 1 if unit == "%" else UNITS[unit]
    mantissa = Fraction(int(match["int"] + frac), 10 ** len(frac))
    return Count(text, mantissa * scale, Fraction(scale, 10 ** len(frac)), unit, unit == "%")


def in_unit(n: int, count: Count) -> str:
    """`n` written in the unit of `count`, one more decimal than it was printed with."""
    if count.unit in ("", "%"):
        return f"{n:,}"
    decimals = len(count.text.split(".")[1].rstrip("KMGi%")) + 1 if "." in count.text else 1
    return f"{n / UNITS[count.unit]:.{decimals}f}{count.unit}"
