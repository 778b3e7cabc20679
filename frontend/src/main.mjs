// The page: wires the wallet, the IPFS upload, the registry and the query API to the DOM.
import { formatEther, getAddress, isAddress, zeroHash } from "viem";
import { ALL_IMAGES, Api } from "./api.mjs";
import { loadConfig } from "./config.mjs";
import { MEDIA_TYPES, openEnvelope, recipientOfKey, seal } from "./envelope.mjs";
import { explain } from "./errors.mjs";
import { openHeatMap, overlay, refusalWords, renderCard } from "./explain.mjs";
import { PatientKey } from "./patient.mjs";
import { FAILURE_REASONS, NOT_TISSUE, Registry, STATUS_NAMES, Status, imageIdOf } from "./registry.mjs";
import { SUPER_RESOLUTION, compareSlider, describeUpscaled, modelOptions, openUpscaled, sizeProblem } from "./superres.mjs";
import { UploadError, formatBytes, localCid, pin, readImage } from "./upload.mjs";
import { matchesChain, sha256Hex } from "./verify.mjs";
import { Wallet, discoverWallets } from "./wallet.mjs";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const TOKEN_KEY = "histochain:ipfs-token";
const PINATA_API = "https://api.pinata.cloud";
const ENVELOPE_OVERHEAD = 64 * 1024;
const UPLOADED_NOT_REGISTERED =
  "You rejected the registration in your wallet. The encrypted image was uploaded to IPFS (only you and the oracle can open it), but it is not registered; you can try again.";

const state = {
  config: null,
  wallets: () => [],
  wallet: null,
  registry: null,
  api: null,
  file: null,
  key: null,
  shown: null,
  watch: 0,
  retry: null,
};

// ---- messages and steps

function say(text, { action, label, tone = "error" } = {}) {
  $("message").hidden = false;
  $("message").dataset.tone = tone;
  $("message-text").textContent = text;
  const button = $("message-action");
  button.hidden = !action;
  button.textContent = label ?? "";
  button.onclick = action ? () => { clearMessage(); action(); } : null;
}

function clearMessage() {
  $("message").hidden = true;
}

function fail(err, { uploaded = false } = {}) {
  console.error(err);
  const { kind, rejected, message: explained } = explain(err);
  const message = rejected && uploaded ? UPLOADED_NOT_REGISTERED : explained;
  const ways = {
    retry: state.retry && { action: state.retry, label: "Try again" },
    network: { action: switchNetwork, label: "Switch network" },
    upload: { action: () => $("file").click(), label: "Choose another file" },
    api: state.retry && { action: state.retry, label: "Try again" },
  };
  say(message, ways[kind] ?? {});
}

function step(name, status, detail) {
  const item = document.querySelector(`#steps [data-step="${name}"]`);
  item.dataset.state = status;
  item.dataset.detail = detail ?? "";
  let note = item.querySelector(".detail");
  if (!note) {
    note = document.createElement("span");
    note.className = "detail";
    item.append(note);
  }
  note.textContent = detail ? ` ${detail}` : "";
}

function resetSteps(from = "check") {
  let reset = false;
  for (const item of document.querySelectorAll("#steps li")) {
    reset ||= item.dataset.step === from;
    if (reset) step(item.dataset.step, "todo");
  }
}

function shortHex(hex) {
  return `${hex.slice(0, 10)}…${hex.slice(-6)}`;
}

function txLink(hash) {
  const node = document.createElement(state.config.chain.explorer ? "a" : "code");
  node.textContent = shortHex(hash);
  node.title = hash;
  if (state.config.chain.explorer) node.href = `${state.config.chain.explorer.replace(/\/$/, "")}/tx/${hash}`;
  return node;
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleString();
}

// ---- wallet

function renderWalletChoice(wallets) {
  const select = $("wallet-choice");
  select.replaceChildren(...wallets.map((w) => new Option(w.info.name, w.info.uuid)));
  select.hidden = $("wallet-choice-label").hidden = wallets.length < 2;
}

