// Envelopes back from the IPFS gateway, within the size any honest envelope can have, and only
// when the bytes are the ones their CID names: the gateway is not trusted.
import { code as DAG_PB } from "@ipld/dag-pb";
import { CID } from "multiformats/cid";
import { code as RAW } from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { EnvelopeError, checkBinding, openEnvelope } from "./envelope.mjs";
import { localCid } from "./upload.mjs";

const ENVELOPE_OVERHEAD = 64 * 1024;

/** `cid` parsed, if it has the form of the CIDs this page (and the oracle) upload: CIDv1, sha2-256,
 *  a raw block or a UnixFS file with raw leaves, the form localCid computes before upload. */
function checkableCid(cid) {
  let parsed;
  try {
    parsed = CID.parse(cid);
  } catch {
    throw new EnvelopeError(`${cid} is not a valid CID, so nothing fetched for it can be checked`);
  }
  if (parsed.version !== 1 || ![RAW, DAG_PB].includes(parsed.code) || parsed.multihash.code !== sha256.code) {
    throw new EnvelopeError(
      `its CID ${cid} is not of the form this page makes (CIDv1, sha2-256), so the gateway's bytes cannot be checked against it and are not used`,
    );
  }
  return parsed;
}

/** The bytes the gateway serves for `cid`, refused (EnvelopeError) unless they hash to `cid`: the
 *  CID is computed from them exactly as before upload (upload.localCid) and must be the same. */
export async function fetchEnvelope(config, cid) {
  const expected = checkableCid(cid);
  const limit = config.maxUploadBytes + ENVELOPE_OVERHEAD;
  let response;
  try {
    response = await fetch(`${config.ipfs.gatewayUrl.replace(/\/$/, "")}/ipfs/${cid}`);
  } catch (err) {
    throw new Error(`the IPFS gateway did not answer (${err.message})`);
  }
  if (!response.ok) throw new Error(`the IPFS gateway answered HTTP ${response.status} for ${cid}`);
  if (Number(response.headers.get("Content-Length") ?? 0) > limit) throw new Error("the gateway's answer is too large");
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > limit) throw new Error("the gateway's answer is too large");
  if (!CID.parse(await localCid(bytes)).equals(expected)) {
    throw new EnvelopeError(
      `the IPFS gateway served bytes that do not match the CID ${cid}: they are not what was registered, so they are not used`,
    );
  }
  return bytes;
}

/** The envelope at `cid`, fetched, checked and opened here with `identity`: {binding, image}; refused
 *  (EnvelopeError) unless it is bound to `owner` on this page's chain and registry. */
export async function openFromGateway(config, cid, identity, owner) {
  const opened = await openEnvelope(await fetchEnvelope(config, cid), identity);
  checkBinding(opened.binding, { owner, chainId: config.chain.id, registry: config.registry.address });
  return opened;
}
