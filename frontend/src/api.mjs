// The query API: Sign-In with Ethereum for a bearer token (kept in this tab's sessionStorage),
// result documents, and EIP-712 grants that let a viewer read an owner's results.
import { bytesToHex, zeroHash } from "viem";

export const ALL_IMAGES = zeroHash;

export const EIP712_DOMAIN = Object.freeze({ name: "histochain", version: "1" });

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The EIP-712 types the API verifies (oracle/api/auth.py; tests/test_page_constants.py checks). */
export const GRANT_TYPES = {
  Grant: [
    { name: "owner", type: "address" },
    { name: "viewer", type: "address" },
    { name: "imageId", type: "bytes32" },
    { name: "expiry", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  Revocation: [
    { name: "owner", type: "address" },
    { name: "nonce", type: "bytes32" },
  ],
};

export class Api {
  constructor(url, wallet, registryAddress) {
    this.url = url;
    this.wallet = wallet;
    this.domain = { ...EIP712_DOMAIN, chainId: wallet.chain.id, verifyingContract: registryAddress };
  }

  async call(path, { method = "GET", body, token } = {}) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new ApiError(0, "unreachable", `the query API at ${this.url} did not answer (${err.message})`);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, data?.error?.code ?? "http_error", data?.error?.message ?? `HTTP ${response.status}`);
    }
    return data;
  }

  tokenKey(account = this.wallet.account) {
    return `histochain:token:${account}`;
  }

  token() {
    const saved = JSON.parse(sessionStorage.getItem(this.tokenKey()) ?? "null");
    return saved && Date.parse(saved.expires_at) > Date.now() + 10_000 ? saved.token : null;
  }

  /** SIWE: the API words the message; the page checks it names this page before the wallet signs it.
   *  The session is kept under the account that signed in, whichever the wallet shows by then. */
  async signIn() {
    const account = this.wallet.account;
    const { message } = await this.call("/v1/auth/nonce", { method: "POST", body: { address: account } });
    const domain = message.split("\n", 1)[0].replace(/ wants you to sign in with your Ethereum account:$/, "");
    if (domain !== window.location.host) {
      throw new ApiError(0, "wrong_domain", `the API asks to sign in for ${domain}, but this page is ${window.location.host}`);
    }
    const signature = await this.wallet.client.signMessage({ account, message });
    const session = await this.call("/v1/auth/verify", { method: "POST", body: { message, signature } });
    sessionStorage.setItem(this.tokenKey(account), JSON.stringify(session));
    if (account !== this.wallet.account) throw new ApiError(0, "account_changed", "the account changed in the wallet during the sign-in");
    return session.token;
  }

  models() {
    return this.call("/v1/models");
  }

  publicRecord(imageId) {
    return this.call(`/v1/images/${imageId}`);
  }

  /** A GET that needs a session: signs in when there is none, and once more when it expired. */
  async signedGet(path) {
    const token = this.token() ?? (await this.signIn());
    try {
      return await this.call(path, { token });
    } catch (err) {
      if (err.status !== 401) throw err;
      sessionStorage.removeItem(this.tokenKey());
      return this.call(path, { token: await this.signIn() });
    }
  }

  document(imageId) {
    return this.signedGet(`/v1/images/${imageId}/document`);
  }

  /** Every item of a listing, following `next_cursor` (at most `pages` pages of 100). */
  async all(path, key, pages = 20) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < pages; page++) {
      const answer = await this.signedGet(`${path}?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      items.push(...answer[key]);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  /** The signed-in owner's grants, newest first. */
  grants() {
    return this.all("/v1/grants", "grants");
  }

  /** What the signed-in viewer may read now. */
  sharedWithMe() {
    return this.all("/v1/shared-with-me", "images");
  }

  /** Signs, as `owner`, that `viewer` may read `imageId` (or every image) until `expiry`. */
  async grant(owner, viewer, imageId, expiry) {
    const message = {
      owner,
      viewer,
      imageId,
      expiry,
      nonce: bytesToHex(crypto.getRandomValues(new Uint8Array(32))),
    };
    const signature = await this.signTyped("Grant", message);
    await this.call("/v1/grants", { method: "POST", body: { grant: { ...message, expiry: Number(expiry) }, signature } });
    return message;
  }

  async revoke(owner, nonce) {
    const message = { owner, nonce };
    const signature = await this.signTyped("Revocation", message);
    return this.call("/v1/grants/revoke", { method: "POST", body: { revocation: message, signature } });
  }

  /** EIP-712 signature by the message's owner over one of the API's grant types. */
  signTyped(primaryType, message) {
    return this.wallet.client.signTypedData({
      account: message.owner,
      domain: this.domain,
      types: { [primaryType]: GRANT_TYPES[primaryType] },
      primaryType,
      message,
    });
  }
}
