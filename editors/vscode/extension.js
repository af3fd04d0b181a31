// The client: starts `archc lsp` (stdio) for .arch files; everything else is the server's.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("archc");
  const command = config.get("path", "archc");
  const server = { command, args: ["lsp"], transport: TransportKind.stdio };
  client = new LanguageClient("archc", "archc", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "arch" }],
    initializationOptions: { inlayHints: config.get("inlayHints", false) },
  });
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
