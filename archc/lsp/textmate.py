"""The TextMate grammar editors highlight .arch with, made from the op registry.

`python -m archc.lsp.textmate` writes editors/vscode/syntaxes/arch.tmLanguage.json: the ops,
activation flags, keys and functions are the registry's own lists, so a new op is highlighted
once the file is made again (tests/test_editors.py says when it is stale). The scopes are
TextMate's conventional names, which every colour theme knows. Semantic tokens from the
language server (archc.lsp.names) refine it where the analysis knows more (a parameter, a
label, a block).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from archc import ops
from archc.lang.functions import FUNCTIONS

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
SIZE = rf"(?:[0-9]+|\({NAME}\))"
KEYWORDS = ("use", "default", "concat", "sum", "mul", "id", "as", "weight", "input")


def _words(words) -> str:
    return r"\b(" + "|".join(sorted(words, key=lambda w: (-len(w), w))) + r")\b"


def grammar() -> dict:
    keys = sorted({key for signature in ops.SIGNATURES.values() for key in signature.keys})
    patterns = [
        {"name": "comment.line.number-sign.arch", "match": "#.*$"},
        {"name": "string.quoted.double.arch", "match": '"[^"]*"'},
        {"match": rf"\b(net|block)\s+({NAME})",
         "captures": {"1": {"name": "storage.type.arch"},
                      "2": {"name": "entity.name.function.arch"}}},
        {"match": rf"\b(head)\s+({NAME})\s+(from)\s+([A-Za-z0-9_]+)",
         "captures": {"1": {"name": "keyword.control.arch"}, "2": {"name": "entity.name.tag.arch"},
                      "3": {"name": "keyword.control.arch"},
                      "4": {"name": "entity.name.tag.arch"}}},
        {"match": r"(?:^|(?<=[{;]))\s*([A-Za-z0-9_]+)\s*(:)",
         "captures": {"1": {"name": "entity.name.tag.arch"},
                      "2": {"name": "punctuation.separator.label.arch"}}},
        {"name": "keyword.other.annotation.arch", "match": r"\b(expect|paper)\b"},
        {"name": "keyword.control.arch", "match": _words(KEYWORDS)},
        {"name": "support.function.builtin.arch", "match": _words(FUNCTIONS) + r"(?=\s*\()"},
        {"name": "support.function.arch", "match": _words(ops.SIGNATURES)},
        {"name": "support.constant.arch", "match": _words(a for a in ops.ACTIVATIONS
                                                        if a not in ops.SIGNATURES)},
        {"match": rf"\b({'|'.join(keys)})\s*(=)",
         "captures": {"1": {"name": "variable.parameter.arch"},
                      "2": {"name": "keyword.operator.assignment.arch"}}},
        {"match": rf"\b({NAME})\s*(=)",
         "captures": {"1": {"name": "variable.other.arch"},
                      "2": {"name": "keyword.operator.assignment.arch"}}},
        {"name": "keyword.operator.repeat.arch", "match": r"(?<=\s)x(?:[0-9]+\b|(?=\())"},
        {"name": "constant.numeric.window.arch",
         "match": rf"(?<![\w.]){SIZE}(?:x{SIZE})+(?:/{SIZE})?"},
        {"name": "constant.numeric.arch",
         "match": r"(?<![\w.])-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?:Ki|K|M|G)?\b"},
        {"name": "entity.name.function.call.arch", "match": rf"\b{NAME}(?=\s*\()"},
    ]
    return {"$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/"
                       "tmlanguage.json",
            "name": "archc", "scopeName": "source.arch", "fileTypes": ["arch"],
            "patterns": patterns}


def text() -> str:
    return json.dumps(grammar(), indent=2) + "\n"


SHIPPED = Path(__file__).resolve().parents[2] / "editors/vscode/syntaxes/arch.tmLanguage.json"

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED
    target.write_text(text())
    print(f"wrote {target}", file=sys.stderr)
