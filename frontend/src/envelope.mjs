// The image envelope, sealed here exactly as the oracle opens it (oracle/crypto/envelope.py): age v1
// to X25519 recipients (every oracle key on chain and the patient's own); the payload is one line
// of RFC 8785 canonical JSON binding the image to its owner, chain and registry (and naming the
// owner's key, where the oracle encrypts what it makes from the image), then the image.
// And the patient's key: HKDF-SHA256 over a wallet signature of keyMessage (oracle/crypto/keys.py).
// tests/vectors/envelope.json holds both languages to the same bytes.
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bech32 } from "@scure/base";
import { Decrypter, Encrypter, identityToRecipient } from "age-encryption";
import canonicalize from "canonicalize";
import { bytesToHex, getAddress, hexToBytes } from "viem";

export const MEDIA_TYPES = Object.freeze({
  PNG: "image/png",
  JPEG: "image/jpeg",
  TIFF: "image/tiff",
  WEBP: "image/webp",
  BMP: "image/bmp",
});
const MAGIC = "age-encryption.org/v1\n";
const MAX_BINDING_BYTES = 512;
const ADDRESS = /^0x[0-9a-f]{40}$/;
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const BINDING_KEYS = ["app", "chain_id", "length", "media_type", "owner", "registry", "version"];
const WITH_REPLY_TO = [...BINDING_KEYS, "reply_to"].sort();
const encoder = new TextEncoder();
const SALT = encoder.encode("histochain patient key");
const INFO = encoder.encode("age x25519 identity v1");

export class EnvelopeError extends Error {}

/** What the wallet signs to unlock the patient's key: readable, and naming this deployment. */
export function keyMessage(chainId, registry) {
  return (
    "histochain: unlock my private images\n" +
    "\n" +
    "Signing this message creates the key that encrypts my pathology images for the histochain " +
    `registry ${getAddress(registry)} on chain ${chainId}, so that only I and the oracle ` +
    "can see them. It costs no gas and sends no transaction. Sign it only on the histochain page."
  );
}

/** The patient's age identity (AGE-SECRET-KEY-1…) from their 65-byte signature of keyMessage. */
export function patientIdentity(signature) {
  const bytes = hexToBytes(signature);
  if (bytes.length !== 65) throw new EnvelopeError(`a wallet signature is 65 bytes, not ${bytes.length}`);
  const secret = hkdf(sha256, bytes.slice(0, 64), SALT, INFO, 32);
  return bech32.encode("age-secret-key-", bech32.toWords(secret), false).toUpperCase();
}

export function recipientOf(identity) {
  return identityToRecipient(identity);
}

/** age1… for an X25519 public key as the registry stores it (bytes32 hex). */
export function recipientOfKey(key) {
  const bytes = hexToBytes(key);
  if (bytes.length !== 32) throw new EnvelopeError(`an X25519 public key is 32 bytes, not ${bytes.length}`);
  return bech32.encode("age", bech32.toWords(bytes), false);
}

/** The oracle keys on chain (bytes32 hex) an image can be sealed to, as age1… recipients, and how
 *  many were skipped. Any oracle-role holder can publish a key, and age cannot wrap a file key to a
 *  low-order X25519 point (the shared secret is all zero): one such key would make every seal fail.
 *  So each key is tried alone on an empty payload with the same library that seals the image. At
 *  most MAX_RECIPIENTS - 1 are taken: the owner's own key is the last recipient. */
export async function oracleRecipients(keys) {
  const recipients = [];
  for (const key of keys) {
    if (recipients.length === MAX_RECIPIENTS - 1) break; // room for the owner's own key
    try {
      const recipient = recipientOfKey(key);
      const trial = new Encrypter();
      trial.addRecipient(recipient);
      await trial.encrypt(new Uint8Array(0));
      recipients.push(recipient);
    } catch {
      // skipped: counted below, and the patient is told
    }
  }
  return { recipients, skipped: keys.length - recipients.length };
}

export function keyOfRecipient(recipient) {
  const { prefix, words } = bech32.decode(recipient.toLowerCase(), false);
  const bytes = bech32.fromWords(words);
  if (prefix !== "age" || bytes.length !== 32) throw new EnvelopeError(`not an age X25519 recipient: ${recipient}`);
  return bytesToHex(bytes);
}

/** The binding line for an image of `length` bytes of `mediaType`, owned by `owner`; `replyTo`
 * (the owner's age1… recipient) is where the oracle encrypts what it makes from the image. */
