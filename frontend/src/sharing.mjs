// Sharing: the owner grants a clinician (an address) one result or all of them for some days, lists
// its grants from the API after a reload and revokes them; a viewer lists what was shared with it.
import { getAddress, isAddress } from "viem";
import { ALL_IMAGES } from "./api.mjs";
import { show } from "./results.mjs";
import { state, stillConnected } from "./state.mjs";
import { $, el, shortCid, shortHex, when } from "./ui/dom.mjs";
import { clear, fail, say } from "./ui/messages.mjs";

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
  await grant(getAddress(viewer), all ? ALL_IMAGES : shown.imageId, expiry, all ? null : shown.cid);
}

async function grant(viewer, imageId, expiry, cid) {
  try {
    await state.api.grant(viewer, imageId, expiry);
    const what = cid ? `the result of image ${shortCid(cid)}` : "all your results";
    say("share", `Shared: ${shortHex(viewer)} may read ${what} until ${when(expiry)}.`, { tone: "info" });
    await listGrants();
  } catch (err) {
    fail("share", err, { retry: () => grant(viewer, imageId, expiry, cid) });
  }
}

/** Revokes exactly this grant; its "Try again" retries the revocation, never a grant. */
async function revoke(record) {
  try {
    await state.api.revoke(record.nonce);
    say("share", `Revoked: ${shortHex(record.viewer)} may no longer read ${record.scope === "all" ? "your results" : "that result"}.`, { tone: "info" });
    await listGrants();
  } catch (err) {
    fail("share", err, { retry: () => revoke(record) });
  }
}

function grantItem(record) {
  const what = record.scope === "all" ? "all your results" : `the result of image ${record.cid ? shortCid(record.cid) : shortHex(record.image_id)}`;
  const until = record.state === "active" ? `until ${when(record.expiry)}` : STATE_WORDS[record.state];
  const text = el("span", { textContent: `${shortHex(record.viewer)} may read ${what}, ${until}. ` });
  text.title = record.viewer;
  const item = el("li", { dataset: { nonce: record.nonce, state: record.state } }, text);
  if (record.state === "active") {
    const button = el("button", { type: "button", textContent: "Revoke", onclick: () => revoke(record) });
    button.setAttribute("aria-label", `Revoke ${record.viewer}'s access to ${what}`);
    item.append(button);
  }
  return item;
}

/** The owner's grants from the API (sign-in first), active ones first, with Revoke. */
export async function listGrants() {
  try {
    const account = state.wallet.account;
    const grants = await state.api.grants();
    if (!stillConnected(account)) return;
    const ordered = [...grants.filter((g) => g.state === "active"), ...grants.filter((g) => g.state !== "active")];
    $("grants").replaceChildren(...ordered.map(grantItem));
    $("grants-empty").hidden = grants.length > 0;
    $("load-grants").hidden = true;
  } catch (err) {
    fail("share", err, { retry: listGrants });
  }
}

/** What other owners shared with this account, each opening under Result. */
export async function listShared() {
  try {
    const account = state.wallet.account;
    const images = await state.api.sharedWithMe();
    if (!stillConnected(account)) return;
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
    fail("shared", err, { retry: listShared });
  }
}
