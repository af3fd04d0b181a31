"""Where a CPU forward's time goes, conv by conv: archc's cpu backend against onnxruntime.

`bench/cpu_peers.py` says which engine is faster; this says where. For one net at one batch,
in one process (the engines in turn, the same weights, input and threads, fp32, eval, no
autograd): each engine runs `--forwards` timed forwards, then as many under its own profiler
(torch.profiler for archc, onnxruntime's session profiler). Every convolution is keyed by its
geometry (input N x C x H x W and weight O x I/groups x kH x kW, as both profilers report
them), so the two engines' convs pair up however each fused or ordered them (a geometry one
engine lacks shows its count as "n / 0": onnxruntime pads some channel counts); a
geometry's time per forward is its median call times its calls, so a rare slow call does not
weigh. archc's conv calls are timed whole, Python included (`archc.backends.cpu.conv`
wrapped); onnxruntime's kernels by its profiler. It prints the geometries where archc loses
most, then the totals: the convs, the median forward without profiling, and the rest (the
forward less its convs: pools, concats, sums, the time between kernels). archc runs its own
calls throughout (`ARCHC_CPU_GRAPH=0`): its oneDNN Graph engine, which a shape seen often may
get (archc.backends.cpu.graph), calls no `C.conv` to time.

    .venv/bin/python bench/cpu_layers.py resnet50 [--batch 8] [--forwards 10] [--threads 2]
                                         [--top 12] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _wall_ms(forward, x, forwards: int) -> float:
    forward(x)
    times = []
    for _ in range(forwards):
        start = time.perf_counter()
        forward(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def archc_profile(module, x, forwards: int) -> tuple[dict, float, float]:
    """archc's convs by geometry (convs and milliseconds a forward) and its median forward.
    Each `C.conv` call is timed whole (torch.profiler's events were no guide: under it one
    16 -> 96 1x1 conv of MobileNet-v2 took six times its time without it)."""
    import torch

    from archc.backends import cpu

    convs, conv = collections.defaultdict(list), cpu.conv

    def timed(x, layer, *args, **kwargs):
        start = time.perf_counter()
        y = conv(x, layer, *args, **kwargs)
        convs[(tuple(x.shape), tuple(layer.weight.shape))].append(
            (time.perf_counter() - start) * 1e3)
        return y
    with torch.no_grad():
        wall = _wall_ms(module, x, forwards)
        cpu.conv = timed  # emitted modules call it as C.conv: looked up at each call
        try:
            for _ in range(forwards):
                module(x)
        finally:
            cpu.conv = conv
    return _per_forward(convs, forwards), wall


def onnxruntime_profile(module, x, forwards: int, threads: int) -> tuple[dict, float]:
    """The same for onnxruntime on the module exported as `archc export --onnx` writes it,
    its convs timed by its session profiler."""
    import onnxruntime

    from archc.codegen.export import export_onnx

    folder = Path(tempfile.mkdtemp())
    export_onnx(module, tuple(x.shape[1:]), folder / "net.onnx")
    sessions = []
    for profiling in (False, True):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_profiling = profiling
        options.profile_file_prefix = str(folder / "profile")
        sessions.append(onnxruntime.InferenceSession(str(folder / "net.onnx"), options,
                                                     providers=["CPUExecutionProvider"]))
    feed = {"image": x.numpy()}
    wall = _wall_ms(lambda image: sessions[0].run(None, image), feed, forwards)
    for _ in range(forwards):
        sessions[1].run(None, feed)
    events = json.loads(Path(sessions[1].end_profiling()).read_text())
    convs = collections.defaultdict(list)
    for event in events:
        args = event.get("args", {})
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and \
                args["op_name"] in ("Conv", "FusedConv"):
            image, weight = (tuple(s["float"]) for s in args["input_type_shape"][:2])
            convs[(image, weight)].append(event["dur"] / 1e3)
    return _per_forward(convs, forwards), wall


def _per_forward(convs: dict, forwards: int) -> dict:
    """(convs a forward, ms a forward) by geometry: the median call times the calls, so a
    rare slow call (a page fault, a thread woken late) does not weigh as its mean would."""
    return {key: (len(calls) // forwards, statistics.median(calls) * len(calls) / forwards)
            for key, calls in convs.items()}


def measure(name: str, batch: int, forwards: int, threads: int) -> dict:
    import torch

    import archc
    from archc.codegen.lower import compile_net
    from archc.pipeline import analyse

    os.environ["ARCHC_CPU_GRAPH"] = "0"  # the own calls, conv by conv (read at first use)
    torch.set_num_threads(threads)
    path = ROOT / "nets" / f"{name}.arch"
    analysis = analyse(path).raise_errors()
    torch.manual_seed(0)
    reference = archc.compile(path, backend="torch", heads=False, logits=True).eval()
    module = compile_net(path, "cpu", heads=False, logits=True).eval()
    module.load_state_dict(reference.state_dict())
    x = torch.randn(batch, *analysis.shapes[analysis.graph.input])
    ours, ours_wall = archc_profile(module, x, forwards)
    theirs, their_wall = onnxruntime_profile(reference, x, forwards, threads)
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        count, ms = ours.get(key, (0, 0.0))
        their_count, their_ms = theirs.get(key, (0, 0.0))
        rows.append({"input": list(key[0]), "weight": list(key[1]), "convs": count,
                     "onnxruntime_convs": their_count, "archc_ms": ms,
                     "onnxruntime_ms": their_ms})
    rows.sort(key=lambda r: r["onnxruntime_ms"] - r["archc_ms"])
    return {"net": name, "batch": batch, "threads": threads, "convs": rows,
            "archc": _totals(ours, ours_wall), "onnxruntime": _totals(theirs, their_wall)}


def _totals(convs: dict, forward_ms: float) -> dict:
    conv_ms = sum(ms for _, ms in convs.values())
    return {"convs_ms": conv_ms, "rest_ms": forward_ms - conv_ms, "forward_ms": forward_ms}


def _shape(dims) -> str:
    return "x".join(map(str, dims))


def report(result: dict, top: int) -> str:
    from tabulate import tabulate

    rows = [[_shape(r["input"]), _shape(r["weight"]),
             r["convs"] if r["convs"] == r["onnxruntime_convs"] else
             f"{r['convs']} / {r['onnxruntime_convs']}",
             f"{r['archc_ms']:.2f}", f"{r['onnxruntime_ms']:.2f}",
             f"{r['onnxruntime_ms'] / r['archc_ms']:.2f}" if r["archc_ms"] else "-"]
            for r in result["convs"][:top]]
    convs = tabulate(rows, ["input", "weight", "convs", "archc ms", "onnxruntime ms",
                            "onnxruntime/archc"], tablefmt="github")
    totals = [[part, f"{result['archc'][key]:.2f}", f"{result['onnxruntime'][key]:.2f}",
               f"{result['onnxruntime'][key] / result['archc'][key]:.2f}"]
              for part, key in (("every conv", "convs_ms"), ("the rest", "rest_ms"),
                                ("forward", "forward_ms"))]
    head = (f"{result['net']}, batch {result['batch']}, {result['threads']} threads; "
            f"{len(result['convs'])} conv geometries, the {min(top, len(result['convs']))} "
            f"where archc loses most (ms per forward):")
    return "\n\n".join([head, convs, tabulate(totals, ["", "archc ms", "onnxruntime ms",
                                                       "onnxruntime/archc"],
                                              tablefmt="github")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("net", help="nets/NET.arch")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--forwards", type=int, default=10, help="timed, then profiled")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--top", type=int, default=12, help="conv geometries shown")
    parser.add_argument("--json", action="store_true", help="every geometry, as JSON")
    args = parser.parse_args()
    result = measure(args.net, args.batch, args.forwards, args.threads)
    print(json.dumps(result, indent=1) if args.json else report(result, args.top))


if __name__ == "__main__":
    sys.exit(main())
