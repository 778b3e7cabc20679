// What the page shows beside a result: where the model looked (the Grad-CAM map the oracle sealed
// to the owner's key, oracle/ml/gradcam.py), why an image was refused as not tissue (the input
// gate's words, from the query API), and the model card (/v1/models).
import { ApiError } from "./api.mjs";
import { openOutput } from "./verify.mjs";

/** The map's PNG from its envelope, checked against the signed document (verify.mjs). */
export function openHeatMap(envelope, identity, owner, expectedSha256) {
  return openOutput(envelope, identity, owner, expectedSha256, "heat map");
}

/** A canvas: the image, and over it the map from transparent (no evidence) through yellow to red. */
export async function overlay(imageBlob, heatPng, opacity = 0.6) {
  const [picture, heat] = await Promise.all([
    createImageBitmap(imageBlob),
    createImageBitmap(new Blob([heatPng], { type: "image/png" })),
  ]);
  const canvas = document.createElement("canvas");
  canvas.width = picture.width;
  canvas.height = picture.height;
  const context = canvas.getContext("2d");
  context.drawImage(picture, 0, 0);
  const layer = new OffscreenCanvas(picture.width, picture.height);
  const layerContext = layer.getContext("2d");
  layerContext.drawImage(heat, 0, 0, picture.width, picture.height);
  const pixels = layerContext.getImageData(0, 0, picture.width, picture.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    const v = data[i] / 255;
    data[i] = 255;
    data[i + 1] = Math.round(255 * (1 - v));
    data[i + 2] = 0;
    data[i + 3] = Math.round(255 * opacity * v);
  }
  layerContext.putImageData(pixels, 0, 0);
  context.drawImage(layer, 0, 0);
  return canvas;
}

/** The input gate's explanation of a NOT_TISSUE refusal, as the API gives it to the owner. */
export async function refusalWords(api, imageId) {
  try {
    await api.document(imageId);
  } catch (err) {
    if (err instanceof ApiError && err.code === "classification_failed") {
      return err.message.replace(/^the oracle could not classify this image \([a-z_]+\): /, "");
    }
    throw err;
  }
  return "";
}

const percent = (x) => `${(100 * x).toFixed(1)} %`;

function interval(metric) {
  if (!metric) return "not measured";
  return `${metric.value.toFixed(3)} (95 % CI ${metric.low.toFixed(3)} to ${metric.high.toFixed(3)})`;
}

function item(list, term, text) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = text;
  list.append(dt, dd);
}

/** The model card, in words, into `element` (a <dl>); `card` as /v1/models serves it. */
export function renderCard(element, card) {
  element.replaceChildren();
  item(element, "Intended use", card.intended_use);
  item(element, "Not for", card.out_of_scope.join("; "));
  item(element, "Trained on", card.provenance);
  const sr = card.metrics;
  if (sr?.psnr_y !== undefined) {
    const images = card.data?.held_out?.length ?? "the";
    item(
      element,
      `Held-out photographs (${images})`,
      `Y-PSNR ${sr.psnr_y.toFixed(2)} dB, SSIM ${sr.ssim_y.toFixed(3)}; bicubic ${sr.bicubic_psnr_y.toFixed(2)} dB, ${sr.bicubic_ssim_y.toFixed(3)}`,
    );
    return;
  }
  const patients = card.evaluation?.patient_level;
  if (patients) {
    item(
      element,
      `Test patients (${card.evaluation.patients})`,
      `ROC-AUC ${interval(patients.roc_auc)}; accuracy ${interval(patients.accuracy)}; sensitivity ${interval(patients.recall)}`,
    );
  }
  item(element, "Probabilities", card.calibration ? card.calibration.summary : "not calibrated");
  const refused = card.gate?.refused?.test;
  const features = card.feature_check;
  item(
    element,
    "Refuses",
    "what does not look like H&E tissue (size, flat colours, too little tissue, other stains, blur)" +
      (features ? ", and images unlike the training images in the model's own features" : "") +
      (refused === undefined ? "" : `; of the test patients' tissue, the gate refused ${percent(refused)}`) +
      (features?.refused?.test === undefined ? "" : `, the feature check ${percent(features.refused.test)}`),
  );
}
