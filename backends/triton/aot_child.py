"""The child process of `aot.compile_all`: jobs as JSON on stdin, one result a line on stdout.

Each job is specialised by Triton's own launch binder (the code a launch on a GPU runs to
choose argument types and the 16-divisibility of integers and pointers), compiled for its
target with ptxas, and measured: shared memory from Triton's metadata, registers and stack from
cuobjdump, the tensor-core instructions and the widest global load from the PTX.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.autotuner import Autotuner
from triton.runtime.jit import create_function_from_signature

from .aot import TARGETS, Job, Usage


class _Pointer:
    """A tensor argument as Triton's binder sees one: a dtype and an address."""

    def __init__(self, dtype: str, aligned: bool):
        self.dtype = getattr(torch, dtype)
        self.address = (1 << 20) + (0 if aligned else 2)

    def data_ptr(self) -> int:
        return self.address


def compile_job(job: Job) -> Usage:
    fn = getattr(importlib.import_module(job.module), job.kernel)
    fn = fn.fn if isinstance(fn, Autotuner) else fn
    target = GPUTarget("cuda", TARGETS[job.target].arch, 32)
    backend = make_backend(target)
    args = [_argument(a) for a in job.args]
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    _, specialization, _ = binder(*args, **job.constexprs)
    signature, constants, attrs = {}, {}, {}
    for index, (param, (kind, value)) in enumerate(zip(fn.params, specialization)):
        signature[param.name] = kind
        if kind == "constexpr":  # declared constexpr, or an integer 1 Triton specialises on
            constants[param.name] = job.constexprs.get(param.name, value)
        elif isinstance(value, str) and value:
            attrs[(index,)] = backend.parse_attr(value)
    source = ASTSource(fn=fn, signature=signature, constexprs=constants, attrs=attrs)
    kernel = triton.compile(source, target=target,
                            options={"num_warps": job.num_warps, "num_stages": job.num_stages})
    registers, stack = _resource_usage(kernel.asm["cubin"])
    ptx = kernel.asm["ptx"]
    tensor_cores = "wgmma" if "wgmma." in ptx else "mma" if "mma.sync" in ptx else "none"
    return Usage(kernel.metadata.shared, registers, stack, job.num_warps, tensor_cores,
                 widest_access(ptx, "ld"), widest_access(ptx, "st"))


def _argument(described):
    """A value that Triton's binder specialises as the launch's argument was (aot.describe)."""
    if not isinstance(described, dict):
        return described
    if "tensor" in described:
        return _Pointer(described["tensor"], described["aligned"])
    base = 16 if described["int"] == "i32" else 2**32
    return base if described["divisible"] else base + 1


def widest_access(ptx: str, op: str) -> int:
    """Bytes of the widest global `op` ("ld" or "st"): `ld.global.v4.b32` is 16; for loads,
    `cp.async ... 0x10` is 16 too, and a TMA copy (`cp.async.bulk`) counts 16."""
    widest = 0
    for vector, bits in re.findall(op + r"\.global[.\w]*?(?:\.v(\d))?\.[bfus](\d+)\b", ptx):
        widest = max(widest, int(vector or 1) * int(bits) // 8)
    if op == "ld":
        widest = max(widest, 16 if "cp.async.bulk" in ptx else 0)
        copies = r"cp\.async\.c[ag]\.shared\.global\s*\[[^\]]*\],\s*\[[^\]]*\],\s*(0x[0-9a-f]+|\d+)"
        for size in re.findall(copies, ptx):
            widest = max(widest, int(size, 0))
    return widest


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


def main() -> None:
    for job in json.loads(sys.stdin.read()):
        job = Job(**{**job, "args": tuple(job["args"])})
        try:
            reply = {"usage": asdict(compile_job(job))}
        except Exception as error:  # a compile error is this job's answer, not the run's end
            reply = {"error": f"{type(error).__name__}: {str(error)[-2000:]}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
