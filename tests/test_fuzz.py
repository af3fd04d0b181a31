"""Property tests: random text and mutated nets only ever produce archc's own errors.

Anything else escaping `analyse` (a Lark exception, a KeyError, a RecursionError) is a bug:
the user would see a traceback.
"""

from __future__ import annotations

from conftest import ROOT, nets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archc.codegen.emit import emit
from archc.errors import ArchError, UsageError
from archc.pipeline import analyse

TOKENS = ["net", "block", "use", "input", "conv", "maxpool", "avgpool", "gap", "lrn", "fc",
          "dropout", "softmax", "flatten", "concat", "default", "pool", "head", "from", "weight",
          "expect", "paper", "relu", "linear", "pad=", "same", "round=", "ceil", "groups=",
          "params=", "macs=", "tol=", "3x3", "7x7/2", "3x224x224", "1x1", "x4", "0", "1", "64",
          "0.5", "2.7Ki", "1%", "a:", "3a:", "n", "(", ")", "{", "}", ",", ";", "\n", " ", "=",
          "+", "-", "*", "/", '"lib/x.arch"', "#", "mlp", "mlp(1, 2)"]
SOURCES = {name: (ROOT / "nets" / name).read_text() for name in nets()}
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def survives(text: str, path: str = str(ROOT / "nets" / "fuzz.arch")) -> None:
    """Only archc's errors escape; a valid program also emits valid Python."""
    try:
        analysis = analyse(path, text=text)
    except (ArchError, UsageError) as error:
        assert str(error)  # renders without raising
        return
    if not analysis.errors:
        compile(emit(analysis).source, "<emitted>", "exec")


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text):
    survives(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_random_token_soup(text):
    survives("net n {\ninput 3x32x32\n" + text + "\n}\n")


@FUZZ
@given(st.sampled_from(sorted(SOURCES)), st.data())
def test_mutated_nets(name, data):
    text = SOURCES[name]
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 20)))
        insert = data.draw(st.sampled_from(TOKENS + [""]))
        text = text[:start] + insert + text[end:]
    survives(text, str(ROOT / "nets" / name))


def test_deep_nesting_is_an_error_not_a_crash():
    survives("net n {\ninput 3x8x8\n" + "{" * 3000 + "conv 1x1 1" + "}" * 3000 + "\n}\n")
    survives("net n {\ninput 3x8x8\n" + "{" * 300 + "conv 1x1 1" + "}" * 300 + "\n}\n")