async function connect() {
  state.retry = connect;
  const wallets = state.wallets();
  if (wallets.length === 0) {
    say("No wallet found. Install MetaMask (or another EIP-6963 wallet) and reload this page.");
    return;
  }
  const chosen = wallets.find((w) => w.info.uuid === $("wallet-choice").value) ?? wallets[0];
  const wallet = new Wallet(chosen.provider, state.config.chain);
  try {
    await wallet.connect();
  } catch (err) {
    fail(err);
    return;
  }
  state.wallet = wallet;
  state.registry = new Registry(wallet, state.config);
  state.api = new Api(state.config.apiUrl, wallet, state.config.registry.address);
  wallet.on("chainChanged", () => checkNetwork());
  wallet.on("accountsChanged", (accounts) => {
    if (!accounts?.length) return window.location.reload();
    wallet.account = getAddress(accounts[0]);
    forgetKey();
    $("account").textContent = shortHex(wallet.account);
    checkNetwork();
  });
  $("account").textContent = shortHex(wallet.account);
  $("account").title = wallet.account;
  $("connect").textContent = "Connected";
  $("connect").disabled = true;
  clearMessage();
  await checkNetwork();
}

async function checkNetwork() {
  const { wallet, config } = state;
  const id = await wallet.chainId();
  const right = id === config.chain.id;
  $("network").textContent = right ? config.chain.name : `chain ${id}`;
  $("network-banner").hidden = right;
  $("network-text").textContent = right
    ? ""
    : `Your wallet is on chain ${id}; histochain runs on ${config.chain.name} (chain ${config.chain.id}).`;
  updateRegisterButton();
  if (right) await loadChainData();
}

async function switchNetwork() {
  state.retry = switchNetwork;
  try {
    await state.wallet.switchChain();
    await checkNetwork();
  } catch (err) {
    fail(err);
  }
}

async function loadChainData() {
  try {
    const [models, fee, kept, described] = await Promise.all([
      state.registry.models(),
      state.registry.fee(),
      state.registry.failureFee(),
      state.api.models().then((answer) => answer.models, () => []), // tasks and cards; the chain has the rest
    ]);
    state.described = new Map(described.map((m) => [m.model_id.toLowerCase(), m]));
    state.fee = fee;
    $("fee").textContent =
      fee === 0n
        ? "free on this chain"
        : `${formatEther(fee)} ETH; if the oracle cannot read your image, ${formatEther(fee - kept)} ETH of it comes back`;
    const select = $("model");
    select.replaceChildren(...modelOptions(models, state.described));
    select.disabled = models.length === 0;
    if (models.length === 0) say("No active model is registered on chain yet.");
    await refreshMine();
  } catch (err) {
    fail(err);
  }
  updateRegisterButton();
}

// ---- file and upload

function updateRegisterButton() {
  const ready = state.wallet && $("network-banner").hidden && state.file && !state.file.registered && !state.busy;
  $("register").disabled = !ready;
}

async function chooseFile(file) {
  clearMessage();
  resetSteps();
  state.file = null;
  $("preview").hidden = true;
  $("local-cid").textContent = "—";
  updateRegisterButton();
  if (!file) return;
  try {
    step("check", "active");
    const { bytes, type } = await readImage(file, state.config.maxUploadBytes);
    const url = URL.createObjectURL(new Blob([bytes]));
    $("preview-img").src = url;
    $("preview-caption").textContent = `${file.name}, ${type}, ${formatBytes(bytes.length)}`;
    $("preview").hidden = false;
    state.file = { name: file.name, bytes, mediaType: MEDIA_TYPES[type], sealed: null, registered: false };
    step("check", "done", `${type}, ${formatBytes(bytes.length)}`);
  } catch (err) {
    step("check", "failed");
    fail(err);
  }
  updateRegisterButton();
}

/** True (and said) when this account registered this envelope already: a retry after a lost answer. */
async function checkAlreadyRegistered(cid) {
  const imageId = imageIdOf(state.wallet.account, cid);
  const record = await state.registry.image(imageId);
  state.file.registered = record.status !== Status.None;
  if (state.file.registered) {
    say("You have already registered this encrypted image.", { action: () => show(imageId, cid), label: "Show it", tone: "info" });
  }
  return state.file.registered;
}

