"""CPU inference: archc's frozen engine against what a CPU user would pick instead.

Engines, each in its own process (its own threads, caches and allocator), on the same weights
and the same input, fp32, eval mode, no autograd:

- `archc`: `archc.freeze(archc.compile(path))` (the cpu backend: oneDNN convs with bn folded,
  weights prepacked, shortcut and activation fused, archc.backends.cpu; or, at an input
  shape seen `WARM_UP` times, the net as one oneDNN Graph where that measured faster,
  archc.backends.cpu.graph: the table says which it chose);
- `onnxruntime`: the torch backend's module exported by `archc export`'s path
  (archc.codegen.export), run with the CPU provider, `allow_spinning` off and the same threads;
- `torch.compile`: the torch backend's module, channels last, compiled by Inductor with
  freezing (weights folded and prepacked, as Inductor's CPU guide advises);
- `eager`: the torch backend's module, NCHW, as the reference for outputs and speed.

Each engine's first call (export, session, compile or prepack, plus one forward; archc's:
every forward until it has chosen its engine for the shape) is timed apart. Then the parent
interleaves rounds, so drift hits all engines alike: in each, every engine in turn runs one
untimed forward (the others ran since: caches and sleeping threads are warmed) and then
about 0.3 s of timed ones. It prints the median over rounds of each
round's median, the ratio `faster peer / archc` (>= 1: archc at least as fast)
and each output's largest difference from eager's.

    .venv/bin/python bench/cpu_peers.py [--nets googlenet resnet50] [--batch 1 8]
                                        [--rounds 7] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETS = ["googlenet", "nin_cifar10", "vgg_a", "resnet50", "mobilenet_v2"]
ENGINES = ["archc", "onnxruntime", "torch.compile", "eager"]
PEERS = ("onnxruntime", "torch.compile")  # what the target compares archc with
ROUND_MS = 300  # each engine's turn in a round: about this long, 1 to 20 forwards


def _build(engine: str, path: str, weights: dict, example, threads: int):
    """The engine's forward for `path` with `weights`, ready to call on `example`."""
    import torch

    import archc

    module = archc.compile(path, heads=False, logits=True).eval()
    module.load_state_dict(weights)
    if engine == "archc":
        return archc.freeze(module)
    if engine == "eager":
        return module
    if engine == "torch.compile":
        import torch._inductor.config as inductor

        inductor.freezing = True
        return torch.compile(module.to(memory_format=torch.channels_last))
    import onnxruntime

    from archc.codegen.export import export_onnx

    onnx_path = Path(tempfile.mkdtemp()) / "net.onnx"
    export_onnx(module, tuple(example.shape[1:]), onnx_path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(onnx_path), options,
                                           providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0])


def _worker(engine: str, path: str, inputs_file: str, threads: int, pipe) -> None:
    """Serve timed forwards: n -> one warm-up forward, then n timed (milliseconds);
    'output' -> the output; 'stop'."""
    import warnings

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(threads)
    weights, x = torch.load(inputs_file)
    with torch.no_grad():
        start = time.perf_counter()
        forward = _build(engine, path, weights, x, threads)
        output = forward(x)
        chosen = ""
        if engine == "archc":  # its forwards until it has chosen its engine for this shape
            from archc.backends.cpu import graph as cpu_graph

            for _ in range(cpu_graph.WARM_UP):
                output = forward(x)
            chosen = forward.serving(x)
        pipe.send(((time.perf_counter() - start) * 1e3, chosen))
        while (command := pipe.recv()) != "stop":
            if command == "output":
                pipe.send(output.numpy())
                continue
            forward(x)  # the other engines ran since: warm the caches and wake the threads
            times = []
            for _ in range(command):
                start = time.perf_counter()
                forward(x)
                times.append((time.perf_counter() - start) * 1e3)
            pipe.send(times)


