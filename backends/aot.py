"""Ahead-of-time compilation for a GPU that is not here: what a kernel costs on sm_80 / sm_90.

Triton's wheel bundles ptxas and cuobjdump, so a kernel compiles for an H100 or an A100 on a
CPU-only machine, and its registers, spills and shared memory are the real ones. The
interpreter enforces none of a GPU's limits; this does (tests/test_aot.py, for every config the
autotuners may pick). No GPU, no CUDA driver and no torch device are touched.

    job = Job("archc.backends.conv1x1", "conv1x1_kernel", signature, constexprs, "sm_90",
              num_warps=8, num_stages=3)
    (usage,) = compile_all([job])
    usage.fits(TARGETS["sm_90"])  # shared memory within the block limit, nothing spilled
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction


@dataclass(frozen=True)
class Target:
    """A GPU's limits, from its public specifications."""

    arch: int  # compute capability, as Triton takes it (90: sm_90)
    shared_per_block: int  # bytes of shared memory one block may use (opt-in maximum)
    registers_per_sm: int


TARGETS = {
    "sm_90": Target(90, 227 * 1024, 65536),  # H100: 228 KB per SM, 227 KB for one block
    "sm_80": Target(80, 163 * 1024, 65536),  # A100: 164 KB per SM, 163 KB for one block
}


@dataclass(frozen=True)
class Usage:
    """What one compiled specialisation needs of the GPU."""

    shared: int  # bytes of shared memory per block
    registers: int  # per thread
    spill_bytes: int  # stack (local memory) per thread: registers that did not fit
    num_warps: int
    tensor_cores: str  # "wgmma" (Hopper's), "mma" (mma.sync, Ampere's) or "none": from the PTX

    def fits(self, target: Target) -> bool:
        return self.shared <= target.shared_per_block and self.spill_bytes == 0

    def blocks_per_sm(self, target: Target) -> int:
        threads = 32 * self.num_warps
        return target.registers_per_sm // max(1, self.registers * threads)


@dataclass(frozen=True)
class Job:
    """One specialisation to compile: a kernel by module and name, its argument types, its
    constexprs (flags and blocks) and launch options, for one target."""

    module: str  # e.g. "archc.backends.conv1x1"
    kernel: str  # e.g. "conv1x1_kernel"
    signature: dict
    constexprs: dict
    target: str
    num_warps: int
    num_stages: int
    # Arguments a launch passes divisible by 16 (aligned pointers; channel counts, strides and
    # pixel counts that are multiples of 16): Triton specialises on it, and vectorises.
    divisible: tuple[str, ...] = ()


def compile_all(jobs: list[Job]) -> list[Usage]:
    """Each job's usage. Under TRITON_INTERPRET=1 (the tests) Triton patches its language for
    the interpreter, and the compiler cannot run in that process: the jobs then run in one
    child process without it."""
    if not os.environ.get("TRITON_INTERPRET"):
        return [_compile(job) for job in jobs]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "archc.backends.aot"], env=env,
                            input=json.dumps([asdict(job) for job in jobs]), text=True,
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"offline compile failed:\n{result.stderr[-4000:]}")
    return [Usage(**usage) for usage in json.loads(result.stdout)]


def _compile(job: Job) -> Usage:
    fn = getattr(importlib.import_module(job.module), job.kernel)
    if not isinstance(fn, JITFunction):
        raise TypeError(f"{job.module}.{job.kernel} is not a @triton.jit kernel here")
    constexprs = job.constexprs
    signature = {**job.signature, **{k: "constexpr" for k in constexprs}}
    names = list(fn.arg_names)
    attrs = {(names.index(a),): [["tt.divisibility", 16]] for a in job.divisible}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    kernel = triton.compile(source, target=GPUTarget("cuda", TARGETS[job.target].arch, 32),
                            options={"num_warps": job.num_warps, "num_stages": job.num_stages})
    registers, stack = _resource_usage(kernel.asm["cubin"])
    ptx = kernel.asm["ptx"]
    tensor_cores = "wgmma" if "wgmma." in ptx else "mma" if "mma.sync" in ptx else "none"
    return Usage(kernel.metadata.shared, registers, stack, job.num_warps, tensor_cores)


def pointer_signature(dtype: str, pointers: tuple[str, ...], integers: tuple[str, ...]) -> dict:
    """A signature of `dtype` pointers and 32-bit integers, the kernels' usual shape."""
    return {**{p: f"*{dtype}" for p in pointers}, **{i: "i32" for i in integers}}


def _resource_usage(cubin: bytes) -> tuple[int, int]:
    """(registers, stack bytes) of the cubin's one kernel, as cuobjdump reports them."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        report = subprocess.run([str(tool), "--dump-resource-usage", file.name],
                                capture_output=True, text=True, check=True).stdout
    registers = re.search(r"REG:(\d+)", report)
    stack = re.search(r"STACK:(\d+)", report)
    local = re.search(r"LOCAL:(\d+)", report)
    return int(registers.group(1)), int(stack.group(1)) + int(local.group(1) if local else 0)


if __name__ == "__main__":  # compile_all's child: jobs as JSON on stdin, usages on stdout
    jobs = [Job(**{**job, "divisible": tuple(job["divisible"])})
            for job in json.loads(sys.stdin.read())]
    print(json.dumps([asdict(usage) for usage in compile_all(jobs)]))
