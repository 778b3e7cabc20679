// The page's envelope code (frontend/src/envelope.mjs) and its shared constants, driven from the
// Python tests: `node tests/vectors/envelope.mjs <command>` reads one JSON object on stdin and
// writes one on stdout. Bytes travel as base64.
import { FAILURE_REASONS, NOT_TISSUE, Status, imageIdOf } from "../../frontend/src/registry.mjs";
import {
  EnvelopeError,
  keyMessage,
  keyOfRecipient,
  openEnvelope,
  parseBinding,
  patientIdentity,
  recipientOf,
  recipientOfKey,
  seal,
} from "../../frontend/src/envelope.mjs";

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const bytes = (text) => new Uint8Array(Buffer.from(text, "base64"));

const commands = {
  async seal({ image, binding, recipients }) {
    const { owner, chain_id: chainId, registry, media_type: mediaType, reply_to: replyTo } = binding;
    const made = await seal(bytes(image), { owner, chainId, registry, mediaType, replyTo }, recipients);
    return { envelope: b64(made) };
  },
  async open({ envelope, identity }) {
    const { binding, image } = await openEnvelope(bytes(envelope), identity);
    return { binding, image: b64(image) };
  },
  async parse({ line }) {
    return { binding: parseBinding(bytes(line)) };
  },
  async derive({ signature, chainId, registry }) {
    const identity = patientIdentity(signature);
    return { message: keyMessage(chainId, registry), identity, recipient: await recipientOf(identity) };
  },
  async keys({ keys, recipients }) {
    return { recipients: keys.map(recipientOfKey), keys: recipients.map(keyOfRecipient) };
  },
  async ids({ pairs }) {
    return { ids: pairs.map(([owner, cid]) => imageIdOf(owner, cid)) };
  },
  async constants() {
    return { status: Status, failureReasons: Object.keys(FAILURE_REASONS).map(Number), notTissue: NOT_TISSUE };
  },
};

const input = await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text ? JSON.parse(text) : {}));
});
try {
  process.stdout.write(JSON.stringify(await commands[process.argv[2]](input)));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: err instanceof EnvelopeError ? "EnvelopeError" : err.name, message: err.message }));
}
