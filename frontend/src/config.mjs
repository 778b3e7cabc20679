// The page's runtime configuration: config.json next to index.html, written by
// `histochain page build` / `dev up`. Nothing secret is ever in it.
import { getAddress, isAddress } from "viem";

export class ConfigError extends Error {}

function need(object, path, check, what) {
  const value = path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), object);
  if (!check(value)) throw new ConfigError(`config.json: ${path} must be ${what}`);
  return value;
}

const isUrl = (v) => typeof v === "string" && /^https?:\/\/[^\s]+$/.test(v);
const isPositiveInt = (v) => Number.isSafeInteger(v) && v > 0;

/** Validated configuration, or a ConfigError that says which field is wrong. */
export function parseConfig(raw) {
  if (raw === null || typeof raw !== "object") throw new ConfigError("config.json must hold a JSON object");
  const provider = need(raw, "ipfs.provider", (v) => v === "local" || v === "pinata", '"local" or "pinata"');
  return {
    chain: {
      id: need(raw, "chain.id", isPositiveInt, "a positive integer"),
      name: need(raw, "chain.name", (v) => typeof v === "string" && v.length > 0, "a name"),
      rpcUrl: need(raw, "chain.rpcUrl", isUrl, "an http(s) URL"),
      explorer: raw.chain.explorer == null ? null : need(raw, "chain.explorer", isUrl, "an http(s) URL or null"),
    },
    registry: {
      address: getAddress(need(raw, "registry.address", (v) => isAddress(v, { strict: false }), "an address")),
      block: BigInt(need(raw, "registry.block", (v) => Number.isSafeInteger(v) && v >= 0, "a block number")),
      abi: need(raw, "registry.abi", Array.isArray, "the registry's ABI"),
    },
    models: need(raw, "models", Array.isArray, "a list of {name, modelId}"),
    ipfs: {
      provider,
      apiUrl: need(raw, "ipfs.apiUrl", isUrl, "an http(s) URL"),
      gatewayUrl: need(raw, "ipfs.gatewayUrl", isUrl, "an http(s) URL"),
      devToken: typeof raw.ipfs.devToken === "string" ? raw.ipfs.devToken : null,
    },
    apiUrl: need(raw, "api.url", isUrl, "an http(s) URL").replace(/\/$/, ""),
    maxUploadBytes: need(raw, "maxUploadBytes", isPositiveInt, "a positive integer"),
  };
}

export async function loadConfig(url = "config.json") {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (err) {
    throw new ConfigError(`cannot load ${url}: ${err.message}`);
  }
  if (!response.ok) throw new ConfigError(`cannot load ${url}: HTTP ${response.status}`);
  return parseConfig(await response.json());
}
