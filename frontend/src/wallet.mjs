// Wallet discovery (EIP-6963, with window.ethereum as the fallback), connection and network
// checks. Everything the page signs goes through the provider the user picked.
import { createPublicClient, createWalletClient, custom, getAddress, numberToHex } from "viem";

/** Providers announced so far ({info, provider}), updated as wallets announce themselves. */
export function discoverWallets(onChange) {
  const found = new Map();
  window.addEventListener("eip6963:announceProvider", (event) => {
    const { info, provider } = event.detail ?? {};
    if (!info?.uuid || typeof provider?.request !== "function") return;
    found.set(info.uuid, { info, provider });
    onChange([...found.values()]);
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  return () => {
    const wallets = [...found.values()];
    if (wallets.length === 0 && typeof window.ethereum?.request === "function") {
      wallets.push({ info: { uuid: "injected", name: "Browser wallet", rdns: "injected" }, provider: window.ethereum });
    }
    return wallets;
  };
}

export function chainParameters(chain) {
  return {
    chainId: numberToHex(chain.id),
    chainName: chain.name,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: [chain.rpcUrl],
    blockExplorerUrls: chain.explorer ? [chain.explorer] : null,
  };
}

export class Wallet {
  constructor(provider, chain) {
    this.provider = provider;
    this.chain = chain;
    this.viemChain = {
      id: chain.id,
      name: chain.name,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [chain.rpcUrl] } },
    };
    const transport = custom(provider);
    this.public = createPublicClient({ chain: this.viemChain, transport, pollingInterval: 500 });
    this.client = createWalletClient({ chain: this.viemChain, transport });
    this.account = null;
  }

  async connect() {
    const accounts = await this.provider.request({ method: "eth_requestAccounts" });
    if (!Array.isArray(accounts) || accounts.length === 0) throw new Error("the wallet shared no account");
    this.account = getAddress(accounts[0]);
    return this.account;
  }

  async chainId() {
    const id = await this.provider.request({ method: "eth_chainId" });
    return Number.parseInt(id, 16);
  }

  async onRightChain() {
    return (await this.chainId()) === this.chain.id;
  }

  /** Asks the wallet to switch, adding the chain first when the wallet does not know it (4902). */
  async switchChain() {
    const params = chainParameters(this.chain);
    try {
      await this.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: params.chainId }] });
    } catch (err) {
      if (err?.code !== 4902 && err?.data?.originalError?.code !== 4902) throw err;
      await this.provider.request({ method: "wallet_addEthereumChain", params: [params] });
      await this.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: params.chainId }] });
    }
  }

  on(event, handler) {
    this.provider.on?.(event, handler);
  }
}
