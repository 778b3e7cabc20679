// The ImageRegistry as the page uses it: reads through the wallet's provider, writes signed by
// the wallet. Status numbers and failure reasons mirror the contract's enums.
import { encodePacked, keccak256, zeroHash } from "viem";

export const Status = Object.freeze({ None: 0, Pending: 1, Classified: 2, Failed: 3, Cancelled: 4 });
export const STATUS_NAMES = ["not registered", "waiting for the oracle", "classified", "failed", "cancelled"];

export const FAILURE_REASONS = {
  1: "the oracle could not fetch the image from IPFS",
  2: "the bytes served for this CID do not match it",
  3: "the file is not a supported image",
  4: "the image is too large (bytes or pixels)",
  5: "the model failed on this image",
  6: "the CID is not one the oracle can verify",
  7: "the model asked for is not available to the oracle",
  8: "the image was not encrypted to the oracle's key, or could not be decrypted",
  9: "the encrypted image is bound to another account, chain or registry",
  10: "the image does not look like a tissue slide",
};

/** The id `owner` registers `cid` under: a record belongs to its registrant. */
export const NOT_TISSUE = 10; // the input gate refused it: the owner may read why (API)

export const imageIdOf = (owner, cid) => keccak256(encodePacked(["address", "string"], [owner, cid]));

export class Registry {
  constructor(wallet, config) {
    this.wallet = wallet;
    this.contract = { address: config.registry.address, abi: config.registry.abi };
    this.fromBlock = config.registry.block;
    this.names = new Map(config.models.map((m) => [m.modelId.toLowerCase(), m.name]));
  }

  read(functionName, args = []) {
    return this.wallet.public.readContract({ ...this.contract, functionName, args });
  }

  /** Active models (indices are 1-based), the default first, each with its terms; names come from
   *  the deployment record. */
  async models() {
    const [count, preferred] = await Promise.all([this.read("modelCount"), this.read("defaultModel")]);
    const models = [];
    for (let i = 1; i <= count; i++) {
      const modelId = await this.read("modelAt", [i]);
      const [, active] = await this.read("getModel", [modelId]);
      if (!active) continue;
      const name = this.names.get(modelId.toLowerCase()) ?? `${modelId.slice(0, 10)}…`;
      models.push({ modelId, name, isDefault: modelId === preferred, terms: await this.terms(modelId) });
    }
    return models.sort((a, b) => Number(b.isDefault) - Number(a.isDefault));
  }

  /** A model's fee and what a failure keeps of it (the rest comes back); zeroHash: the default's. */
  async terms(modelId) {
    const [fee, failureFee] = await this.read("modelFee", [modelId]);
    return { fee, failureFee };
  }

  /** The X25519 keys the oracles published, as bytes32 hex: what an image is encrypted to. */
  async encryptionKeys() {
    const [, keys] = await this.read("encryptionKeys");
    return keys;
  }

  image(imageId) {
    return this.read("getImage", [imageId]);
  }

  /** Simulates first, so a revert (already registered, wrong fee, retired model) is named before
   *  the wallet asks; the wallet then signs exactly the simulated request, from `account` (the
   *  one the flow began with, never whichever the wallet shows by then). */
  async write(account, functionName, args, value) {
    const { request } = await this.wallet.public.simulateContract({
      ...this.contract,
      functionName,
      args,
      value,
      account,
    });
    return this.wallet.client.writeContract(request);
  }

  register(account, cid, modelId, fee) {
    return this.write(account, "registerImage", [cid, modelId ?? zeroHash], fee);
  }

  cancel(account, imageId) {
    return this.write(account, "cancel", [imageId]);
  }

  receipt(hash) {
    return this.wallet.public.waitForTransactionReceipt({ hash, pollingInterval: 500 });
  }

  async events(eventName, args) {
    return this.wallet.public.getContractEvents({ ...this.contract, eventName, args, fromBlock: this.fromBlock });
  }

  async failureReason(imageId) {
    const [log] = await this.events("ClassificationFailed", { imageId });
    return log ? Number(log.args.reason) : null;
  }

  /** What came back to the owner of a failed or cancelled request, from the chain's events: paid
   *  out at once (`Refunded`), or held for the owner to claim (`RefundDeferred`). */
  async refundOf(imageId) {
    const [paid, held] = await Promise.all([this.events("Refunded", { imageId }), this.events("RefundDeferred", { imageId })]);
    const sum = (logs) => logs.reduce((total, log) => total + log.args.amount, 0n);
    return { paid: sum(paid), held: sum(held) };
  }

  async resultLog(imageId) {
    const [log] = await this.events("ResultPosted", { imageId });
    return log ?? null;
  }

  async registrationLog(imageId) {
    const [log] = await this.events("ImageRegistered", { imageId });
    return log ?? null;
  }

  /** Every image the owner registered, newest first, with its current record. */
  async imagesOf(owner) {
    const logs = await this.events("ImageRegistered", { owner });
    const rows = await Promise.all(
      logs.map(async (log) => ({ cid: log.args.cid, imageId: log.args.imageId, record: await this.image(log.args.imageId) })),
    );
    return rows.reverse();
  }

  async latestTimestamp() {
    return (await this.wallet.public.getBlock()).timestamp;
  }

  async blockTime(blockNumber) {
    return (await this.wallet.public.getBlock({ blockNumber })).timestamp;
  }
}
