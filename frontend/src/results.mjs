// The Result card's flow: follow one image's request until it ends, then read the document (after
// sign-in), check it against the chain, and open what the oracle sealed to the owner.
import { formatEther } from "viem";
import { imageBlob } from "./envelope.mjs";
import { openHeatMap, overlay, refusalWords, renderCard } from "./explain.mjs";
import { fetchEnvelope, openFromGateway } from "./gateway.mjs";
import { currentKey, ensureKey } from "./keys.mjs";
import { refreshMine, showLabel } from "./mine.mjs";
import { FAILURE_REASONS, NOT_TISSUE, Status } from "./registry.mjs";
import { Moved, pause, state, within } from "./state.mjs";
import { SUPER_RESOLUTION, compareSlider, describeUpscaled, openUpscaled } from "./superres.mjs";
import { matchesChain } from "./verify.mjs";
import { $, txLink, when } from "./ui/dom.mjs";
import { clear, fail, say, toast } from "./ui/messages.mjs";
import { renderClassification, renderIntegrity, resetResult, showStatus } from "./ui/result.mjs";
import { step } from "./ui/steps.mjs";

const POLL_MS = 1000;

/** Thrown when the image under Result changed (another image, account or chain) during a wait:
 *  what was being fetched for the old one is dropped, never drawn into the new card. */
class Stale extends Error {}

function live(shown) {
  within(shown.era);
  if (state.shown !== shown) throw new Stale();
}

/** Runs `work` and says its failure in the card, unless the card moved on (another image,
 *  account or chain): then it ends silently. */
async function guarded(work, retry) {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof Stale || err instanceof Moved)) fail("result", err, { retry });
  }
}

/** Shows one image and follows it until its request ends (or another image is shown). `fromFlow`:
 *  it is the image just registered, so the progress steps follow it too. `era`: the account and
 *  chain the caller began under; nothing is shown once they changed. */
export function show(imageId, cid, owner, { fromFlow = false, era = state.era } = {}) {
  if (era !== state.era) return null;
  clear("result");
  const shown = { imageId, cid, owner, fromFlow, era };
  state.shown = shown;
  return guarded(() => follow(shown), () => show(imageId, cid, owner, { fromFlow }));
}

const progress = (shown, name, status) => shown.fromFlow && step(name, status);

async function follow(shown) {
  resetResult(shown.cid);
  if (!shown.fromFlow) $("result-title").focus({ preventScroll: true });
  $("result").scrollIntoView({ block: "start", behavior: "smooth" });
  const explorer = state.config.chain.explorer;
  const registration = await state.registry.registrationLog(shown.imageId);
  live(shown);
  if (registration) $("result-registration-tx").replaceChildren(txLink(registration.transactionHash, explorer));
  for (;;) {
    const record = await state.registry.image(shown.imageId);
    live(shown);
    $("result-registered").textContent = when(record.registeredAt);
    $("result-model").textContent = state.registry.names.get(record.modelId.toLowerCase()) ?? record.modelId;
    if (record.status !== Status.Pending) return settled(shown, record);
    progress(shown, "oracle", "active");
    const now = await state.registry.latestTimestamp();
    live(shown);
    if (now > record.deadline) {
      showStatus("The oracle did not answer in time. You can cancel the request; the fee comes back to you.", "timed-out");
      $("cancel").hidden = record.owner !== state.wallet.account;
    } else {
      showStatus("Waiting for the oracle: it usually answers within a minute.", "pending");
    }
    await pause(POLL_MS, shown.era);
    live(shown);
  }
}

async function settled(shown, record) {
  const mine = record.owner === state.wallet.account;
  if (mine) await refreshMine();
  live(shown);
  const upscaling = state.described.get(record.modelId.toLowerCase())?.task === SUPER_RESOLUTION;
  const verb = upscaling ? "upscale" : "classify";
  if (record.status === Status.Classified) {
    progress(shown, "oracle", "done");
    progress(shown, "result", "done");
    showStatus(
      upscaling
        ? "Done: the 4× image is ready, and its result's hash is committed on chain."
        : "The oracle has answered, and its answer is committed on chain. Sign in to read it: only you, and whom you allow, can.",
      "classified",
    );
    $("result-hash").textContent = record.resultHash;
    const log = await state.registry.resultLog(shown.imageId);
    live(shown);
    if (log) {
      const answered = await state.registry.blockTime(log.blockNumber);
      live(shown);
      $("result-tx").replaceChildren(txLink(log.transactionHash, state.config.chain.explorer));
      $("result-answered").textContent = when(answered);
    }
    $("read-result").hidden = false;
    if (state.api.token()) await read(shown);
  } else if (record.status === Status.Failed) {
    progress(shown, "oracle", "failed");
    const reason = await state.registry.failureReason(shown.imageId);
    live(shown);
    const reasonText = FAILURE_REASONS[reason] ?? `reason ${reason}`;
    const refund = await refundWords(shown, record);
    showStatus(`The oracle could not ${verb} this image: ${reasonText}.${refund}`, "failed");
    if (mine) {
      say("result", `The oracle could not ${verb} this image: ${reasonText}.`, { action: () => $("file").click(), label: "Choose another image" });
    }
    if (reason === NOT_TISSUE && mine) {
      $("see-why").hidden = false;
      if (state.api.token()) await why(shown);
    }
  } else if (record.status === Status.Cancelled) {
    showStatus(`This request was cancelled.${await refundWords(shown, record)}`, "cancelled");
  }
}

