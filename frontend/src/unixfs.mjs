// UnixFS import parameters shared by the page and the local IPFS node, so both compute the
// same CID for the same bytes: Kubo's defaults (profile unixfs-v0-2015: 256 KiB fixed-size
// chunks, balanced layout of at most 174 links per node), raw leaves when CIDv1 is asked for.
import { importer } from "ipfs-unixfs-importer";
import { MemoryBlockstore } from "blockstore-core/memory";

export function importerOptions(cidVersion = 1) {
  if (cidVersion !== 0 && cidVersion !== 1) {
    throw new RangeError(`cidVersion must be 0 or 1, not ${cidVersion}`);
  }
  return { profile: "unixfs-v0-2015", cidVersion, rawLeaves: cidVersion === 1 };
}

/** Imports `bytes` (a Uint8Array) into `blockstore`; returns the root entry ({cid, size, ...}). */
export async function importBytes(bytes, blockstore, cidVersion = 1) {
  let root;
  for await (const entry of importer([{ content: bytes }], blockstore, importerOptions(cidVersion))) {
    root = entry;
  }
  return root;
}

/** The CID string the node will answer for `bytes`, computed without storing anything. */
export async function computeCid(bytes, cidVersion = 1) {
  const root = await importBytes(bytes, new MemoryBlockstore(), cidVersion);
  return root.cid.toString();
}
