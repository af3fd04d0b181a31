"""Names: where a block, a label or a parameter is written in a file, and what each word of a
file is, for find references, rename, signature help and semantic tokens. Torch-free.

Lexical and exact: the file's words outside comments (`#` to the line's end) and strings, a
word standing alone (not inside `3x3`, `1e-5` or `x2`), each classified by what the analysis
knows it is: a parameter inside the definition that declares it, a block in scope, a label of
the net. Positions are the editor's: 0-based lines and columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archc import ops
from archc.lang.functions import FUNCTIONS
from archc.lsp.facts import Facts, Place, _signature

WORD = re.compile(r"(?<![\w.])[A-Za-z0-9_]*[A-Za-z_][A-Za-z0-9_]*(?![\w.])")
TOKEN = re.compile(r'"[^"]*"|#.*|[A-Za-z0-9_.]+')  # a string, a comment, a word or number
KEYWORDS = {"net", "block", "use", "default", "head", "from", "weight", "expect", "paper",
            "concat", "sum", "mul", "id", "as", "input"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
# What semantic tokens call each kind of word (LSP's standard token types).
TOKEN_TYPES = ["keyword", "function", "class", "parameter", "property", "enumMember", "number",
               "comment", "string"]


@dataclass(frozen=True)
class Occurrence:
    line: int
    col: int
    end: int  # exclusive
    word: str


def code(line: str) -> str:
    """The line with its comment and strings blanked (positions kept)."""
    out, quoted = [], False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
            out.append(" ")
        elif char == "#" and not quoted:
            out.append(" " * (len(line) - i))
            break
        else:
            out.append(" " if quoted else char)
    return "".join(out)


def words(text: str) -> list[Occurrence]:
    found = []
    for number, line in enumerate(text.splitlines()):
        for match in WORD.finditer(code(line)):
            found.append(Occurrence(number, match.start(), match.end(), match.group()))
    return found


class Names:
    def __init__(self, facts: Facts, text: str):
        self.facts, self.text, self.lines = facts, text, text.splitlines()
        program = facts.a.program
        self.blocks = set(program.blocks)
        self.labels = {r.name for r in facts.rows if r.labelled}
        self.scopes = [(Place.of(d.span), {p.name for p in d.params})
                       for d in [program.net, *program.blocks.values()] if facts.here(d.span)]

    def kind(self, at: Occurrence) -> str | None:
        """"parameter", "block", "label" or None: what the word at `at` names."""
        for place, params in self.scopes:
            if at.word in params and place.line <= at.line <= place.end_line:
                return "parameter"
        if at.word in self.blocks:
            return "block"
        if at.word in self.labels and self._label_like(at):
            return "label"
        return None

    def _label_like(self, at: Occurrence) -> bool:
        """`4a:` where it is defined, `from 4a` where a head reads it."""
        line = code(self.lines[at.line])
        return line[at.end:].lstrip().startswith(":") or line[:at.col].rstrip().endswith("from")

    def at(self, line: int, col: int) -> Occurrence | None:
        return next((o for o in words(self.text) if o.line == line and o.col <= col <= o.end),
                    None)

    def references(self, line: int, col: int) -> tuple[str | None, list[Occurrence]]:
        """What the word at (line, col) names, and every place this file writes it."""
        here = self.at(line, col)
        kind = self.kind(here) if here else None
        if kind is None:
            return None, []
        same = [o for o in words(self.text) if o.word == here.word and self.kind(o) == kind]
        if kind == "parameter":  # only inside the definition that declares it
            place = next(p for p, params in self.scopes
                         if here.word in params and p.line <= here.line <= p.end_line)
            same = [o for o in same if place.line <= o.line <= place.end_line]
        return kind, same

    def occurrences(self, word: str, kind: str) -> list[Occurrence]:
        """Every place this file writes `word` as a `kind` ("block", "label", "parameter")."""
        return [o for o in words(self.text) if o.word == word and self.kind(o) == kind]

    def tokens(self) -> list[tuple[int, int, int, int]]:
        """(line, col, length, type index) of every classified word, number, comment and
        string, in order: LSP's semantic tokens before their relative encoding."""
        out = []
        for number, line in enumerate(self.text.splitlines()):
            for match in TOKEN.finditer(line):
                token = match.group()
                if token.startswith('"'):
                    kind = "string"
                elif token.startswith("#"):
                    kind = "comment"
                else:
                    kind = self._token_type(Occurrence(number, match.start(), match.end(),
                                                       token))
                    if kind is None and token[0].isdigit():  # 64, 3x3, 0.2
                        kind = "number"
                if kind is not None:
                    out.append((number, match.start(), len(token), TOKEN_TYPES.index(kind)))
        return out

    def _token_type(self, at: Occurrence) -> str | None:
        kind = self.kind(at)
        if kind is not None:
            return {"parameter": "parameter", "block": "class", "label": "property"}[kind]
        if at.word in KEYWORDS:
            return "keyword"
        before = self.lines[at.line][:at.col].rstrip()
        starts = before == "" or before.endswith((";", "{", ":"))  # a statement's first word
        if at.word in ops.ACTIVATIONS and not starts:
            return "enumMember"  # a flag: `conv 3x3 64 relu`
        if at.word in ops.SIGNATURES:
            return "function"
        return None

    def signature(self, line: int, col: int) -> tuple[str, list[str], int] | None:
        """(label, parameters, active) of the call or statement the cursor is in: a block use
        or a function's arguments, else the op the statement starts with."""
        text = code(self.lines[line])[:col]
        depth, commas = 0, 0
        for i in range(len(text) - 1, -1, -1):
            char = text[i]
            if char == ")":
                depth += 1
            elif char == "(":
                if depth == 0:
                    name = re.search(r"([A-Za-z_]\w*)\s*$", text[:i])
                    return self._call(name.group(1), commas) if name else None
                depth -= 1
            elif char == "," and depth == 0:
                commas += 1
        first = re.match(r"\s*(?:[A-Za-z0-9_]+\s*:\s*)?([A-Za-z_]\w*)", text)
        if first and first.group(1) in ops.SIGNATURES:
            signature = ops.SIGNATURES[first.group(1)]
            return _signature(first.group(1)), [*signature.positional,
                                               *(f"{k}=" for k in signature.keys)], -1
        return None

    def _call(self, name: str, commas: int):
        block = self.facts.a.program.blocks.get(name)
        if block is not None:
            params = [p.name if p.default is None else f"{p.name}=" for p in block.params]
            return f"{name}({', '.join(p.name for p in block.params)})", params, commas
        function = FUNCTIONS.get(name)
        if function is not None:
            return f"{name}({', '.join(function.params)})", list(function.params), commas
        return None


def valid_name(new: str) -> str | None:
    """Why `new` cannot be a block's, a label's or a parameter's name; None if it can."""
    if not NAME.match(new):
        return f"'{new}' is not a name (letters, digits and _, not starting with a digit)"
    if new in KEYWORDS or new in ops.SIGNATURES or new in ops.ACTIVATIONS or new in FUNCTIONS:
        return f"'{new}' is a word of the language"
    return None
