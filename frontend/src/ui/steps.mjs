// The registration's progress list: each step todo, active, done or failed, with a detail.

export function step(name, status, detail) {
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

/** Every step from `from` on back to todo. */
export function resetSteps(from = "check") {
  let reset = false;
  for (const item of document.querySelectorAll("#steps li")) {
    reset ||= item.dataset.step === from;
    if (reset) step(item.dataset.step, "todo");
  }
}

/** Marks the step in progress (if any) failed: the one the error came from. */
export function failActiveStep() {
  const active = document.querySelector('#steps [data-state="active"]');
  if (active) step(active.dataset.step, "failed");
}
