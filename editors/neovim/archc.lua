-- archc's language server in Neovim (0.7 and later): `dofile` this from your init.lua, or
-- put it in a plugin folder. Every .arch buffer is attached to one `archc lsp` per root (the
-- nearest folder with a .git or a pyproject.toml, else the file's own folder). Set
-- vim.g.archc_lsp_cmd to start it another way (e.g. { "/path/.venv/bin/archc", "lsp" }).
-- Inlay hints (`-> 256x28x28 · 159K params · 128M MACs`): Neovim's own from 0.10, before it
-- as end-of-line virtual text; vim.g.archc_inlay_hints = false turns them off.
vim.cmd([[autocmd BufRead,BufNewFile *.arch setfiletype arch]])

local clients = {}  -- root -> client id
local hints = vim.api.nvim_create_namespace("archc_inlay_hints")

local function root_of(dir)
  for _, marker in ipairs({ ".git", "pyproject.toml" }) do
    local found = vim.fn.findfile(marker, dir .. ";")
    if found == "" then found = vim.fn.finddir(marker, dir .. ";") end
    if found ~= "" then return vim.fn.fnamemodify(found, ":p:h") end
  end
  return dir
end

-- Before 0.10: ask the server for the buffer's hints and show each at its line's end.
local function show_hints(buf)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) },
                   range = { start = { line = 0, character = 0 },
                             ["end"] = { line = vim.api.nvim_buf_line_count(buf), character = 0 } } }
  vim.lsp.buf_request(buf, "textDocument/inlayHint", params, function(err, result)
    if err or not vim.api.nvim_buf_is_valid(buf) then return end
    vim.api.nvim_buf_clear_namespace(buf, hints, 0, -1)
    for _, hint in ipairs(result or {}) do
      local label = type(hint.label) == "string" and hint.label or hint.label[1].value
      vim.api.nvim_buf_set_extmark(buf, hints, hint.position.line, 0, {
        virt_text = { { label, "Comment" } }, virt_text_pos = "eol" })
    end
  end)
end

vim.api.nvim_create_autocmd("FileType", {
  pattern = "arch",
  callback = function(args)
    local root = root_of(vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ":p:h"))
    local wanted = vim.g.archc_inlay_hints ~= false
    if not clients[root] then
      clients[root] = vim.lsp.start_client({
        name = "archc", cmd = vim.g.archc_lsp_cmd or { "archc", "lsp" }, root_dir = root,
        init_options = { inlayHints = wanted },
        handlers = {
          ["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
            vim.lsp.diagnostic.on_publish_diagnostics(err, result, ctx, config)
            local buf = vim.uri_to_bufnr(result.uri)
            if wanted and not (vim.lsp.inlay_hint and vim.lsp.inlay_hint.enable) then
              show_hints(buf)  -- analysed again: its hints may have changed
            end
          end,
        },
      })
    end
    vim.lsp.buf_attach_client(args.buf, clients[root])
    if wanted and vim.lsp.inlay_hint and vim.lsp.inlay_hint.enable then
      pcall(vim.lsp.inlay_hint.enable, true, { bufnr = args.buf })
    end
  end,
})
