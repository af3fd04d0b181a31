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
local namespace = vim.api.nvim_create_namespace("archc_inlay_hints")
local function shown_hints()
  return vim.api.nvim_buf_get_extmarks(0, namespace, 0, -1, { details = true })
end
vim.wait(20000, function() return #shown_hints() > 0 end, 100)
local found = {
  arrived = arrived,
  hints = vim.tbl_map(function(mark) return { line = mark[2],
                                              text = mark[4].virt_text[1][1] } end,
                      shown_hints()),
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
