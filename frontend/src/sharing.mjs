// Sharing: the owner grants a clinician (an address) one result or all of them for some days, lists
// its grants from the API after a reload and revokes them; a viewer lists what was shared with it.
import { getAddress, isAddress } from "viem";
import { ALL_IMAGES } from "./api.mjs";
import { show } from "./results.mjs";
import { Moved, state, stillCurrent, within } from "./state.mjs";
import { $, el, shortCid, shortHex, when } from "./ui/dom.mjs";
import { clear, dropped, fail, say } from "./ui/messages.mjs";

const MAX_DAYS = 365;
const STATE_WORDS = { active: "active", revoked: "revoked", expired: "expired" };
const JOB_WORDS = {
  queued: "waiting for the oracle",
  classified: "answered, being committed",
  failed: "could not be read",
  submitted: "answer being committed",
  confirmed: "answered",
  superseded: "no longer current",
};

/** Empties both lists (another account, or signed out). */
export function resetSharing() {
  $("grants").replaceChildren();
  $("shared").replaceChildren();
  $("grants-empty").hidden = $("shared-empty").hidden = true;
  $("load-grants").hidden = $("load-shared").hidden = false;
}

function refuse(field, text) {
  $(field).setAttribute("aria-invalid", "true");
  say("share", text, { action: () => $(field).focus(), label: "Fix it" });
}

export async function share(event) {
  event.preventDefault();
  clear("share");
  if (!state.wallet) return say("share", "Connect a wallet first.");
  const viewer = $("viewer").value.trim();
  if (!isAddress(viewer, { strict: false })) return refuse("viewer", `“${viewer}” is not an Ethereum address.`);
  if (!isAddress(viewer, { strict: true })) {
    return refuse(
      "viewer",
      `“${viewer}” fails its checksum (the mix of capital and small letters that catches a mistyped character): one character is wrong. Copy the address again from its owner; nothing was signed.`,
    );
  }
  if (getAddress(viewer) === state.wallet.account) {
    return refuse("viewer", "That is your own address: you can already read your results. Enter the address of the person you want to share with.");
  }
  $("viewer").removeAttribute("aria-invalid");
  $("share-days").removeAttribute("aria-invalid");
  const all = $("share-scope").value === "all";
  const shown = state.shown;
  if (!all && shown?.owner !== state.wallet.account) {
    return say("share", "Open one of your results under “My images” first, or share all your results.");
  }
  const days = Number($("share-days").value);
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) return refuse("share-days", `Share for 1 to ${MAX_DAYS} days.`);
  const expiry = BigInt(Math.floor(Date.now() / 1000) + days * 86400);
  await grant(state.era, state.wallet.account, getAddress(viewer), all ? ALL_IMAGES : shown.imageId, expiry, all ? null : shown.cid);
}

/** Says `err` in `slot` with a retry bound to `era`. After an account or chain change a signing
 *  flow (`signing`) says only that it stopped, a listing nothing; a retry offered before the change
 *  can never act for the new account. */
function failWithin(era, slot, err, retry, { signing = false } = {}) {
  if (err instanceof Moved || !stillCurrent(era)) return signing ? dropped(slot) : undefined;
  fail(slot, err, { retry: () => stillCurrent(era) && retry() });
}

async function grant(era, owner, viewer, imageId, expiry, cid) {
  const what = cid ? `the result of image ${shortCid(cid)}` : "all your results";
  try {
    within(era);
    say("share", `Confirm in your wallet: ${viewer} may then read ${what} until ${when(expiry)}.`, { tone: "info", focus: false });
    await state.api.grant(owner, viewer, imageId, expiry);
    within(era);
    say("share", `Shared: ${viewer} may read ${what} until ${when(expiry)}.`, { tone: "info" });
    await listGrants();
  } catch (err) {
    failWithin(era, "share", err, () => grant(era, owner, viewer, imageId, expiry, cid), { signing: true });
  }
}

/** Revokes exactly this grant; its "Try again" retries the revocation, never a grant. */
async function revoke(era, owner, record) {
  try {
    within(era);
    await state.api.revoke(owner, record.nonce);
    within(era);
    say("share", `Revoked: ${record.viewer} may no longer read ${record.scope === "all" ? "your results" : "that result"}.`, { tone: "info" });
    await listGrants();
  } catch (err) {
    failWithin(era, "share", err, () => revoke(era, owner, record), { signing: true });
  }
}

function grantItem(record, era, owner) {
  const what = record.scope === "all" ? "all your results" : `the result of image ${record.cid ? shortCid(record.cid) : shortHex(record.image_id)}`;
  const until = record.state === "active" ? `until ${when(record.expiry)}` : STATE_WORDS[record.state];
  const text = el("span", { textContent: `${shortHex(record.viewer)} may read ${what}, ${until}. ` });
  text.title = record.viewer;
  const item = el("li", { dataset: { nonce: record.nonce, state: record.state } }, text);
  if (record.state === "active") {
    const button = el("button", { type: "button", textContent: "Revoke", onclick: () => revoke(era, owner, record) });
    button.setAttribute("aria-label", `Revoke ${record.viewer}'s access to ${what}`);
    item.append(button);
  }
  return item;
}

/** The owner's grants from the API (sign-in first), active ones first, with Revoke. */
export async function listGrants() {
  const era = state.era;
  try {
    const owner = state.wallet.account;
    const grants = await state.api.grants();
    within(era);
    const ordered = [...grants.filter((g) => g.state === "active"), ...grants.filter((g) => g.state !== "active")];
    $("grants").replaceChildren(...ordered.map((record) => grantItem(record, era, owner)));
    $("grants-empty").hidden = grants.length > 0;
    $("load-grants").hidden = true;
  } catch (err) {
    failWithin(era, "share", err, listGrants);
  }
}

/** What other owners shared with this account, each opening under Result. */
export async function listShared() {
  const era = state.era;
  try {
    const images = await state.api.sharedWithMe();
    within(era);
    $("shared").replaceChildren(
      ...images.map((image) => {
        const open = el("button", { type: "button", textContent: "Read the result", onclick: () => show(image.image_id, image.cid, image.owner) });
        open.setAttribute("aria-label", `Read the result of image ${shortCid(image.cid)} from ${image.owner}`);
        return el(
          "li",
          { dataset: { imageId: image.image_id } },
          el(
            "div",
            { className: "image-text" },
            el("span", { textContent: `From ${shortHex(image.owner)}`, title: image.owner }),
            el("code", { textContent: shortCid(image.cid), title: image.cid }),
            el("span", { className: "status", textContent: JOB_WORDS[image.state] ?? image.state }),
            el("span", { className: "hint", textContent: image.shared_until ? `shared until ${when(image.shared_until)}` : "" }),
          ),
          el("span", { className: "actions" }, open),
        );
      }),
    );
    $("shared-empty").hidden = images.length > 0;
    $("load-shared").hidden = true;
  } catch (err) {
    failWithin(era, "shared", err, listShared);
  }
}
