-- Driven by tests/test_editors.py: Neovim, headless, with editors/neovim/archc.lua, opens
-- a net, waits for archc lsp's diagnostics, asks a hover and a definition, writes them out.
local out, net, python, root = unpack(vim.g.archc_test)
vim.g.archc_lsp_cmd = { python, "-m", "archc", "lsp" }
dofile(root .. "/editors/neovim/archc.lua")
vim.cmd("edit " .. net)
local arrived = vim.wait(30000, function() return #vim.diagnostic.get(0) > 0 end, 100)
local function ask(method, line, col)
  local params = { textDocument = { uri = vim.uri_from_bufnr(0) },
                   position = { line = line, character = col } }
  local replies = vim.lsp.buf_request_sync(0, method, params, 20000) or {}
  for _, reply in pairs(replies) do
    if reply.result then return reply.result end
  end
  return vim.NIL
end
local found = {
  arrived = arrived,
  diagnostics = vim.tbl_map(function(d)
    return { line = d.lnum, col = d.col, severity = d.severity, message = d.message }
  end, vim.diagnostic.get(0)),
  hover = ask("textDocument/hover", 17, 8),
  definition = ask("textDocument/definition", 17, 8),
}
local file = io.open(out, "w")
file:write(vim.fn.json_encode(found))
file:close()
vim.cmd("qall!")
