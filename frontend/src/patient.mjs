// The patient's key: unlocked by a wallet signature of keyMessage (no gas, nothing sent), held in
// this tab's memory only, never in storage. Saved to a file on request, for wallets that do not
// sign deterministically (the same signature, hence the same key, on every device). A key belongs
// to the one address that signed for it, on one chain and registry, and is used for no other.
import { getAddress, recoverMessageAddress } from "viem";
import { EnvelopeError, keyMessage, patientIdentity, recipientOf } from "./envelope.mjs";

const IDENTITY_LINE = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;
const OWNER_LINE = /^# histochain key of (0x[0-9a-fA-F]{40})(?: on chain (\d+), registry (0x[0-9a-fA-F]{40}))?/;

export class PatientKey {
  constructor(identity, recipient, account, chainId, registry) {
    this.identity = identity;
    this.recipient = recipient;
    this.account = account;
    this.chainId = chainId;
    this.registry = registry;
  }

  static async of(identity, account, chainId, registry) {
    return new PatientKey(identity, await recipientOf(identity), account, chainId, registry);
  }

  /** Whether this key is the one of `account` on this chain and registry. */
  fits(account, chainId, registry) {
    return this.account === account && this.chainId === chainId && this.registry.toLowerCase() === registry.toLowerCase();
  }

  /** Asks the wallet to sign the key message as `account` (the caller has said why first), and
   *  keeps the key only when the signature recovers to `account`: a wallet that signed as another
   *  address (it switched meanwhile) gives no key at all. */
  static async unlock(wallet, account, chainId, registry) {
    const message = keyMessage(chainId, registry);
    const signature = await wallet.client.signMessage({ account, message });
    const signer = await recoverMessageAddress({ message, signature });
    if (signer !== account) {
      throw new EnvelopeError(`the wallet signed the key message as ${signer}, not as ${account}: no key was made; sign again as ${account}`);
    }
    return PatientKey.of(patientIdentity(signature), account, chainId, registry);
  }

  /** A key saved by `file()`, for `account`; refused when the file names another account or chain. */
  static async load(text, account, chainId, registry) {
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    const line = lines.find((l) => IDENTITY_LINE.test(l));
    if (!line) throw new EnvelopeError("this file holds no histochain key (a line AGE-SECRET-KEY-1…)");
    const owner = lines.map((l) => OWNER_LINE.exec(l)).find(Boolean);
    if (owner && getAddress(owner[1]) !== account) {
      throw new EnvelopeError(`this file holds the key of ${getAddress(owner[1])}, not of the connected account ${account}`);
    }
    if (owner?.[2] && (Number(owner[2]) !== chainId || owner[3].toLowerCase() !== registry.toLowerCase())) {
      throw new EnvelopeError(`this file holds a key for chain ${owner[2]}, registry ${owner[3]}, not for this page's`);
    }
    try {
      return await PatientKey.of(line, account, chainId, registry);
    } catch {
      throw new EnvelopeError("this file's key is not a valid age key");
    }
  }

  /** The key as a file to keep safe: whoever holds it can open this account's images. */
  file() {
    const text = [
      `# histochain key of ${this.account} on chain ${this.chainId}, registry ${this.registry}: it opens your encrypted images. Keep it private.`,
      `# public key: ${this.recipient}`,
      this.identity,
      "",
    ].join("\n");
    return new Blob([text], { type: "text/plain" });
  }
}
