"""`archc fmt`: every .arch file in its canonical layout (archc.lang.printer), in place.

    archc fmt nets/*.arch            # rewrite the files that change
    archc fmt --check nets/*.arch    # exit 1 and show the diff where a file would change
    archc fmt - < net.arch           # standard input to standard output

A file that does not parse is left as it is, its error printed (exit 1); a file is rewritten
through a temporary renamed over it, keeping its permissions. Imports neither torch nor
triton.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from archc.errors import ArchError, UsageError


def add_command(commands) -> None:
    fmt = commands.add_parser(
        "fmt", help="rewrite .arch files in their canonical layout (comments kept)",
        description="Print each file in archc's canonical layout: four spaces a level, "
                    "expressions spaced, annotations aligned in columns, at most one blank "
                    "line; the author's line breaks, numbers as typed and every comment kept. "
                    "Files are rewritten in place unless --check; '-' reads standard input "
                    "and writes standard output.")
    fmt.add_argument("files", nargs="+", metavar="FILE", help=".arch files, or - for stdin")
    fmt.add_argument("--check", action="store_true",
                     help="change nothing: print the diff of each file that would change and "
                          "exit 1 if any would")
    fmt.set_defaults(run=run_fmt)


def run_fmt(args) -> int:
    status, changed = 0, 0
    for name in args.files:
        try:
            text = sys.stdin.read() if name == "-" else _read(Path(name))
            formatted = canonical(text, "<stdin>" if name == "-" else name)
        except ArchError as error:
            print(error, file=sys.stderr)
            status = 1
            continue
        if name == "-" and not args.check:
            sys.stdout.write(formatted)
        elif formatted != text:
            changed += 1
            if args.check:
                sys.stdout.writelines(difflib.unified_diff(
                    text.splitlines(True), formatted.splitlines(True), name, f"{name} (fmt)"))
                status = 1
            else:
                _write(Path(name), formatted)
                print(f"reformatted {name}", file=sys.stderr)
    if any(name != "-" for name in args.files) or args.check:
        verb = "would be reformatted" if args.check else "reformatted"
        print(f"{changed} of {len(args.files)} file{'s' * (len(args.files) != 1)} {verb}",
              file=sys.stderr)
    return status


def canonical(text: str, path: str) -> str:
    from archc.lang.printer import format_text

    return format_text(text, path)


def _read(path: Path) -> str:
    from archc.lang.loader import read_source

    if not path.exists():
        raise UsageError(f"cannot read {path}: no such file")
    return read_source(path)


def _write(path: Path, text: str) -> None:
    from archc.files import refusal_to_write, write_atomically

    if (refusal := refusal_to_write(path)) is not None:
        raise UsageError(refusal)
    mode = path.stat().st_mode & 0o7777

    def write(temporary: str) -> None:
        Path(temporary).write_text(text, encoding="utf-8")
        os.chmod(temporary, mode)

    write_atomically(path, write)
