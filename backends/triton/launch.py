"""Every kernel launch goes through `launch`: it runs the kernel, or, inside `capture()`, records
what would have run, so `archc kernels` reports exactly the launches the backend makes.

Under `capture()` the backend runs on "meta" tensors (shapes, strides and dtypes, no data):
the launchers choose their kernels, flags, blocks and grids as they would on a GPU (no
interpreter blocks), allocate meta outputs, and `launch` appends a `Launch` instead of running.
Nothing is computed and no GPU is needed; the recorded arguments are what Triton would
specialise on (argument types, which integers and pointers are multiples of 16).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    """One kernel launch as the backend made it."""

    kernel: object  # a @triton.jit function, or a triton.autotune over one
    grid: tuple | Callable[[dict], tuple]  # a grid, or the launcher's function of the config
    args: tuple  # positional arguments: tensors, integers, floats, None
    kwargs: dict  # constexpr flags and blocks, and num_warps / num_stages when fixed


_launches: ContextVar[list[Launch] | None] = ContextVar("archc_launches", default=None)
_target: ContextVar[object | None] = ContextVar("archc_target", default=None)


@contextmanager
def capture(target) -> Iterator[list[Launch]]:
    """Record launches instead of running them, into the list this yields, choosing configs
    for `target` (an archc.backends.triton.aot.Target: its `arch` and `shared_per_block`)."""
    launches: list[Launch] = []
    token = _launches.set(launches)
    try:
        with targeting(target):
            yield launches
    finally:
        _launches.reset(token)


@contextmanager
def targeting(target) -> Iterator[None]:
    """Choose configs (what `shared_limit()` and `arch()` say) for a device that is not here."""
    token = _target.set(target)
    try:
        yield
    finally:
        _target.reset(token)


def capturing() -> bool:
    return _launches.get() is not None


def shared_limit() -> int:
    """Bytes of shared memory one block may use on the device the launches go to: the
    target's, else the current CUDA device's."""
    target = _target.get()
    if target is not None:
        return target.shared_per_block
    import torch
    from triton.runtime import driver

    device = torch.cuda.current_device()
    return driver.active.utils.get_device_properties(device)["max_shared_mem"]


def arch() -> int:
    """The compute capability launches go to, as Triton writes it (90 for sm_90)."""
    target = _target.get()
    if target is not None:
        return target.arch
    import torch

    major, minor = torch.cuda.get_device_capability()
    return 10 * major + minor


def launch(kernel, grid, *args, **kwargs) -> None:
    """`kernel[grid](*args, **kwargs)`, or its record while capturing."""
    launches = _launches.get()
    if launches is None:
        kernel[grid](*args, **kwargs)
    else:
        launches.append(Launch(kernel, grid, args, kwargs))
