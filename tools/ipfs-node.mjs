#!/usr/bin/env node
// The local IPFS node: the embedded default for Pinata in development.
//
//   node tools/ipfs-node.mjs [--host 127.0.0.1] [--port 5180] [--data data/ipfs]
//                            [--token-file F | HISTOCHAIN_IPFS_TOKEN] [--max-upload-bytes N]
//                            [--max-in-flight-bytes N] [--cors-origin *]
//
// Real UnixFS DAGs in a filesystem blockstore (content survives restarts), Kubo's import
// parameters (frontend/src/unixfs.mjs), and two faces:
//   POST /pinning/pinFileToIPFS   Pinata-compatible upload (multipart `file`, optional
//                                 `pinataOptions` {"cidVersion": 0|1}), bearer-token auth
//   GET  /ipfs/{cid}              trustless gateway: ?format=raw (one block), ?format=car
//                                 (the DAG as a CARv1), otherwise the file itself
// It prints one line `ipfs node listening on URL` once it accepts connections.
//
// Every request is bounded: an upload is read up to --max-upload-bytes, and all unfinished uploads
// together hold at most --max-in-flight-bytes (past it an upload gets 503; a connection that dies
// gives its bytes back at once), a file is served only if
// its declared size is within that bound (checked before a byte is read) and streamed with
// backpressure, a CAR holds each block once. A malformed request gets a 4xx, never a crash.
import { once } from "node:events";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { timingSafeEqual } from "node:crypto";
import busboy from "busboy";
import { FsBlockstore } from "blockstore-fs";
import { CarWriter } from "@ipld/car";
import * as dagPb from "@ipld/dag-pb";
import { exporter } from "ipfs-unixfs-exporter";
import { CID } from "multiformats/cid";
import { importBytes } from "../frontend/src/unixfs.mjs";

const RAW = 0x55;
const DAG_PB = 0x70;

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "5180" },
    data: { type: "string", default: "data/ipfs" },
    "token-file": { type: "string" },
    "max-upload-bytes": { type: "string", default: String(32 * 1024 * 1024) },
    "max-in-flight-bytes": { type: "string", default: String(128 * 1024 * 1024) },
    "cors-origin": { type: "string", default: "*" },
  },
});

const token = args["token-file"]
  ? readFileSync(args["token-file"], "utf8").trim()
  : process.env.HISTOCHAIN_IPFS_TOKEN;
if (!token) {
  console.error("error: set HISTOCHAIN_IPFS_TOKEN or pass --token-file: uploads need a bearer token");
  process.exit(2);
}
const maxUpload = Number(args["max-upload-bytes"]);
if (!Number.isSafeInteger(maxUpload) || maxUpload <= 0) {
  console.error(`error: --max-upload-bytes must be a positive integer, not ${args["max-upload-bytes"]}`);
  process.exit(2);
}

const maxInFlight = Number(args["max-in-flight-bytes"]);
if (!Number.isSafeInteger(maxInFlight) || maxInFlight < maxUpload) {
  console.error(`error: --max-in-flight-bytes must be an integer of at least --max-upload-bytes, not ${args["max-in-flight-bytes"]}`);
  process.exit(2);
}
let inFlight = 0; // bytes every unfinished upload holds

