-- archc's language server in Neovim (0.7 and later): `dofile` this from your init.lua, or
-- put it in a plugin folder. Every .arch buffer is attached to one `archc lsp` per root (the
-- nearest folder with a .git or a pyproject.toml, else the file's own folder). Set
-- vim.g.archc_lsp_cmd to start it another way (e.g. { "/path/.venv/bin/archc", "lsp" }).
vim.cmd([[autocmd BufRead,BufNewFile *.arch setfiletype arch]])

local clients = {}  -- root -> client id

local function root_of(dir)
  for _, marker in ipairs({ ".git", "pyproject.toml" }) do
    local found = vim.fn.findfile(marker, dir .. ";")
    if found == "" then found = vim.fn.finddir(marker, dir .. ";") end
    if found ~= "" then return vim.fn.fnamemodify(found, ":p:h") end
  end
  return dir
end

vim.api.nvim_create_autocmd("FileType", {
  pattern = "arch",
  callback = function(args)
    local root = root_of(vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ":p:h"))
    if not clients[root] then
      clients[root] = vim.lsp.start_client({
        name = "archc", cmd = vim.g.archc_lsp_cmd or { "archc", "lsp" }, root_dir = root,
        init_options = { inlayHints = true },
      })
    end
    vim.lsp.buf_attach_client(args.buf, clients[root])
  end,
})
