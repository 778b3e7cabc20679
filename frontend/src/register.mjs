// Registering an image: check it here (type, size, and that this browser can decode it), unlock the
// patient's key, encrypt to every oracle key on chain and the patient's own, upload, check the CID,
// register on chain, then follow the request under Result.
import { zeroHash } from "viem";
import { MEDIA_TYPES, oracleRecipients, seal } from "./envelope.mjs";
import { feeStillShown, price } from "./fee.mjs";
import { ensureKey } from "./keys.mjs";
import { refreshMine } from "./mine.mjs";
import { imageIdOf, Status } from "./registry.mjs";
import { show } from "./results.mjs";
import { Moved, state, stillCurrent, within } from "./state.mjs";
import { SUPER_RESOLUTION, sizeProblem } from "./superres.mjs";
import { UploadError, formatBytes, localCid, pin, readImage } from "./upload.mjs";
import { $, txLink } from "./ui/dom.mjs";
import { clear, dropped, fail, say, toast } from "./ui/messages.mjs";
import { failActiveStep, resetSteps, step } from "./ui/steps.mjs";

const PINATA_API = "https://api.pinata.cloud";
const UNDECODABLE_HERE = new Set(["TIFF"]); // browsers do not decode TIFF; the oracle still checks it
const UPLOADED_NOT_REGISTERED =
  "You rejected the registration in your wallet. The encrypted image was uploaded to IPFS (only you and the oracle can open it), but it is not registered; you can try again.";

export function updateRegisterButton() {
  const busy = state.busy !== null && stillCurrent(state.busy);
  const ready = state.wallet && state.rightChain && state.file && !state.file.registered && !busy;
  $("register").disabled = !ready;
}

const chooseAnother = () => $("file").click();

/** The image's pixel size as this browser decodes it; an UploadError when it cannot. */
async function decodedSize(bytes, type) {
  try {
    const bitmap = await createImageBitmap(new Blob([bytes], { type }));
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    throw new UploadError(`This file starts like a ${type.split("/")[1].toUpperCase()} image, but its picture cannot be decoded: it is damaged or not an image. Nothing was uploaded.`);
  }
}

export async function chooseFile(file) {
  clear("register");
  resetSteps();
  state.file = null;
  $("preview").hidden = true;
  $("local-cid").textContent = "—";
  updateRegisterButton();
  if (!file) return;
  step("check", "active");
  try {
    const { bytes, type } = await readImage(file, state.config.maxUploadBytes);
    const mediaType = MEDIA_TYPES[type];
    const size = UNDECODABLE_HERE.has(type) ? null : await decodedSize(bytes, mediaType);
    $("preview-img").src = URL.createObjectURL(new Blob([bytes], { type: mediaType }));
    const dimensions = size ? `, ${size.width}×${size.height}` : "";
    $("preview-caption").textContent = `${file.name}, ${type}${dimensions}, ${formatBytes(bytes.length)}`;
    $("preview").hidden = false;
    state.file = { name: file.name, bytes, mediaType, size, sealed: null, registered: false };
    step("check", "done", `${type}${dimensions}, ${formatBytes(bytes.length)}`);
  } catch (err) {
    step("check", "failed");
    fail("register", err, { upload: chooseAnother });
  }
  updateRegisterButton();
}

/** True (and said) when this account registered this envelope already: a retry after a lost answer. */
async function alreadyRegistered(file, owner, cid, era) {
  const imageId = imageIdOf(owner, cid);
  const record = await state.registry.image(imageId);
  within(era);
  file.registered = record.status !== Status.None;
  if (file.registered) {
    say("register", "You have already registered this encrypted image.", { action: () => show(imageId, cid, owner), label: "Show it", tone: "info" });
  }
  return file.registered;
}

function uploadToken() {
  const typed = $("ipfs-token").value.trim();
  if (typed) return typed;
  if ($("ipfs-provider").value === "local" && state.config.ipfs.devToken) return state.config.ipfs.devToken;
  return null;
}

export function describeToken() {
  const local = $("ipfs-provider").value === "local";
  $("ipfs-token-hint").textContent = local && state.config.ipfs.devToken
    ? "(optional: the local node's dev token is used when empty)"
    : "(your Pinata JWT; kept in this browser only)";
}

/** Why the chosen model would refuse this image's size (its card's limits), said before upload. */
function sizeForModel(file) {
  const model = state.described.get($("model").value.toLowerCase());
  if (model?.task !== SUPER_RESOLUTION || !file.size) return "";
  return sizeProblem(model, file.size.width, file.size.height);
}

/** The whole registration, bound to the account and chain it began under (`era`): after every
 *  wait it stops (Moved) if either changed, so nothing is sealed, sent or shown for another. */
