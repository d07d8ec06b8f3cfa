// The synthlang extension: .synth files get the TextMate grammar (package.json) and, through
// `synthc lsp`, the language server: diagnostics, hover, go to definition, references,
// completion, outline, formatting and rename.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("synthlang");
  const command = config.get("server.path") || "synthc";
  const args = [...(config.get("server.args") || []), "lsp"];
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "synthlang",
    "synthlang",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "synth" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{synth,jsonl,csv}") },
    },
  );
  client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `synthlang: could not start \`${command} lsp\` (${err.message}). Install synthlang in the ` +
        "Python environment VS Code uses, or set synthlang.server.path to its synthc.",
    );
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
