"""archc.backends: how a lowered net computes, one folder per backend.

- `backend`: what a backend is to the emitter (`Backend`: its call rows, imports, memory
  format and plan; `Site`: where a call is written) and the torch backend, the reference;
- `fusion`: the plan's vocabulary (`Step`, `KernelPlan`) and the epilogue pass both plans share;
- `registry`: the backends by name (`torch`, `cpu`, `triton`);
- `triton/`: the GPU kernels, their plan and call rows, their offline compile and roofline;
- `cpu/`: the oneDNN calls and graph engine, their plan and call rows;
- shared at run time: `activation` (the activations as torch calls), `folding` (a batch norm
  folded into the conv before it), `hooks` (when a hook or mode must see every layer), and
  `functional`, the namespace triton-backend modules import (`K.conv1x1`).

The compile-time half of each backend (plans, call rows) imports no torch; the run-time half
imports nothing of archc outside archc.backends. Importing this package imports neither.
"""
