"""`archc fmt` (issue 38): the canonical layout of an .arch file, comments kept, idempotent,
the same program; `--check` changes nothing and shows the diff; `-` is a filter."""

from __future__ import annotations

import os

import pytest
from conftest import ROOT

from archc.cli.fmt import canonical
from archc.errors import ArchError
from archc.lang import ast
from archc.lang.parser import parse

SHIPPED = sorted(p.relative_to(ROOT) for p in (ROOT / "nets").rglob("*.arch"))
MESSY = ROOT / "tests/data/fmt/messy.arch"


def program(text: str):
    """The parsed file without its source positions: what a layout may not change."""
    return ast.meaning(parse(text, "x.arch"))


@pytest.mark.parametrize("path", SHIPPED, ids=str)
def test_every_shipped_file_is_in_its_canonical_layout(path):
    text = (ROOT / path).read_text()
    assert canonical(text, str(path)) == text


def test_a_messy_file_gets_the_canonical_layout(golden):
    text = MESSY.read_text()
    formatted = canonical(text, str(MESSY))
    golden(ROOT / "tests/golden/fmt/messy.arch", formatted)
    assert program(formatted) == program(text)
    assert canonical(formatted, "again.arch") == formatted
    comments = [line[line.index("#"):] for line in text.splitlines() if "#" in line]
    assert [c for c in comments if c not in formatted] == []


def test_formatting_keeps_the_program_of_every_shipped_file_written_badly():
    """Each shipped file with its spacing and indentation scrambled formats back to itself."""
    for path in SHIPPED:
        text = (ROOT / path).read_text()
        scrambled = "\n".join(" " * (i % 3) + _squeezed(line.strip())
                               for i, line in enumerate(text.splitlines())) + "\n"
        assert program(scrambled) == program(text), path
        assert canonical(scrambled, str(path)) == text, path


def _squeezed(line: str) -> str:
    """The code of a line without the spaces after commas and around `*` and `=`."""
    code, hash_, comment = line.partition("#")
    for spaced, tight in ((", ", ","), (" * ", "*"), (" = ", "=")):
        code = code.replace(spaced, tight)
    return code + hash_ + comment


def test_check_changes_nothing_and_shows_the_diff(archc, tmp_path):
    target = tmp_path / "net.arch"
    target.write_text(MESSY.read_text().replace('use   "lib/inception.arch"    # the blocks\n',
                                                "").replace("  3a: inception(8,8,16,4,8,8) "
                                                            "expect 48x32x32     paper "
                                                            "params=10K\n", ""))
    before = target.read_text()
    status, out, err = archc("fmt", "--check", str(target))
    assert status == 1 and target.read_text() == before
    assert f"+++ {target} (fmt)" in out and "+    stem: conv 3x3/1 (w * 2) bias=false; bn" in out
    assert "1 of 1 file would be reformatted" in err
    os.chmod(target, 0o640)
    status, _, err = archc("fmt", str(target))
    assert status == 0 and f"reformatted {target}" in err
    assert target.read_text() != before and os.stat(target).st_mode & 0o777 == 0o640
    assert archc("fmt", "--check", str(target))[0] == 0


def test_a_dash_reads_standard_input(archc, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("net n{input 3x8x8;conv 1x1 (4*2)}\n"))
    status, out, err = archc("fmt", "-")
    assert status == 0 and out == "net n { input 3x8x8; conv 1x1 (4 * 2) }\n" and err == ""


def test_a_file_that_does_not_parse_is_left_as_it_is(archc, tmp_path):
    broken = tmp_path / "broken.arch"
    broken.write_text("net n {\n    input 3x8x8\n    conv 1x1 (4 *\n}\n")
    before = broken.read_text()
    status, _, err = archc("fmt", str(broken))
    assert status == 1 and broken.read_text() == before
    assert f"{broken}:3:" in err and ": error: " in err


def test_a_comment_the_layout_has_no_place_for_is_refused_not_dropped():
    text = "net n(a = 1,\n      b = 2,  # the second\n      c = 3) {\n    input 3x8x8\n}\n"
    with pytest.raises(ArchError, match="no place for this comment") as refused:
        canonical(text, "n.arch")
    assert refused.value.span.line == 2
