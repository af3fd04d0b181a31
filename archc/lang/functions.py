"""Functions: the integer helpers an expression may call, for widths and depths.

`divisible(c * 0.75, 8)` is torchvision's `_make_divisible` (MobileNet, EfficientNet, MnasNet's
`_round_to_multiple_of`, RegNet's width quantisation): the nearest multiple of the divisor, at
least the divisor, and never under 90% of the value. `ceil` and `floor` round a depth
(EfficientNet's `ceil(layers * depth)`) and `round` to the nearest (halves to even, as Python's
`round` and numpy's do); `min` and `max` bound a width (`max(1, c / 4)`); `log` (natural) and
`pow` compute RegNet's widths (`w0 * pow(wm, round(log(wa * j / w0 + 1) / log(wm)))`).

Each is one `Function`: how the front end computes it, and how an emitted module writes it
(a builtin, a `math` function, or a helper the emitted file defines once). `real` says that
its arguments are real numbers: emitted code divides with `/` inside it, where a width's own
division (exact, checked) is written `//`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


def _numbers(*args) -> None:
    return None  # any numbers


def _divisor(value, divisor) -> str | None:
    if not isinstance(divisor, int) or divisor < 1:
        return f"divisible's divisor is a whole number of at least 1, got {divisor}"
    return None


def _positive(value) -> str | None:
    return None if value > 0 else f"log takes a number above 0, got {value}"


def _power(base, exponent) -> str | None:
    if base == 0 and exponent < 0:
        return f"pow(0, {exponent}) divides by zero"
    if base < 0 and not float(exponent).is_integer():
        return f"pow({base}, {exponent}) is not a real number"
    if base != 0 and abs(exponent) * math.log10(abs(base)) > 18:
        return f"pow({base}, {exponent}) is too large"
    return None


def make_divisible(value: float, divisor: int) -> int:
    """torchvision's `_make_divisible(v, divisor)` (min_value = divisor), exactly."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded  # never down by over 10%


MAKE_DIVISIBLE_SOURCE = '''\
def make_divisible(value, divisor):
    """The multiple of `divisor` nearest `value`, at least `divisor` and never under 90% of
    `value` (torchvision's `_make_divisible`)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded'''


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[str, ...]  # what the arguments are, for messages
    compute: Callable[..., int | float]
    python: str  # the name emitted code calls
    helper: str  # what an emitted file needs for it, once: an import or a definition
    real: bool  # its arguments are real numbers (see the module docstring)
    refuse: Callable[..., str | None]  # why these arguments are wrong, or None


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("divisible", ("value", "divisor"), make_divisible, "make_divisible",
             MAKE_DIVISIBLE_SOURCE, real=True, refuse=_divisor),
    Function("ceil", ("value",), math.ceil, "math.ceil", "import math", real=True,
             refuse=_numbers),
    Function("floor", ("value",), math.floor, "math.floor", "import math", real=True,
             refuse=_numbers),
    Function("round", ("value",), round, "round", "", real=True, refuse=_numbers),
    Function("log", ("value",), math.log, "math.log", "import math", real=True,
             refuse=_positive),
    Function("pow", ("base", "exponent"), math.pow, "math.pow", "import math", real=True,
             refuse=_power),
    Function("min", ("a", "b"), min, "min", "", real=False, refuse=_numbers),
    Function("max", ("a", "b"), max, "max", "", real=False, refuse=_numbers),
)}
