// Feedback next to the action that caused it: each section has its own message slot and focus moves
// to the new message (keyboard and screen-reader users land on it and hear it); a note that does not
// take focus is said through one polite live region. Transactions get a short toast, linked to the
// explorer when there is one.
import { explain } from "../errors.mjs";
import { $, el } from "./dom.mjs";

const SLOTS = ["wallet", "register", "result", "mine", "share", "shared"];
const TOAST_MS = 8000;

/** Says `text` in `where`'s slot; `action`+`label` adds the one button that helps (none otherwise). */
export function say(where, text, { action, label, tone = "error", focus = true } = {}) {
  const slot = $(`${where}-message`);
  const close = el("button", { type: "button", className: "message-close", textContent: "×", onclick: () => clear(where) });
  close.setAttribute("aria-label", "Dismiss message");
  const act = action && el("button", { type: "button", className: "message-action", textContent: label, onclick: () => { clear(where); action(); } });
  slot.replaceChildren(...[el("span", { className: "message-text", textContent: text }), act, close].filter(Boolean));
  slot.dataset.tone = tone;
  slot.hidden = false;
  if (focus) {
    slot.focus({ preventScroll: true }); // read out as it takes focus
    slot.scrollIntoView({ block: "nearest", behavior: "smooth" });
  } else {
    $("live").textContent = text; // said without moving the reader
  }
}

const DROPPED =
  "The account or network changed in your wallet, so what was begun here for the previous one stopped: nothing more is signed, sealed or sent for it.";

/** The note a flow leaves when it stops because the account or chain it began under changed. */
export function dropped(where) {
  say(where, DROPPED, { tone: "info", focus: false });
}

export function clear(where) {
  const slot = $(`${where}-message`);
  slot.hidden = true;
  slot.replaceChildren();
}

export function clearAll() {
  SLOTS.forEach(clear);
}

/** A transient note (a transaction sent or mined); `link` is an element, e.g. the explorer's. */
export function toast(text, link) {
  const note = el("div", { className: "toast", attrs: { role: "status" } }, el("span", { textContent: `${text} ` }), link);
  $("toasts").append(note);
  setTimeout(() => note.remove(), TOAST_MS);
}

/** What went wrong, in `where`'s slot, with the one way on that can help: `retry` repeats exactly
 *  the action that failed (never another one); a refusal that no retry can change offers none. */
export function fail(where, err, { retry, network, upload, uploadedMessage } = {}) {
  console.error(err);
  const { kind, rejected, message } = explain(err);
  const text = rejected && uploadedMessage ? uploadedMessage : message;
  const ways = {
    retry: retry && { action: retry, label: "Try again" },
    api: retry && { action: retry, label: "Try again" },
    network: network && { action: network, label: "Switch network" },
    upload: upload && { action: upload, label: "Choose another file" },
  };
  say(where, text, ways[kind] ?? {});
}
