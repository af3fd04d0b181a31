"""The language server (`archc lsp`, the `[lsp]` extra): shapes, counts and errors while a
.arch file is edited. `facts` reads what an editor shows off an analysis (torch-free,
pygls-free, tested directly); `server` is the pygls wiring over stdio."""
