"""Ahead-of-time compilation for a GPU that is not here: what a kernel costs on sm_80 / sm_90.

Triton's wheel bundles ptxas and cuobjdump, so a kernel compiles for an H100 or an A100 on a
CPU-only machine, and its registers, spills and shared memory are the real ones. The
interpreter enforces none of a GPU's limits; this does. A `Job` is one launch (as
`archc.backends.triton.launch` captured it) with one config: Triton's own binder specialises it,
as a launch on the GPU would (argument types, 16-divisible integers and aligned pointers).

    (usage,) = compile_all([job_of(launch, config, "sm_90")])
    usage.launchable(TARGETS["sm_90"]), usage.spill_bytes

Jobs compile in child processes, one per core (Triton's compiler cannot run under
`TRITON_INTERPRET=1`, which the tests set), and each result is cached as JSON, keyed by the
job, the kernel file's text and Triton's version: a second run compiles nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """A GPU, from its public specifications (targets.json)."""

    name: str  # "sm_90"
    device: str  # "H100 SXM5 80GB"
    arch: int  # compute capability, as Triton takes it (90)
    sms: int
    hbm_bytes_per_s: float
    tensor_flops: dict  # dense tensor-core peak by dtype name ("fp32" is TF32)
    l2_bytes: int
    shared_per_sm: int
    shared_per_block: int  # the opt-in maximum one block may use
    registers_per_sm: int
    threads_per_sm: int
    blocks_per_sm: int


def _targets() -> dict[str, Target]:
    specs = json.loads((Path(__file__).parent / "targets.json").read_text())
    return {name: Target(name, **spec) for name, spec in specs.items() if name != "_source"}


TARGETS = _targets()
RESERVED_SHARED = 1024  # bytes the CUDA runtime keeps per block (compute capability 8.0 on)


@dataclass(frozen=True)
class Usage:
    """What one compiled specialisation needs of the GPU."""

    shared: int  # bytes of shared memory per block
    registers: int  # per thread
    spill_bytes: int  # stack (local memory) per thread: registers that did not fit
    num_warps: int
    tensor_cores: str  # "wgmma" (Hopper's), "mma" (mma.sync, Ampere's) or "none": from the PTX
    widest_load: int  # bytes of the widest global load (16: 128-bit), cp.async included
    widest_store: int  # bytes of the widest global store

    def launchable(self, target: Target) -> bool:
        return self.shared <= target.shared_per_block and 32 * self.num_warps <= 1024

    def fits(self, target: Target) -> bool:
        """Launchable, and nothing spilled."""
        return self.launchable(target) and self.spill_bytes == 0

    def blocks_per_sm(self, target: Target) -> int:
        """Resident blocks an SM holds: the least of what registers (allocated per warp in
        units of 256), shared memory, threads and the block limit allow."""
        threads = 32 * self.num_warps
        per_warp = -(-max(1, self.registers) * 32 // 256) * 256
        by_registers = target.registers_per_sm // (per_warp * self.num_warps)
        by_shared = target.shared_per_sm // (self.shared + RESERVED_SHARED)
        return min(by_registers, by_shared, target.threads_per_sm // threads,
                   target.blocks_per_sm)


@dataclass(frozen=True)
class Failure:
    """A specialisation that did not compile, with the compiler's last words."""

    message: str


@dataclass(frozen=True)
class Job:
    """One specialisation to compile: a kernel by module and name, its positional arguments as
    `describe` gives them, its constexprs (flags and blocks) and launch options, for a target."""

    module: str  # e.g. "archc.backends.triton.conv1x1"
    kernel: str  # e.g. "conv1x1_kernel"
    args: tuple
    constexprs: dict
    target: str
    num_warps: int
    num_stages: int


