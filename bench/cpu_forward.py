"""CPU forward latency: archc's compiled modules against the same nets written by hand.

For NIN-CIFAR, VGG-A, GoogLeNet and ResNet-50 (deployment build, eval mode, no_grad), the
compiled module and the hand-written reference (tests/references.py) get the same weights and
the same batch;
their runs alternate, several repetitions each, and the ratio of medians is printed.
Target (issue 3): ratio at most 1.05 -- lowering adds no overhead.

    .venv/bin/python bench/cpu_forward.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from references import Bottleneck, GoogLeNet, NinCifar10, ResNet, VggA  # noqa: E402

from archc.codegen.lower import lower  # noqa: E402
from archc.pipeline import analyse  # noqa: E402

CASES = [  # net, reference, batch
    ("nin_cifar10", NinCifar10, 64),
    ("vgg_a", VggA, 2),
    ("googlenet", GoogLeNet, 8),
    ("resnet50", lambda: ResNet(Bottleneck, [3, 4, 6, 3]), 4),
]


def times_ms(module, x, repeat: int, warmup: int = 2) -> list[float]:
    with torch.no_grad():
        for _ in range(warmup):
            module(x)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, fp32, eval, no_grad, "
          f"median of {args.repeat} (alternating rounds)")
    print("| net | batch | archc ms | hand-written ms | ratio |")
    print("|---|---|---|---|---|")
    for name, reference, batch in CASES:
        analysis = analyse(ROOT / f"nets/{name}.arch")
        compiled = lower(analysis, heads=False).module.eval()
        hand = reference().eval()  # same layers in the same order: copy weights by position
        hand.load_state_dict(dict(zip(hand.state_dict(), compiled.state_dict().values())))
        x = torch.randn(batch, *analysis.shapes[analysis.graph.input])
        ours, theirs = [], []
        for _ in range(args.repeat):  # alternate so drift hits both alike
            ours += times_ms(compiled, x, 1, warmup=1 if not ours else 0)
            theirs += times_ms(hand, x, 1, warmup=1 if not theirs else 0)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"| {name} | {batch} | {a:.1f} | {b:.1f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
