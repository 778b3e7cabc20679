// One place that turns whatever went wrong into a sentence a patient can act on.
import { BaseError, ContractFunctionRevertedError, InsufficientFundsError, UserRejectedRequestError } from "viem";
import { ApiError } from "./api.mjs";
import { EnvelopeError } from "./envelope.mjs";
import { UploadError } from "./upload.mjs";

const REVERTS = {
  AlreadyRegistered: "You have already registered this encrypted image. Find it under “My images”.",
  IncorrectFee: "The fee changed while you were signing. Check the new fee and try again.",
  UnknownModel: "That model is not registered on chain. Pick another one.",
  ModelNotActive: "That model has been retired. Pick another one.",
  NoDefaultModel: "No default model is set on chain. Pick a model explicitly.",
  InvalidCid: "The registry refused this CID.",
  RequestNotTimedOut: "The request has not timed out yet; the oracle still has time to answer.",
  NotImageOwner: "Only the account that registered this image can cancel it.",
  ImageNotPending: "This request is no longer waiting for the oracle.",
};

const USER_REJECTED = 4001;

/** Grants the API refuses whatever the retry (oracle/api/auth.py): said with what can help instead. */
const REFUSED_SHARES = {
  not_registered_by_owner: "Nothing was shared: register an image first. The oracle keeps a share only for images you registered with it.",
  too_many_grants: "Nothing was shared: you have as many active shares as there may be. Revoke one first.",
};

/** {message, kind, rejected} where kind names the way on: "retry", "network", "funds", "upload",
 *  "api", "forbidden" (no retry can help), "envelope"; `rejected` when the user turned the
 *  wallet's request down. */
export function explain(err) {
  if (err instanceof UploadError) return { kind: "upload", message: err.message };
  if (err instanceof EnvelopeError) return { kind: "envelope", message: `This image cannot be opened here: ${err.message}.` };
  if (err instanceof ApiError) {
    if (err.code === "forbidden") {
      return { kind: "forbidden", message: "This account may not read that result: its owner has not shared it with you, or has revoked it." };
    }
    const hopeless = REFUSED_SHARES[err.code];
    if (hopeless) return { kind: "forbidden", message: hopeless };
    return { kind: "api", message: `The query API refused: ${err.message}` };
  }
  const rejected = err?.code === USER_REJECTED || (err instanceof BaseError && err.walk((e) => e instanceof UserRejectedRequestError || e?.code === USER_REJECTED));
  if (rejected) {
    return { kind: "retry", rejected: true, message: "You rejected the request in your wallet. Nothing was sent; you can try again." };
  }
  if (err instanceof BaseError) {
    if (err.walk((e) => e instanceof InsufficientFundsError)) {
      return { kind: "funds", message: "This account cannot pay for the transaction (fee plus gas). Add funds or pick another account." };
    }
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert?.data?.errorName) {
      return { kind: "revert", message: REVERTS[revert.data.errorName] ?? `The registry refused: ${revert.data.errorName}` };
    }
    if (err.walk((e) => e?.name === "ChainMismatchError")) {
      return { kind: "network", message: "Your wallet is on another network. Switch networks and try again." };
    }
    return { kind: "retry", message: err.shortMessage ?? err.message };
  }
  return { kind: "retry", message: err?.message ?? String(err) };
}
