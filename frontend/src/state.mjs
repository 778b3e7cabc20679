// The page's one state object and its declared shape. What belongs to the connected account is
// dropped whenever the account or the chain changes, so nothing of one account is shown to another.

/**
 * @typedef {{controller: AbortController}} Era
 *
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
 * @property {Map<string, {fee: bigint, failureFee: bigint}>} terms  each active model's terms, by lowercase modelId
 * @property {bigint | null} fee             the chosen model's fee: what a registration pays
 * @property {ChosenFile | null} file        the image chosen for registration
 * @property {import("./patient.mjs").PatientKey | null} key  the account's unlocked key
 * @property {{imageId: string, cid: string, owner: string, fromFlow: boolean} | null} shown  the image under
 *   Result; a new object per showing, so work begun for an earlier one can tell it is stale
 * @property {Era} era                       the account and chain that work runs under now
 * @property {Era | null} busy               the era whose registration is in progress (a change frees the button)
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
  terms: new Map(),
  fee: null,
  file: null,
  key: null,
  shown: null,
  era: { controller: new AbortController() },
  busy: null,
  labels: new Map(),
  thumbs: new Map(),
};

/** Thrown by `within`: the work began under an account or chain that is no longer the wallet's. */
export class Moved extends Error {
  constructor() {
    super("the account or network changed in the wallet");
  }
}

/** Whether `era` is still the current one: work begun under an earlier one shows nothing more. */
export const stillCurrent = (era) => state.era === era;

/** Stops the work of `era` (a Moved error) once the account or chain changed: called after every
 *  wait, so nothing begun for one account is shown, signed, sealed or sent for another. */
export function within(era) {
  if (state.era !== era) throw new Moved();
}

/** Waits `ms`, or ends at once (Moved) when `era` ends. */
export function pause(ms, era) {
  return new Promise((resolve, reject) => {
    if (era.controller.signal.aborted) return reject(new Moved());
    const timer = setTimeout(resolve, ms);
    era.controller.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new Moved());
    });
  });
}

/** Forgets everything the previous account (or chain) made visible or unlocked, and ends its era:
 *  every flow it began stops at its next step. */
export function forgetAccount() {
  state.era.controller.abort();
  state.era = { controller: new AbortController() };
  state.busy = null;
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