const blockstore = new FsBlockstore(args.data);
await blockstore.open();

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function cors(res) {
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Access-Control-Allow-Origin", args["cors-origin"]);
  res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept");
  res.setHeader("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
  res.setHeader("Access-Control-Expose-Headers", "Content-Length, Content-Type, X-Ipfs-Path, Etag");
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function authorised(req) {
  const header = req.headers.authorization ?? "";
  const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Reads the multipart body: the `file` part (bounded, and counted in the node's bytes in flight
 *  until `release` is called) and `pinataOptions`. */
function readUpload(req) {
  let held = 0;
  const release = () => {
    inFlight -= held;
    held = 0;
  };
  const reading = new Promise((resolve, reject) => {
    let parser;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fileSize: maxUpload, fields: 4 } });
    } catch (err) {
      reject(new HttpError(400, `expected multipart/form-data: ${err.message}`));
      return;
    }
    let chunks = [];
    let size = 0;
    let sawFile = false;
    let tooLarge = false;
    let done = false;
    let options = {};
    const fail = (err) => {
      done = true;
      chunks = [];
      release();
      reject(err instanceof HttpError ? err : new HttpError(400, `malformed multipart body: ${err.message}`));
      req.unpipe(parser);
      req.resume();
    };
    req.on("error", fail);
    req.on("close", () => {
      // the connection died mid-upload: its bytes are given back now, not when busboy gives up
      if (!done && !req.complete) fail(new HttpError(400, "the upload was cut off"));
    });
    parser.on("file", (name, stream) => {
      stream.on("error", fail); // a truncated body errors the file stream: it must not crash the node
      if (name !== "file") {
        stream.resume();
        return;
      }
      sawFile = true;
      stream.on("data", (chunk) => {
        if (done) return;
        if (inFlight + chunk.length > maxInFlight) {
          fail(new HttpError(503, `the node holds ${maxInFlight} bytes of unfinished uploads: try again shortly`));
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
        held += chunk.length;
        inFlight += chunk.length;
      });
      stream.on("limit", () => {
        tooLarge = true;
      });
    });
    parser.on("field", (name, value) => {
      if (name !== "pinataOptions") return;
      let parsed;
      try {
        parsed = JSON.parse(value);
      } catch {
        fail(new HttpError(400, "pinataOptions is not JSON"));
        return;
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        fail(new HttpError(400, "pinataOptions must be a JSON object"));
        return;
      }
      options = parsed;
    });
    parser.on("error", fail);
    parser.on("close", () => {
      if (done) return;
      done = true;
      if (tooLarge) fail(new HttpError(413, `file larger than ${maxUpload} bytes`));
      else if (!sawFile) fail(new HttpError(400, "no `file` part in the upload"));
      else resolve({ bytes: new Uint8Array(Buffer.concat(chunks, size)), options });
    });
    req.pipe(parser);
  });
  return { reading, release };
}

async function pinFile(req, res) {
  if (!authorised(req)) throw new HttpError(401, "missing or wrong bearer token");
  const { reading, release } = readUpload(req);
  try {
    const { bytes, options } = await reading;
    const cidVersion = options.cidVersion ?? 0; // Pinata's default
    if (cidVersion !== 0 && cidVersion !== 1) throw new HttpError(400, "pinataOptions.cidVersion must be 0 or 1");
    const root = await importBytes(bytes, blockstore, cidVersion);
    sendJson(res, 200, { IpfsHash: root.cid.toString(), PinSize: Number(root.size), Timestamp: new Date().toISOString() });
  } finally {
    release();
  }
}

function parseCid(text) {
  try {
    return CID.parse(text);
  } catch {
    throw new HttpError(400, `not a CID: ${text}`);
  }
}

async function getBlock(cid) {
  try {
    const chunks = [];
    for await (const chunk of blockstore.get(cid)) chunks.push(chunk);
    return new Uint8Array(Buffer.concat(chunks));
  } catch (err) {
    if (err.name === "NotFoundError" || err.code === "ERR_NOT_FOUND") {
      throw new HttpError(404, `no such content: ${cid}`);
    }
    throw err;
  }
}

/** The DAG under `root`, depth-first in link order, each block once. */
async function* dagBlocks(root, seen = new Set()) {
  const key = root.toV1().toString();
  if (seen.has(key)) return;
  seen.add(key);
  const bytes = await getBlock(root);
  yield { cid: root, bytes };
  if (root.code === DAG_PB) {
    for (const link of dagPb.decode(bytes).Links) yield* dagBlocks(link.Hash, seen);
  }
}

const SNIFF = [
  [[0x89, 0x50, 0x4e, 0x47], "image/png"],
  [[0xff, 0xd8, 0xff], "image/jpeg"],
  [[0x47, 0x49, 0x46, 0x38], "image/gif"],
  [[0x49, 0x49, 0x2a, 0x00], "image/tiff"],
  [[0x4d, 0x4d, 0x00, 0x2a], "image/tiff"],
];

function contentType(head) {
  for (const [magic, type] of SNIFF) {
    if (magic.every((byte, i) => head[i] === byte)) return type;
  }
  if (head.length >= 12 && Buffer.from(head.slice(8, 12)).toString("latin1") === "WEBP") return "image/webp";
  return "application/octet-stream";
}

