"""The canonical printer: a parsed file back to .arch text, comments kept (`archc fmt`).

What is canonical: four spaces a level; one space between an op's arguments, `key=value`
without spaces, `name = default` in a parameter list, expressions spaced (`in_channels * t`)
with the parentheses their precedence needs and those an argument needs to be one (`conv 1x1
(c + 1)`); at most one blank line in a row; the annotations (`expect`, `paper`) of the lines
of one run aligned in columns, two spaces apart. What the author chose is kept: which
statements share a line (`conv 3x3 32; bn; relu`), which braces open onto lines of their own,
where a parameter list breaks, numbers as typed (`1e-6`), every comment where it stood.

`print_file(file, text)` needs the source text for the comments and the numbers; parsing its
output gives the same program (tests/test_fmt.py), and printing that again the same text.
"""

from __future__ import annotations

import re

from archc.errors import ArchError, Span
from archc.lang import ast

INDENT = "    "
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
ATOM = 3


def print_file(file: ast.File, text: str) -> str:
    """The canonical text of `file` (parsed from `text`). An ArchError where a comment has no
    place in it (inside a parameter list or a block use's arguments broken over lines): the
    printer never drops one."""
    printer = _Printer(text)
    printed = printer.file(file)
    kept = set(printed.split("\n"))
    for line, comment in _Printer(text).comments.items():
        if not any(comment in printed_line for printed_line in kept):
            raise ArchError("archc fmt has no place for this comment inside a statement "
                            "broken over lines; move it to a line of its own",
                            Span(file.span.source, line, 1, line, 2))
    return printed


def format_text(text: str, path: str) -> str:
    """`text`, the source of the file `path`, in the canonical layout (`archc fmt`)."""
    from archc.lang.parser import parse

    return print_file(parse(text, path), text)


def print_definition(definition: ast.BlockDef | ast.NetDef) -> str:
    """One block's or net's canonical text, with the comments inside it."""
    printer = _Printer(definition.span.source.text)
    printer.done = definition.span.line - 1
    printer._definition(definition)
    return "\n".join(printer.out) + "\n"


