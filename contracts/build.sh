#!/usr/bin/env bash
# Rebuilds contracts/artifacts.json from contracts/src/*.sol with solc-js (npm), pinned below.
# Usage: contracts/build.sh   (needs node + npm; the solc package is fetched by npx)
set -euo pipefail

SOLC_VERSION="0.8.28"
EVM_VERSION="cancun"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Standard-JSON input: every source in src/, optimizer on, ABI + creation bytecode out.
node - "$here/src" "$EVM_VERSION" >"$tmp/input.json" <<'JS'
const fs = require("fs");
const path = require("path");
const [srcDir, evmVersion] = process.argv.slice(2);
const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion,
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
process.stdout.write(JSON.stringify(input));
JS

# solc-js prints ">>> Cannot retry compilation with SMT ..." notes on stdout; drop them.
(cd "$tmp" && npx --yes "solc@$SOLC_VERSION" --standard-json <input.json >raw.json)
grep -v '^>>>' "$tmp/raw.json" >"$tmp/output.json"

node - "$tmp/output.json" "$here/artifacts.json" "$SOLC_VERSION" "$EVM_VERSION" <<'JS'
const fs = require("fs");
const [outFile, target, solc, evmVersion] = process.argv.slice(2);
const out = JSON.parse(fs.readFileSync(outFile, "utf8"));
const errors = (out.errors || []).filter((e) => e.severity === "error");
for (const e of out.errors || []) console.error(e.formattedMessage || e.message);
if (errors.length) process.exit(1);
const result = { compiler: `solc-js ${solc}`, evmVersion, optimizerRuns: 200, contracts: {} };
for (const file of Object.keys(out.contracts).sort()) {
  for (const [name, c] of Object.entries(out.contracts[file])) {
    result.contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
fs.writeFileSync(target, JSON.stringify(result, null, 2) + "\n");
console.error(`wrote ${target}: ${Object.keys(result.contracts).join(", ")}`);
JS
