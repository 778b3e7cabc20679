// The page's entry: loads the configuration, finds wallets, reconnects the one this browser used
// last, and wires each control to its flow (account, register, results, mine, keys, sharing).
import { connect, disconnect, reconnect, switchNetwork } from "./account.mjs";
import { loadConfig } from "./config.mjs";
import { showFee } from "./fee.mjs";
import { loadKey, saveKey, unlock } from "./keys.mjs";
import { refreshMine } from "./mine.mjs";
import { chooseFile, describeToken, updateRegisterButton, uploadAndRegister } from "./register.mjs";
import { cancelRequest, readResult, seeWhy } from "./results.mjs";
import { listGrants, listShared, share } from "./sharing.mjs";
import { state } from "./state.mjs";
import { formatBytes } from "./upload.mjs";
import { discoverWallets } from "./wallet.mjs";
import { $ } from "./ui/dom.mjs";
import { renderWalletChoice, wireMenu } from "./ui/header.mjs";
import { say } from "./ui/messages.mjs";

const TOKEN_KEY = "histochain:ipfs-token";

function wireDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
}

function wireIpfs() {
  $("max-size").textContent = formatBytes(state.config.maxUploadBytes);
  $("ipfs-provider").value = state.config.ipfs.provider;
  if (state.config.ipfs.provider === "pinata") $("ipfs-provider").querySelector('[value="local"]').remove();
  $("ipfs-provider").addEventListener("change", describeToken);
  describeToken();
  $("ipfs-form").addEventListener("submit", (e) => e.preventDefault());
  $("ipfs-token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  $("ipfs-token").addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, $("ipfs-token").value.trim()));
}

/** Copies the address, and says so next to the wallet button. */
async function copyAddress() {
  try {
    await navigator.clipboard.writeText(state.wallet.account);
    say("wallet", `Address ${state.wallet.account} copied.`, { tone: "info", focus: false });
  } catch {
    say("wallet", `Your address: ${state.wallet.account}`, { tone: "info" });
  }
}

const signedIn = (action) => () => (state.wallet ? action() : say("share", "Connect a wallet first."));

async function start() {
  try {
    state.config = await loadConfig();
  } catch (err) {
    say("wallet", `The page is not configured: ${err.message}`);
    return;
  }
  wireIpfs();
  state.wallets = discoverWallets(renderWalletChoice);
  renderWalletChoice(state.wallets());
  wireMenu({ onDisconnect: disconnect, onCopied: copyAddress });
  $("connect").addEventListener("click", connect);
  $("switch-network").addEventListener("click", switchNetwork);
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("model").addEventListener("change", () => {
    showFee();
    updateRegisterButton();
  });
  $("register").addEventListener("click", uploadAndRegister);
  $("read-result").addEventListener("click", readResult);
  $("see-why").addEventListener("click", seeWhy);
  $("cancel").addEventListener("click", cancelRequest);
  $("share").addEventListener("submit", share);
  $("load-grants").addEventListener("click", signedIn(listGrants));
  $("load-shared").addEventListener("click", () => (state.wallet ? listShared() : say("shared", "Connect a wallet first.")));
  $("unlock").addEventListener("click", () => unlock(refreshMine));
  $("save-key").addEventListener("click", saveKey);
  $("key-file").addEventListener("change", (e) => loadKey(e.target.files[0], refreshMine));
  wireDrop();
  await reconnect(state.wallets());
  document.body.dataset.ready = "true";
}

start();
