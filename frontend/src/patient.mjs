// The patient's key: unlocked by a wallet signature of keyMessage (no gas, nothing sent), held in
// this tab's memory only, never in storage. Saved to a file on request, for wallets that do not
// sign deterministically (the same signature, hence the same key, on every device).
import { EnvelopeError, keyMessage, patientIdentity, recipientOf } from "./envelope.mjs";

const IDENTITY_LINE = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;

export class PatientKey {
  constructor(identity, recipient, account) {
    this.identity = identity;
    this.recipient = recipient;
    this.account = account;
  }

  static async of(identity, account) {
    return new PatientKey(identity, await recipientOf(identity), account);
  }

  /** Asks the wallet to sign the key message; the caller has said why first. */
  static async unlock(wallet, chainId, registry) {
    const message = keyMessage(chainId, registry);
    const signature = await wallet.client.signMessage({ account: wallet.account, message });
    return PatientKey.of(patientIdentity(signature), wallet.account);
  }

  /** A key saved by `file()`, for `account`. */
  static async load(text, account) {
    const line = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => IDENTITY_LINE.test(l));
    if (!line) throw new EnvelopeError("this file holds no histochain key (a line AGE-SECRET-KEY-1…)");
    try {
      return await PatientKey.of(line, account);
    } catch {
      throw new EnvelopeError("this file's key is not a valid age key");
    }
  }

  /** The key as a file to keep safe: whoever holds it can open this account's images. */
  file() {
    const text = [
      `# histochain key of ${this.account}: it opens your encrypted images. Keep it private.`,
      `# public key: ${this.recipient}`,
      this.identity,
      "",
    ].join("\n");
    return new Blob([text], { type: "text/plain" });
  }
}
