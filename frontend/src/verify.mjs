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
