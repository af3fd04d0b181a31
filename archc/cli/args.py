"""Command-line pieces every command shares: `--set NAME=VALUE`, and the optional extras a
command needs. Here so that archc.cli.main and archc.train.options both use them without importing
each other (they did, in a cycle)."""

from __future__ import annotations

import argparse
import math

from archc.errors import UsageError


def add_set(command: argparse.ArgumentParser, example: str = "classes=10") -> None:
    command.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         type=override, help=f"override a net parameter (e.g. {example})")


def override(text: str) -> tuple[str, int | float]:
    name, sep, value = text.partition("=")
    try:
        number = float(value) if "." in value or "e" in value.lower() else int(value)
    except ValueError:
        number = None
    if isinstance(number, float) and "." not in value and number.is_integer() and \
            math.isfinite(number):
        number = int(number)  # 1e3 is the count 1000, as an integer parameter needs
    if isinstance(number, float) and not math.isfinite(number):
        number = None  # inf, nan: no net has such a parameter
    if not sep or not name.isidentifier() or number is None:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}")
    return name, number


# Optional dependencies, by the pyproject extra that installs them.
EXTRAS = {"graphviz": "graph", "torch": "runtime", "triton": "runtime", "onnx": "export",
          "onnxruntime": "export", "onnxscript": "export", "sklearn": "train", "tqdm": "runtime",
          "matplotlib": "train", "scipy": "train", "PIL": "train", "pygls": "lsp",
          "lsprotocol": "lsp"}


def require(command: str, *modules: str) -> None:
    """Refuse, naming the extra to install, a command whose optional packages are missing.
    Found, not imported: importing them all was 4 s of a 14 s digits run."""
    from importlib.util import find_spec

    missing = [module for module in modules if find_spec(module) is None]
    if missing:
        extras = ",".join(sorted({EXTRAS[m] for m in missing}))
        raise UsageError(f"archc {command} needs {', '.join(missing)}, which this install "
                         f"lacks: pip install 'archc[{extras}]'")


def writable(path: str, *inputs: str) -> str:
    """Refuse, before any work, an output in a missing folder, on top of an input, or that
    exists and is no regular file (archc.files)."""
    from archc.files import refusal_to_write

    if (refusal := refusal_to_write(path, *inputs)) is not None:
        raise UsageError(refusal)
    return path
