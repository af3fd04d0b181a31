"""Parse: .arch text -> `ast.File`. The only module that imports Lark.

Lark parses with LALR. Its tables ship as JSON beside the grammar
(grammars/arch_tables.json, made by `python -m archc.lang.parser` and stamped with the
grammar's hash): no cache file is ever read and nothing is unpickled, so nothing a user's cache
folder holds can run as code.
`_ToAst` turns the tree into frozen dataclasses with spans, and the tree never leaves this
module. Every user
mistake is a syntax error mapped here to an `ArchError` at the right line and column, end of
input included; `_ToAst` raises one of its own, at the token: an `expect` shape written with a
parameter's name (`expect 64x(size)x(size)`), which claims compare as numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from archc.errors import ArchError, Note, Source, Span
from archc.lang import ast
from archc.lang.ast import MAX_LAYERS
from archc.lang.functions import FUNCTIONS

# What the user is told a terminal is, in "expected ..." messages.
TERMINAL_NAMES = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "NEG_INT": "an integer",
    "NEG_FLOAT": "a number",
    "WINDOW": "a size such as 3x3 or 7x7/2",
    "LABEL": "a label", "LABEL_REF": "a label", "REPEAT": "a repetition such as x4",
    "REPEAT_OPEN": "a repetition such as x(blocks)",
    "QUANTITY": "a count such as 112Ki", "STRING": 'a quoted path', "_SEP": "a new line",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "COMMA": "','",
    "EQUAL": "'='", "SLASH": "'/'", "COLON": "':'", "$END": "end of file",
    "EXPECT": "'expect'", "PAPER": "'paper'", "MINUS": "'-'", "PLUS": "'+'", "STAR": "'*'",
}

# Common mistakes, told by what the parser expected and what it found. (Lark's match_examples
# compares parser states, which Lark 1.3 no longer makes comparable, so this is by hand.)
STATEMENT_START = ("a statement starts with an op, a block use, a label, '{', 'concat', "
                   "'sum', 'mul', 'default' or 'head'")


BODIES = ("a group '{ ... }'", "'concat'", "'sum'", "'mul'", "'head'", "'block'", "'net'")
STATEMENT_WORD = re.compile(r"(?:^|[\n;{:])[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*$")  # `mul {`
REPETITION = re.compile(r"x([0-9]+|\()")


def _known_mistake(error: UnexpectedInput, text: str) -> str | None:
    if not isinstance(error, UnexpectedToken):
        return None
    expected, found = error.accepts or error.expected, error.token.type
    if "RPAR" in expected and found in ("_SEP", "RBRACE", "LBRACE", "$END"):
        return "missing ')'"
    if found == "LBRACE" and "LBRACE" not in expected:
        before = STATEMENT_WORD.search(text[:error.token.start_pos])
        word = f"'{before.group(1)}' takes no body" if before else "no body here"
        return f"{word}: only {', '.join(BODIES[:-1])} and {BODIES[-1]} take '{{ ... }}'"
    if found == "NAME" and REPETITION.match(text, error.token.start_pos):
        return "a repetition stands apart, after a space: `{ conv 3x3 64 } x2`"
    if "LABEL" in expected and found not in ("RBRACE", "$END"):
        return f"unexpected {_describe_token(error.token)}: {STATEMENT_START}"
    if found == "COMMA" and (call := _call_around(text, error.token.start_pos)):
        return (f"a call as an op's argument is wrapped in parentheses: ({call}(...)), as "
                "any expression there is")
    return None


def _call_around(text: str, at: int) -> str | None:
    """The function whose call's '(' encloses `at`, where the call stands as an op's
    argument (after a space: `conv 1x1 divisible(c * t, 8)`); else None."""
    depth = 0
    for i in range(at - 1, max(-1, at - 2000), -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(" and depth:
            depth -= 1
        elif text[i] == "(":
            name = re.search(r"(?<=[ \t])([A-Za-z_]\w*)$", text[:i])
            return name.group(1) if name and name.group(1) in FUNCTIONS else None
    return None


def grammar_path() -> Path:
    """grammars/arch.lark, the package `archc.grammars`: in a checkout, an editable install
    and a wheel alike (pyproject.toml maps the top-level folder in)."""
    return Path(str(files("archc.grammars") / "arch.lark"))


@cache
def _lark() -> Lark:
    grammar = grammar_path().read_text()
    tables = _shipped_tables(grammar)
    if tables is not None:
        return Lark._load_from_dict(tables["data"], tables["memo"])  # plain data: no pickle
    return build_lark(grammar)  # a grammar edited since the tables were made: correct, slower


def build_lark(grammar: str) -> Lark:
    # Punctuation is kept so that `_ToAst` computes spans itself: cheaper than Lark's
    # propagate_positions, which was a third of Lark's time on a large net.
    return Lark(grammar, parser="lalr", lexer="contextual", keep_all_tokens=True,
                maybe_placeholders=True)


def grammar_hash(grammar: str) -> str:
    return hashlib.sha256(grammar.encode()).hexdigest()


def tables_path() -> Path:
    return grammar_path().with_name("arch_tables.json")


def _shipped_tables(grammar: str) -> dict | None:
    """The tables beside the grammar, if they were made from this very grammar."""
    try:
        tables = json.loads(tables_path().read_text(), object_hook=_int_keys)
    except (OSError, ValueError):
        return None
    return tables if tables.get("grammar_sha256") == grammar_hash(grammar) else None


def tables_text(grammar: str) -> str:
    """grammars/arch_tables.json for `grammar`: Lark's LALR tables and terminals, as
    Lark's standalone generator embeds them, in JSON (tuples become lists, and the integer keys of
    state and rule numbers strings, which `_int_keys` turns back), and the grammar's hash."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = build_lark(grammar).memo_serialize([TerminalDef, Rule])
    tables = {"grammar_sha256": grammar_hash(grammar), "data": data, "memo": memo}
    return json.dumps(tables, indent=0, sort_keys=True) + "\n"


