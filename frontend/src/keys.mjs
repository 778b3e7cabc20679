// The patient's key, per account, chain and tab: unlocked by a wallet signature (no gas) or a saved
// file, kept only while that account and chain are the wallet's (forgetAccount drops it).
import { PatientKey } from "./patient.mjs";
import { Moved, state, stillCurrent, within } from "./state.mjs";
import { $ } from "./ui/dom.mjs";
import { fail, say } from "./ui/messages.mjs";

/** The unlocked key when it is the connected account's on this page's chain and registry. */
export function currentKey() {
  const { key, wallet, config } = state;
  return key && wallet && key.fits(wallet.account, config.chain.id, config.registry.address) ? key : null;
}

/** The connected account's key; unlocking asks the wallet for the key signature (no gas). A key
 *  signed while the account or chain changed is dropped (Moved), never kept for the new one. */
export async function ensureKey(era = state.era) {
  within(era);
  const known = currentKey();
  if (known) return known;
  const { wallet, config } = state;
  const key = await PatientKey.unlock(wallet, wallet.account, config.chain.id, config.registry.address);
  within(era);
  state.key = key;
  showKey();
  return key;
}

export function showKey() {
  const key = currentKey();
  $("key-status").textContent = key
    ? "Your key is unlocked in this tab only (never stored). Save it if your wallet signs differently each time."
    : "Your images are encrypted. Unlock your key to view them: your wallet signs a message (no gas, nothing is sent).";
  $("unlock").hidden = Boolean(key);
  $("save-key").hidden = !key;
}

export async function unlock(onUnlocked) {
  if (!state.wallet) return say("mine", "Connect a wallet first.");
  const era = state.era;
  try {
    await ensureKey(era);
    say("mine", "Your key is unlocked: your images are shown below.", { tone: "info" });
    await onUnlocked();
  } catch (err) {
    if (stillCurrent(era) && !(err instanceof Moved)) fail("mine", err, { retry: () => unlock(onUnlocked) });
  }
}

/** Downloads the key, in a file named after the account it belongs to. */
export function saveKey() {
  const key = currentKey();
  if (!key) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(key.file());
  link.download = `histochain-key-${key.account}.txt`;
  link.click();
}

export async function loadKey(file, onUnlocked) {
  if (!file) return;
  if (!state.wallet) return say("mine", "Connect a wallet first: a saved key belongs to one account.");
  const era = state.era;
  const { wallet, config } = state;
  try {
    const key = await PatientKey.load(await file.text(), wallet.account, config.chain.id, config.registry.address);
    within(era);
    state.key = key;
    showKey();
    say("mine", "Saved key loaded for this tab.", { tone: "info" });
    await onUnlocked();
  } catch (err) {
    if (stillCurrent(era) && !(err instanceof Moved)) fail("mine", err);
  }
}
