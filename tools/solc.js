#!/usr/bin/env node
// A `solc` command-line stand-in over solc-js, for py-solc-x / ape-solidity.
// Native solc binaries cannot be downloaded on these machines; the npm package can.
// Supports what py-solc-x uses: --version, and --standard-json (JSON on stdin)
// with --base-path, --include-path and --allow-paths for resolving imports.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const solc = require("solc");

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: null, includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      if (i + 1 >= argv.length) fail(`option ${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--version":
        opts.version = true;
        break;
      case "--standard-json":
        opts.standardJson = true;
        break;
      case "--base-path":
        opts.basePath = takeValue();
        break;
      case "--include-path":
        opts.includePaths.push(takeValue());
        break;
      case "--allow-paths":
        takeValue(); // solc-js reads files only through the callback below
        break;
      case "-":
        break;
      default:
        fail(`unsupported option: ${arg} (this stand-in only supports --standard-json)`);
    }
  }
  return opts;
}

function fail(message) {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(1);
}

function makeImportCallback(opts) {
  const roots = [opts.basePath || process.cwd(), ...opts.includePaths];
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, "utf8") };
      } catch (err) {
        if (err.code !== "ENOENT" && err.code !== "EISDIR") {
          return { error: `${candidate}: ${err.message}` };
        }
      }
    }
    return { error: `File not found: ${importPath} (looked in ${roots.join(", ")})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    process.stdout.write(
      `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`,
    );
    return;
  }
  if (!opts.standardJson) fail("pass --version or --standard-json");
  const input = fs.readFileSync(0, "utf8");
  process.stdout.write(solc.compile(input, { import: makeImportCallback(opts) }));
}

main();
