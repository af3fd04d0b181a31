"""`archc weights`: a torchvision checkpoint, or one an older archc keyed otherwise, turned
into a state_dict for archc's module.

    archc weights nets/resnet50.arch --torchvision resnet50-0676ba61.pth -o resnet50.pt
    archc weights nets/efficientnet_b0.arch --archc old.pt -o new.pt

The net is lowered (torch backend: its state_dict is the triton backend's too), the checkpoint
loaded without running code, and archc.codegen.weights pairs the two by structure, every shape
checked; the result is saved (atomically) for `net.load_state_dict(torch.load(OUT))`. A layer
that does not pair is a located error at the statement that made it: exit status 1.
"""

from __future__ import annotations

import sys

from archc.cli.args import add_set, require, writable
from archc.errors import ArchError, UsageError


def add_command(commands) -> None:
    weights = commands.add_parser(
        "weights",
        help="turn a torchvision (or an older archc) checkpoint into the net's state_dict",
        description="Pair a checkpoint's tensors (torchvision's, or an older archc's) with "
                    "FILE's layers by structure "
                    "(declaration order, every shape checked; names differ) and save the "
                    "state_dict archc's module loads. Exit 1 at the first layer that does not "
                    "pair, naming both sides.")
    weights.add_argument("file", metavar="FILE", help="an .arch file")
    source = weights.add_mutually_exclusive_group(required=True)
    source.add_argument("--torchvision", metavar="CKPT.pth",
                        help="a checkpoint as torchvision publishes them (a state_dict)")
    source.add_argument("--archc", metavar="OLD.pt",
                        help="a state_dict or run checkpoint of this net keyed as an older "
                             "archc keyed it (before role names, before indexed stages)")
    weights.add_argument("-o", "--output", required=True, metavar="OUT.pt",
                         help="where to save the converted state_dict")
    weights.add_argument("--no-heads", dest="heads", action="store_false",
                         help="the net without its auxiliary heads (a checkpoint without them)")
    add_set(weights)
    weights.set_defaults(run=run_weights)


def run_weights(args) -> int:
    require("weights", "torch")
    import torch

    from archc.codegen.lower import lower
    from archc.codegen.weights import convert, load_checkpoint
    from archc.files import write_atomically
    from archc.pipeline import analyse

    given = args.torchvision or args.archc
    writable(args.output, args.file, given)
    analysis = analyse(args.file, dict(args.set)).raise_errors()
    lowered = lower(analysis, heads=args.heads)
    source = load_checkpoint(given)
    try:
        state = convert(lowered, source)
    except ArchError:
        if analysis.graph.heads:  # the layer that did not pair may be the heads' doing
            _say_heads(analysis, source, not args.heads)
        raise
    lowered.module.load_state_dict(state)  # strict: every key, as the module has them
    write_atomically(args.output, lambda temporary: torch.save(state, temporary))
    print(f"wrote {args.output}: {len(state)} tensors paired with {given}'s",
          file=sys.stderr)
    return 0


def _say_heads(analysis, source: dict, heads: bool) -> None:
    """A UsageError if the checkpoint pairs with the net built the other way (with its heads
    where --no-heads was given, or without them where it was not)."""
    from archc.codegen.lower import lower
    from archc.codegen.weights import convert

    try:
        convert(lower(analysis, heads=heads), source)
    except ArchError:
        return  # it does not pair either way: the first error stands
    raise UsageError("the checkpoint has the net's auxiliary heads: drop --no-heads" if heads
                     else "the checkpoint has no auxiliary heads: add --no-heads")
