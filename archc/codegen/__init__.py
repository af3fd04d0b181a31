"""A checked graph to PyTorch: `emit` writes the module's source, one class a scope (`scopes`:
the net, a block use, a head), after `rewrite` has applied the backend's plan to the scope's
items (the statements of its forward()), each statement's call by `calls` (rendered by
`backend_calls`, each backend's call table, at a `sites.Site`; the triton backend's kernel
rows, by kind of plan step, in `triton/calls`), its members by `members` and
`containers`, its docstring and constructor by `headers`, its widths by `widths` and
`pyexpr`, its variables by `names`, the shared classes by `drafts`, the file's helpers by
`preamble` and `modules`; `lower` executes the source into a live module (torch starts
here), `export` writes ONNX, `weights` converts torchvision checkpoints. `triton/` and `cpu/`
are the backends' fusion plans (with `fusion`, their shared steps), decided without torch.
"""
