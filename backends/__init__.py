"""archc.backends: the Triton kernels of archc's GPU backend, one op per module.

- `conv1x1`: a 1x1 convolution + bias + activation as one GEMM over NHWC, writing into a
  channel slice of a concat's buffer if asked;
- `dwconv`: a depthwise convolution + bias + activation, any window and stride, one read and
  one write (a batch norm folded into it in eval mode);
- `mlp1x1`: two 1x1 convolutions in one kernel, the hidden activation kept on chip (NIN's
  micro network);
- `pool2d`: max and average pooling, any window, stride and padding, Caffe's ceil rounding;
- `global_avg_pool`: the mean over each channel's H x W;
- `activation` (torch's functions) and `epilogue` (the same in Triton): the activations a
  kernel applies to its accumulator, by name.

Each kernel file also says, for `archc kernels`, the `work` a launch does (FLOPs and DRAM
bytes, for `roofline.py`) and its `shape` as printed; an autotuned one, `prune_configs` (what
the tuner may time on a device). Every launch goes through `launch.launch`, which runs it or,
inside `launch.capture`, records it; `aot.py` compiles a recorded launch for sm_80 / sm_90
without a GPU.

One op, one file: a kernel's file holds its Triton kernel, its launcher, its torch custom op
(`torch.ops.archc.<name>`, with the fake and the backward), its entry point (`layer`: the
layer as an emitted module calls it, kernel or torch fallback, `dispatch.py` deciding) and
what `archc kernels` needs. Tensors in, tensors out; nothing here imports the rest of archc.
Importing this package imports no kernel (nor Triton); `functional`, the namespace emitted
modules call (`K.conv1x1`), re-exports the entry points, which registers their custom ops.
Kernels run on CUDA tensors, or on CPU tensors under `TRITON_INTERPRET=1` (set before Triton
is imported) for testing.
"""
