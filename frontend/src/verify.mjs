// The result document's commitment, recomputed here: keccak256 of its RFC 8785 (JCS) form,
// exactly as the oracle computed the resultHash it put on chain.
import canonicalize from "canonicalize";
import { keccak256, toBytes } from "viem";
import { openEnvelope } from "./envelope.mjs";

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

/** A PNG the oracle made from an image (a heat map, an upscaled image), opened with the owner's key
 *  and checked: sealed to this owner, and the bytes the signed document names (a swapped or
 *  altered file is refused, not shown). */
export async function openOutput(envelope, identity, owner, expectedSha256, what) {
  const { binding, image } = await openEnvelope(envelope, identity);
  if (binding.owner !== owner.toLowerCase()) throw new Error(`the ${what} is bound to another account`);
  if (binding.media_type !== "image/png") throw new Error(`the ${what} is not a PNG`);
  if ((await sha256Hex(image)) !== expectedSha256) throw new Error(`the ${what} is not the one the result names`);
  return image;
}
