"""The triton backend's launches for whole nets, modelled offline: where the time would go on an
H100 or A100, and what eager PyTorch would move on top for the layers the fusions absorb.

A model, not a measurement (no GPU is needed, none is used): every launch one forward makes at
fp16, batch 256, eval (captured on meta tensors, as `archc kernels` does), each at its best
config by archc.backends.triton.roofline, summed by kernel family. "eager's extra passes" counts, at
the target's HBM bandwidth, the full-tensor reads and writes that eager PyTorch makes for the
layers a fused step absorbs and the fused kernels do not:

- a batch norm, layer scale, layer norm, shortcut sum or activation in a GEMM's or depthwise
  conv's epilogue (and a cuDNN conv's folded batch norm): one read and one write of its
  tensor each (a sum also reads the shortcut, as the fused epilogue does);
- an SE gate multiplied in by the GEMM that loads it: the product written and read again;
- an SE squeeze summed by the depthwise conv before it: one read of that conv's output;
- a shortcut sum that runs the deferred projection GEMM with the shortcut in its epilogue:
  the projection's output written and read again (the shortcut is read either way);
- an mlp step's hidden activation, and a max pool taken as a GEMM loads its input: one write
  and one read of the tensor that is never made;
- a concat branch written in place: torch.cat's read of the branch and write of its slice.

Run: `.venv/bin/python bench/model_nets.py [--nets mobilenet_v2 ...] [--launches] [--json]`;
it compiles with Triton's bundled ptxas (cached, as `archc kernels`), minutes the first time.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from archc.backends.fusion import KernelPlan, Step
from archc.backends.triton.aot import TARGETS
from archc.backends.triton.plan import plan
from archc.cli.kernels import capture_launches, compile_and_model
from archc.pipeline import Analysis, analyse

ROOT = Path(__file__).resolve().parent.parent
NETS = ("mobilenet_v2", "efficientnet_b0", "convnext_tiny")
FAMILIES = {"dwconv_kernel": "depthwise", "conv1x1_kernel": "1x1 GEMMs",
            "mlp1x1_kernel": "1x1 GEMMs", "global_avg_pool_kernel": "global pools",
            "pool2d_kernel": "pools"}
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


def model_net(net: str, target_name: str, dtype: str, batch: int) -> dict:
    target, file = TARGETS[target_name], str(ROOT / "nets" / f"{net}.arch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        launches = capture_launches(file, target, dtype, batch)
    results = compile_and_model(launches, target, quiet=True)
    families: dict[str, float] = {}
    model = ideal = 0.0
    launch_rows = []
    for result in results:
        best = result.best(target)
        if best is None:
            raise SystemExit(f"{net}: {result.kernel} {result.shape} fits no config on "
                             f"{target_name} (`archc kernels` says why)")
        family = FAMILIES.get(result.kernel, result.kernel)
        families[family] = families.get(family, 0.0) + best.timing.model_s * result.count
        model += best.timing.model_s * result.count
        ideal += best.timing.ideal_s * result.count
        launch_rows.append(_launch_row(result, best, target))
    analysis = analyse(file).raise_errors()
    extra = eager_extra_passes(analysis, plan(analysis)) * batch * BYTES[dtype]
    return {"net": net, "target": target_name, "device": target.device, "dtype": dtype,
            "batch": batch, "launches": len(launches), "model_ms": model * 1e3,
            "ideal_ms": ideal * 1e3,
            "families_ms": {k: v * 1e3 for k, v in sorted(families.items())},
            "eager_extra_ms": extra / target.hbm_bytes_per_s * 1e3, "launch_rows": launch_rows}


def _launch_row(result, best, target) -> list[str]:
    """One distinct launch at its best config, as the per-launch tables print it."""
    usage = best.usage
    return [result.kernel.removesuffix("_kernel"), result.flags, result.shape,
            str(result.count), best.name, str(usage.registers), f"{usage.shared / 1024:.0f}",
            str(usage.blocks_per_sm(target)), usage.tensor_cores,
            f"{usage.widest_load}/{usage.widest_store}", f"{best.timing.model_s * 1e6:.1f}",
            f"{best.timing.ideal_s * 1e6:.1f}"]


def eager_extra_passes(analysis: Analysis, kernel_plan: KernelPlan) -> int:
    """Elements an image that eager PyTorch reads or writes on top of the plan's kernels, for
    the layers the plan's steps absorb (the module docstring's list)."""
    def size(n: int) -> int:
        shape = analysis.shapes[n]
        return shape.c * shape.h * shape.w

    total = 0
    for step in kernel_plan.steps:
        total += sum(2 * size(n) for n in _absorbed(analysis, step))
        if step.kind == "gate":
            total += 2 * size(step.nodes[0])
        if step.squeeze is not None:
            total += size(step.output)
        if step.kind == "sum":
            total += 2 * size(step.nodes[0])
        if step.kind == "mlp":
            total += 2 * size(step.nodes[0])
        if step.pool is not None:
            total += 2 * size(step.pool)
        total += sum(2 * size(n) for n, into in zip(step.nodes, step.into) if into is not None)
    return total


def _absorbed(analysis: Analysis, step: Step) -> tuple[int, ...]:
    """The epilogue layers a step computes that eager runs as kernels of their own: all of a
    Triton step's; of a cuDNN conv's, the folded batch norm (its activation stays torch's)."""
    if step.kind in ("gemm", "dwconv"):
        return step.tail
    if step.kind == "torch" and step.bn is not None:
        return (step.bn,)
    return ()


def table(rows: list[dict]) -> str:
    families = sorted({f for row in rows for f in row["families_ms"]})
    head = ["net", "target", "launches", "modelled ms", "ideal ms", *families,
            "eager's extra passes, modelled ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["net"], f"{row['target']} ({row['device']})", str(row["launches"]),
                 f"{row['model_ms']:.2f}", f"{row['ideal_ms']:.2f}",
                 *(f"{row['families_ms'].get(f, 0.0):.2f}" for f in families),
                 f"+{row['eager_extra_ms']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


LAUNCH_HEAD = ["kernel", "flags", "shape", "n", "config", "regs", "smem KB", "blk/SM",
               "tensor", "ld/st B", "model us", "ideal us"]


def launch_table(row: dict) -> str:
    """Every distinct launch of one net on one target, in a collapsed section."""
    lines = [f"<details><summary>{row['net']}, {row['target']}, {row['dtype']}, batch "
             f"{row['batch']}: every launch (model)</summary>", "",
             "| " + " | ".join(LAUNCH_HEAD) + " |", "|" + "---|" * len(LAUNCH_HEAD)]
    lines += ["| " + " | ".join(cells) + " |" for cells in row["launch_rows"]]
    return "\n".join(lines + ["", "</details>"]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=NETS, help="shipped nets (nets/NET.arch)")
    parser.add_argument("--targets", nargs="+", default=("sm_90", "sm_80"), choices=TARGETS)
    parser.add_argument("--dtype", default="fp16", choices=BYTES)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--launches", action="store_true",
                        help="also every launch of each net on the first target")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = [model_net(net, target, args.dtype, args.batch)
            for net in args.nets for target in args.targets]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(table(rows), end="")
    for row in rows if args.launches else ():
        if row["target"] == args.targets[0]:
            print("\n" + launch_table(row), end="")


if __name__ == "__main__":
    main()