def describe(value):
    """A launch argument as JSON, keeping exactly what Triton specialises a launch on (so a
    binary serves every launch it would serve on a GPU): a tensor's dtype and whether its
    address is 16-byte aligned (allocations are; a channel slice may not be), an integer's
    width and whether it is 1 or a multiple of 16; anything else as itself."""
    if hasattr(value, "data_ptr") and hasattr(value, "storage_offset"):
        return {"tensor": str(value.dtype).removeprefix("torch."),
                "aligned": value.storage_offset() * value.element_size() % 16 == 0}
    if isinstance(value, bool) or not isinstance(value, int) or value == 1:
        return value
    return {"int": "i32" if -2**31 <= value < 2**31 else "i64", "divisible": value % 16 == 0}


def compile_all(jobs: list[Job], progress: Callable[[], None] | None = None,
                cache: Path | None = None) -> list[Usage | Failure]:
    """Each job's usage (or failure), from the cache or compiled in child processes, one per
    core; `progress` is called once per job done."""
    cache = cache_folder() if cache is None else cache
    keys = [_key(job) for job in jobs]
    results: list = [_cached(cache, key) for key in keys]
    todo = [i for i, result in enumerate(results) if result is None]
    for i in range(len(jobs)):
        if results[i] is not None and progress:
            progress()
    workers = max(1, min(len(todo), os.cpu_count() or 1))
    lock = threading.Lock()

    def finished(i: int, result) -> None:
        results[i] = result
        _store(cache, keys[i], result)
        with lock:
            if progress:
                progress()

    threads = [threading.Thread(target=_child, args=([(i, jobs[i]) for i in todo[w::workers]],
                                                     finished)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def cache_folder() -> Path:
    """$ARCHC_CACHE_DIR/kernels, else archc/kernels in $XDG_CACHE_HOME or ~/.cache."""
    if os.environ.get("ARCHC_CACHE_DIR"):
        return Path(os.environ["ARCHC_CACHE_DIR"]) / "kernels"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archc" / "kernels"


def _child(indexed: list[tuple[int, Job]], finished) -> None:
    """Compile `indexed` in one child process without TRITON_INTERPRET, one result a line."""
    if not indexed:
        return
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    child = subprocess.Popen([sys.executable, "-m", "archc.backends.triton.aot_child"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    child.stdin.write(json.dumps([asdict(job) for _, job in indexed]))
    child.stdin.close()
    done = 0
    for line in child.stdout:
        reply = json.loads(line)
        result = Usage(**reply["usage"]) if "usage" in reply else Failure(reply["error"])
        finished(indexed[done][0], result)
        done += 1
    stderr = child.stderr.read()
    child.wait()
    for i, _ in indexed[done:]:  # the child died: what it said is every remaining job's failure
        finished(i, Failure(f"the compiler process exited with {child.returncode}: "
                            f"{stderr[-2000:]}"))


def _key(job: Job) -> str:
    spec = importlib.util.find_spec(job.module)
    import triton

    digest = hashlib.sha256(Path(spec.origin).read_bytes())
    digest.update(json.dumps(asdict(job), sort_keys=True).encode())
    digest.update(triton.__version__.encode())
    return digest.hexdigest()


def _cached(cache: Path, key: str) -> Usage | Failure | None:
    """The stored result, or None: missing, unreadable or malformed (a hand edit, a torn or
    foreign file), so compiled again."""
    try:
        data = json.loads((cache / f"{key}.json").read_text())
        if not isinstance(data, dict):
            return None
        if "usage" not in data:
            return Failure(data["error"]) if isinstance(data.get("error"), str) else None
        usage = Usage(**data["usage"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    kinds = {f.name: f.type for f in fields(Usage)}
    typed = all(type(getattr(usage, name)) is (str if kind == "str" else int)
                for name, kind in kinds.items())
    return usage if typed else None


def _store(cache: Path, key: str, result: Usage | Failure) -> None:
    if isinstance(result, Failure) and "exited with" in result.message:
        return  # a crash is not the kernel's answer: try again next time
    data = {"usage": asdict(result)} if isinstance(result, Usage) else {"error": result.message}
    try:
        cache.mkdir(parents=True, exist_ok=True)
        temporary = cache / f".{key}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(data))
        os.replace(temporary, cache / f"{key}.json")
    except OSError:
        pass  # a read-only cache costs a recompile next time, nothing else
