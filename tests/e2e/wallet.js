// A stand-in for MetaMask in the browser tests: an EIP-1193 provider announced through EIP-6963
// that relays JSON-RPC to anvil, whose dev accounts are unlocked, so anvil itself signs
// transactions, personal_sign messages and EIP-712 data. `window.__testWallet` lets a test make
// the wallet reject the next request of a method (code 4001), start on another chain, switch
// accounts, hold the next request of a method open (its prompt shown) until the test releases it,
// or sign the next message as another address than the one asked for (a wallet that signs with
// whichever account it shows). Like a real wallet it remembers, across reloads, that the site may
// see the account.
(() => {
  const cfg = window.__testWalletConfig;
  const wallet = {
    chainId: cfg.chainId,
    knownChains: new Set(cfg.knownChains),
    rejectNext: new Set(),
    calls: [],
    waiting: [], // methods whose prompt is open (held), in the order they came
    added: null,
    connected: localStorage.getItem("testWallet:connected") === "1",
    account: sessionStorage.getItem("testWallet:account") ?? cfg.account,
  };
  Object.defineProperty(wallet, "switchAccount", {
    enumerable: false, // the test reads the wallet's state as JSON
    value(address) {
      wallet.account = address;
      sessionStorage.setItem("testWallet:account", address);
      emit("accountsChanged", [address]);
    },
  });
  Object.defineProperty(wallet, "switchChainTo", {
    value(chainId) {
      wallet.chainId = chainId;
      emit("chainChanged", `0x${chainId.toString(16)}`);
    },
  });
  const held = new Map(); // method -> {promise, resolve} of its next request
  const signAs = new Map(); // method -> the address that signs its next request
  Object.defineProperties(wallet, {
    hold: {
      value(method) {
        let resolve;
        const promise = new Promise((r) => (resolve = r));
        held.set(method, { promise, resolve });
      },
    },
    release: {
      value(method) {
        held.get(method)?.resolve();
        held.delete(method);
      },
    },
    signNextAs: {
      value(method, address) {
        signAs.set(method, address);
      },
    },
  });
  window.__testWallet = wallet;
  const listeners = new Map();
  const emit = (event, value) => (listeners.get(event) ?? []).forEach((f) => f(value));
  const rpcError = (code, message) => Object.assign(new Error(message), { code });
  let id = 0;

  async function relay(method, params) {
    const response = await fetch(cfg.rpcUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
    });
    const body = await response.json();
    if (body.error) throw Object.assign(new Error(body.error.message), body.error);
    return body.result;
  }

  const provider = {
    async request({ method, params = [] }) {
      wallet.calls.push(method);
      const gate = held.get(method);
      if (gate) {
        wallet.waiting.push(method);
        await gate.promise; // the prompt stays open; the user may switch accounts meanwhile
        wallet.waiting.splice(wallet.waiting.indexOf(method), 1);
      }
      if (wallet.rejectNext.has(method)) {
        wallet.rejectNext.delete(method);
        throw rpcError(4001, "User rejected the request.");
      }
      if (method === "personal_sign" && signAs.has(method)) {
        params = [params[0], signAs.get(method)];
        signAs.delete(method);
      }
      switch (method) {
        case "eth_requestAccounts":
          wallet.connected = true;
          localStorage.setItem("testWallet:connected", "1");
          return [wallet.account];
        case "eth_accounts":
          return wallet.connected ? [wallet.account] : [];
        case "wallet_revokePermissions":
          wallet.connected = false;
          localStorage.removeItem("testWallet:connected");
          return null;
        case "eth_chainId":
          return `0x${wallet.chainId.toString(16)}`;
        case "wallet_addEthereumChain":
          wallet.added = params[0];
          wallet.knownChains.add(Number.parseInt(params[0].chainId, 16));
          return null;
        case "wallet_switchEthereumChain": {
          const target = Number.parseInt(params[0].chainId, 16);
          if (!wallet.knownChains.has(target)) throw rpcError(4902, `Unrecognized chain ID ${params[0].chainId}`);
          wallet.chainId = target;
          emit("chainChanged", params[0].chainId);
          return null;
        }
        default:
          return relay(method, params);
      }
    },
    on(event, handler) {
      listeners.set(event, [...(listeners.get(event) ?? []), handler]);
    },
    removeListener(event, handler) {
      listeners.set(event, (listeners.get(event) ?? []).filter((f) => f !== handler));
    },
  };

  const info = Object.freeze({
    uuid: "6d1f3a3e-5c1b-4b7e-9a51-6f0e2a7c9b11",
    name: "Test Wallet",
    icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E",
    rdns: "dev.histochain.test-wallet",
  });
  const announce = () =>
    window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
