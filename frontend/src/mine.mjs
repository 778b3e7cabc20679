// "My images": the connected account's registrations from the chain, each with a thumbnail
// decrypted here (once the key is unlocked), its status in words and its label once read.
import { imageBlob } from "./envelope.mjs";
import { openFromGateway } from "./gateway.mjs";
import { currentKey, ensureKey } from "./keys.mjs";
import { STATUS_NAMES } from "./registry.mjs";
import { Moved, state, stillCurrent } from "./state.mjs";
import { show } from "./results.mjs";
import { formatBytes } from "./upload.mjs";
import { sha256Hex } from "./verify.mjs";
import { $, el, shortCid, when } from "./ui/dom.mjs";
import { clear, fail } from "./ui/messages.mjs";

const THUMBNAILS = 12; // the newest; each is a gateway fetch and a decryption
const BROWSER_IMAGES = new Set(["image/png", "image/jpeg", "image/webp", "image/bmp"]);

const labelWords = (label) => (label ? `answer: ${label}` : "");

function item({ cid, imageId, record }) {
  const thumb = el("span", { className: "thumb", dataset: { cid }, attrs: { "aria-hidden": "true" } });
  const url = state.thumbs.get(cid);
  if (url) thumb.append(el("img", { src: url, alt: "" }));
  const view = el("button", { type: "button", textContent: "Result", onclick: () => show(imageId, cid, state.wallet.account) });
  view.setAttribute("aria-label", `Result of image ${shortCid(cid)}`);
  const open = el("button", { type: "button", textContent: "Show image", onclick: () => viewImage(cid) });
  open.setAttribute("aria-label", `Show image ${shortCid(cid)}`);
  return el(
    "li",
    { dataset: { imageId, status: String(record.status) } },
    thumb,
    el(
      "div",
      { className: "image-text" },
      el("code", { textContent: shortCid(cid), title: cid }),
      el("span", { className: "status", textContent: STATUS_NAMES[record.status] }),
      el("span", { className: "label", textContent: labelWords(state.labels.get(imageId)) }),
      el("span", { className: "hint", textContent: `registered ${when(record.registeredAt)}` }),
    ),
    el("span", { className: "actions" }, view, open),
  );
}

/** The label read for one of the owner's images, kept for this session and shown in its row. */
export function showLabel(imageId, label) {
  state.labels.set(imageId, label);
  const slot = $("mine").querySelector(`li[data-image-id="${imageId}"] .label`);
  if (slot) slot.textContent = labelWords(label);
}

export async function refreshMine() {
  if (!state.wallet || !state.rightChain) return;
  const era = state.era;
  const account = state.wallet.account;
  const rows = await state.registry.imagesOf(account);
  if (!stillCurrent(era)) return;
  $("mine").replaceChildren(...rows.map(item));
  $("mine-empty").textContent = rows.length === 0 ? "No images registered from this account yet." : "";
  if (currentKey()) await thumbnails(rows.slice(0, THUMBNAILS), account, currentKey(), era);
}

/** Decrypts the newest images' envelopes here and shows them small; one that fails stays blank. */
async function thumbnails(rows, account, key, era) {
  for (const { cid } of rows) {
    if (state.thumbs.has(cid)) continue;
    try {
      const opened = await openFromGateway(state.config, cid, key.identity, account);
      if (!stillCurrent(era)) return;
      if (!BROWSER_IMAGES.has(opened.binding.media_type)) continue;
      state.thumbs.set(cid, URL.createObjectURL(imageBlob(opened)));
    } catch (err) {
      console.warn(`no thumbnail for ${cid}`, err);
      continue;
    }
    const slot = $("mine").querySelector(`.thumb[data-cid="${cid}"]`);
    slot?.replaceChildren(el("img", { src: state.thumbs.get(cid), alt: "" }));
  }
}

/** Fetches this account's envelope from the gateway and opens it here; the image never leaves the
 *  tab. Shown only when the bytes match the CID and the envelope is bound to this account, chain
 *  and registry (gateway.openFromGateway); otherwise refused in the section's message slot. */
async function viewImage(cid) {
  const era = state.era;
  const account = state.wallet.account;
  const hadKey = currentKey() !== null;
  clear("mine");
  $("viewer-figure").hidden = true; // never the previous image beside this one's refusal
  delete $("viewer-figure").dataset.sha256;
  try {
    const key = await ensureKey(era);
    const opened = await openFromGateway(state.config, cid, key.identity, account);
    if (!stillCurrent(era)) return;
    const { binding, image } = opened;
    const digest = await sha256Hex(image);
    const type = binding.media_type;
    $("viewer-img").src = URL.createObjectURL(imageBlob(opened));
    $("viewer-caption").textContent = `${shortCid(cid)}: ${type}, ${formatBytes(image.length)}, sha256 ${digest}`;
    $("viewer-figure").dataset.sha256 = digest;
    $("viewer-download").href = $("viewer-img").src;
    $("viewer-download").download = `histochain-${cid.slice(-10)}.${type.split("/")[1]}`;
    $("viewer-figure").hidden = false;
    $("viewer-figure").scrollIntoView({ block: "nearest" });
    if (!hadKey) await refreshMine(); // the key was unlocked just now: thumbnails
  } catch (err) {
    if (stillCurrent(era) && !(err instanceof Moved)) fail("mine", err, { retry: () => viewImage(cid) });
  }
}
