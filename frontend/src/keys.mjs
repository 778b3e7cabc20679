// The patient's key, per account and tab: unlocked by a wallet signature (no gas) or a saved file.
import { PatientKey } from "./patient.mjs";
import { state } from "./state.mjs";
import { $ } from "./ui/dom.mjs";
import { fail, say } from "./ui/messages.mjs";

/** The connected account's key; unlocking asks the wallet for the key signature (no gas). */
export async function ensureKey() {
  if (state.key?.account !== state.wallet.account) {
    state.key = await PatientKey.unlock(state.wallet, state.config.chain.id, state.config.registry.address);
    showKey();
  }
  return state.key;
}

export function showKey() {
  $("key-status").textContent = state.key
    ? "Your key is unlocked in this tab only (never stored). Save it if your wallet signs differently each time."
    : "Your images are encrypted. Unlock your key to view them: your wallet signs a message (no gas, nothing is sent).";
  $("unlock").hidden = Boolean(state.key);
  $("save-key").hidden = !state.key;
}

export async function unlock(onUnlocked) {
  if (!state.wallet) return say("mine", "Connect a wallet first.");
  try {
    await ensureKey();
    say("mine", "Your key is unlocked: your images are shown below.", { tone: "info" });
    await onUnlocked();
  } catch (err) {
    fail("mine", err, { retry: () => unlock(onUnlocked) });
  }
}

export function saveKey() {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(state.key.file());
  link.download = `histochain-key-${state.key.account}.txt`;
  link.click();
}

export async function loadKey(file, onUnlocked) {
  if (!file) return;
  if (!state.wallet) return say("mine", "Connect a wallet first: a saved key belongs to one account.");
  try {
    state.key = await PatientKey.load(await file.text(), state.wallet.account);
    showKey();
    say("mine", "Saved key loaded for this tab.", { tone: "info" });
    await onUnlocked();
  } catch (err) {
    fail("mine", err);
  }
}