class _Printer:
    def __init__(self, text: str):
        self.text = text.replace("\r\n", "\n").removeprefix("\ufeff")
        self.lines = self.text.split("\n")
        self.comments = {n: c for n, line in enumerate(self.lines, 1) if (c := _comment(line))}
        self.done = 0  # the last source line whose comments and blank lines are printed
        self.out: list[str] = []

    # ---- layout ------------------------------------------------------------------------------

    def file(self, file: ast.File) -> str:
        items = sorted([*file.uses, *file.blocks, *file.nets], key=lambda i: i.span.line)
        for item in items:
            self._gap(item.span.line, "")
            if isinstance(item, ast.Use):
                self._emit("", f'use "{item.path}"', item.span.line)
            else:
                self._definition(item)
        self._gap(len(self.lines) + 1, "")
        while self.out and not self.out[-1]:
            self.out.pop()
        return "\n".join(self.out) + "\n"

    def _definition(self, item: ast.BlockDef | ast.NetDef) -> None:
        kind = "block" if isinstance(item, ast.BlockDef) else "net"
        head = f"{kind} {item.name}" + self._params(item.params)
        if item.span.end_line == item.span.line:  # as the author wrote it: one line
            inner = "; ".join(self.stmt_code(s) + "".join("  " + self.annotation(a)
                                                          for a in s.annotations)
                              for s in item.body)
            self._emit("", f"{head} {{ {inner} }}" if inner else f"{head} {{ }}", item.span.line)
            return
        self._body(head, item.body, "", item.span)

    def _params(self, params: tuple[ast.Param, ...]) -> str:
        if not params:
            return ""
        text, line = "(", params[0].span.line
        for i, param in enumerate(params):
            one = param.name + ("" if param.default is None else f" = {expr(param.default, self)}")
            if param.span.line > line:  # the author broke the list here
                text, line = text + ",\n" + INDENT, param.span.line
            elif i:
                text += ", "
            text += one
        return text + ")"

    def _body(self, head: str, body: tuple[ast.Stmt, ...], indent: str, span: ast.Span,
              tail: str = "") -> None:
        """`head {`, the statements a level in, then `}` and `tail` (a repeat, annotations)."""
        self._emit(indent, f"{head} {{" if head else "{", span.line)
        self._statements(body, indent + INDENT)
        self._gap(span.end_line, indent + INDENT)
        self._emit(indent, "}" + tail, span.end_line)

    def _statements(self, body: tuple[ast.Stmt, ...], indent: str) -> None:
        lines = _by_line(body)
        run: list[tuple[str, list[str], int]] = []  # one-line statements awaiting alignment
        for group in lines:
            first, last = group[0], group[-1]
            if self._has_gap(first.span.line) or _multiline(last):
                self._flush(run, indent)  # a comment or a blank line ends a run
            self._gap(first.span.line, indent)
            if _multiline(last):
                self._multiline_group(group, indent)
                continue
            code = "; ".join(self.stmt_code(s) for s in group)
            run.append((code, [self.annotation(a) for a in last.annotations], last.span.line))
            self.done = last.span.end_line
        self._flush(run, indent)

    def _multiline_group(self, group: list[ast.Stmt], indent: str) -> None:
        *before, last = group
        lead = "".join(self.stmt_code(s) + "; " for s in before)
        core = last.core
        label = f"{last.label}: " if last.label else ""
        tail = self._repeat(last) + "".join("  " + self.annotation(a)
                                            for a in last.annotations)
        if isinstance(core, ast.Head):
            head = (f"head {core.name} from {core.source_label} weight "
                    f"{expr(core.weight, self, ATOM)}")
            self._body(lead + label + head, core.body, indent, core.span, tail)
        else:
            keyword = "" if isinstance(core, ast.Group) else core.kind + " "
            body = core.body if isinstance(core, ast.Group) else core.branches
            self._body((lead + label + keyword).rstrip(), body, indent, core.span, tail)
        self.done = max(self.done, last.span.end_line)

    def _flush(self, run: list[tuple[str, list[str], int]], indent: str) -> None:
        """Print one-line statements, their annotations aligned in columns."""
        widths: list[int] = []
        for code, notes, _ in run:
            for i, column in enumerate([code, *notes][:-1] if code else []):
                widths += [0] * (i + 1 - len(widths))
                widths[i] = max(widths[i], len(column))
        for code, notes, line in run:
            if not code:  # annotations of the whole net: a line of their own
                self._emit(indent, "  ".join(notes), line)
                continue
            columns = [code, *notes]
            text = "".join(c.ljust(widths[i]) + "  " for i, c in enumerate(columns[:-1]))
            self._emit(indent, text + columns[-1], line)
        run.clear()

    def _has_gap(self, line: int) -> bool:
        return any(not self.lines[n - 1].strip() or self.lines[n - 1].strip().startswith("#")
                   for n in range(self.done + 1, line))

    def _gap(self, line: int, indent: str) -> bool:
        """The comments and blank lines before source line `line`: printed; whether any."""
        printed = False
        for n in range(self.done + 1, line):
            if n in self.comments and not self.lines[n - 1].strip().startswith("#"):
                continue  # a trailing comment: its line's statement prints it
            if n in self.comments:
                self.out.append(indent + self.comments[n])
            elif self.out and self.out[-1] and not self.lines[n - 1].strip():
                self.out.append("")
            else:
                continue
            printed = True
        self.done = max(self.done, line - 1)
        return printed

    def _emit(self, indent: str, text: str, line: int) -> None:
        """`text` at `indent`, with the trailing comment of source line `line`."""
        lines = text.split("\n")
        lines[0] = indent + lines[0]
        if line in self.comments and not self.lines[line - 1].strip().startswith("#"):
            lines[0] += "  " + self.comments.pop(line)  # the text's first line is `line`
        self.out.extend(lines)
        self.done = max(self.done, line)

    # ---- statements --------------------------------------------------------------------------

    def stmt_code(self, stmt: ast.Stmt) -> str:
        """A one-line statement without its annotations."""
        label = f"{stmt.label}: " if stmt.label else ""
        return label + self.core(stmt.core) + self._repeat(stmt) if stmt.core else ""

    def _repeat(self, stmt: ast.Stmt) -> str:
        if stmt.repeat == 1 and stmt.index is None:
            return ""
        count = f" x{stmt.repeat}" if isinstance(stmt.repeat, int) else \
            f" x({expr(stmt.repeat, self)})"
        return count + (f" as {stmt.index.name}" if stmt.index else "")

    def core(self, core: ast.Core) -> str:
        if isinstance(core, ast.Op):
            return " ".join([core.name, *(self.arg(a) for a in core.args)])
        if isinstance(core, ast.Default):
            return " ".join(["default", core.op, *(self.arg(a) for a in core.args)])
        if isinstance(core, ast.BlockUse):
            return f"{core.name}({', '.join(expr(a, self) for a in core.args)})"
        if isinstance(core, ast.Head):
            inner = "; ".join(self.stmt_code(s) for s in core.body)
            return (f"head {core.name} from {core.source_label} weight "
                    f"{expr(core.weight, self, ATOM)} {{ {inner} }}")
        body = core.body if isinstance(core, ast.Group) else core.branches
        inner = "; ".join(self.stmt_code(s) for s in body)
        braces = f"{{ {inner} }}" if inner else "{ }"
        return braces if isinstance(core, ast.Group) else f"{core.kind} {braces}"

    def arg(self, arg: ast.Arg) -> str:
        """An op's argument: a window, a word, a number as typed, `key=value`, `(expr)`."""
        if isinstance(arg, ast.KeyArg):
            return f"{arg.key}={self.arg(arg.value)}"
        if isinstance(arg, (ast.BinOp, ast.Call)) or \
                isinstance(arg, ast.Neg) and not isinstance(arg.operand, ast.Num):
            return f"({expr(arg, self)})"
        return expr(arg, self, ATOM)

    def annotation(self, annotation: ast.Annotation) -> str:
        items = [window(annotation.shape)] if annotation.shape else []
        items += [f"{key}={quantity.text}" for key, quantity in annotation.counts]
        return " ".join([annotation.kind, *items])

    def text_of(self, span: ast.Span) -> str:
        return ast.text(span) if span.end_line == span.line else ""


