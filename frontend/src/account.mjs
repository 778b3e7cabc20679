// The connected account: connect (or reconnect silently on load), the network check, the chain's
// data for this account, and a clean slate whenever the account or the chain changes.
import { getAddress } from "viem";
import { Api } from "./api.mjs";
import { showFee } from "./fee.mjs";
import { showKey } from "./keys.mjs";
import { refreshMine } from "./mine.mjs";
import { Registry } from "./registry.mjs";
import { updateRegisterButton } from "./register.mjs";
import { listGrants, listShared, resetSharing } from "./sharing.mjs";
import { Moved, forgetAccount, state, stillCurrent, within } from "./state.mjs";
import { modelOptions } from "./superres.mjs";
import { Wallet, rememberedWallet } from "./wallet.mjs";
import { $, shortHex } from "./ui/dom.mjs";
import { renderWalletChoice, showConnected, showDisconnected, showNetwork } from "./ui/header.mjs";
import { clearAll, fail, say } from "./ui/messages.mjs";
import { resetResult } from "./ui/result.mjs";
import { resetSteps } from "./ui/steps.mjs";

/** Clears everything one account made visible (result, images, grants, key, messages, toasts) and
 *  ends its era: each flow it began stops at its next step, with a note (messages.dropped). */
function clearScreen() {
  forgetAccount();
  clearAll();
  $("toasts").replaceChildren();
  resetResult(null);
  resetSharing();
  resetSteps(state.file ? "key" : "check");
  $("mine").replaceChildren();
  $("mine-empty").textContent = "Connect a wallet to see the images it registered.";
  $("viewer-figure").hidden = true;
  $("local-cid").textContent = "—";
  showKey();
  updateRegisterButton();
}

function modelsUnavailable(text) {
  $("model").replaceChildren(new Option(text));
  $("model").disabled = true;
  state.terms = new Map();
  showFee(); // "—": no fee to pay until the models are read
}

export async function connect() {
  const wallets = state.wallets();
  if (wallets.length === 0) {
    say("wallet", "No wallet found. Install MetaMask (or another EIP-6963 wallet) and reload this page.");
    return;
  }
  const chosen = wallets.find((w) => w.info.uuid === $("wallet-choice").value) ?? wallets[0];
  const wallet = new Wallet(chosen, state.config.chain);
  try {
    await wallet.connect();
  } catch (err) {
    fail("wallet", err, { retry: connect });
    return;
  }
  await use(wallet, { focus: true });
}

/** On load: the wallet this browser used last, if it still lets this site see an account. */
export async function reconnect(wallets) {
  const remembered = rememberedWallet();
  const chosen = wallets.find((w) => (w.info.rdns ?? w.info.uuid) === remembered);
  if (!chosen || state.wallet) return;
  const wallet = new Wallet(chosen, state.config.chain);
  try {
    if (await wallet.reconnect()) await use(wallet);
  } catch (err) {
    console.warn("silent reconnect failed", err);
  }
}

async function use(wallet, { focus = false } = {}) {
  state.wallet?.off();
  state.wallet = wallet;
  state.registry = new Registry(wallet, state.config);
  state.api = new Api(state.config.apiUrl, wallet, state.config.registry.address);
  wallet.on("chainChanged", () => {
    clearScreen();
    checkNetwork();
  });
  wallet.on("accountsChanged", (accounts) => {
    if (!accounts?.length) return disconnected();
    const account = getAddress(accounts[0]);
    if (account === wallet.account) return; // e.g. the wallet locked and unlocked: nothing changed
    clearScreen();
    wallet.account = account;
    showConnected(wallet);
    say("wallet", `Switched to account ${shortHex(account)}: its own images and shares are shown now.`, { tone: "info", focus: false });
    checkNetwork();
  });
  clearAll();
  showConnected(wallet);
  if (focus) $("account-button").focus();
  await checkNetwork();
}

export async function disconnect() {
  const wallet = state.wallet;
  if (!wallet) return;
  await wallet.disconnect();
  disconnected();
  $("connect").focus();
}

function disconnected() {
  state.wallet?.off();
  state.wallet = state.registry = state.api = null;
  state.rightChain = false;
  clearScreen();
  showDisconnected();
  renderWalletChoice(state.wallets());
  modelsUnavailable("Connect a wallet to list models");
  updateRegisterButton();
}

/** The wallet's chain; an answer that comes after another change is dropped (a newer check runs). */
async function checkNetwork() {
  const { wallet, config, era } = state;
  const id = await wallet.chainId();
  if (!stillCurrent(era)) return;
  state.rightChain = id === config.chain.id;
  showNetwork(state.rightChain, id, config.chain);
  updateRegisterButton();
  if (state.rightChain) await loadChainData();
  else modelsUnavailable(`Switch to ${config.chain.name} to list models`);
}

export async function switchNetwork() {
  try {
    await state.wallet.switchChain();
    await checkNetwork();
  } catch (err) {
    fail("wallet", err, { retry: switchNetwork });
  }
}

async function loadChainData() {
  const era = state.era;
  try {
    const [models, described] = await Promise.all([
      state.registry.models(),
      state.api.models().then((answer) => answer.models, () => []), // tasks and cards; the chain has the rest
    ]);
    within(era);
    state.described = new Map(described.map((m) => [m.model_id.toLowerCase(), m]));
    state.terms = new Map(models.map((m) => [m.modelId.toLowerCase(), m.terms]));
    $("model").replaceChildren(...modelOptions(models, state.described));
    $("model").disabled = models.length === 0;
    showFee();
    if (models.length === 0) say("register", "No active model is registered on chain yet.", { focus: false });
    await refreshMine();
    if (state.api.token()) await Promise.all([listGrants(), listShared()]); // still signed in (a reload)
  } catch (err) {
    if (stillCurrent(era) && !(err instanceof Moved)) fail("wallet", err, { retry: loadChainData });
  }
  updateRegisterButton();
}

