// Small DOM helpers every view uses.

export const $ = (id) => document.getElementById(id);

/** An element with properties (`dataset` and `attrs` merged in) and children. */
export function el(tag, { dataset, attrs, ...props } = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset ?? {});
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const shortHex = (hex) => `${hex.slice(0, 6)}…${hex.slice(-4)}`;
export const shortCid = (cid) => `${cid.slice(0, 10)}…${cid.slice(-6)}`;
export const when = (seconds) => new Date(Number(seconds) * 1000).toLocaleString();

/** A transaction hash, linked to the explorer when one is configured. */
export function txLink(hash, explorer) {
  const node = el(explorer ? "a" : "code", { textContent: `${hash.slice(0, 10)}…${hash.slice(-6)}`, title: hash });
  if (explorer) node.href = `${explorer.replace(/\/$/, "")}/tx/${hash}`;
  return node;
}
