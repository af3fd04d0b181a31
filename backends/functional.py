"""The kernels as the functions emitted modules call: `from archc.backends import functional as K`.

A namespace, as torch.nn.functional is: each entry point lives in its kernel's file, beside
the kernel, its launcher and its custom op (`layer`, what a layer of the triton backend's
plan calls), and is re-exported here under the name emitted code has always used. So a new
kernel is its file and one line here.

Each kernel is a torch custom op (`archc::conv1x1`, `archc::dwconv`, `archc::pool2d`,
`archc::global_avg_pool`) with a backward written with torch ops, so autograd and
`torch.compile` see an ordinary operator. `conv1x1_siblings` runs sibling 1x1 convs (an
inception's #1x1, #3x3 reduce and #5x5 reduce) as one GEMM over their weights concatenated
at run time, so the module keeps one parameter per conv and its `state_dict` is the torch
backend's.

Concats cost nothing at inference: the kernels that make a branch write their slice of the
concat's `ConcatBuffer` (archc.backends.triton.concat; `out=buffer.part(i)`). Nor do SE gates:
`gated(x, gate)` hands the 1x1 GEMM after it a `Gated` value (archc.backends.triton.gate), whose
factors the GEMM multiplies in as it loads x; nor a projection's sum with a shortcut in its
caller: `add` runs the GEMM's `Pending` output with the shortcut in its epilogue. While
autograd records, or under `torch.compile`, `out` is ignored, `join` is `torch.cat`, `gated`
the product and `add` a sum (archc.backends.triton.dispatch decides).

Where no kernel can run (a CPU tensor without `TRITON_INTERPRET=1`), each function computes
the same with torch ops and says so once. Inputs in another memory format are made channels
last first (a documented conversion: the kernels read pixels as rows).
"""

from .folding import conv_bn
from .triton.concat import ConcatBuffer, Part
from .triton.conv1x1 import layer as conv1x1
from .triton.conv1x1 import siblings as conv1x1_siblings
from .triton.dwconv import layer as dwconv
from .triton.gate import add, gated
from .triton.global_avg_pool import layer as global_avg_pool
from .triton.mlp1x1 import layer as mlp1x1
from .triton.pool2d import layer as pool2d

__all__ = ["ConcatBuffer", "Part", "add", "conv1x1", "conv1x1_siblings", "conv_bn", "dwconv",
           "gated", "global_avg_pool", "mlp1x1", "pool2d"]