export function bindingLine({ owner, chainId, registry, mediaType, length, replyTo }) {
  const binding = {
    app: "histochain",
    version: 1,
    owner: owner.toLowerCase(),
    chain_id: chainId,
    registry: registry.toLowerCase(),
    media_type: mediaType,
    length,
    ...(replyTo === undefined ? {} : { reply_to: replyTo }),
  };
  return encoder.encode(`${canonicalize(validBinding(binding))}\n`);
}

function isRecipient(text) {
  if (typeof text !== "string" || !AGE_RECIPIENT.test(text)) return false;
  try {
    keyOfRecipient(text); // the bech32 checksum, which the pattern cannot check
    return true;
  } catch {
    return false;
  }
}

function validBinding(binding) {
  const ok =
    binding !== null &&
    typeof binding === "object" &&
    !Array.isArray(binding) &&
    [BINDING_KEYS.join(), WITH_REPLY_TO.join()].includes(Object.keys(binding).sort().join()) &&
    (!("reply_to" in binding) || isRecipient(binding.reply_to)) &&
    binding.app === "histochain" &&
    binding.version === 1 &&
    ADDRESS.test(binding.owner) &&
    ADDRESS.test(binding.registry) &&
    Number.isSafeInteger(binding.chain_id) &&
    binding.chain_id > 0 &&
    Object.values(MEDIA_TYPES).includes(binding.media_type) &&
    Number.isSafeInteger(binding.length) &&
    binding.length > 0;
  if (!ok) throw new EnvelopeError("the binding line is not valid");
  return binding;
}

/** Exactly the canonical line bindingLine writes, parsed; EnvelopeError otherwise. */
export function parseBinding(line) {
  let binding;
  try {
    binding = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(line));
  } catch {
    throw new EnvelopeError("the binding line is not valid");
  }
  validBinding(binding);
  const again = encoder.encode(`${canonicalize(binding)}\n`);
  if (again.length !== line.length || again.some((b, i) => b !== line[i])) {
    throw new EnvelopeError("the binding line is not in canonical form");
  }
  return binding;
}

/** Refuses (EnvelopeError) an opened envelope's binding made for another owner, chain or registry
 *  than `owner` on `chainId` at `registry` (as the oracle's check_binding does). */
export function checkBinding(binding, { owner, chainId, registry }) {
  const differs = [
    binding.owner !== owner.toLowerCase() && `another account (${binding.owner})`,
    binding.chain_id !== chainId && `another chain (${binding.chain_id})`,
    binding.registry !== registry.toLowerCase() && `another registry (${binding.registry})`,
  ].filter(Boolean);
  if (differs.length > 0) {
    throw new EnvelopeError(
      `it was sealed for ${differs.join(" and ")}, not for this account, chain and registry, so it is not shown`,
    );
  }
  return binding;
}

/** The most recipients an envelope may name: the oracle refuses a longer age header before it parses
 *  it (oracle/crypto/envelope.py, checked equal by tests/test_page_constants.py). */
export const MAX_RECIPIENTS = 16;

/** The envelope of `image` (bytes) for `recipients` (age1… strings). */
export async function seal(image, binding, recipients) {
  if (recipients.length === 0) throw new EnvelopeError("an envelope needs at least one recipient");
  if (recipients.length > MAX_RECIPIENTS) {
    throw new EnvelopeError(`an envelope has at most ${MAX_RECIPIENTS} recipients, not ${recipients.length}`);
  }
  const line = bindingLine({ ...binding, length: image.length });
  const payload = new Uint8Array(line.length + image.length);
  payload.set(line);
  payload.set(image, line.length);
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  return encrypter.encrypt(payload);
}

export function isEnvelope(bytes) {
  return new TextDecoder().decode(bytes.slice(0, MAGIC.length)) === MAGIC;
}

/** An opened envelope's image as a Blob of its declared media type. */
export const imageBlob = ({ binding, image }) => new Blob([image], { type: binding.media_type });

/** {binding, image} from an envelope sealed to `identity` (AGE-SECRET-KEY-1…). */
export async function openEnvelope(envelope, identity) {
  if (!isEnvelope(envelope)) throw new EnvelopeError("not an age envelope");
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  let payload;
  try {
    payload = await decrypter.decrypt(envelope);
  } catch (err) {
    throw new EnvelopeError(`cannot decrypt: not encrypted to this key, or altered (${err.message})`);
  }
  const end = payload.subarray(0, MAX_BINDING_BYTES + 1).indexOf(0x0a);
  if (end < 0) throw new EnvelopeError("the payload does not begin with a binding line");
  const binding = parseBinding(payload.subarray(0, end + 1));
  const image = payload.subarray(end + 1);
  if (binding.length !== image.length) {
    throw new EnvelopeError(`the binding says ${binding.length} bytes, the envelope holds ${image.length}`);
  }
  return { binding, image };
}