def _int_keys(table: dict) -> dict:
    """JSON's string keys back to Lark's integers (no name of the grammar is all digits)."""
    return {int(k) if k.isdigit() else k: v for k, v in table.items()}


def parse(text: str, path: str) -> ast.File:
    """Parse one file. Raises ArchError for any syntax error."""
    source = Source(path, text)
    _refuse_too_many_statements(text, source)
    _refuse_too_long_statements(text, source)
    try:
        tree = _lark().parse(text + "\n")
    except UnexpectedInput as error:
        raise _syntax_error(error, source, text) from None
    return _ToAst(source).transform(tree)


def syntax_errors(text: str, path: str, limit: int = 10) -> list[ArchError]:
    """Every syntax error of a file an editor shows, up to `limit`: after each, its line is
    blanked (positions kept) and the file parsed again. A line with a brace ends the search:
    without it the braces no longer pair, and what follows would be errors of archc's
    making. Empty when the file parses."""
    lines, errors = text.split("\n"), []
    while len(errors) < limit:
        try:
            parse("\n".join(lines), path)
            break
        except ArchError as error:
            if error.span is None or errors and (error.span.line, error.span.col) == \
                    (errors[-1].span.line, errors[-1].span.col):
                break
            errors.append(error)
            number = error.span.line - 1
            if number >= len(lines) or "{" in lines[number] or "}" in lines[number]:
                break
            lines[number] = " " * len(lines[number])
    return errors


def _refuse_too_many_statements(text: str, source: Source) -> None:
    """More statements than a net may have layers, refused before Lark starts: parsing them
    would take minutes and gigabytes only to be refused by the build (each statement a net
    uses makes at least one layer). Counted as lines and `;`s that hold anything but a
    comment, an upper bound that costs a fraction of a second for the largest source read."""
    if text.count("\n") + text.count(";") <= MAX_LAYERS:
        return
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        code = line.partition("#")[0]
        count += code.count(";") + bool(code.strip())
        if count > MAX_LAYERS:
            raise ArchError(f"more than {MAX_LAYERS:,} statements: more than a net may have "
                            "layers", Span.point(source, number, 1))


MAX_WORDS = 1_000  # in one statement; the longest any net needs hold a few dozen


def _refuse_too_long_statements(text: str, source: Source) -> None:
    """A statement of more words than any statement takes, refused before Lark reads it (a
    12 MB line of arguments took a minute and 2 GB to be told 'too many arguments'). Only a
    line of at least MAX_WORDS characters can hold one, so the rest cost nothing."""
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) < MAX_WORDS:
            continue
        for piece in re.finditer(r"[^;{}#]+|#.*", line):
            if piece.group().startswith("#"):
                break  # the comment to the end of the line
            words = re.finditer(r"\S+", piece.group())
            first = next(words, None)
            if first is not None and next(itertools.islice(words, MAX_WORDS - 1, None), None):
                raise ArchError(f"a statement of more than {MAX_WORDS:,} words: no statement "
                                "takes so many arguments",
                                Span.point(source, number, piece.start() + first.start() + 1))


def _syntax_error(error: UnexpectedInput, source: Source, text: str) -> ArchError:
    span = _error_span(error, source, text)
    unclosed = _unclosed_brace(text)
    if unclosed is not None and _at_end(error):
        note = Note(Span.point(source, *unclosed), "this '{' is never closed")
        return ArchError("missing '}' at end of file", span, (note,))
    known = _known_mistake(error, text)
    if known:
        return ArchError(known, span)
    if isinstance(error, UnexpectedCharacters):
        return ArchError(f"unexpected character {text[error.pos_in_stream]!r}", span)
    found = _describe_token(error.token) if isinstance(error, UnexpectedToken) else "end of file"
    expected = sorted({TERMINAL_NAMES.get(t, repr(t.lower())) for t in error.expected})
    return ArchError(f"unexpected {found}; expected {_one_of(expected)}", span)


