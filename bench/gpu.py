"""GPU benchmark of the triton backend: its kernels against the device's limits and against
cuDNN, and whole nets against eager PyTorch and torch.compile, side by side in one process.

On a fresh CUDA machine (torch 2.11 and Triton 3.6 in the GPU image; Lark must come as a
wheel, see /work/.library/device/README.md), in the repository root:

    python bench/gpu.py [--json OUT.json] [--full]

It prints, as Markdown tables for BENCHMARKS.md:
1. the device's measured ceilings: a device-to-device copy (GB/s) and an 8192^3 fp16 matmul;
2. each kernel on GoogLeNet's shapes at batch 256, fp16, channels last: the fused 1x1
   conv+bias+ReLU (the merged inception GEMMs) in TFLOP/s, % of the matmul ceiling and the
   ratio to eager cuDNN conv+ReLU (target 1.2x); the pools and global average pooling in
   GB/s, % of the copy ceiling (target 80%) and the ratio to torch; the first call's time
   (compile and autotune, which users feel);
3. GoogLeNet, NIN-CIFAR and VGG-A in images/s at batch 1, 64 and 256, fp16, channels last,
   eval: the torch backend eager (cuDNN), the triton backend, torch.compile default, and
   torch.compile(mode="max-autotune") (GoogLeNet at batch 256 only unless --full: its
   autotuning takes minutes a net); ratios to eager; GoogLeNet at 256 also as a percentage of
   its per-layer roofline (each layer at the slower of its arithmetic and its bytes, with the
   ceilings measured in 1; the design note ../shared/design/performance.md estimates
   1.58 ms on an H100 SXM). `archc kernels` models the same launches offline (a model);
4. the fused depthwise conv + bn + activation (and ConvNeXt's 7x7 + layer norm) against
   eager's separate kernels and torch.compile (bench/gpu_depthwise.py; target 1.5x eager);
   MobileNet-v2 and EfficientNet-B0 at batch 256 in table 3, with max-autotune (target: at
   least as fast as it).
The whole run takes about 5 minutes without --full. `--smoke` runs the same code on the CPU
under TRITON_INTERPRET=1 with tiny nets and one repetition (what the test suite checks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "--smoke" in sys.argv:  # before Triton is imported
    os.environ["TRITON_INTERPRET"] = "1"

import gpu_depthwise  # noqa: E402  (bench/, beside this file)
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from archc.backends import functional as K  # noqa: E402
from archc.backends.registry import BACKENDS  # noqa: E402
from archc.codegen.lower import lower  # noqa: E402
from archc.pipeline import analyse  # noqa: E402

INCEPTION_1X1 = [  # name, C_in, merged C_out, H: GoogLeNet's merged 1x1 GEMMs
    ("3a", 192, 64 + 96 + 16, 28), ("4a", 480, 192 + 96 + 16, 14),
    ("4e", 528, 256 + 160 + 32, 14), ("5b", 832, 384 + 192 + 48, 7)]
POOLS = [  # name, kind, C, H, window, stride, pad
    ("pool1 3x3/2", "max", 64, 112, 3, 2, 0), ("3a proj 3x3/1", "max", 192, 28, 3, 1, 1),
    ("aux 5x5/3", "avg", 512, 14, 5, 3, 0)]
NETS = ["googlenet", "nin_cifar10", "vgg_a", "mobilenet_v2", "efficientnet_b0"]
BATCHES = {"mobilenet_v2": (256,), "efficientnet_b0": (256,)}  # the others: 1, 64 and 256
AUTOTUNED = {("googlenet", 256), ("mobilenet_v2", 256), ("efficientnet_b0", 256)}
SMOKE_NET = """net smoke(classes = 3) {
    input 3x8x8
    default conv relu
    conv 3x3 16 pad=1
    a: concat {
        conv 1x1 8
        { conv 1x1 8; conv 3x3 8 pad=1 }
        { maxpool 3x3/1 pad=1 round=ceil; conv 1x1 4 }
    }
    conv 3x3 20 pad=1 groups=20 bias=false linear; bn; relu6
    maxpool 2x2/2
    gap
    fc classes linear
}
"""


class Bench:
    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.device = "cpu" if smoke else "cuda"
        self.dtype = torch.float32 if smoke else torch.float16
        self.batch = 1 if smoke else 256

    def ms(self, fn) -> float:
        """Median milliseconds of `fn()`, timed with CUDA events after a warm-up."""
        if self.smoke:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")

    def first_call_s(self, fn) -> float:
        start = time.perf_counter()
        fn()
        if not self.smoke:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def size(self, n: int) -> int:
        """A size of the real run; a tenth of it (at least 3) for the smoke run."""
        return max(n // 10, 3) if self.smoke else n

    def nhwc(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, dtype=self.dtype).contiguous(
            memory_format=torch.channels_last)


def ceilings(b: Bench) -> dict:
    n = 1 << (20 if b.smoke else 28)
    src, dst = torch.empty(n, device=b.device, dtype=torch.uint8), None
    dst = torch.empty_like(src)
    copy_ms = b.ms(lambda: dst.copy_(src))
    size = 64 if b.smoke else 8192
    x, y = (torch.randn(size, size, device=b.device, dtype=b.dtype) for _ in range(2))
    mm_ms = b.ms(lambda: x @ y)
    return {"copy_GBps": 2 * n / copy_ms / 1e6, "matmul_TFLOPs": 2 * size**3 / mm_ms / 1e9}


def kernels(b: Bench, limits: dict) -> list[dict]:
    rows = [_conv_row(b, limits, *case) for case in INCEPTION_1X1]
    rows.append(_conv_row(b, limits, "3a pool proj", 192, 32, 28, pool=True))
    rows.append(_mlp_row(b, limits, "NIN mlpconv1", 192, 160, 96, 32))
    rows += [_pool_row(b, limits, *case) for case in POOLS]
    x = b.nhwc(b.batch, b.size(1024), 7, 7)
    first = b.first_call_s(lambda: K.global_avg_pool(x))
    ours, theirs = b.ms(lambda: K.global_avg_pool(x)), b.ms(lambda: F.adaptive_avg_pool2d(x, 1))
    rows.append(_bandwidth_row(f"global avg pool C={x.shape[1]} 7x7", ours, theirs,
                               x.numel() * x.element_size(), limits, first))
    return rows


def _conv_row(b: Bench, limits: dict, name: str, c_in: int, c_out: int, h: int,
              pool: bool = False) -> dict:
    """The fused 1x1 conv + bias + ReLU (with `pool`: the 3x3/1 max pool taken as it loads,
    against torch's pool then conv) at batch b.batch."""
    c_in, c_out, h = b.size(c_in), b.size(c_out), b.size(h)
    x, conv = b.nhwc(b.batch, c_in, h, h), torch.nn.Conv2d(c_in, c_out, 1)
    conv = conv.to(b.device, b.dtype).to(memory_format=torch.channels_last)
    first = b.first_call_s(lambda: K.conv1x1(x, conv, relu=True, pool=pool))
    with torch.inference_mode():  # the pool is folded at inference
        ours = b.ms(lambda: K.conv1x1(x, conv, relu=True, pool=pool))
        eager = b.ms(lambda: F.relu(conv(F.max_pool2d(x, 3, 1, 1) if pool else x)))
    flops = 2 * b.batch * h * h * c_in * c_out
    return {"kernel": f"conv1x1 {name} {c_in}->{c_out} {h}x{h}", "ms": ours,
            "rate": f"{flops / ours / 1e9:.1f} TFLOP/s",
            "of_limit": flops / ours / 1e9 / limits["matmul_TFLOPs"],
            "vs_torch": eager / ours, "first_call_s": first}


def _mlp_row(b: Bench, limits: dict, name: str, c_in: int, hidden: int, c_out: int,
             h: int) -> dict:
    """NIN's two 1x1 convs in one kernel against two eager cuDNN conv+ReLUs."""
    c_in, hidden, c_out, h = b.size(c_in), b.size(hidden), b.size(c_out), b.size(h)
    x = b.nhwc(b.batch, c_in, h, h)
    convs = [torch.nn.Conv2d(i, o, 1).to(b.device, b.dtype).to(memory_format=torch.channels_last)
             for i, o in ((c_in, hidden), (hidden, c_out))]
    with torch.inference_mode():
        first = b.first_call_s(lambda: K.mlp1x1(x, *convs))
        ours = b.ms(lambda: K.mlp1x1(x, *convs))
        eager = b.ms(lambda: F.relu(convs[1](F.relu(convs[0](x)))))
    flops = 2 * b.batch * h * h * hidden * (c_in + c_out)
    return {"kernel": f"mlp1x1 {name} {c_in}->{hidden}->{c_out} {h}x{h}", "ms": ours,
            "rate": f"{flops / ours / 1e9:.1f} TFLOP/s",
            "of_limit": flops / ours / 1e9 / limits["matmul_TFLOPs"],
            "vs_torch": eager / ours, "first_call_s": first}


def _pool_row(b: Bench, limits: dict, name: str, kind: str, c: int, h: int, window: int,
              stride: int, pad: int) -> dict:
    c, h = b.size(c), max(b.size(h), window)
    x = b.nhwc(b.batch, c, h, h)
    args = (kind, (window,) * 2, (stride,) * 2, (pad,) * 2, True)
    first = b.first_call_s(lambda: K.pool2d(x, *args))
    out = K.pool2d(x, *args)
    ours = b.ms(lambda: K.pool2d(x, *args))
    torch_pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    theirs = b.ms(lambda: torch_pool(x, window, stride, pad, ceil_mode=True))
    moved = (x.numel() + out.numel()) * x.element_size()
    return _bandwidth_row(f"{kind}pool {name} C={c} {h}x{h}", ours, theirs, moved, limits, first)


def _bandwidth_row(name, ours, theirs, moved, limits, first) -> dict:
    return {"kernel": name, "ms": ours, "rate": f"{moved / ours / 1e6:.0f} GB/s",
            "of_limit": moved / ours / 1e6 / limits["copy_GBps"], "vs_torch": theirs / ours,
            "first_call_s": first}


def nets(b: Bench, limits: dict, full: bool, names: list[str]) -> list[dict]:
    rows = []
    for name in ["smoke"] if b.smoke else names:
        analysis = analyse("<smoke>.arch", {}, text=SMOKE_NET) if b.smoke else \
            analyse(ROOT / f"nets/{name}.arch")
        analysis.raise_errors()
        for batch in (1,) if b.smoke else BATCHES.get(name, (1, 64, 256)):
            rows.append(_net_row(b, analysis, name, batch, full, limits))
            print(f"  {name} batch {batch}: done", file=sys.stderr, flush=True)
    return rows


def _net_row(b: Bench, analysis, name: str, batch: int, full: bool, limits: dict) -> dict:
    def build(backend):
        module = lower(analysis, heads=False, logits=True, backend=BACKENDS[backend]).module
        return module.to(b.device, b.dtype).to(memory_format=torch.channels_last).eval()

    torch.manual_seed(0)
    eager = build("torch")
    fused = build("triton")
    fused.load_state_dict(eager.state_dict())
    x = b.nhwc(batch, *analysis.shapes[analysis.graph.input])
    peers = {"eager": lambda: eager, "triton": lambda: fused}
    if not b.smoke:
        peers["compile"] = lambda: torch.compile(eager)
        if full or (name, batch) in AUTOTUNED:
            peers["max-autotune"] = lambda: torch.compile(eager, mode="max-autotune")
    row = {"net": name, "batch": batch}
    with torch.inference_mode():
        want = eager(x).float()
        for peer, make in peers.items():
            torch._dynamo.reset()  # each compiled peer from scratch, timed before the next
            module = make()
            row[f"{peer}_first_s"] = b.first_call_s(lambda m=module: m(x))
            error = (module(x).float() - want).norm() / want.norm()
            assert error < 2e-2, f"{name} {peer}: relative error {error:.2e}"
            row[f"{peer}_img_s"] = batch / b.ms(lambda m=module: m(x)) * 1e3
    if name == "googlenet" and batch == 256:
        row["roofline_ms"] = roofline_ms(analysis, batch, limits, 2)
        row["triton_of_roofline"] = row["roofline_ms"] / (batch / row["triton_img_s"] * 1e3)
    return row


def roofline_ms(analysis, batch: int, limits: dict, element: int) -> float:
    """Each layer at the slower of its arithmetic and its bytes (inputs, output, weights read
    or written once), at the measured ceilings: the time ideal kernels would take."""
    total = 0.0
    for n in analysis.graph.main_nodes():
        node = analysis.graph.node(n)
        if not node.inputs:
            continue
        flops = 2 * analysis.costs[n].macs * batch
        values = sum(analysis.shapes[i].numel() for i in node.inputs) + analysis.shapes[n].numel()
        moved = (values * batch + analysis.costs[n].params) * element
        total += max(flops / (limits["matmul_TFLOPs"] * 1e12),
                     moved / (limits["copy_GBps"] * 1e9))
    return total * 1e3


def report(limits: dict, kernel_rows: list[dict], net_rows: list[dict], b: Bench) -> None:
    device = "CPU (smoke)" if b.smoke else torch.cuda.get_device_name()
    import triton

    print(f"\n{device}; torch {torch.__version__}, triton {triton.__version__}; "
          f"{str(b.dtype).removeprefix('torch.')}, channels last, batch {b.batch} for kernels")
    print(f"ceilings: copy {limits['copy_GBps']:.0f} GB/s, matmul "
          f"{limits['matmul_TFLOPs']:.0f} TFLOP/s\n")
    print("| kernel | ms | rate | % of ceiling | vs torch | first call s |")
    print("|---|---|---|---|---|---|")
    for r in kernel_rows:
        print(f"| {r['kernel']} | {r['ms']:.3f} | {r['rate']} | {r['of_limit']:.0%} | "
              f"{r['vs_torch']:.2f}x | {r['first_call_s']:.2f} |")
    peers = ["eager", "triton", "compile", "max-autotune"]
    print("\n| net | batch | " + " | ".join(f"{p} img/s" for p in peers) +
          " | triton/eager | triton/compile | triton/max-autotune |")
    print("|---|---|" + "---|" * (len(peers) + 3))
    for r in net_rows:
        rates = [f"{r[f'{p}_img_s']:.0f}" if f"{p}_img_s" in r else "-" for p in peers]
        ratios = [f"{r['triton_img_s'] / r[f'{p}_img_s']:.2f}" if f"{p}_img_s" in r else "-"
                  for p in ("eager", "compile", "max-autotune")]
        print(f"| {r['net']} | {r['batch']} | " + " | ".join(rates + ratios) + " |")
    for r in net_rows:
        if "roofline_ms" in r:
            print(f"\nGoogLeNet batch {r['batch']}: roofline {r['roofline_ms']:.2f} ms; the "
                  f"triton backend reaches {r['triton_of_roofline']:.0%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", default="gpu-bench.json",
                        help="where to write every figure (default: gpu-bench.json)")
    parser.add_argument("--full", action="store_true",
                        help="max-autotune for every net and batch (adds many minutes)")
    parser.add_argument("--nets", default=",".join(NETS),
                        help="nets/NAME.arch to time, comma-separated (default: %(default)s; "
                             "resnet50 exercises the bn folds and residual epilogues)")
    parser.add_argument("--smoke", action="store_true",
                        help="run on the CPU in Triton's interpreter, tiny shapes, to test it")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA device (or --smoke to test it on the CPU)")
    b = Bench(args.smoke)
    torch.backends.cudnn.benchmark = True
    limits = ceilings(b)
    kernel_rows = kernels(b, limits)
    depthwise_rows = gpu_depthwise.depthwise(b, limits)
    net_rows = nets(b, limits, args.full, [n for n in args.nets.split(",") if n])
    report(limits, kernel_rows, net_rows, b)
    gpu_depthwise.report(depthwise_rows)
    Path(args.json).write_text(json.dumps({"ceilings": limits, "kernels": kernel_rows,
                                           "depthwise": depthwise_rows, "nets": net_rows},
                                          indent=1) + "\n")
    print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
