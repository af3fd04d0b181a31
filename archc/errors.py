"""Source spans, the one error type, and the one renderer.

Every stage reports a user's mistake by raising `ArchError` with the `Span` of the text at
fault; notes (more spans) say where a block was used from. `render` prints it as a compiler
does:

    nets/bad.arch:12:5: error: concat inputs differ in height: 28 vs 14
       12 |     concat {
          |     ^^^^^^

Warnings (a `paper` value that differs) are `Diagnostic`s with severity "warning", rendered the
same way. Nothing here knows about the language.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A file's path (as the user named it) and its text. Compared by identity."""

    path: str
    text: str = field(repr=False)

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A range of source text, 1-based lines and columns, end column exclusive."""

    source: Source
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def point(source: Source, line: int, col: int) -> Span:
        return Span(source, line, col, line, col + 1)


@dataclass(frozen=True)
class Note:
    span: Span | None  # None: about the command line (`--set`), not the source
    message: str


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" or "warning"
    message: str
    span: Span | None
    notes: tuple[Note, ...] = ()

    def to_json(self) -> dict:
        """file, line, column, severity, message, notes: for editors and scripts."""
        where = _where(self.span)
        notes = [{**_where(n.span), "message": n.message} for n in self.notes]
        return {**where, "severity": self.severity, "message": self.message, "notes": notes}

    def render(self) -> str:
        parts = [_render_one(self.span, self.severity, self.message)]
        parts += [_render_one(n.span, "note", n.message) for n in self.notes]
        return "\n".join(parts)


@dataclass
class ArchError(Exception):
    """A mistake in the user's program. The CLI prints it and exits 1; never a traceback.

    `more`: the further, independent mistakes a stage found in the same pass (a compiler
    reports them all); the error itself is the first.
    """

    message: str
    span: Span | None = None
    notes: tuple[Note, ...] = field(default=())
    more: tuple[ArchError, ...] = field(default=())

    def __str__(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics())

    def diagnostic(self) -> Diagnostic:
        return Diagnostic("error", self.message, self.span, self.notes)

    def diagnostics(self) -> list[Diagnostic]:
        return [self.diagnostic(), *(e.diagnostic() for e in self.more)]

    @staticmethod
    def of(errors: list[ArchError]) -> ArchError:
        """One error for several: the first, carrying the rest."""
        first = errors[0]
        return ArchError(first.message, first.span, first.notes, tuple(errors[1:]))


class ErrorList:
    """The errors of one stage, each once (a block used nine times fails once), at most
    `MAX_ERRORS` of them: past that, the stage stops."""

    MAX_ERRORS = 20

    def __init__(self):
        self.errors: list[ArchError] = []
        self._seen: set[tuple] = set()

    def add(self, error: ArchError) -> None:
        where = error.span and (error.span.source.path, error.span.line, error.span.col)
        if (error.message, where) not in self._seen:
            self._seen.add((error.message, where))
            self.errors += [error, *error.more]
        if len(self.errors) >= self.MAX_ERRORS:
            raise ArchError.of(self.errors)

    def raise_any(self) -> None:
        if self.errors:
            raise ArchError.of(self.errors)



class UsageError(Exception):
    """A mistake on the command line (unknown --set name, unreadable file): exit status 2."""


def _where(span: Span | None) -> dict:
    if span is None:
        return {"file": None, "line": None, "column": None}
    return {"file": span.source.path, "line": span.line, "column": span.col}


def _render_one(span: Span | None, severity: str, message: str) -> str:
    if span is None:
        return f"archc: {severity}: {message}"
    head = f"{span.source.path}:{span.line}:{span.col}: {severity}: {message}"
    # One column a character, and nothing a terminal would act on (a binary file's bytes).
    text = "".join(c if c.isprintable() else " " if c == "\t" else "?"
                   for c in span.source.line(span.line))
    gutter = f"{span.line:>5} | "
    width = span.end_col - span.col if span.end_line == span.line else len(text) - span.col + 1
    text, col, width = _cut(text, span.col, max(1, width))
    carets = " " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" * width
    return f"{head}\n{gutter}{text}\n{carets}"


MAX_SHOWN = 150  # columns of a source line shown under a message; a longer line is cut


def _cut(text: str, col: int, width: int) -> tuple[str, int, int]:
    """A line of at most about MAX_SHOWN columns around the span (a one-line file of megabytes
    must not be echoed whole), the span's column in it and its width, both cut to fit."""
    if len(text) <= MAX_SHOWN:
        return text, col, width
    start = max(0, min(col - 1 - MAX_SHOWN // 3, len(text) - MAX_SHOWN))
    end = start + MAX_SHOWN
    shown = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    col = col - start + (3 if start else 0)
    return shown, col, max(1, min(width, len(shown) - col + 1))
