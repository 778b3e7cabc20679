// The Result card in patient words: what the label means, the probability against the model's own
// threshold (both in %), how the model did on held-out patients (its card), and what "verified"
// proves (integrity, not correctness); beside it, that this is decision support, not a diagnosis.
import { $ } from "./dom.mjs";

const pct = (x) => `${(100 * x).toFixed(1)} %`;

const MEANINGS = {
  malignant:
    "The model found patterns in this image that it associates with malignant (cancerous) breast tissue. It is not a diagnosis of cancer: a pathologist has to review the tissue.",
  benign:
    "The model did not find the patterns it associates with malignant breast tissue in this image. It does not rule out disease: a pathologist's review decides.",
};

const RECORD_FIELDS = ["result-model", "result-oracle", "result-registered", "result-answered", "result-registration-tx", "result-tx", "result-hash"];

/** Empties the card for the image `cid` (nothing of a previous image or account stays). */
export function resetResult(cid) {
  $("result").hidden = cid === null;
  $("result-cid").textContent = cid ?? "";
  $("result-status").textContent = "";
  $("result-status").dataset.status = "";
  for (const id of ["result-body", "read-result", "result-why", "see-why", "heat-figure", "sr-figure", "card-details", "cancel"]) {
    $(id).hidden = true;
  }
  for (const id of ["result-label", "result-explanation", "result-probability-text", "result-calibration", "result-validation", "verified"]) {
    $(id).textContent = "";
  }
  $("result-probability").value = 0;
  $("verified").dataset.verified = "";
  $("heat-canvas").replaceChildren();
  $("sr-compare").replaceChildren();
  for (const id of RECORD_FIELDS) $(id).textContent = "—";
}

export function showStatus(text, status) {
  $("result-status").textContent = text;
  $("result-status").dataset.status = status;
}

/** How the model did on its held-out patients, from its card; "" when the card has no figures. */
function validationWords(model) {
  const patients = model?.card?.evaluation?.patient_level;
  if (!patients?.recall || !patients?.accuracy) return "";
  const count = model.card.evaluation.patients;
  const range = (m) => `${pct(m.low)} to ${pct(m.high)}`;
  return (
    `How this model did on ${count ?? "its"} held-out test patients: it recognised ${pct(patients.recall.value)} of malignant cases ` +
    `(95 % CI ${range(patients.recall)}) and was right for ${pct(patients.accuracy.value)} of patients overall ` +
    `(95 % CI ${range(patients.accuracy)}).`
  );
}

/** A classification document: label, meaning, probability and threshold, calibration, validation. */
export function renderClassification(doc, model) {
  const malignant = doc.probabilities.malignant ?? Math.max(...Object.values(doc.probabilities));
  $("result-label").textContent = doc.label;
  $("result-explanation").textContent = MEANINGS[doc.label] ?? `The model's label is “${doc.label}”.`;
  $("result-probability").value = malignant;
  $("result-probability-text").textContent =
    `${pct(malignant)}. The model answers “malignant” from ${pct(doc.threshold)} up.`;
  $("result-calibration").textContent = doc.calibration ? `About this probability: ${doc.calibration}.` : "";
  $("result-validation").textContent = validationWords(model);
}

/** Integrity, said as what it proves: the document is the one committed on chain. */
export function renderIntegrity(ok) {
  $("verified").dataset.verified = String(ok);
  $("verified").textContent = ok
    ? "✓ Integrity verified: this document matches the commitment on chain. (It proves the answer was not changed afterwards, not that it is right.)"
    : "✗ Integrity check failed: this document does NOT match the commitment on chain. Do not trust it.";
}
