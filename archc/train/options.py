"""`archc train` and `archc eval`: their command lines, and the runs they start.

Nothing here imports torch until a command runs, so `archc stats` stays light. An option left
out takes the recipe's value (`--recipe nin|googlenet|vgg`), else archc's default (the `Config`
dataclass in config.py: SGD, momentum 0.9, lr 0.05 on a cosine schedule, weight decay 5e-4,
batch 64, 30 epochs; these train the bundled digits nets well).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from archc.cli.args import add_set, require
from archc.train.config import RECIPES, SCHEDULES, Config

TRAIN_HELP = """examples:
  archc train nets/nin_digits.arch --data digits --epochs 30 --out runs/nin
  archc train nets/nin_cifar10.arch --data cifar10:~/data/cifar-10-batches-py --recipe nin
  archc train --resume runs/nin                   # continue a stopped run where it was
  torchrun --nproc_per_node=2 -m archc train nets/nin_digits.arch --out runs/ddp

recipes (defaults under what you give):
""" + "\n".join(f"  {name}: {text}" for name, (text, _) in RECIPES.items())


def add_commands(commands, run_train, run_eval) -> None:
    train = commands.add_parser(
        "train", help="train a net on a data set (checkpoints, metrics, curves)",
        description="Train FILE's net with SGD or AdamW, writing checkpoints, metrics.jsonl, "
                    "curves.png and run.json to --out. A run started again with the same --out "
                    "continues from its newest checkpoint.",
        epilog=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("file", nargs="?", metavar="FILE", help="an .arch file")
    _data_options(train)
    group = train.add_argument_group("optimisation")
    group.add_argument("--recipe", choices=sorted(RECIPES), help="a paper's protocol")
    group.add_argument("--epochs", type=_at_least(1), help="default 30")
    group.add_argument("--batch-size", type=_at_least(1),
                       help="per step, over all ranks (default 64)")
    group.add_argument("--optimizer", choices=("sgd", "adamw"), help="default sgd")
    group.add_argument("--lr", type=_real(0, above=True), help="base learning rate (default 0.05)")
    group.add_argument("--momentum", type=_real(0, 1, below=True),
                       help="SGD momentum (default 0.9)")
    group.add_argument("--weight-decay", type=_real(0), help="default 5e-4")
    group.add_argument("--schedule", choices=SCHEDULES, help="default cosine")
    group.add_argument("--step-size", type=_real(0, above=True),
                       help="step: epochs between decays (8)")
    group.add_argument("--gamma", type=_real(0, above=True), help="factor of each decay (0.1)")
    group.add_argument("--milestones", type=_floats, help="multistep: epochs, e.g. 30,60")
    group.add_argument("--patience", type=_at_least(1),
                       help="plateau: epochs without progress (2)")
    group.add_argument("--warmup", type=_real(0), help="epochs of linear warm-up (0)")
    group.add_argument("--bias-lr-mult", type=_real(0), help="biases' lr multiple (1)")
    group.add_argument("--no-bias-decay", dest="bias_decay", action="store_const", const=False,
                       help="no weight decay on biases")
    group.add_argument("--label-smoothing", type=_real(0, 1, below=True),
                       help="default 0 (off)")
    group.add_argument("--ema", type=_real(0, 1, below=True),
                       help="Polyak averaging: decay per step (off)")
    group.add_argument("--init-from", metavar="CKPT", help="copy layers that fit by name")
    group = train.add_argument_group("augmentation (torch ops, seeded per batch)")
    group.add_argument("--crop-pad", type=_at_least(0),
                       help="random crops from images padded by N")
    group.add_argument("--flip", action="store_const", const=True, help="random h-flips")
    group.add_argument("--scale-crop", type=_area, metavar="MIN,MAX",
                       help="crops of MIN..MAX of the area, aspect 3/4..4/3, resized back")
    group = train.add_argument_group("run")
    group.add_argument("--out", metavar="DIR",
                       help="where the run's files go (default: runs/NET for FILE NET.arch); "
                            "a run started again with the same DIR continues")
    group.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    group.add_argument("--seed", type=_at_least(0, most=2**63 - 1),  # torch's generator's range
                       help="data order, augmentation, init (0)")
    group.add_argument("--device", choices=("cpu", "cuda"), help="default cpu")
    group.add_argument("--amp", choices=("none", "bf16", "fp16"), help="autocast (CUDA)")
    group.add_argument("--channels-last", action="store_const", const=True)
    group.add_argument("--backend", choices=("torch", "triton"), help="default torch")
    group.add_argument("--save-every", type=_at_least(1), metavar="N",
                       help="a checkpoint every N steps too (default: each epoch)")
    group.add_argument("--keep", type=_at_least(1), help="checkpoints kept (3)")
    group.add_argument("--max-steps", type=_at_least(0), metavar="N",
                       help="stop after N steps in all (0: no limit; smoke tests, benchmarks)")
    group.add_argument("--timeout", type=_at_least(1), metavar="S",
                       help="under torchrun: seconds a rank waits for the others before the "
                            "run stops (300)")
    group.add_argument("--dry-run", action="store_true",
                       help="check the data against the net and print the plan; no training")
    group.add_argument("--no-progress", dest="progress", action="store_false")
    add_set(train, "classes=100")
    train.set_defaults(run=run_train)

    eval_ = commands.add_parser(
        "eval", help="evaluate a checkpoint: top-1/top-5 error and a confusion matrix",
        description="Load CKPT's weights into FILE's net and report its loss, top-1 and "
                    "top-5 error on the test split of --data; draw the confusion matrix.")
    eval_.add_argument("file", metavar="FILE", help="an .arch file")
    eval_.add_argument("--checkpoint", required=True, metavar="CKPT")
    _data_options(eval_)
    eval_.add_argument("--confusion", metavar="OUT.png",
                       help="where to draw the confusion matrix (default: beside CKPT)")
    eval_.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    eval_.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_set(eval_)
    eval_.set_defaults(run=run_eval)


def _data_options(command) -> None:
    command.add_argument("--data", metavar="SPEC",
                         help="digits (default), cifar10:DIR, cifar100:DIR, mnist:DIR, "
                              "fashion-mnist:DIR, svhn:DIR or folder:DIR")
    command.add_argument("--resize", action="store_const", const=True,
                         help="resize images to the net's input size (bilinear)")
    command.add_argument("--gray-to-rgb", action="store_const", const=True,
                         help="repeat a grey channel three times for an RGB net")


def config_of(args) -> Config:
    """Config defaults, under the recipe's, under what the command line gave."""
    if args.resume:
        return _resumed(args)
    if not args.file:
        from archc.train.errors import DataError

        raise DataError("give an .arch FILE to train (or --resume DIR)")
    values = dict(RECIPES[args.recipe][1]) if args.recipe else {}
    given = {k: v for k, v in vars(args).items() if v is not None and k in Config.__annotations__}
    values.update(given)
    values.update(net=args.file, overrides=tuple(args.set), recipe=args.recipe or "")
    values.setdefault("out", str(Path("runs") / Path(args.file).stem))
    for key in ("milestones", "scale_crop"):
        values[key] = tuple(values.get(key, ()))
    return Config(**values)


