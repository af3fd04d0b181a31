"""Training throughput: `archc train`'s loop against a hand-written PyTorch loop, same process.

Both train the same compiled module (same weights, same data, same batch size, SGD with
momentum and weight decay) for the same number of steps; the hand-written loop is what a user
would write: shuffle with randperm, index the uint8 tensor, normalise, forward, cross-entropy,
backward, step. archc's loop adds what the runner promises (per-batch seeded augmentation
generators, learning-rate schedule, device-side tallies, NaN checks, the progress bar off).
Rounds alternate after a warm-up; the median of the rounds' ratios is printed. Target
(issue 8): at least 0.95.

    .venv/bin/python bench/train.py [--net nets/nin_digits.arch] [--epochs 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archc.codegen.lower import training_loss  # noqa: E402
from archc.train import data, distributed  # noqa: E402
from archc.train.config import Config  # noqa: E402
from archc.train.loop import Position, _epoch  # noqa: E402
from archc.train.state import prepare  # noqa: E402


def archc_round(config: Config, epochs: int, steps: int) -> float:
    """Images/s of archc's own epoch loop: `steps` batches an epoch, the last one partial."""
    run = prepare(config, distributed.setup(config.device))
    start = time.perf_counter()
    for epoch in range(epochs):
        _epoch(run, Position(epoch, 0, epoch * steps), None, progress=False)
    _sync(config.device)
    return epochs * len(run.train) / (time.perf_counter() - start)


def hand_round(config: Config, epochs: int, steps: int) -> float:
    """Images/s of the loop a user would write around the same module."""
    run = prepare(config, distributed.setup(config.device))
    model, images, labels = run.model.train(), run.train.images, run.train.labels
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(labels), device=images.device)
        for step in range(steps):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            x = (images[index].float() / 255 - run.mean) / run.std
            loss = training_loss(model, model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    _sync(config.device)
    return epochs * len(run.train) / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", default="nets/nin_digits.arch")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8, help="epochs a round")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        config = Config(args.net, data=args.data, out=out, batch_size=args.batch_size,
                        device=args.device, flip=False, epochs=1)
        train, _ = data.load(args.data)
        steps = data.steps_per_epoch(len(train), args.batch_size)  # the last one partial
        config = Config(**{**config.to_json(), "max_steps": steps * args.epochs})
        archc_round(config, 1, steps), hand_round(config, 1, steps)  # warm-up, not counted
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternate so drift hits both alike
            ours.append(archc_round(config, args.epochs, steps))
            theirs.append(hand_round(config, args.epochs, steps))
    a, b = statistics.median(ours), statistics.median(theirs)
    ratios = sorted(x / y for x, y in zip(ours, theirs))  # each round's pair: drift cancels
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {args.device}; {args.net} on "
          f"{args.data}, batch {args.batch_size}, {args.epochs * steps} steps a round, median of "
          f"{args.rounds} alternating rounds")
    print("| loop | images/s |\n|---|---|")
    print(f"| archc train | {a:.0f} |\n| hand-written | {b:.0f} |")
    print(f"ratio archc / hand-written: {statistics.median(ratios):.3f} (median of the "
          f"rounds' ratios; range {ratios[0]:.3f}-{ratios[-1]:.3f})")


if __name__ == "__main__":
    main()
