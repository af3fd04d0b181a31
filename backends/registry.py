"""The backends by name, as `archc compile --backend` and `archc.compile_net` take them.

- `torch`: nn.Modules and torch.nn.functional, the reference (archc.backends.backend);
- `cpu`: oneDNN primitives and graphs (archc.backends.cpu);
- `triton`: archc's GPU kernels, other convs on cuDNN (archc.backends.triton).

A new backend is its folder (its plan, its call rows, its runtime) and one name here. No torch.
"""

from __future__ import annotations

from archc.backends.backend import TORCH, Backend
from archc.backends.cpu.calls import CPU
from archc.backends.triton.calls import TRITON

BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (TORCH, CPU, TRITON)}
