// Choosing a file and putting it on IPFS: the type is sniffed from the bytes (the oracle decodes
// only these formats), the CID is computed here with the node's UnixFS parameters, and the
// CID the service answers must be the same.
import { computeCid } from "./unixfs.mjs";

const SIGNATURES = [
  { type: "PNG", test: (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 },
  { type: "JPEG", test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: "TIFF", test: (b) => (b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a) || (b[0] === 0x4d && b[1] === 0x4d && b[3] === 0x2a) },
  { type: "WEBP", test: (b) => String.fromCharCode(...b.slice(0, 4)) === "RIFF" && String.fromCharCode(...b.slice(8, 12)) === "WEBP" },
  { type: "BMP", test: (b) => b[0] === 0x42 && b[1] === 0x4d },
];

export class UploadError extends Error {}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** The file's bytes and sniffed type, or an UploadError saying why it cannot be sent. */
export async function readImage(file, maxBytes) {
  if (file.size === 0) throw new UploadError(`${file.name} is empty`);
  if (file.size > maxBytes) {
    throw new UploadError(`${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}`);
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const match = SIGNATURES.find((s) => s.test(bytes));
  if (!match) {
    throw new UploadError(`${file.name} is not a PNG, JPEG, TIFF, WebP or BMP image`);
  }
  return { bytes, type: match.type };
}

export function localCid(bytes) {
  return computeCid(bytes, 1);
}

/** Pins `bytes` through a Pinata-compatible pinFileToIPFS; returns the CID the service answered. */
export async function pin(apiUrl, token, bytes, name) {
  const form = new FormData();
  form.append("file", new Blob([bytes]), name);
  form.append("pinataOptions", JSON.stringify({ cidVersion: 1 }));
  let response;
  try {
    response = await fetch(`${apiUrl.replace(/\/$/, "")}/pinning/pinFileToIPFS`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      body: form,
    });
  } catch (err) {
    throw new UploadError(`the IPFS service at ${apiUrl} did not answer (${err.message})`);
  }
  const text = await response.text();
  if (response.status === 401 || response.status === 403) {
    throw new UploadError("the IPFS service refused the upload token; check it and try again");
  }
  if (!response.ok) throw new UploadError(`the upload failed: HTTP ${response.status} ${text.slice(0, 200)}`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new UploadError(`the IPFS service answered something that is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof body.IpfsHash !== "string") throw new UploadError("the IPFS service's answer has no IpfsHash");
  return body.IpfsHash;
}