def expr(e, printer: _Printer, outer: int = 0) -> str:
    """An expression, parenthesised where its place binds tighter than it does."""
    if isinstance(e, ast.Num):
        typed = printer.text_of(e.span)
        return typed if _same_number(typed, e.value) else repr(e.value)
    if isinstance(e, ast.Ref):
        return e.name
    if isinstance(e, ast.Window):
        return window(e)
    if isinstance(e, ast.Neg):
        return f"-{expr(e.operand, printer, ATOM)}"
    if isinstance(e, ast.Call):
        return f"{e.name}({', '.join(expr(a, printer) for a in e.args)})"
    level = PRECEDENCE[e.op]
    text = f"{expr(e.left, printer, level)} {e.op} {expr(e.right, printer, level + 1)}"
    return f"({text})" if level < outer else text


def window(w: ast.Window) -> str:
    def size(d: int | str) -> str:
        return str(d) if isinstance(d, int) else f"({d})"

    stride = "" if w.stride is None else f"/{size(w.stride)}"
    return "x".join(size(d) for d in w.dims) + stride


def _same_number(typed: str, value) -> bool:
    try:
        return float(typed) == value and re.fullmatch(r"-?[0-9.eE+-]+", typed) is not None
    except ValueError:
        return False


def _comment(line: str) -> str | None:
    """The comment on a source line (`#` outside a `use` path's quotes), or None."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[i:].rstrip()
    return None


def _by_line(body: tuple[ast.Stmt, ...]) -> list[list[ast.Stmt]]:
    """The statements in groups that share a source line (`conv 3x3 32; bn; relu`)."""
    groups: list[list[ast.Stmt]] = []
    for stmt in body:
        if groups and groups[-1][-1].span.end_line == stmt.span.line and \
                not _multiline(groups[-1][-1]):
            groups[-1].append(stmt)
        else:
            groups.append([stmt])
    return groups


def _multiline(stmt: ast.Stmt) -> bool:
    """A group, concat or head whose braces the author opened onto lines of their own."""
    return isinstance(stmt.core, (ast.Group, ast.Concat, ast.Head)) and \
        stmt.core.span.end_line > stmt.core.span.line