// ---- the patient's key

/** The connected account's key; unlocking asks the wallet for the key signature (no gas). */
async function ensureKey() {
  if (state.key?.account !== state.wallet.account) {
    state.key = await PatientKey.unlock(state.wallet, state.config.chain.id, state.config.registry.address);
    showKey();
  }
  return state.key;
}

function showKey() {
  $("key-status").textContent = state.key
    ? "Your key is unlocked in this tab only (never stored). Save it if your wallet signs differently each time."
    : "Your images are encrypted. Unlock your key to view them: your wallet signs a message (no gas, nothing is sent).";
  $("unlock").hidden = Boolean(state.key);
  $("save-key").hidden = !state.key;
}

function forgetKey() {
  state.key = null;
  if (state.file) state.file.sealed = null;
  $("viewer-figure").hidden = true;
  showKey();
}

async function unlock() {
  state.retry = unlock;
  if (!state.wallet) return say("Connect a wallet first.");
  try {
    await ensureKey();
    say("Your key is unlocked: use “Show image” under My images.", { tone: "info" });
  } catch (err) {
    fail(err);
  }
}

function saveKey() {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(state.key.file());
  link.download = `histochain-key-${state.key.account}.txt`;
  link.click();
}

async function loadKey(file) {
  if (!file) return;
  if (!state.wallet) return say("Connect a wallet first: a saved key belongs to one account.");
  try {
    state.key = await PatientKey.load(await file.text(), state.wallet.account);
    showKey();
    say("Saved key loaded for this tab.", { tone: "info" });
  } catch (err) {
    fail(err);
  }
}

function uploadToken() {
  const typed = $("ipfs-token").value.trim();
  if (typed) return typed;
  if ($("ipfs-provider").value === "local" && state.config.ipfs.devToken) return state.config.ipfs.devToken;
  return null;
}

function describeToken() {
  const local = $("ipfs-provider").value === "local";
  $("ipfs-token-hint").textContent = local && state.config.ipfs.devToken
    ? "(optional: the local node's dev token is used when empty)"
    : "(your Pinata JWT; kept in this browser only)";
}

async function uploadAndRegister() {
  const file = state.file;
  if (!file) return;
  state.retry = uploadAndRegister;
  state.busy = true;
  updateRegisterButton();
  clearMessage();
  resetSteps("key");
  let uploaded = false;
  try {
    const provider = $("ipfs-provider").value;
    const token = uploadToken();
    if (!token) {
      step("upload", "failed");
      say("Enter the upload token (your Pinata JWT) first.", { action: () => $("ipfs-token").focus(), label: "Enter token" });
      return;
    }
    const apiUrl = provider === "pinata" && state.config.ipfs.provider !== "pinata" ? PINATA_API : state.config.ipfs.apiUrl;
    const tooLarge = await sizeForModel(file);
    if (tooLarge) {
      step("check", "failed", "too large for this model");
      say(tooLarge, { action: () => $("file").click(), label: "Choose another file" });
      return;
    }

    step("key", "active", "sign the message in your wallet: no gas, nothing is sent");
    const key = await ensureKey();
    step("key", "done");
    step("seal", "active");
    const sealed = await sealFor(file, key);
    if (!sealed) return;
    $("local-cid").textContent = sealed.cid;
    step("seal", "done", `for you and ${sealed.oracles} oracle key${sealed.oracles === 1 ? "" : "s"}`);
    if (await checkAlreadyRegistered(sealed.cid)) return;

    step("upload", "active", provider === "pinata" ? "to Pinata" : "to the local IPFS node");
    const answered = await pin(apiUrl, token, sealed.envelope, `${file.name}.age`);
    uploaded = true;
    if (answered !== sealed.cid) {
      step("upload", "failed", `the service answered ${answered}`);
      say(`The IPFS service answered CID ${answered}, but this browser computed ${sealed.cid}. Nothing was registered.`, {
        action: uploadAndRegister,
        label: "Try again",
      });
      return;
    }
    step("upload", "done", "CIDs match");

    step("sign", "active");
    const modelId = $("model").value || zeroHash;
    const hash = await state.registry.register(sealed.cid, modelId, state.fee ?? 0n);
    step("sign", "done", shortHex(hash));
    step("mined", "active", "pending");
    const receipt = await state.registry.receipt(hash);
    if (receipt.status !== "success") throw new Error(`the transaction ${hash} reverted`);
    step("mined", "done", `block ${receipt.blockNumber}`);
    file.registered = true;
    await refreshMine();
    await show(imageIdOf(sealed.owner, sealed.cid), sealed.cid);
  } catch (err) {
    const active = document.querySelector('#steps [data-state="active"]');
    if (active) step(active.dataset.step, "failed");
    fail(err, { uploaded });
  } finally {
    state.busy = false;
    updateRegisterButton();
  }
}

