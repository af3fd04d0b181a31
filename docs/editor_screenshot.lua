-- Run by docs/editor_screenshot.py inside tmux: Neovim with editors/neovim/archc.lua on
-- nets/googlenet.arch, the inlay hints shown, then the hover of `3a`.
local python, root = unpack(vim.g.archc_screenshot)
vim.g.archc_lsp_cmd = { python, "-m", "archc", "lsp" }
vim.o.number = true
vim.o.termguicolors = true
vim.o.wrap = false
for group, colours in pairs({  -- a plain dark theme (-u NONE has no colour scheme)
  Normal = "guifg=#d4d4d4 guibg=#1e1e1e", NormalFloat = "guifg=#e8e8e8 guibg=#333a44",
  Comment = "guifg=#7aa6da", LineNr = "guifg=#6a6a6a", SignColumn = "guibg=#1e1e1e",
  StatusLine = "gui=NONE guifg=#d4d4d4 guibg=#333333", DiagnosticSignWarn = "guifg=#e5c07b",
}) do vim.cmd("highlight " .. group .. " " .. colours) end
vim.diagnostic.config({ virtual_text = false, signs = true })  -- the hints take the line ends
dofile(root .. "/editors/neovim/archc.lua")
vim.cmd("edit " .. root .. "/nets/googlenet.arch")
local hints = vim.api.nvim_create_namespace("archc_inlay_hints")
vim.wait(30000, function()
  return #vim.api.nvim_buf_get_extmarks(0, hints, 0, -1, {}) > 0
end, 100)
vim.api.nvim_win_set_cursor(0, { 18, 8 })  -- `3a: inception(...)`
vim.cmd("normal! zt")
vim.fn.winrestview({ topline = 9 })
vim.lsp.buf.hover()
