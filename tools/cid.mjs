#!/usr/bin/env node
// Prints the CID of each file as the page computes it (frontend/src/unixfs.mjs), one per line.
//   node tools/cid.mjs [--cid-version 0|1] FILE...
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { computeCid } from "../frontend/src/unixfs.mjs";

const { values, positionals } = parseArgs({
  options: { "cid-version": { type: "string", default: "1" } },
  allowPositionals: true,
});
for (const file of positionals) {
  console.log(await computeCid(new Uint8Array(await readFile(file)), Number(values["cid-version"])));
}