/** Why the chosen model would refuse this image's size (a super-resolution model reads every
 *  pixel, so its card limits them), said before anything is uploaded; "" when it would not. An
 *  image this browser cannot decode is left to the oracle's verdict. */
async function sizeForModel(file) {
  const model = state.described?.get($("model").value.toLowerCase());
  if (model?.task !== SUPER_RESOLUTION) return "";
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([file.bytes], { type: file.mediaType }));
  } catch {
    return "";
  }
  const problem = sizeProblem(model, bitmap.width, bitmap.height);
  bitmap.close();
  return problem;
}

/** The file sealed for this account, to every oracle key on chain and the patient's own; kept, so a
 *  retry sends the same envelope (the same CID) instead of a new one. */
async function sealFor(file, key) {
  const owner = state.wallet.account;
  if (file.sealed?.owner === owner) return file.sealed;
  const keys = await state.registry.encryptionKeys();
  if (keys.length === 0) {
    step("seal", "failed");
    say("No oracle has published an encryption key on this chain, so no one could read the image. Nothing was uploaded.");
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
  const envelope = await seal(file.bytes, binding, [...keys.map(recipientOfKey), key.recipient]);
  if (envelope.length > config.maxUploadBytes) {
    throw new UploadError(
      `${file.name} is ${formatBytes(envelope.length)} once encrypted; the limit is ${formatBytes(config.maxUploadBytes)}`,
    );
  }
  file.sealed = { owner, envelope, cid: await localCid(envelope), oracles: keys.length };
  return file.sealed;
}

// ---- result

function showStatus(text, status) {
  $("result-status").textContent = text;
  $("result-status").dataset.status = status;
}

/** Shows one image and follows it until its request ends (or another image is shown). */
async function show(imageId, cid) {
  try {
    await follow(imageId, cid);
  } catch (err) {
    fail(err);
  }
}

async function follow(imageId, cid) {
  const watch = ++state.watch;
  state.shown = { imageId, cid };
  $("result").hidden = false;
  $("result-cid").textContent = cid;
  $("result-body").hidden = true;
  $("read-result").hidden = true;
  $("result-why").hidden = true;
  $("see-why").hidden = true;
  $("heat-figure").hidden = true;
  $("sr-figure").hidden = true;
  $("card-details").hidden = true;
  $("cancel").hidden = true;
  for (const id of ["result-model", "result-oracle", "result-registered", "result-answered", "result-registration-tx", "result-tx", "result-hash"]) {
    $(id).textContent = "—";
  }
  const registration = await state.registry.registrationLog(imageId);
  if (registration) $("result-registration-tx").replaceChildren(txLink(registration.transactionHash));
  while (watch === state.watch) {
    const record = await state.registry.image(imageId);
    $("result-registered").textContent = when(record.registeredAt);
    $("result-model").textContent = state.registry.names.get(record.modelId.toLowerCase()) ?? record.modelId;
    if (record.status === Status.Pending) {
      step("oracle", "active");
      const now = await state.registry.latestTimestamp();
      if (now > record.deadline) {
        showStatus("The oracle did not answer in time. You can cancel the request; the fee comes back to you.", "timed-out");
        $("cancel").hidden = record.owner !== state.wallet.account;
      } else {
        showStatus("Waiting for the oracle…", "pending");
      }
    } else {
      return settled(imageId, record);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function settled(imageId, record) {
  await refreshMine();
  const upscaling = state.described?.get(record.modelId.toLowerCase())?.task === SUPER_RESOLUTION;
  const verb = upscaling ? "upscale" : "classify";
  if (record.status === Status.Classified) {
    step("oracle", "done");
    step("result", "done");
    showStatus(
      upscaling ? "Done: the 4× image is ready, and its result's hash is committed on chain." : "Classified. The result is committed on chain.",
      "classified",
    );
    $("result-hash").textContent = record.resultHash;
    const log = await state.registry.resultLog(imageId);
    if (log) {
      $("result-tx").replaceChildren(txLink(log.transactionHash));
      $("result-answered").textContent = when(await state.registry.blockTime(log.blockNumber));
    }
    $("read-result").hidden = false;
    if (state.api.token()) await readResult();
  } else if (record.status === Status.Failed) {
    step("oracle", "failed");
    const reason = await state.registry.failureReason(imageId);
    const why = FAILURE_REASONS[reason] ?? `reason ${reason}`;
    const refund = record.feePaid > 0n ? ` The fee (${formatEther(record.feePaid)} ETH) was refunded.` : "";
    showStatus(`The oracle could not ${verb} this image: ${why}.${refund}`, "failed");
    say(`The oracle could not ${verb} this image: ${why}.`, { action: () => $("file").click(), label: "Choose another image" });
    if (reason === NOT_TISSUE) {
      $("see-why").hidden = false;
      if (state.api.token()) await seeWhy();
    }
  } else if (record.status === Status.Cancelled) {
    showStatus("This request was cancelled and its fee refunded.", "cancelled");
  }
}

async function readResult() {
  state.retry = readResult;
  const { imageId } = state.shown;
  try {
    const [served, record] = await Promise.all([state.api.document(imageId), state.registry.image(imageId)]);
    const doc = served.document;
    const upscaled = doc.task === SUPER_RESOLUTION;
    $("result-body").hidden = false;
    $("classification-body").hidden = upscaled;
    if (!upscaled) {
      const malignant = doc.probabilities.malignant ?? Math.max(...Object.values(doc.probabilities));
      $("result-label").textContent = doc.label;
      $("result-probability").value = malignant;
      $("result-probability-text").textContent = `${(malignant * 100).toFixed(1)} % (threshold ${doc.threshold})`;
      $("result-calibration").textContent = `Probability: ${doc.calibration}.`;
    }
    $("result-model").textContent = doc.model_name;
    $("result-oracle").textContent = doc.oracle;
    const ok = matchesChain(doc, record.resultHash);
    $("verified").dataset.verified = String(ok);
    $("verified").textContent = ok
      ? "✓ Verified: this document hashes to the result hash on chain."
      : "✗ Not verified: this document does NOT hash to the result hash on chain. Do not trust it.";
    $("read-result").hidden = true;
    await Promise.all([
      showModelCard(doc.model_id),
      ok && upscaled ? showUpscaled(doc) : null,
      ok && !upscaled && doc.outputs?.grad_cam ? showHeatMap(doc) : null,
    ]);
  } catch (err) {
    fail(err);
  }
}

/** The input gate's words for a NOT_TISSUE refusal: only the owner may read them (sign-in). */
async function seeWhy() {
  state.retry = seeWhy;
  try {
    const words = await refusalWords(state.api, state.shown.imageId);
    $("result-why").textContent = words ? `Why: ${words}` : "The oracle gave no further reason.";
    $("result-why").hidden = false;
    $("see-why").hidden = true;
  } catch (err) {
    fail(err);
  }
}

async function showModelCard(modelId) {
  const { models } = await state.api.models();
  const model = models.find((m) => m.model_id.toLowerCase() === modelId.toLowerCase());
  if (!model?.card) return;
  renderCard($("model-card"), model.card);
  $("card-details").hidden = false;
}

/** The owner's image under the oracle's heat map, both opened here with the owner's key. */
async function showHeatMap(doc) {
  const key = await ensureKey();
  const owner = state.wallet.account;
  const [picture, sealedHeat] = await Promise.all([
    fetchEnvelope(state.shown.cid).then((envelope) => openEnvelope(envelope, key.identity)),
    fetchEnvelope(doc.outputs.grad_cam),
  ]);
  const heat = await openHeatMap(sealedHeat, key.identity, owner, doc.outputs.grad_cam_sha256);
  const blob = new Blob([picture.image], { type: picture.binding.media_type });
  $("heat-canvas").replaceChildren(await overlay(blob, heat));
  $("heat-figure").dataset.sha256 = doc.outputs.grad_cam_sha256;
  $("heat-figure").hidden = false;
}

/** The 4x image the oracle sealed to the owner, opened and checked here, beside the input. */
async function showUpscaled(doc) {
  const key = await ensureKey();
  const [picture, sealed] = await Promise.all([
    fetchEnvelope(state.shown.cid).then((envelope) => openEnvelope(envelope, key.identity)),
    fetchEnvelope(doc.outputs.image),
  ]);
  const output = await openUpscaled(sealed, key.identity, state.wallet.account, doc);
  const inputUrl = URL.createObjectURL(new Blob([picture.image], { type: picture.binding.media_type }));
  const outputUrl = URL.createObjectURL(new Blob([output], { type: "image/png" }));
  const { output_width: width, output_height: height } = doc.measures;
  $("sr-compare").replaceChildren(compareSlider(inputUrl, outputUrl, width, height));
  $("sr-caption").textContent = describeUpscaled(doc, state.described?.get(doc.model_id.toLowerCase()));
  $("sr-download").href = outputUrl;
  $("sr-download").download = `histochain-${state.shown.cid.slice(-10)}-x4.png`;
  $("sr-figure").dataset.sha256 = doc.outputs.image_sha256;
  $("sr-figure").hidden = false;
}

async function cancelRequest() {
  state.retry = cancelRequest;
  try {
    const hash = await state.registry.cancel(state.shown.imageId);
    await state.registry.receipt(hash);
    say("Cancelled; the fee was refunded.", { tone: "info" });
    await show(state.shown.imageId, state.shown.cid);
  } catch (err) {
    fail(err);
  }
}

// ---- my images and sharing

async function refreshMine() {
  if (!state.wallet) return;
  const rows = await state.registry.imagesOf(state.wallet.account);
  const body = $("mine").querySelector("tbody");
  body.replaceChildren(
    ...rows.map(({ cid, imageId, record }) => {
      const tr = document.createElement("tr");
      tr.dataset.imageId = imageId;
      const cell = (content) => {
        const td = document.createElement("td");
        td.append(content);
        return td;
      };
      const code = document.createElement("code");
      code.textContent = `${cid.slice(0, 12)}…${cid.slice(-6)}`;
      code.title = cid;
      const view = document.createElement("button");
      view.type = "button";
      view.textContent = "View";
      view.setAttribute("aria-label", `View the result of image ${cid}`);
      view.onclick = () => show(imageId, cid);
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Show image";
      open.setAttribute("aria-label", `Show image ${cid}`);
      open.onclick = () => viewImage(cid);
      const actions = document.createElement("span");
      actions.append(view, " ", open);
      tr.append(cell(code), cell(STATUS_NAMES[record.status]), cell(when(record.registeredAt)), cell(actions));
      tr.dataset.status = String(record.status);
      return tr;
    }),
  );
  $("mine").hidden = rows.length === 0;
  $("mine-empty").textContent = rows.length === 0 ? "No images registered from this account yet." : "";
}

/** Fetches this account's envelope from the gateway and opens it here; the image never leaves the tab. */
async function viewImage(cid) {
  state.retry = () => viewImage(cid);
  try {
    const key = await ensureKey();
    const envelope = await fetchEnvelope(cid);
    const { binding, image } = await openEnvelope(envelope, key.identity);
    const mine = binding.owner === state.wallet.account.toLowerCase() && binding.chain_id === state.config.chain.id;
    const digest = await sha256Hex(image);
    const type = binding.media_type;
    $("viewer-img").src = URL.createObjectURL(new Blob([image], { type }));
    $("viewer-caption").textContent =
      `${cid.slice(0, 12)}…${cid.slice(-6)}: ${type}, ${formatBytes(image.length)}, sha256 ${digest}` +
      (mine ? "" : ". Warning: this envelope is bound to another account or chain.");
    $("viewer-figure").dataset.sha256 = digest;
    const download = $("viewer-download");
    download.href = $("viewer-img").src;
    download.download = `histochain-${cid.slice(-10)}.${type.split("/")[1]}`;
    $("viewer-figure").hidden = false;
  } catch (err) {
    fail(err);
  }
}

async function fetchEnvelope(cid) {
  const limit = state.config.maxUploadBytes + ENVELOPE_OVERHEAD;
  let response;
  try {
    response = await fetch(`${state.config.ipfs.gatewayUrl.replace(/\/$/, "")}/ipfs/${cid}`);
  } catch (err) {
    throw new Error(`the IPFS gateway did not answer (${err.message})`);
  }
  if (!response.ok) throw new Error(`the IPFS gateway answered HTTP ${response.status} for ${cid}`);
  if (Number(response.headers.get("Content-Length") ?? 0) > limit) throw new Error("the gateway's answer is too large");
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > limit) throw new Error("the gateway's answer is too large");
  return bytes;
}

async function share(event) {
  event.preventDefault();
  state.retry = () => share(event);
  if (!state.wallet) return say("Connect a wallet first.");
  const viewer = $("viewer").value.trim();
  if (!isAddress(viewer, { strict: false })) {
    $("viewer").setAttribute("aria-invalid", "true");
    return say(`“${viewer}” is not an Ethereum address.`, { action: () => $("viewer").focus(), label: "Fix it" });
  }
  $("viewer").removeAttribute("aria-invalid");
  const all = $("share-scope").value === "all";
  if (!all && !state.shown) return say("Open an image under “My images” first, or share all your images.");
  const days = Number($("share-days").value);
  if (!Number.isInteger(days) || days < 1 || days > 365) return say("Share for 1 to 365 days.");
  const expiry = BigInt(Math.floor(Date.now() / 1000) + days * 86400);
  try {
    const grant = await state.api.grant(getAddress(viewer), all ? ALL_IMAGES : state.shown.imageId, expiry);
    const item = document.createElement("li");
    item.textContent = `${shortHex(grant.viewer)} may read ${all ? "all your images" : shortHex(grant.imageId)} until ${when(expiry)}. `;
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "Revoke";
    revoke.onclick = async () => {
      try {
        await state.api.revoke(grant.nonce);
        item.textContent = `Revoked: ${shortHex(grant.viewer)} may no longer read it.`;
      } catch (err) {
        fail(err);
      }
    };
    item.append(revoke);
    $("grants").append(item);
    say("Shared.", { tone: "info" });
  } catch (err) {
    fail(err);
  }
}

// ---- start

function wireDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
}

async function start() {
  try {
    state.config = await loadConfig();
  } catch (err) {
    say(`The page is not configured: ${err.message}`);
    return;
  }
  $("max-size").textContent = formatBytes(state.config.maxUploadBytes);
  $("ipfs-provider").value = state.config.ipfs.provider;
  if (state.config.ipfs.provider === "pinata") $("ipfs-provider").querySelector('[value="local"]').remove();
  $("ipfs-provider").addEventListener("change", describeToken);
  describeToken();
  $("ipfs-token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  $("ipfs-token").addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, $("ipfs-token").value.trim()));
  state.wallets = discoverWallets(renderWalletChoice);
  renderWalletChoice(state.wallets());
  $("connect").addEventListener("click", connect);
  $("switch-network").addEventListener("click", switchNetwork);
  $("message-close").addEventListener("click", clearMessage);
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("register").addEventListener("click", uploadAndRegister);
  $("read-result").addEventListener("click", readResult);
  $("see-why").addEventListener("click", seeWhy);
  $("cancel").addEventListener("click", cancelRequest);
  $("share").addEventListener("submit", share);
  $("unlock").addEventListener("click", unlock);
  $("save-key").addEventListener("click", saveKey);
  $("key-file").addEventListener("change", (e) => loadKey(e.target.files[0]));
  wireDrop();
  document.body.dataset.ready = "true";
}

start();