def _resumed(args) -> Config:
    """The saved run's config, with what may change on resume applied (archc.train.resume);
    any other option given that differs is refused."""
    from archc.train import checkpoint, resume

    folder = Path(args.resume)
    if folder.is_file():
        raise checkpoint.CheckpointError(
            f"--resume {folder} is a file: give the run's folder (--resume {folder.parent}), "
            "which resumes from its newest intact checkpoint")
    found = checkpoint.newest_intact(folder, lambda text: print(text, file=sys.stderr))
    if found is None:
        raise checkpoint.CheckpointError(f"--resume {folder}: no checkpoint there")
    saved = Config.from_json(json.loads(found[1]["config"]))
    given = {k: v for k, v in vars(args).items() if v is not None and k in Config.__annotations__}
    if args.set:
        given["overrides"] = tuple(args.set)
    for key in ("milestones", "scale_crop"):
        if key in given:
            given[key] = tuple(given[key])
    config = resume.find_net(resume.resumed_config(saved, given, folder), folder)
    if args.file and not _same_file(args.file, config.net):
        raise checkpoint.CheckpointError(
            f"--resume {folder} continues its run of {config.net}, not {args.file}: drop FILE "
            "to resume, or give another --out to start a run of it")
    return config


def _same_file(a: str, b: str) -> bool:
    """The same file, or two files of the same text (a copy of the net elsewhere)."""
    first, second = Path(a), Path(b)
    try:
        return first.resolve() == second.resolve() or first.read_bytes() == second.read_bytes()
    except OSError:
        return False


