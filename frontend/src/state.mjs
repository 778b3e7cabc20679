// The page's one state object and its declared shape. What belongs to the connected account is
// dropped whenever the account or the chain changes, so nothing of one account is shown to another.

/**
 * @typedef {object} ChosenFile
 * @property {string} name
 * @property {Uint8Array} bytes
 * @property {string} mediaType
 * @property {{owner: string, envelope: Uint8Array, cid: string, oracles: number} | null} sealed
 * @property {boolean} registered
 *
 * @typedef {object} PageState
 * @property {object | null} config          config.json, validated (config.mjs)
 * @property {() => Array<{info: object, provider: object}>} wallets  the EIP-6963 wallets seen
 * @property {import("./wallet.mjs").Wallet | null} wallet  the connected wallet
 * @property {import("./registry.mjs").Registry | null} registry
 * @property {import("./api.mjs").Api | null} api
 * @property {boolean} rightChain            the wallet is on the configured chain
 * @property {Map<string, object>} described  /v1/models by lowercase modelId: task, card
 * @property {bigint | null} fee
 * @property {ChosenFile | null} file        the image chosen for registration
 * @property {import("./patient.mjs").PatientKey | null} key  the account's unlocked key
 * @property {{imageId: string, cid: string, owner: string, fromFlow: boolean} | null} shown  the image under
 *   Result; a new object per showing, so work begun for an earlier one can tell it is stale
 * @property {boolean} busy                  a registration is in progress
 * @property {Map<string, string>} labels    labels read this session, by imageId (memory only)
 * @property {Map<string, string>} thumbs    object URLs of decrypted thumbnails, by CID (memory only)
 */

/** @type {PageState} */
export const state = {
  config: null,
  wallets: () => [],
  wallet: null,
  registry: null,
  api: null,
  rightChain: false,
  described: new Map(),
  fee: null,
  file: null,
  key: null,
  shown: null,
  busy: false,
  labels: new Map(),
  thumbs: new Map(),
};

/** Whether `account` is still the connected one: work begun for another account stops drawing. */
export const stillConnected = (account) => state.wallet?.account === account;

/** Forgets everything the previous account (or chain) made visible or unlocked. */
export function forgetAccount() {
  state.key = null;
  state.shown = null;
  state.labels = new Map();
  for (const url of state.thumbs.values()) URL.revokeObjectURL(url);
  state.thumbs = new Map();
  if (state.file) {
    state.file.sealed = null;
    state.file.registered = false;
  }
}
