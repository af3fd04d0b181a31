"""`archc kernels`: will a net's Triton kernels fit a GPU, and where would the time go, offline.

One straight line: lower the net with the triton backend; run it on meta tensors while
`archc.backends.triton.launch` captures every launch the backend makes (the real launchers choose
kernels, flags, blocks and grids, as on a GPU); one compile job per config the launch may be
tuned over on the target (the kernel's own `prune_configs`); compile them (backends/triton/aot.py,
cached); model each (archc.backends.triton.roofline); report. A launch fails when no config it may
run with can launch on the target; the command then exits 1.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass

from archc.cli.args import add_set, require
from archc.errors import UsageError

DTYPES = ("fp32", "fp16", "bf16")
HELP = """examples:
  archc kernels nets/googlenet.arch --target sm_90 --dtype fp16
  archc kernels nets/nin_cifar10.arch --target sm_80 --batch 64 --train --json

Every config the autotuner may pick is compiled with Triton's bundled ptxas (no GPU needed;
results cached in ~/.cache/archc/kernels or $ARCHC_CACHE_DIR). Times are a roofline model on
the target's public peaks, not a measurement: see backends/triton/roofline.py."""


def add_command(commands) -> None:
    import argparse

    kernels = commands.add_parser(
        "kernels", help="compile a net's Triton kernels for a GPU offline: fit and modelled time",
        description="Capture every Triton launch the triton backend makes for FILE, compile "
                    "each config for the target without a GPU, and print registers, spills, "
                    "shared memory, occupancy, tensor cores, widest load and a roofline time. "
                    "Exit 1 when a launch could fail on the target.",
        epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    kernels.add_argument("file", metavar="FILE", help="an .arch file")
    kernels.add_argument("--target", choices=("sm_90", "sm_80"), default="sm_90",
                         help="sm_90 (H100) or sm_80 (A100); default sm_90")
    kernels.add_argument("--dtype", choices=DTYPES, default="fp32",
                         help="the module's dtype (default fp32, as archc.compile builds it)")
    kernels.add_argument("--batch", type=_batch, default=256, help="images a launch (256)")
    kernels.add_argument("--train", action="store_true",
                         help="the launches of a training step's forward (batch statistics, "
                              "no buffers shared across branches)")
    kernels.add_argument("--configs", action="store_true",
                         help="one row per config, not only the best one a launch may run")
    kernels.add_argument("--no-heads", dest="heads", action="store_false",
                         help="the deployment network: leave out the auxiliary heads")
    kernels.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_set(kernels)
    kernels.set_defaults(run=run_kernels)


def _batch(text: str) -> int:
    import argparse

    if not text.isdigit() or not 1 <= int(text) <= 65536:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 65536, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class ConfigResult:
    """One config of a launch, compiled and modelled."""

    name: str  # "m128 n64 k32 g8 w4 s4": blocks, group, warps, stages
    usage: object | None  # archc.backends.triton.aot.Usage, or None when it did not compile
    error: str | None
    timing: object | None  # archc.backends.triton.roofline.Timing
    programs: int = 0  # the launch's grid, with this config's blocks


@dataclass(frozen=True)
class LaunchResult:
    """One distinct launch (`count` times in a forward) and its configs."""

    kernel: str
    flags: str
    shape: str
    count: int
    configs: list[ConfigResult]
    refused: str | None = None  # why no config may run (the kernel's pruner said so)

    def runnable(self, target) -> list[ConfigResult]:
        return [c for c in self.configs if c.usage is not None and c.usage.launchable(target)]

    def best(self, target) -> ConfigResult | None:
        """The runnable config the model times fastest (what a tuner should find); among those
        within 1% of it, the one with the fewest programs (the largest tiles, which reread
        least from L2, which the model does not count)."""
        runnable = self.runnable(target)
        if not runnable:
            return None
        fastest = min(c.timing.model_s for c in runnable)
        near = [c for c in runnable if c.timing.model_s <= fastest * 1.01]
        return min(near, key=lambda c: c.programs)


def run_kernels(args) -> int:
    require("kernels", "torch", "triton", "tqdm")
    from archc.backends.triton.aot import TARGETS

    target = TARGETS[args.target]
    launches = capture_launches(args.file, target, args.dtype, args.batch, args.train,
                                args.heads, dict(args.set))
    if not launches:
        print(f"{args.file}: the triton backend launches no Triton kernel for this net "
              "(`archc compile --backend triton --plan` says why)", file=sys.stderr)
        if args.json:  # the data is an empty list of launches, not nothing
            print(json.dumps(to_json([], args, target), indent=2))
        return 0
    results = compile_and_model(launches, target, quiet=args.json)
    failing = [r for r in results if r.best(target) is None]
    if args.json:
        print(json.dumps(to_json(results, args, target), indent=2))
    else:
        from archc.cli.kernels_table import render

        sys.stdout.write(render(results, args, target))
    return 1 if failing else 0


def modelled_seconds(file: str, target, dtype: str, batch: int,
                     overrides: dict | None = None) -> float | None:
    """The roofline time of one forward's Triton launches (each at its best config), or None
    where the backend launches none; what `archc sweep --latency` lists. A launch with no
    config that can run on the target is a UsageError naming its kernel."""
    from archc.cli.kernels_table import totals

    launches = capture_launches(file, target, dtype, batch, overrides=overrides)
    if not launches:
        return None
    results = compile_and_model(launches, target, quiet=True)
    failing = next((r for r in results if r.best(target) is None), None)
    if failing is not None:
        raise UsageError(f"{failing.kernel} ({failing.shape}) has no config that runs on "
                         f"{target.name}: `archc kernels` says why")
    return totals(results, target)[0]


def capture_launches(file: str, target, dtype: str = "fp32", batch: int = 256,
                     train: bool = False, heads: bool = True,
                     overrides: dict | None = None) -> list:
    """Every launch of one forward of the net on meta tensors, as the backend makes them."""
    import torch

    from archc.backends.triton.calls import TRITON
    from archc.backends.triton.launch import capture
    from archc.codegen.lower import lower
    from archc.pipeline import analyse

    analysis = analyse(file, overrides or {}).raise_errors()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    with torch.device("meta"):  # parameters without memory, for any batch and any net
        module = lower(analysis, heads=heads, backend=TRITON).module
    module = module.to(dtype).train(train)
    shape = tuple(analysis.shapes[analysis.graph.input])
    x = torch.empty((batch, *shape), device="meta", dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    with capture(target) as launches, torch.set_grad_enabled(train):
        try:
            module(x)
        except ValueError as error:  # torch's own refusal, of the user's --batch and --train
            if "Expected more than 1 value per channel" not in str(error):
                raise
            raise UsageError(f"--train at batch {batch}: a batch norm of the net would see one "
                             "value per channel, which torch refuses to train; give a larger "
                             "--batch") from None
    return launches


def compile_and_model(launches: list, target, quiet: bool) -> list[LaunchResult]:
    """Distinct launches, each with every config it may run with, compiled and modelled."""
    from tqdm import tqdm

    from archc.backends.triton.aot import Failure, compile_all
    from archc.backends.triton.roofline import timing

    groups: dict[str, list] = {}
    for launch in launches:
        groups.setdefault(_identity(launch), []).append(launch)
    plans = [(group, *configs_of(group[0], target)) for group in groups.values()]
    jobs = [job for _, configs, _ in plans for _, job, _ in configs]
    with tqdm(total=len(jobs), desc=f"compiling for {target.name}", unit="kernel", leave=False,
              disable=quiet or None, file=sys.stderr) as bar:
        compiled = iter(compile_all(jobs, progress=bar.update))
    results = []
    for group, configs, refused in plans:
        launch, rows = group[0], []
        for name, job, work in configs:
            result = next(compiled)
            if isinstance(result, Failure):
                rows.append(ConfigResult(name, None, result.message, None))
                continue
            programs = _programs(launch, job)
            rows.append(ConfigResult(name, result, None,
                                     timing(work, programs, result, target, _dtype(launch)),
                                     programs))
        results.append(LaunchResult(kernel_name(launch), _flags(launch), _shape(launch),
                                    len(group), rows, refused))
    return results


def configs_of(launch, target) -> tuple[list[tuple], str | None]:
    """(name, job, work) for each config the launch may run with on the target, and why there
    is none when the kernel's pruner refuses them all."""
    from archc.backends.triton.aot import Job, describe
    from archc.backends.triton.launch import targeting

    module, named = _module(launch), _named(launch)
    if hasattr(launch.kernel, "configs"):  # an autotuner: the configs its pruner leaves
        prune = getattr(module, "prune_configs", None)
        configs = launch.kernel.configs
        if prune:
            try:
                with targeting(target):
                    configs = prune(configs, named, **launch.kwargs)
            except RuntimeError as error:  # nothing fits the target: that is the answer
                return [], str(error)
        options = [({**c.kwargs}, c.num_warps, c.num_stages) for c in configs]
    else:
        kwargs = dict(launch.kwargs)
        warps, stages = kwargs.pop("num_warps", 4), kwargs.pop("num_stages", 3)
        options = [({}, warps, stages)]
    out = []
    for blocks, warps, stages in options:
        constexprs = {**launch.kwargs, **blocks}
        constexprs = {k: v for k, v in constexprs.items() if k not in ("num_warps", "num_stages")}
        job = Job(module.__name__, kernel_name(launch), tuple(describe(a) for a in launch.args),
                  constexprs, target.name, warps, stages)
        work = module.work({**named, **constexprs}, constexprs, target)
        out.append((_config_name(constexprs, warps, stages), job, work))
    return out, None


def _config_name(constexprs: dict, warps: int, stages: int) -> str:
    """"m128 n64 k32 g8 w4 s4": BLOCK_M, _N, _K, GROUP_M (HIDDEN: h), warps, stages."""
    names = {"GROUP_M": "g", "HIDDEN": "h"}
    blocks = [f"{names.get(k) or k.removeprefix('BLOCK_').lower()}{v}"
              for k, v in constexprs.items() if k.startswith("BLOCK_") or k in names]
    return " ".join([*blocks, f"w{warps}", f"s{stages}"])


def _jit(launch):
    return launch.kernel.fn if hasattr(launch.kernel, "configs") else launch.kernel


def kernel_name(launch) -> str:
    return _jit(launch).fn.__name__


def _module(launch):
    return importlib.import_module(_jit(launch).fn.__module__)


def _named(launch) -> dict:
    return dict(zip(_jit(launch).arg_names, launch.args))


def _identity(launch) -> str:
    """Launches with equal kernels, arguments and flags are one row, counted."""
    args = [[str(a.dtype), list(a.shape), list(a.stride()), a.storage_offset()]
            if hasattr(a, "shape") else a for a in launch.args]
    return json.dumps([kernel_name(launch), args, sorted(launch.kwargs.items())])


def _programs(launch, job) -> int:
    grid = launch.grid(_named(launch) | job.constexprs) if callable(launch.grid) else launch.grid
    count = 1
    for size in grid:
        count *= size
    return count


def _dtype(launch) -> str:
    dtype = str(launch.args[0].dtype)
    return {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}[dtype]


def _flags(launch) -> str:
    """"bias,relu,tf32": the flags that are on, the activation and the precision, in order."""
    on = [k.lower().removeprefix("has_").removeprefix("is_") if v is True else v
          for k, v in launch.kwargs.items()
          if v is True or (k == "ACT" and v != "linear")]
    precision = launch.kwargs.get("PRECISION")
    return ",".join(on + ([precision] if precision else []))


def _shape(launch) -> str:
    return _module(launch).shape(_named(launch))


def to_json(results: list[LaunchResult], args, target) -> dict:
    from dataclasses import asdict

    def config(c: ConfigResult) -> dict:
        row = {"config": c.name, "error": c.error}
        if c.usage is not None:
            row |= asdict(c.usage) | {"launchable": c.usage.launchable(target),
                                      "blocks_per_sm": c.usage.blocks_per_sm(target)}
            row |= {"model_us": c.timing.model_s * 1e6, "ideal_us": c.timing.ideal_s * 1e6,
                    "bound": c.timing.bound, "waves": c.timing.waves}
        return row

    launches = [{"kernel": r.kernel, "flags": r.flags, "shape": r.shape, "count": r.count,
                 "fails": r.best(target) is None, "refused": r.refused,
                 "best": None if r.best(target) is None else r.best(target).name,
                 "configs": [config(c) for c in r.configs]} for r in results]
    from archc.cli.kernels_table import totals

    model, ideal = totals(results, target)
    return {"file": args.file, "target": target.name, "device": target.device,
            "dtype": args.dtype, "batch": args.batch, "mode": "train" if args.train else "eval",
            "model_us": model * 1e6, "ideal_us": ideal * 1e6,
            "note": "a roofline model on the target's public peaks, not a measurement",
            "launches": launches}