export async function uploadAndRegister() {
  const file = state.file;
  if (!file || !state.wallet) return;
  const era = state.era;
  const account = state.wallet.account;
  state.busy = era;
  updateRegisterButton();
  clear("register");
  resetSteps("key");
  let uploaded = false;
  try {
    const provider = $("ipfs-provider").value;
    const token = uploadToken();
    if (!token) {
      $("advanced").open = true;
      say("register", "Enter the upload token (your Pinata JWT) under “Advanced” first.", { action: () => $("ipfs-token").focus(), label: "Enter token" });
      return;
    }
    const apiUrl = provider === "pinata" && state.config.ipfs.provider !== "pinata" ? PINATA_API : state.config.ipfs.apiUrl;
    const tooLarge = sizeForModel(file);
    if (tooLarge) {
      step("check", "failed", "too large for this model");
      say("register", tooLarge, { action: chooseAnother, label: "Choose another file" });
      return;
    }

    step("key", "active", "sign the message in your wallet: no gas, nothing is sent");
    const key = await ensureKey(era);
    step("key", "done");
    step("seal", "active");
    const sealed = await sealFor(file, key, account, era);
    if (!sealed) return;
    $("local-cid").textContent = sealed.cid;
    step("seal", "done", `for you and ${keyCount(sealed.oracles)}${sealed.skipped ? `; ${keyCount(sealed.skipped)} skipped as invalid` : ""}`);
    if (sealed.skipped) say("register", skippedWords(sealed), { tone: "info", focus: false });
    if (await alreadyRegistered(file, account, sealed.cid, era)) return;

    step("upload", "active", provider === "pinata" ? "to Pinata" : "to the local IPFS node");
    const answered = await pin(apiUrl, token, sealed.envelope, `${file.name}.age`);
    within(era);
    uploaded = true;
    if (answered !== sealed.cid) {
      step("upload", "failed", `the service answered ${answered}`);
      say("register", `The IPFS service answered CID ${answered}, but this browser computed ${sealed.cid}. Nothing was registered.`, {
        action: uploadAndRegister,
        label: "Try again",
      });
      return;
    }
    step("upload", "done", "CIDs match");

    const modelId = $("model").value || zeroHash;
    const current = await feeStillShown(modelId);
    within(era);
    if (!current) {
      step("sign", "failed", "the fee changed");
      say("register", `The fee for this model changed to ${price(state.fee)}. Check it, then register again.`, {
        action: uploadAndRegister,
        label: "Register at the new fee",
      });
      return;
    }
    step("sign", "active", "confirm in your wallet");
    const hash = await state.registry.register(account, sealed.cid, modelId, state.fee);
    within(era);
    step("sign", "done");
    toast("Registration sent.", txLink(hash, state.config.chain.explorer));
    step("mined", "active", "pending");
    const receipt = await state.registry.receipt(hash);
    within(era);
    if (receipt.status !== "success") throw new Error(`the transaction ${hash} reverted`);
    step("mined", "done", `block ${receipt.blockNumber}`);
    file.registered = true;
    await refreshMine();
    within(era);
    await show(imageIdOf(account, sealed.cid), sealed.cid, account, { fromFlow: true, era });
  } catch (err) {
    if (err instanceof Moved || !stillCurrent(era)) return dropped("register");
    failActiveStep();
    fail("register", err, { retry: uploadAndRegister, upload: chooseAnother, uploadedMessage: uploaded ? UPLOADED_NOT_REGISTERED : null });
  } finally {
    if (state.busy === era) state.busy = null;
    updateRegisterButton();
  }
}

const keyCount = (n) => `${n} oracle key${n === 1 ? "" : "s"}`;

function skippedWords({ oracles, skipped }) {
  const were = skipped === 1 ? "key published on this chain is invalid and was" : "keys published on this chain are invalid and were";
  return `${skipped} oracle ${were} skipped: nothing can be encrypted to ${skipped === 1 ? "it" : "them"}. Your image is encrypted for you and the ${oracles} remaining oracle key${oracles === 1 ? "" : "s"}.`;
}

/** The file sealed for this account, to every valid oracle key on chain and the patient's own; kept,
 *  so a retry sends the same envelope (the same CID) instead of a new one. A key that cannot be
 *  encrypted to (envelope.oracleRecipients) is skipped and the patient told, so one bad key
 *  published by any oracle-role holder does not stop every registration. */
async function sealFor(file, key, owner, era) {
  if (key.account !== owner) throw new Moved(); // never seal one account's image to another's key
  if (file.sealed?.owner === owner && file.sealed.replyTo === key.recipient) return file.sealed;
  const keys = await state.registry.encryptionKeys();
  within(era);
  if (keys.length === 0) {
    step("seal", "failed");
    say("register", "No oracle has published an encryption key on this chain, so no one could read the image. Nothing was uploaded.");
    return null;
  }
  const { recipients, skipped } = await oracleRecipients(keys);
  within(era);
  if (recipients.length === 0) {
    step("seal", "failed", `${keyCount(skipped)} skipped as invalid`);
    say(
      "register",
      `The ${keyCount(keys.length)} published on this chain ${keys.length === 1 ? "is" : "are all"} invalid: no oracle could decrypt the image, so it was not encrypted. Nothing was uploaded.`,
    );
    return null;
  }
  const { config } = state;
  const binding = {
    owner,
    chainId: config.chain.id,
    registry: config.registry.address,
    mediaType: file.mediaType,
    replyTo: key.recipient, // what the oracle makes from the image (heat map, 4x image) is sealed to it
  };
  const envelope = await seal(file.bytes, binding, [...recipients, key.recipient]);
  const cid = await localCid(envelope);
  within(era);
  if (envelope.length > config.maxUploadBytes) {
    throw new UploadError(
      `${file.name} is ${formatBytes(envelope.length)} once encrypted; the limit is ${formatBytes(config.maxUploadBytes)}`,
    );
  }
  file.sealed = { owner, replyTo: key.recipient, envelope, cid, oracles: recipients.length, skipped };
  return file.sealed;
}