/** What came back of the fee, from the chain's refund events (a failure keeps the failure fee). */
async function refundWords(shown, record) {
  if (record.feePaid === 0n) return "";
  const { paid, held } = await state.registry.refundOf(shown.imageId);
  live(shown);
  const fee = `${formatEther(record.feePaid)} ETH`;
  const kept = record.feePaid - paid - held;
  const back = held > 0n ? `${formatEther(held)} ETH is held for you to claim` : `${formatEther(paid)} ETH came back to you`;
  if (paid + held === 0n) return ` The fee (${fee}) was kept.`;
  if (kept === 0n) return held > 0n ? ` The fee (${fee}) is held for you to claim.` : ` The fee (${fee}) came back to you.`;
  return ` Of the fee (${fee}), ${back}; ${formatEther(kept)} ETH was kept as the failure fee.`;
}

export function readResult() {
  const shown = state.shown;
  if (!shown) return null;
  return guarded(() => read(shown), readResult);
}

async function read(shown) {
  const [served, record] = await Promise.all([state.api.document(shown.imageId), state.registry.image(shown.imageId)]);
  live(shown);
  const doc = served.document;
  const upscaled = doc.task === SUPER_RESOLUTION;
  const model = state.described.get(doc.model_id.toLowerCase());
  const owner = shown.owner === state.wallet.account;
  $("result-body").hidden = false;
  $("classification-body").hidden = upscaled;
  if (!upscaled) renderClassification(doc, model);
  if (!upscaled && owner) showLabel(shown.imageId, doc.label);
  $("result-model").textContent = doc.model_name;
  $("result-oracle").textContent = doc.oracle;
  const ok = matchesChain(doc, record.resultHash);
  renderIntegrity(ok);
  $("read-result").hidden = true;
  if (model?.card) {
    renderCard($("model-card"), model.card);
    $("card-details").hidden = false;
  }
  const hadKey = currentKey() !== null;
  if (ok && owner && upscaled) await showUpscaled(doc, shown);
  if (ok && owner && !upscaled && doc.outputs?.grad_cam) await showHeatMap(doc, shown);
  if (!hadKey && state.key) await refreshMine(); // the key was unlocked just now: thumbnails
}

/** The input gate's words for a NOT_TISSUE refusal: only the owner may read them (sign-in). */
export function seeWhy() {
  const shown = state.shown;
  if (!shown) return null;
  return guarded(() => why(shown), seeWhy);
}

async function why(shown) {
  const words = await refusalWords(state.api, shown.imageId);
  live(shown);
  $("result-why").textContent = words ? `Why: ${words}` : "The oracle gave no further reason.";
  $("result-why").hidden = false;
  $("see-why").hidden = true;
}

/** The owner's image and an output the oracle sealed to the owner (`outputCid`), both opened here
 *  with the owner's key, for the image still shown. */
async function openBoth(shown, outputCid) {
  live(shown);
  const key = await ensureKey(shown.era);
  live(shown);
  const [picture, sealed] = await Promise.all([
    openFromGateway(state.config, shown.cid, key.identity, shown.owner),
    fetchEnvelope(state.config, outputCid),
  ]);
  live(shown);
  return { key, picture, sealed };
}

/** The owner's image under the oracle's heat map. */
async function showHeatMap(doc, shown) {
  const { key, picture, sealed } = await openBoth(shown, doc.outputs.grad_cam);
  const heat = await openHeatMap(sealed, key.identity, shown.owner, doc.outputs.grad_cam_sha256);
  const canvas = await overlay(imageBlob(picture), heat);
  live(shown);
  $("heat-canvas").replaceChildren(canvas);
  $("heat-figure").dataset.sha256 = doc.outputs.grad_cam_sha256;
  $("heat-figure").hidden = false;
}

/** The 4x image beside the input under a slider, with a download. */
async function showUpscaled(doc, shown) {
  const { key, picture, sealed } = await openBoth(shown, doc.outputs.image);
  const output = await openUpscaled(sealed, key.identity, shown.owner, doc);
  live(shown);
  const inputUrl = URL.createObjectURL(imageBlob(picture));
  const outputUrl = URL.createObjectURL(new Blob([output], { type: "image/png" }));
  const { output_width: width, output_height: height } = doc.measures;
  $("sr-compare").replaceChildren(compareSlider(inputUrl, outputUrl, width, height));
  $("sr-caption").textContent = describeUpscaled(doc, state.described.get(doc.model_id.toLowerCase()));
  $("sr-download").href = outputUrl;
  $("sr-download").download = `histochain-${shown.cid.slice(-10)}-x4.png`;
  $("sr-figure").dataset.sha256 = doc.outputs.image_sha256;
  $("sr-figure").hidden = false;
}

export function cancelRequest() {
  const shown = state.shown;
  if (!shown) return null;
  return guarded(
    async () => {
      const hash = await state.registry.cancel(state.wallet.account, shown.imageId);
      live(shown);
      toast("Cancellation sent.", txLink(hash, state.config.chain.explorer));
      await state.registry.receipt(hash);
      live(shown);
      say("result", "Cancelled; the fee was refunded.", { tone: "info" });
      await show(shown.imageId, shown.cid, shown.owner, { era: shown.era });
    },
    cancelRequest,
  );
}
