// The chosen model's terms. Each model has its own fee on chain (a 4× image costs more to make
// than a label): the page shows the fee of the model chosen, and a registration pays exactly that.
import { formatEther } from "viem";
import { state } from "./state.mjs";
import { $ } from "./ui/dom.mjs";

export const price = (fee) => (fee === 0n ? "free on this chain" : `${formatEther(fee)} ETH`);

/** Shows the chosen model's fee and what a failure gives back; keeps it as the fee to pay. */
export function showFee() {
  const terms = state.terms.get($("model").value.toLowerCase()) ?? null;
  state.fee = terms?.fee ?? null;
  if (!terms) {
    $("fee").textContent = "—";
    return;
  }
  const { fee, failureFee } = terms;
  const back = `if the oracle cannot read your image, ${formatEther(fee - failureFee)} ETH of it comes back`;
  $("fee").textContent = fee === 0n ? price(fee) : `${price(fee)}; ${back}`;
  for (const echo of document.querySelectorAll(".fee-echo")) echo.textContent = price(fee);
}

/** The chain's terms for `modelId` now, shown if they changed: true when they still match the fee
 *  the patient saw, so nobody pays a price they were not shown. */
export async function feeStillShown(modelId) {
  const terms = await state.registry.terms(modelId);
  if (terms.fee === state.fee) return true;
  state.terms.set(modelId.toLowerCase(), terms);
  showFee();
  return false;
}