def _at_least(minimum: int, most: int | None = None):
    """An argparse type: an integer of at least `minimum` (and at `most`), else a message with
    the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or most is not None and value > most:
            wanted = f">= {minimum}" if most is None else f"from {minimum} to {most}"
            raise argparse.ArgumentTypeError(f"expected an integer {wanted}, got {value}")
        return value
    return parse


def _real(low: float, high: float | None = None, above: bool = False, below: bool = False):
    """An argparse type: a finite number in [low, high] (`above`/`below`: the end excluded)."""
    span = ("(" if above else "[") + f"{low:g}, " + \
        (f"{high:g}" + (")" if below else "]") if high is not None else "inf)")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (above and value == low) or \
                (high is not None and (value > high or (below and value == high))):
            raise argparse.ArgumentTypeError(f"expected a number in {span}, got {text}")
        return value
    return parse


def _area(text: str) -> tuple[float, float]:
    values = _floats(text)
    if len(values) != 2 or not 0 < values[0] <= values[1] <= 1:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX with 0 < MIN <= MAX <= 1 (fractions "
                                         f"of the area), got {text!r}")
    return values


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}") from None


def print_plan(plan: dict) -> None:
    width = max(map(len, plan))
    for key, value in plan.items():
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        print(f"{key:<{width}}  {shown}")
    sys.stdout.flush()


# What `archc train` and `archc eval` need beyond the front end (the `train` extra, and torch).
TRAIN_MODULES = ("torch", "sklearn", "tqdm", "matplotlib", "scipy", "PIL")


def run_train(args) -> int:
    require("train", *TRAIN_MODULES)
    from archc.train.errors import DataError
    from archc.train.loop import AlreadyDone, Stopped, dry_run, train

    try:
        config = config_of(args)
        if args.dry_run:
            print_plan(dry_run(config))
            return 0
        outcome = train(config, progress=args.progress)
    except DataError as error:  # archc's own errors only: a bug in archc keeps its traceback
        print(f"archc train: error: {error}", file=sys.stderr)
        return 1
    if isinstance(outcome, Stopped):
        print(f"stopped by --max-steps after {outcome.global_step} steps, in epoch "
              f"{outcome.epoch} (step {outcome.step_in_epoch}); files in {config.out} "
              f"(go on: archc train --resume {config.out} --max-steps 0)", file=sys.stderr)
    elif isinstance(outcome, AlreadyDone):
        print(f"{config.out} holds a run of all {outcome.epochs} epochs already: give --epochs "
              "N to train longer, or another --out", file=sys.stderr)
    elif os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        print(f"{config.net}: test top-1 error {outcome.test_top1_error:.2%} (accuracy "
              f"{1 - outcome.test_top1_error:.2%}), top-5 error "
              f"{outcome.test_top5_error:.2%} after {outcome.epoch} epochs; files in "
              f"{config.out}")
    return 0


def run_eval(args) -> int:
    require("eval", *TRAIN_MODULES)
    from archc.train.errors import DataError
    from archc.train.evaluation import evaluate_checkpoint

    try:
        figures = evaluate_checkpoint(Path(args.checkpoint), args.file, args.data,
                                      tuple(args.set), args.device, args.resize,
                                      args.gray_to_rgb,
                                      Path(args.confusion) if args.confusion else None)
    except DataError as error:
        print(f"archc eval: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"{args.file} on {figures['data']} test ({figures['samples']:,} images): "
              f"top-1 error {figures['top1_error']:.2%}, top-5 error "
              f"{figures['top5_error']:.2%}, loss {figures['loss']:.4f}")
        if "confusion_png" in figures:
            print(f"confusion matrix: {figures['confusion_png']}", file=sys.stderr)
    return 0

