// Wallet discovery (EIP-6963, with window.ethereum as the fallback), connection and network
// checks, through viem's wallet actions. Everything the page signs goes through the provider the
// user picked; which one is remembered (not the account), so a reload reconnects silently.
import { createPublicClient, createWalletClient, custom, getAddress } from "viem";

const REMEMBERED = "histochain:wallet";
const SWITCH_CHAIN_UNKNOWN = 4902;

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

/** The wallet this browser connected last (its EIP-6963 rdns), forgotten on Disconnect. */
export const rememberedWallet = () => localStorage.getItem(REMEMBERED);

/** An EIP-6963 icon is shown only as a data: image (the standard's rule: no remote fetch). */
export const safeIcon = (icon) => (typeof icon === "string" && /^data:image\/(svg\+xml|png|jpeg|webp|gif)[;,]/.test(icon) ? icon : null);

export class Wallet {
  constructor({ info, provider }, chain) {
    this.info = info;
    this.provider = provider;
    this.chain = chain;
    this.viemChain = {
      id: chain.id,
      name: chain.name,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [chain.rpcUrl] } },
      blockExplorers: chain.explorer ? { default: { name: "Explorer", url: chain.explorer } } : undefined,
    };
    const transport = custom(provider);
    this.public = createPublicClient({ chain: this.viemChain, transport, pollingInterval: 500 });
    this.client = createWalletClient({ chain: this.viemChain, transport });
    this.account = null;
    this.handlers = [];
  }

  /** Asks the wallet for an account (its pop-up). */
  async connect() {
    return this.#use(await this.client.requestAddresses());
  }

  /** The account the wallet already approved for this site, without a pop-up; null if none. */
  async reconnect() {
    const accounts = await this.client.getAddresses();
    return accounts.length ? this.#use(accounts) : null;
  }

  #use(accounts) {
    if (!Array.isArray(accounts) || accounts.length === 0) throw new Error("the wallet shared no account");
    this.account = getAddress(accounts[0]);
    localStorage.setItem(REMEMBERED, this.info.rdns ?? this.info.uuid);
    return this.account;
  }

  /** Forgets the site here; wallets that support it (EIP-2255) also drop their permission. */
  async disconnect() {
    localStorage.removeItem(REMEMBERED);
    this.off();
    try {
      await this.provider.request({ method: "wallet_revokePermissions", params: [{ eth_accounts: {} }] });
    } catch {
      // not every wallet has it; forgetting the wallet here is what Disconnect promises
    }
  }

  chainId() {
    return this.client.getChainId();
  }

  /** Asks the wallet to switch, adding the chain first when the wallet does not know it (4902). */
  async switchChain() {
    try {
      await this.client.switchChain({ id: this.chain.id });
    } catch (err) {
      const unknown = err?.code === SWITCH_CHAIN_UNKNOWN || err?.walk?.((e) => e?.code === SWITCH_CHAIN_UNKNOWN);
      if (!unknown) throw err;
      await this.client.addChain({ chain: this.viemChain });
      await this.client.switchChain({ id: this.chain.id });
    }
  }

  on(event, handler) {
    this.provider.on?.(event, handler);
    this.handlers.push([event, handler]);
  }

  /** Stops listening to the provider (this wallet object is done with). */
  off() {
    for (const [event, handler] of this.handlers) this.provider.removeListener?.(event, handler);
    this.handlers = [];
  }
}