def _at_end(error: UnexpectedInput) -> bool:
    token = getattr(error, "token", None)
    return isinstance(error, UnexpectedEOF) or (token is not None and token.type == "$END")


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """(line, col) of the last '{' left open, skipping comments and strings."""
    stack, line, col, mode = [], 1, 0, None
    for char in text:
        col += 1
        if char == "\n":
            line, col, mode = line + 1, 0, None if mode == "#" else mode
        elif mode == '"':
            mode = None if char == '"' else mode
        elif mode is None and char in '#"':
            mode = char
        elif mode is None and char == "{":
            stack.append((line, col))
        elif mode is None and char == "}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _error_span(error: UnexpectedInput, source: Source, text: str) -> Span:
    token = getattr(error, "token", None)
    if _at_end(error) or error.line in (None, -1):
        lines = text.splitlines() or [""]
        return Span.point(source, len(lines), len(lines[-1]) + 1)
    width = len(str(token).rstrip("\n")) if isinstance(token, Token) else 1
    return Span(source, error.line, error.column, error.line, error.column + max(1, width))


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type == "_SEP":
        return "end of line" if "\n" in token else "';'"
    return repr(str(token))


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


class _ToAst:
    """Tree -> ast dataclasses, one method per rule taking (meta, children).

    Walks the tree bottom-up without recursion (any nesting depth works) and without Lark's
    Transformer wrappers (a third of the parse time on large nets). Raises nothing: every
    shape was already checked by the grammar.
    """

    def __init__(self, source: Source):
        self.source = source

    def transform(self, tree: Tree) -> ast.File:
        done: dict[int, tuple] = {}  # tree -> (result, its first and last token, or None)
        for subtree in tree.iter_subtrees():  # children before their parents
            first = last = None
            children = []
            for child in subtree.children:
                if type(child) is Tree:
                    result, start, end = done.pop(id(child))
                    children.append(result)
                    if start is None:
                        continue
                elif child is None:
                    children.append(None)
                    continue
                else:
                    if child.type in VALUES:  # punctuation and keywords only mark the extent
                        children.append(child)
                    start = end = child
                first, last = first or start, end
            meta = _Where(first, last)
            done[id(subtree)] = (getattr(self, subtree.data)(meta, children), first, last)
        return done[id(tree)][0]

    # `(expr)` in an argument, a value or an expression: the expression itself.
    def arg(self, meta, items):
        return items[0]

    value = atom = arg

    def _span(self, meta) -> Span:
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, token: Token) -> Span:
        return Span(self.source, token.line, token.column, token.end_line, token.end_column)

    def start(self, meta, items):
        def pick(kind):
            return tuple(i for i in items if isinstance(i, kind))

        span = Span(self.source, 1, 1, 1, 1) if meta.empty else self._span(meta)
        return ast.File(pick(ast.Use), pick(ast.BlockDef), pick(ast.NetDef), span)

    def use(self, meta, items):
        return ast.Use(items[0][1:-1], self._span(meta))

    def block(self, meta, items):
        name, *params, body = items
        return ast.BlockDef(str(name), _present(params), body, self._span(meta))

    def net(self, meta, items):
        name, *params, body = items
        return ast.NetDef(str(name), _present(params), body, self._span(meta))

    def param(self, meta, items):
        return ast.Param(str(items[0]), items[1], self._span(meta))

    def body(self, meta, items):
        return tuple(items)

    def stmt(self, meta, items):
        label, core, repeat, *annotations = items
        name = str(label).rstrip(": \t") if label is not None else None
        count, index = (1, None) if repeat is None else repeat
        return ast.Stmt(name, core, count, tuple(annotations), self._span(meta), index)

    def repeat(self, meta, items):
        """`x4`, or `x(blocks)`, `x(ceil(3 * depth))`: an expression the build evaluates;
        and the index's name, if it is given one (`x3 as i`)."""
        *count, index = items  # `[_AS NAME]` absent: placeholders for both (keep_all_tokens)
        count = [item for item in count if item is not None]
        index = None if index is None else ast.Ref(str(index), self._tok(index))
        if len(count) == 1:
            return int(str(count[0])[1:]), index
        return count[1], index

    def net_annotation(self, meta, items):
        return ast.Stmt(None, None, 1, tuple(items), self._span(meta))

    def op(self, meta, items):
        args = tuple(self._arg(i) for i in items[1:] if i is not None)
        return ast.Op(str(items[0]), args, self._span(meta))

    def block_use(self, meta, items):
        return ast.BlockUse(str(items[0]), _present(items[1:]), self._span(meta))

    def group(self, meta, items):
        return ast.Group(items[0], self._span(meta))

    def concat(self, meta, items):
        return ast.Concat(items[0], self._span(meta))

    def sum_block(self, meta, items):
        return ast.Concat(items[0], self._span(meta), "sum")

    def mul_block(self, meta, items):
        return ast.Concat(items[0], self._span(meta), "mul")

    def default(self, meta, items):
        args = tuple(self._arg(i) for i in items[1:])
        return ast.Default(str(items[0]), args, self._span(meta))

    def head(self, meta, items):
        name, source, weight, body = items
        return ast.Head(str(name), str(source), self._tok(source), weight, body, self._span(meta))

    def _arg(self, item):
        """An argument the grammar left as a token: a window, a number or a name."""
        if not isinstance(item, Token):
            return item
        span = self._tok(item)
        if item.type == "WINDOW":
            return _window(str(item), span)
        if item.type in ("INT", "NEG_INT"):
            return ast.Num(int(item), span)
        if item.type in ("FLOAT", "NEG_FLOAT"):
            return ast.Num(float(item), span)
        return ast.Ref(str(item), span)

    def keyarg(self, meta, items):
        return ast.KeyArg(str(items[0]), self._arg(items[1]), self._span(meta))

    def annotation(self, meta, items):
        kind, *entries = items
        shapes = [e for e in entries if isinstance(e, ast.Window)]
        counts = tuple(e for e in entries if isinstance(e, tuple))
        shape = shapes[-1] if shapes else None
        return ast.Annotation(str(kind), shape, counts, self._span(meta))

    def ann_shape(self, meta, items):
        window = self._arg(items[0])
        if any(isinstance(d, str) for d in window.dims):
            raise ArchError("an expected shape is written in numbers", window.span)
        return window

    def window(self, meta, items):
        return self._arg(items[0])

    def ann_count(self, meta, items):
        key, value = items
        return (str(key), ast.Quantity(str(value), self._tok(value)))

    def int(self, meta, items):
        return ast.Num(int(items[0]), self._span(meta))

    def float(self, meta, items):
        return ast.Num(float(items[0]), self._span(meta))

    def ref(self, meta, items):
        return ast.Ref(str(items[0]), self._span(meta))

    def call(self, meta, items):
        return ast.Call(str(items[0]), _present(items[1:]), self._span(meta))

    def neg(self, meta, items):
        return ast.Neg(items[0], self._span(meta))

    def _binop(self, symbol, meta, items):
        return ast.BinOp(symbol, items[0], items[1], self._span(meta))

    def add(self, meta, items):
        return self._binop("+", meta, items)

    def sub(self, meta, items):
        return self._binop("-", meta, items)

    def mul(self, meta, items):
        return self._binop("*", meta, items)

    def div(self, meta, items):
        return self._binop("/", meta, items)


