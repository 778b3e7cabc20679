// The wallet button at the top right: "Connect wallet", or the wallet's EIP-6963 name and icon with
// the shortened address and a menu (copy address, disconnect), and a network pill.
import { safeIcon } from "../wallet.mjs";
import { $, shortHex } from "./dom.mjs";

export function renderWalletChoice(wallets) {
  const select = $("wallet-choice");
  select.replaceChildren(...wallets.map((w) => new Option(w.info.name, w.info.uuid)));
  select.hidden = $("wallet-choice-label").hidden = wallets.length < 2 || !$("account-menu").hidden;
}

export function showDisconnected() {
  $("connect").hidden = false;
  $("account-menu").hidden = true;
  $("network").hidden = true;
  closeMenu();
}

export function showConnected(wallet) {
  $("connect").hidden = true;
  $("wallet-choice").hidden = $("wallet-choice-label").hidden = true;
  $("account-menu").hidden = false;
  $("wallet-name").textContent = wallet.info.name;
  const icon = safeIcon(wallet.info.icon);
  $("wallet-icon").hidden = !icon;
  if (icon) $("wallet-icon").src = icon;
  $("account").textContent = shortHex(wallet.account);
  $("account-button").title = wallet.account;
}

/** The pill: the chain's name, or "Wrong network" with the banner that offers the switch. */
export function showNetwork(right, chainId, chain) {
  $("network").hidden = false;
  $("network").dataset.right = String(right);
  $("network").textContent = right ? chain.name : "Wrong network";
  $("network-banner").hidden = right;
  $("network-text").textContent = right
    ? ""
    : `Your wallet is on chain ${chainId}; histochain runs on ${chain.name} (chain ${chain.id}). Switch to use it.`;
}

function closeMenu() {
  $("account-options").hidden = true;
  $("account-button").setAttribute("aria-expanded", "false");
}

/** The menu opens on its button, closes on Escape, a click elsewhere or a choice. */
export function wireMenu({ onDisconnect, onCopied }) {
  $("account-button").addEventListener("click", () => {
    const open = $("account-options").hidden;
    $("account-options").hidden = !open;
    $("account-button").setAttribute("aria-expanded", String(open));
    if (open) $("copy-address").focus();
  });
  $("account-menu").addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || $("account-options").hidden) return;
    closeMenu();
    $("account-button").focus();
  });
  document.addEventListener("click", (event) => {
    if (!$("account-menu").contains(event.target)) closeMenu();
  });
  $("copy-address").addEventListener("click", async () => {
    closeMenu();
    await onCopied();
  });
  $("disconnect").addEventListener("click", () => {
    closeMenu();
    onDisconnect();
  });
}
