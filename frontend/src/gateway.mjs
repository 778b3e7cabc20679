// Envelopes back from the IPFS gateway, within the size any honest envelope can have.
import { openEnvelope } from "./envelope.mjs";

const ENVELOPE_OVERHEAD = 64 * 1024;

export async function fetchEnvelope(config, cid) {
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
  return bytes;
}

/** The envelope at `cid`, fetched and opened here with `identity`: {binding, image}. */
export async function openFromGateway(config, cid, identity) {
  return openEnvelope(await fetchEnvelope(config, cid), identity);
}