def measure(name: str, batch: int, engines: list[str], rounds: int, threads: int) -> dict:
    """One net at one batch: every engine started, warmed, then timed in interleaved rounds."""
    import numpy as np
    import torch

    import archc

    path = str(ROOT / "nets" / f"{name}.arch")
    torch.manual_seed(0)
    module = archc.compile(path, backend="torch", heads=False, logits=True)
    x = torch.randn(batch, *_input_shape(path))
    inputs_file = Path(tempfile.mkdtemp()) / "inputs.pt"
    torch.save((module.state_dict(), x), inputs_file)
    context = mp.get_context("spawn")
    pipes, first, calls, times, outputs, chosen = {}, {}, {}, {e: [] for e in engines}, {}, {}
    for engine in engines:  # one at a time, so no start-up competes with another's
        parent, child = context.Pipe()
        context.Process(target=_worker, args=(engine, path, str(inputs_file), threads, child),
                        daemon=True).start()
        pipes[engine] = parent
        first[engine], chosen[engine] = parent.recv()
        parent.send(1)
        calls[engine] = max(1, min(20, round(ROUND_MS / parent.recv()[0])))
    for _ in range(rounds):
        for engine in engines:
            pipes[engine].send(calls[engine])
            times[engine].append(statistics.median(pipes[engine].recv()))
    for engine in engines:
        pipes[engine].send("output")
        outputs[engine] = pipes[engine].recv()
        pipes[engine].send("stop")
    reference = outputs.get("eager", outputs[engines[0]])
    return {"net": name, "batch": batch,
            "median_ms": {e: statistics.median(times[e]) for e in engines},
            "first_call_ms": first, "archc_engine": chosen.get("archc", ""),
            "max_rel_diff": {e: float(np.abs(outputs[e] - reference).max() /
                                      np.abs(reference).max()) for e in engines}}


def _input_shape(path: str) -> tuple[int, ...]:
    from archc.pipeline import analyse

    analysis = analyse(path).raise_errors()
    return tuple(analysis.shapes[analysis.graph.input])


def ratio(row: dict) -> float | None:
    """The faster peer's median over archc's: >= 1 when archc is at least as fast."""
    peers = [row["median_ms"][p] for p in PEERS if p in row["median_ms"]]
    return min(peers) / row["median_ms"]["archc"] if peers and "archc" in row["median_ms"] \
        else None


def table(rows: list[dict], engines: list[str]) -> str:
    head = ["net", "batch", *(f"{e} ms" for e in engines), "peer/archc", "archc ran",
            *(f"{e} first call s" for e in engines), "max diff / max eager"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        r = ratio(row)
        diffs = ", ".join(f"{e} {row['max_rel_diff'][e]:.1e}" for e in engines if e != "eager")
        cells = [row["net"], str(row["batch"]),
                 *(f"{row['median_ms'][e]:.1f}" for e in engines),
                 "-" if r is None else f"{r:.2f}", row["archc_engine"] or "-",
                 *(f"{row['first_call_ms'][e] / 1e3:.1f}" for e in engines), diffs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", default=NETS,
                        help="nets/NAME.arch (default: %(default)s)")
    parser.add_argument("--batch", nargs="+", type=int, default=[8, 1], help="default 8 1")
    parser.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="the rows as JSON")
    args = parser.parse_args()
    import numpy
    import onnxruntime
    import torch

    print(f"{platform.processor() or platform.machine()}, {args.threads} threads; "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"numpy {numpy.__version__}, python {platform.python_version()}; fp32, eval, "
          f"median of {args.rounds} interleaved rounds", file=sys.stderr)
    rows = []
    for name in args.nets:
        for batch in args.batch:
            rows.append(measure(name, batch, args.engines, args.rounds, args.threads))
            print(f"  {name} batch {batch}: " + ", ".join(
                f"{e} {rows[-1]['median_ms'][e]:.1f} ms" for e in args.engines),
                file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1) if args.json else table(rows, args.engines))


if __name__ == "__main__":
    main()
