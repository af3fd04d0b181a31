"""Hostile input through every front-end command: files that are not sources, sizes past the
limits, symbolic link loops, encodings, and random programs driven through the CLI itself.

Each must end in archc's own message and exit status (1 for the program, 2 for the command
line), never a traceback, and nothing may read without end (issue 14).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archc.lang.loader import MAX_SOURCE_BYTES

NET = "net t {\n    input 3x16x16\n    conv 3x3 8 pad=1 relu\n    gap\n    fc 10\n}\n"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """archc in its own process, as a user runs it: a hang or a memory blow-up shows here."""
    return subprocess.run([sys.executable, "-m", "archc.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout)


def test_a_device_is_refused_unread(archc):
    status, out, err = archc("check", "/dev/zero")
    assert (status, err) == (2, "archc: error: cannot read /dev/zero: not a regular file\n")


def test_a_fifo_is_refused_without_opening_it(archc, tmp_path):
    fifo = tmp_path / "net.arch"
    os.mkfifo(fifo)  # opening it would block until a writer came
    status, out, err = archc("stats", str(fifo))
    assert (status, err) == (2, f"archc: error: cannot read {fifo}: not a regular file\n")


def test_a_source_over_the_size_limit_is_refused_before_reading(archc, tmp_path):
    huge = tmp_path / "huge.arch"
    with huge.open("wb") as f:  # sparse: the size is there, the bytes are not
        f.truncate(MAX_SOURCE_BYTES + 1)
    status, out, err = archc("check", str(huge))
    assert status == 2
    assert err == (f"archc: error: cannot read {huge}: {MAX_SOURCE_BYTES + 1:,} bytes, over "
                   f"the limit of {MAX_SOURCE_BYTES:,} for a source file\n")


def test_a_symbolic_link_loop_is_an_error_on_the_command_line_and_at_a_use(archc, tmp_path):
    (tmp_path / "a.arch").symlink_to(tmp_path / "b.arch")
    (tmp_path / "b.arch").symlink_to(tmp_path / "a.arch")
    status, out, err = archc("check", str(tmp_path / "a.arch"))
    assert status == 2 and err.startswith(f"archc: error: cannot read {tmp_path / 'a.arch'}: ")
    net = tmp_path / "net.arch"
    net.write_text('use "a.arch"\n' + NET)
    status, out, err = archc("check", str(net))
    assert status == 1
    assert err.splitlines()[:3] == [
        f"{net}:1:1: error: cannot use 'a.arch': a symbolic link loop",
        '    1 | use "a.arch"', "      | ^^^^^^^^^^^^"]


@pytest.mark.parametrize("target", ["/dev/zero", "FIFO"])
def test_a_use_of_what_is_not_a_regular_file_is_a_located_error(archc, tmp_path, target):
    if target == "FIFO":
        target = str(tmp_path / "fifo.arch")
        os.mkfifo(target)
    net = tmp_path / "net.arch"
    net.write_text(f'use "{target}"\n' + NET)
    status, out, err = archc("check", str(net))
    assert status == 1
    assert err.splitlines()[0] == f"{net}:1:1: error: cannot use '{target}': not a regular file"


def test_a_utf16_file_says_so_and_shows_its_line_decoded(archc, tmp_path):
    path = tmp_path / "wide.arch"
    path.write_bytes(NET.encode("utf-16"))  # with its byte-order mark, as Windows writes it
    status, out, err = archc("check", str(path))
    assert status == 1
    assert err.splitlines() == [
        f"{path}:1:1: error: the file is UTF-16, not UTF-8 (save the file as UTF-8)",
        "    1 | net t {", "      | ^"]


def test_a_nul_byte_is_located_and_no_control_character_reaches_the_terminal(archc, tmp_path):
    path = tmp_path / "binary.arch"
    path.write_bytes(b"net t {\n  inp\x1b[2Jut\x00 3x8x8\n}\n")
    status, out, err = archc("check", str(path))
    assert status == 1
    assert err.splitlines() == [
        f"{path}:2:12: error: byte 0x00 (NUL): a source holds text (is it UTF-16, or not a "
        "text file?)", "    2 |   inp?[2Jut  3x8x8", "      |            ^"]


def test_a_long_line_is_cut_around_the_error(archc, tmp_path):
    path = tmp_path / "one_line.arch"
    path.write_text("net t { input 3x8x8; " + "conv 1x1 4; " * 20_000 + "conv 3x3 4 pad=x }\n")
    status, out, err = archc("check", str(path))
    line, source, carets = err.splitlines()
    assert status == 1 and line.endswith("error: undefined name 'x'")
    assert len(source) < 200 and source.startswith("    1 | ...") and "pad=x }" in source
    start = carets.index("^")
    assert source[start:start + 5] == "pad=x" and carets.count("^") == 5


def test_nesting_past_the_limit_is_located_at_the_group_that_passes_it(archc, tmp_path):
    path = tmp_path / "deep.arch"
    path.write_text("net t {\n  input 3x8x8\n" + "  {\n" * 150 + "  conv 1x1 4\n" +
                    "  }\n" * 150 + "}\n")
    status, out, err = archc("check", str(path))
    assert status == 1
    assert err.splitlines()[0] == \
        f"{path}:103:3: error: groups and block uses nested more than 100 deep"


def test_a_set_value_that_breaks_the_net_says_it_came_from_set(archc, tmp_path):
    path = tmp_path / "net.arch"
    path.write_text(NET.replace("net t {", "net t(classes = 10) {").replace("fc 10",
                                                                          "fc classes"))
    status, out, err = archc("check", str(path), "--set", "classes=0")
    assert status == 1
    assert err.splitlines()[0] == f"{path}:5:8: error: features must be at least 1, got 0"
    assert err.splitlines()[-1] == ("archc: note: the net was built with --set classes=0; its "
                                    "defaults build without this error")
    status, out, err = archc("stats", str(path), "--set", "classes=1e3", "--json")
    assert status == 0 and '"classes": 1000' in out


# ---- the CLI under hypothesis: commands, flags and mutated sources ------------------------

COMMANDS = [["check"], ["check", "--json"], ["stats"], ["stats", "--json"], ["stats", "--wide"],
            ["stats", "--fold-bn"], ["stats", "--set", "c=3"], ["check", "--set", "c=0"],
            ["compile", "--emit", "ir"], ["compile", "--backend", "triton", "--plan"],
            ["compile", "-o", "{tmp}/net.py"], ["compile", "--backend", "triton", "--no-heads",
                                                "-o", "{tmp}/net.py"],
            ["graph", "-o", "{tmp}/net.dot"], ["graph", "--expand", "-o", "{tmp}/net.dot"]]
PIECES = ["conv 1x1 c", "conv 3x3 c pad=1x0", "bn", "relu", "sum { id; id }", "gap", "fc 4",
          "maxpool 3x3/1 pad=1", "cb(c)", "h: conv 1x1 2", "K: conv 1x1 2",
          "head a from h weight 0.3 { gap; fc 2 }", "concat { cb(2); id }", "x(c)", " x2", "{",
          "}", "pad=", "\x00", "\ufeff", "(", ")", ";", "\n", "softmax", "use \"nowhere.arch\"",
          "sum { cb(c); id }", "default conv relu", "flatten"]
CLI = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@CLI
@given(st.sampled_from(COMMANDS), st.lists(st.sampled_from(PIECES), max_size=12))
def test_the_cli_never_shows_a_traceback(archc, tmp_path, command, pieces):
    path = tmp_path / "fuzz.arch"
    body = "\n".join(pieces)
    path.write_text("block cb(c) { conv 1x1 c bias=false; bn }\n"
                    f"net t(c = 4) {{\n    input 4x8x8\n{body}\n}}\n")
    try:
        status, out, err = archc(command[0], str(path),
                                 *(a.format(tmp=tmp_path) for a in command[1:]))
    except Exception as error:  # the point is that nothing escapes
        pytest.fail(f"{type(error).__name__}: {error} for {command} on\n{path.read_text()}")
    assert status in (0, 1, 2), (status, err)
    assert "Traceback" not in err


def test_a_real_process_on_dev_zero_ends_at_once():
    result = run_cli("check", "/dev/zero", timeout=30)
    assert result.returncode == 2 and "not a regular file" in result.stderr


def test_more_statements_than_layers_allowed_are_refused_before_parsing():
    """A 14 MB file of 1.3M convs parsed for 206 s and 3.7 GB before the build refused it."""
    from archc.errors import ArchError
    from archc.ir.graph import MAX_LAYERS
    from archc.lang.parser import parse

    text = "net t {\n input 3x8x8\n" + "# a comment\n" * 1000 + "conv 1x1 4\n" * MAX_LAYERS + "}\n"
    with pytest.raises(ArchError) as refused:
        parse(text, "big.arch")
    assert refused.value.message == (f"more than {MAX_LAYERS:,} statements: more than a net may "
                                     "have layers")
    # Comments count for nothing; `net t {` and `input` count (an upper bound, cheap to take).
    assert refused.value.span.line == 2 + 1000 + MAX_LAYERS - 1
