"""`archc import SOURCE -o NET.arch`: an existing PyTorch net or ONNX file as readable .arch.

    archc import torchvision.models:resnet18 -o resnet18.arch --weights resnet18.pt
    archc import path/to/model.py:build --input 3x32x32 -o mine.arch
    archc import model.onnx -o model.arch --weights model.pt

SOURCE is `package.module:callable` or `path/to/file.py:callable`, called with no arguments,
returning an nn.Module (run in eval mode, traced with torch.fx: archc.importer), or an `.onnx`
file (parsed, never run: archc.importer.onnx_file). `--weights` saves the source's tensors as
the imported net's state_dict (paired by structure). A layer .arch cannot say is an error
naming it (exit 1), and nothing is written.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from archc.cli.args import require, writable
from archc.errors import UsageError


def add_command(commands) -> None:
    command = commands.add_parser(
        "import", help="turn a PyTorch module or an ONNX file into readable .arch",
        description="Trace SOURCE (package.module:callable or file.py:callable returning an "
                    "nn.Module), or read an .onnx file, and write it as .arch: each module "
                    "class of yours a block, each nn.Sequential a labelled group, the numbers "
                    "that differ between instances of a block its parameters.")
    command.add_argument("source", metavar="SOURCE", help="package.module:callable, "
                                                          "path/to/file.py:callable or FILE.onnx")
    command.add_argument("-o", "--output", required=True, metavar="NET.arch")
    command.add_argument("--weights", metavar="NET.pt",
                         help="also save the module's tensors as the net's state_dict")
    command.add_argument("--input", metavar="CxHxW",
                         help="the image size the net takes (default: an ONNX file's own, "
                              "else 3x224x224)")
    command.add_argument("--name", help="the net's name (default: the module's class)")
    command.add_argument("--blocks", choices=("auto", "modules", "structure", "none"),
                         default="auto",
                         help="modules: a block per class of yours; structure: a block per "
                              "recurring unit (residual, inception, stage), found without "
                              "names; none: every layer in the net; auto (default): modules "
                              "where the source names them, else the shorter of the others")
    command.add_argument("--report", action="store_true",
                         help="go on past what .arch cannot say and list every such op with "
                              "its count (the language's growth list); writes nothing then")
    command.set_defaults(run=run_import)


def run_import(args) -> int:
    require("import", "torch")
    from archc.errors import ArchError
    from archc.files import write_atomically
    from archc.importer import imported, imported_onnx, weights
    from archc.importer.trace import ImportFailure, Unsupported

    shape = _shape(args.input) if args.input else None
    writable(args.output)
    if args.weights:
        writable(args.weights)
    module = None if args.source.endswith(".onnx") else _load(args.source)
    try:
        if module is None:
            require("import", "onnx")
            result = imported_onnx(args.source, shape, args.name, args.blocks, args.report)
        else:
            result = imported(module, shape or (3, 224, 224), args.name, args.blocks,
                              args.report)
    except Unsupported as unsupported:
        print(_report(unsupported.found))
        raise ArchError(f"cannot import {args.source}: {len(unsupported.found)} nodes have no "
                        f".arch statement (listed above); nothing written") from None
    except ImportFailure as failure:
        raise ArchError(f"cannot import {args.source}: {failure}") from None
    if args.report:
        print(f"{args.source}: every node has an .arch statement")
    write_atomically(args.output, lambda temporary: Path(temporary).write_text(result.text))
    print(f"wrote {args.output}: net {result.text.split('net ', 1)[1].split()[0]}, "
          f"{result.text.count(chr(10))} lines", file=sys.stderr)
    if args.weights:
        import torch

        state = weights(module, result)
        write_atomically(args.weights, lambda temporary: torch.save(state, temporary))
        print(f"wrote {args.weights}: {len(state)} tensors", file=sys.stderr)
    return 0


def _report(found: list[tuple[str, str]]) -> str:
    """Each op .arch has no statement for, most frequent first: its count and its first node."""
    counts: dict[str, list[str]] = {}
    for op, why in found:
        counts.setdefault(op, []).append(why)
    width = max(len(op) for op in counts)
    lines = [f"{'op':<{width}}  count  first"]
    for op, whys in sorted(counts.items(), key=lambda item: -len(item[1])):
        lines.append(f"{op:<{width}}  {len(whys):>5}  {whys[0]}")
    return "\n".join(lines)


def _shape(text: str) -> tuple[int, int, int]:
    if not re.fullmatch(r"\d+x\d+x\d+", text) or "0" in text.split("x"):
        raise UsageError(f"--input {text}: give channels x height x width, e.g. 3x224x224")
    c, h, w = (int(n) for n in text.split("x"))
    return c, h, w


def _load(source: str):
    """The module `source` names: `pkg.mod:fn` or `file.py:fn`, `fn` called with nothing."""
    import torch

    where, sep, name = source.rpartition(":")
    if not sep or not name.isidentifier():
        raise UsageError(f"{source}: write package.module:callable or path/to/file.py:callable")
    try:
        if where.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            if spec is None or not Path(where).is_file():
                raise UsageError(f"{where}: no such file")
            code = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(code)
        else:
            code = importlib.import_module(where)
    except UsageError:
        raise
    except Exception as error:  # the user's code failed as it was imported: say how
        raise UsageError(f"cannot import {where}: {type(error).__name__}: {error}") from None
    build = getattr(code, name, None)
    if not callable(build):
        raise UsageError(f"{where} has no callable '{name}'")
    try:
        module = build()
    except Exception as error:
        raise UsageError(f"{source}() failed: {type(error).__name__}: {error}") from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"{source}() returned {type(module).__name__}, not an nn.Module")
    return module
