"""A checked graph to PyTorch: `emit` writes the module's source, one class a scope (`scopes`:
the net, a block use, a head), after `rewrite` has applied the backend's plan to the scope's
items (the statements of its forward()), each statement's call by `calls` (rendered by the
backend's call rows at a `Site`: archc.backends), its members by `members` and `containers`,
its docstring and constructor by `headers`, its widths by `widths` and `pyexpr`, its
variables by `names`, the concat buffers a plan writes into by `buffers`, the shared classes
by `drafts`, the file's helpers by `preamble` and `modules`; `lower` executes the source into
a live module (torch starts here), `export` writes ONNX, `weights` converts torchvision
checkpoints. What a backend is (its plan, its call rows, its runtime) lives in its folder
under archc.backends; this package only writes.
"""