# The tokens that carry a value into the AST; every other token is punctuation or a keyword.
VALUES = frozenset({"NAME", "INT", "FLOAT", "NEG_INT", "NEG_FLOAT", "WINDOW", "LABEL",
                    "LABEL_REF", "REPEAT",
                    "REPEAT_OPEN", "QUANTITY", "STRING", "EXPECT", "PAPER"})


class _Where:
    """The extent of a rule, from its first and last token: what the rule methods read of
    Lark's `meta`, at a fraction of the cost."""

    __slots__ = ("line", "column", "end_line", "end_column", "empty")

    def __init__(self, first: Token | None, last: Token | None):
        self.empty = first is None
        self.line, self.column = (first.line, first.column) if first else (1, 1)
        self.end_line, self.end_column = (last.end_line, last.end_column) if last else (1, 1)


def _present(items) -> tuple:
    """Drop the None placeholders Lark leaves for an empty optional list."""
    return tuple(i for i in items if i is not None)


def _window(text: str, span: Span) -> ast.Window:
    """`7x7/2`, `3x(size)x(size)`: each size a number or a parameter's name."""
    sizes, _, stride = text.partition("/")
    dims = tuple(name or int(number) for name, number in _SIZE.findall(sizes))
    step = None
    if stride:
        (name, number), = _SIZE.findall(stride)
        step = name or int(number)
    return ast.Window(dims, step, span)


_SIZE = re.compile(r"\(([A-Za-z_][A-Za-z0-9_]*)\)|([0-9]+)")


if __name__ == "__main__":  # remake grammars/arch_tables.json after editing the grammar
    tables_path().write_text(tables_text(grammar_path().read_text()))
