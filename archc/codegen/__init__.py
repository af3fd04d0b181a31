"""A checked graph to PyTorch: `emit` writes the module's source (with `preamble`, `drafts`,
`members`, `modules`, `widths`, `pyexpr`, `names`), `backend_calls` holds each backend's per-op
call table, `lower` executes the source into a live module (torch starts here), `export`
writes ONNX. `triton/` is the triton backend's fusion plan, decided without torch.
"""
