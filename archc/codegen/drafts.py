"""Drafts: the classes of one emitted file, as the scopes write them, shared and rendered.

Every use of a block writes its class again (`Draft`), lines of code each with the shape its
comment will show (`Note`). `Classes` gives uses that wrote the same code one class, and
renders it with each comment merged from what every use saw there: numbers where the uses
agree, `H x W` (the class's input size) where they differ, `H/2 x W/2` or `H/s x W/s` (a
stride parameter) where each use divides it alike. A comment that would make its line
longer than `LINE_LENGTH` goes on the line above.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.analysis.shapes import Shape
from archc.codegen.names import RESERVED, unique

LINE_LENGTH = 100


@dataclass(frozen=True)
class Note:
    """What a line's comment shows: one value's shape, as one use of the class sees it."""

    width: str  # the channels, as the class's code computes them
    shape: Shape
    input: Shape  # the class's input, which `H x W` stands for
    flat: bool  # an N x C value
    params: tuple[tuple[str, int], ...] = ()  # the use's whole-number arguments, by Python name


@dataclass
class Draft:
    code: list[str]
    notes: list[Note | None]

    def add(self, code: str, note: Note | None = None) -> None:
        self.code.append(code)
        self.notes.append(note)

    def extend(self, other: Draft) -> None:
        self.code += other.code
        self.notes += other.notes


class Classes:
    def __init__(self):
        self.names: dict[tuple, str] = {}  # (kind, code) -> class name
        self.drafts: dict[str, list[Draft]] = {}  # class name -> its drafts, in file order

    def register(self, kind: str, base_name: str, draft: Draft) -> str:
        """The class `draft` belongs to: an existing one with the same code, or a new one."""
        key = (kind, tuple(draft.code))
        if key not in self.names:
            name = unique(base_name, set(self.names.values()) | RESERVED)
            self.names[key] = name
            self.drafts[name] = []
        self.drafts[self.names[key]].append(draft)
        return self.names[key]

    def render(self) -> list[str]:
        return [self._render(name) for name in self.drafts]

    def _render(self, name: str) -> str:
        drafts = self.drafts[name]
        lines = [f"class {name}(nn.Module):"]
        for i, code in enumerate(drafts[0].code):
            code = wrapped(code)
            notes = [d.notes[i] for d in drafts]
            comment = "" if notes[0] is None else f"  # {comment_for(notes)}"
            if comment and len(code.splitlines()[-1] + comment) > LINE_LENGTH:
                indent = code[: len(code) - len(code.lstrip())]
                lines.append(f"{indent}{comment.lstrip()}")
                comment = ""
            lines.append(code + comment)
        return "\n".join(lines) + "\n"


def wrapped(code: str) -> str:
    """A one-line call longer than `LINE_LENGTH` with its arguments on the lines after it, as
    many to a line as fit: `y = f(\n    a, b,\n    c)` (a container's row keeps its comma).
    Other lines as they are."""
    if code.endswith(",") and len(code) > LINE_LENGTH:
        return wrapped(code[:-1]) + ","
    opening = _outer_call(code)
    if len(code) <= LINE_LENGTH or "\n" in code or opening is None:
        return code
    indent = " " * (len(code) - len(code.lstrip()) + 4)
    lines, line = [code[: opening + 1]], indent
    arguments = _split_arguments(code[opening + 1: -1])
    for k, argument in enumerate(arguments):
        piece = argument + ("," if k + 1 < len(arguments) else ")")
        if line != indent and len(line) + 1 + len(piece) > LINE_LENGTH:
            lines.append(line)
            line = indent
        line += ("" if line == indent else " ") + piece
    return "\n".join(lines + [line])


def _outer_call(code: str) -> int | None:
    """Where the parenthesis opens whose match ends `code`, if one does (a line with a
    comment is left alone)."""
    depth, quote, opening = 0, None, None
    for i, c in enumerate(code):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#":
            return None
        elif c == "(":
            opening = i if depth == 0 else opening
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i == len(code) - 1:
                return opening
    return None


def _split_arguments(text: str) -> list[str]:
    """`a, f(b, c), d='x, y'` -> its top-level arguments."""
    parts, depth, quote, start = [], 0, None, 0
    for i, c in enumerate(text):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


def _strided(notes: list[Note]) -> str | None:
    """`H/2 x W/2` where every use divides the input's size by 2 (rounding either way), or
    `H/s x W/s` where each divides it by its own value of a parameter (a stride)."""
    ratios = [_ratio(n.input, n.shape) for n in notes]
    if None in ratios:
        return None
    if len(set(ratios)) == 1:
        return f"H/{ratios[0]} x W/{ratios[0]}"
    for name, _ in notes[0].params:
        if all(dict(n.params).get(name) == r for n, r in zip(notes, ratios)):
            return f"H/{name} x W/{name}"
    return None


def _ratio(before: Shape, after: Shape) -> int | None:
    """The whole number r with after = before / r (rounded down or up) in both dimensions."""
    r = max(1, round(before.h / max(after.h, 1)))
    fits = all(size // r == out or -(-size // r) == out
               for size, out in ((before.h, after.h), (before.w, after.w)))
    return r if fits else None


def comment_for(notes: list[Note]) -> str:
    """A shape comment for a line of a class, from what each use of the class sees there."""
    first = notes[0]
    if first.flat:
        return first.width
    sizes = sorted({(n.shape.h, n.shape.w) for n in notes})
    if len(sizes) == 1 and first.width.isdigit():
        return f"{first.width}x{sizes[0][0]}x{sizes[0][1]}"
    if len(sizes) == 1:
        spatial = f"{sizes[0][0]} x {sizes[0][1]}"
    elif all((n.shape.h, n.shape.w) == (n.input.h, n.input.w) for n in notes):
        spatial = "H x W"
    else:
        spatial = _strided(notes) or " or ".join(f"{h}x{w}" for h, w in sizes)
    width = first.width if first.width.isidentifier() else f"({first.width})"
    return f"{width} x {spatial}"
