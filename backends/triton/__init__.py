"""The triton backend: archc's GPU kernels, the plan that fuses layers into them, and their
offline compile.

Compile time (no torch, no Triton): `plan` (merged GEMMs, pool projections, mlpconvs,
epilogues, concat buffers) and `calls` (its call rows, the `TRITON` backend).

Run time, one op per file: each holds its Triton kernel, its launcher, its torch custom op
(`torch.ops.archc.<name>`, with the fake and the backward), its entry point (`layer`: the
layer as an emitted module calls it, kernel or torch fallback, `dispatch` deciding) and what
`archc kernels` needs (`work`, `shape`, an autotuned kernel's `prune_configs`).

- `conv1x1`: a 1x1 convolution + bias + activation as one GEMM over NHWC, writing into a
  channel slice of a concat's buffer if asked;
- `dwconv`: a depthwise convolution + bias + activation, any window and stride (a batch norm
  folded into it in eval mode);
- `mlp1x1`: two 1x1 convolutions in one kernel, the hidden activation kept on chip (NIN);
- `pool2d`: max and average pooling, any window, stride and padding, Caffe's ceil rounding;
- `global_avg_pool`: the mean over each channel's H x W;
- `gate` (an SE gate the next GEMM applies), `concat` (the buffer branches write into),
  `epilogue` (the activations in Triton, by name).

Every launch goes through `launch.launch`, which runs it or, inside `launch.capture`, records
it; `aot` compiles a recorded launch for sm_80 / sm_90 without a GPU (`aot_child` runs ptxas
in a child process) and `roofline` turns its work into time on a target (`targets.json`).
The kernels import nothing of archc outside archc.backends. Importing this package imports no
kernel (nor Triton); archc.backends.functional, the namespace emitted modules call
(`K.conv1x1`), re-exports the entry points. Kernels run on CUDA tensors, or on CPU tensors
under `TRITON_INTERPRET=1` (set before Triton is imported) for testing.
"""