async function gateway(req, res, url) {
  const path = url.pathname.slice("/ipfs/".length);
  if (!path || path.includes("/")) throw new HttpError(400, "expected /ipfs/{cid}");
  const cid = parseCid(path);
  if (cid.code !== RAW && cid.code !== DAG_PB) throw new HttpError(400, `unsupported codec 0x${cid.code.toString(16)}`);
  const accept = req.headers.accept ?? "";
  const format =
    url.searchParams.get("format") ??
    (accept.includes("application/vnd.ipld.car") ? "car" : accept.includes("application/vnd.ipld.raw") ? "raw" : "");
  const headers = { "X-Ipfs-Path": `/ipfs/${path}`, Etag: `"${path}.${format || "file"}"`, "Cache-Control": "public, max-age=29030400, immutable" };

  if (format === "raw") {
    const bytes = await getBlock(cid);
    res.writeHead(200, { ...headers, "Content-Type": "application/vnd.ipld.raw", "Content-Length": bytes.length });
    res.end(req.method === "HEAD" ? undefined : bytes);
    return;
  }
  if (format === "car") {
    await getBlock(cid); // 404 before the 200 header goes out
    const { writer, out } = CarWriter.create([cid]);
    res.writeHead(200, { ...headers, "Content-Type": "application/vnd.ipld.car; version=1" });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const pump = (async () => {
      for await (const chunk of out) await send(res, chunk);
    })();
    for await (const block of dagBlocks(cid)) await writer.put(block);
    await writer.close();
    await pump;
    res.end();
    return;
  }
  if (format) throw new HttpError(400, `unknown format ${format}; use raw or car`);

  const entry = await exporter(cid, blockstore).catch((err) => {
    if (err.name === "NotFoundError" || err.code === "ERR_NOT_FOUND") throw new HttpError(404, `no such content: ${cid}`);
    throw err;
  });
  if (entry.type !== "file" && entry.type !== "raw") throw new HttpError(400, `${cid} is a ${entry.type}, not a file`);
  const size = Number(entry.size);
  if (!Number.isSafeInteger(size) || size > maxUpload) {
    throw new HttpError(413, `${cid} declares ${entry.size} bytes; this node serves files up to ${maxUpload}`);
  }
  const content = fileBytes(entry, size);
  const first = await content.next();
  const head = first.done ? new Uint8Array() : first.value;
  res.writeHead(200, { ...headers, "Content-Type": contentType(head.subarray(0, 16)), "Content-Length": size });
  if (req.method === "HEAD") {
    await content.return();
    res.end();
    return;
  }
  for (let chunk = first; !chunk.done; chunk = await content.next()) {
    if (!(await send(res, chunk.value))) {
      await content.return(); // the client has gone: read no further
      return;
    }
  }
  res.end();
}

const WINDOW = 1024 * 1024;

/** A file's first `size` bytes, read a window at a time as the caller pulls: the exporter reads
 *  whatever range it is asked for ahead of its consumer, so it is asked for one window at once. */
async function* fileBytes(entry, size) {
  for (let offset = 0; offset < size; offset += WINDOW) {
    yield* entry.content({ offset, length: Math.min(WINDOW, size - offset) });
  }
}

/** Writes with backpressure: a slow reader holds this request, not the node's memory. False once
 *  the client has gone. */
async function send(res, chunk) {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    const waited = new AbortController();
    const { signal } = waited;
    await Promise.race([once(res, "drain", { signal }), once(res, "close", { signal })]);
    waited.abort(); // drop the loser's listener: a long response must not pile them up
  }
  return !res.destroyed;
}

const server = createServer(async (req, res) => {
  cors(res);
  const url = new URL(req.url, "http://localhost");
  try {
    if (req.method === "OPTIONS") {
      res.writeHead(204).end();
    } else if (url.pathname === "/health" && req.method === "GET") {
      sendJson(res, 200, { status: "ok" });
    } else if (url.pathname === "/pinning/pinFileToIPFS") {
      if (req.method !== "POST") throw new HttpError(405, "use POST");
      await pinFile(req, res);
    } else if (url.pathname.startsWith("/ipfs/")) {
      if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "use GET");
      await gateway(req, res, url);
    } else {
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
    }
  } catch (err) {
    const status = err instanceof HttpError ? err.status : 500;
    if (status === 500) console.error(err);
    if (res.headersSent) {
      res.destroy(err);
    } else {
      if (status === 413 || status === 503) res.setHeader("Connection", "close");
      sendJson(res, status, { error: err.message });
    }
    req.resume();
  }
});

// Longer than clients' idle pools (aiohttp keeps connections 15 s), so the node is rarely the side
// that closes a connection a client is about to reuse.
server.keepAliveTimeout = 65_000;

server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`ipfs node listening on http://${address}:${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close(async () => {
      await blockstore.close();
      process.exit(0);
    });
    server.closeAllConnections();
  });
}
