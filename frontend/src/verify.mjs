// The result document's commitment, recomputed here: keccak256 of its RFC 8785 (JCS) form,
// exactly as the oracle computed the resultHash it put on chain.
import canonicalize from "canonicalize";
import { keccak256, toBytes } from "viem";

export function resultHash(document) {
  return keccak256(toBytes(canonicalize(document)));
}

export function matchesChain(document, onChainHash) {
  return resultHash(document).toLowerCase() === onChainHash.toLowerCase();
}

/** Lower-case hex sha256 of `bytes`, as the result document writes its hashes. */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
