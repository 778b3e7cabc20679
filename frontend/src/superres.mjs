// The page's side of the oracle's task kinds: the model list grouped by task (from /v1/models),
// a super-resolution model's input limits checked before anything is uploaded, and its result:
// the 4x image the oracle sealed to the owner, opened and checked here, beside the input under a
// slider, with a download.
import { openOutput } from "./verify.mjs";

export const CLASSIFICATION = "classification";
export const SUPER_RESOLUTION = "super-resolution";
const TASK_NAMES = { [CLASSIFICATION]: "Classification (benign or malignant)", [SUPER_RESOLUTION]: "Super-resolution (4× larger image)" };

/** <optgroup>s of <option>s, one group per task; a model the API does not describe goes under "Other". */
export function modelOptions(chainModels, described) {
  const groups = new Map();
  for (const model of chainModels) {
    const task = described.get(model.modelId.toLowerCase())?.task ?? "other";
    const option = new Option(model.isDefault ? `${model.name} (default)` : model.name, model.modelId);
    option.dataset.task = task;
    if (!groups.has(task)) groups.set(task, []);
    groups.get(task).push(option);
  }
  return [...groups].map(([task, options]) => {
    const group = document.createElement("optgroup");
    group.label = TASK_NAMES[task] ?? "Other";
    group.append(...options);
    return group;
  });
}

/** Why `model` would refuse an image of this size (its card's limits), or "" when it would not. */
export function sizeProblem(model, width, height) {
  const limits = model?.task === SUPER_RESOLUTION ? model.input : null;
  if (!limits) return "";
  if (width * height > limits.max_pixels || Math.max(width, height) > limits.max_side) {
    return (
      `${model.name} upscales images of at most ${limits.max_pixels.toLocaleString()} pixels and ` +
      `${limits.max_side} pixels a side; this one is ${width}×${height}. Choose a smaller image or crop it.`
    );
  }
  return "";
}

/** The output PNG the document names, opened with the owner's key and checked against it. */
export function openUpscaled(envelope, identity, owner, doc) {
  return openOutput(envelope, identity, owner, doc.outputs.image_sha256, "upscaled image");
}

/** The input (enlarged, its pixels kept square) under the output; the slider uncovers the output. */
export function compareSlider(inputUrl, outputUrl, width, height) {
  const frame = document.createElement("div");
  frame.className = "compare";
  frame.style.aspectRatio = `${width} / ${height}`;
  const output = new Image();
  output.src = outputUrl;
  output.alt = `The 4× image the oracle made, ${width}×${height}`;
  output.className = "compare-output";
  const input = new Image();
  input.src = inputUrl;
  input.alt = "Your image, enlarged without adding detail";
  input.className = "compare-input";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.value = "50";
  slider.setAttribute("aria-label", "Compare: your image on the left, the 4× image on the right");
  const move = () => {
    input.style.clipPath = `inset(0 ${100 - Number(slider.value)}% 0 0)`;
  };
  slider.addEventListener("input", move);
  move();
  frame.append(output, input);
  const wrap = document.createElement("div");
  wrap.append(frame, slider);
  return wrap;
}

/** What the document and the card say about an upscaled result, in words. */
export function describeUpscaled(doc, model) {
  const m = doc.measures;
  const lines = [
    `${m.input_width}×${m.input_height} → ${m.output_width}×${m.output_height} (${m.scale}×).`,
    `Downscaled again, the output matches your image to ${m.consistency_psnr_db.toFixed(1)} dB (Y-PSNR): the added detail keeps to what was there.`,
  ];
  const figures = model?.metrics;
  if (figures?.psnr_y !== undefined) {
    lines.push(
      `On held-out photographs this model scores ${figures.psnr_y.toFixed(2)} dB / SSIM ${figures.ssim_y.toFixed(3)}; ` +
        `bicubic enlarging scores ${figures.bicubic_psnr_y.toFixed(2)} dB / ${figures.bicubic_ssim_y.toFixed(3)}.`,
    );
  }
  lines.push("The added detail is the model's estimate, not a measurement: do not diagnose or measure from it.");
  return lines.join(" ");
}
