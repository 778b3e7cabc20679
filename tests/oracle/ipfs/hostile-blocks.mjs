// Writes a hostile UnixFS DAG into a node's blockstore folder, as a node that accepted it from
// elsewhere would hold it: `node hostile-blocks.mjs <blockstore dir> <links>` prints the root CID.
// One 256 KiB raw leaf, linked <links> times by one dag-pb file node that declares the truth.
import { FsBlockstore } from "blockstore-fs";
import * as dagPb from "@ipld/dag-pb";
import { UnixFS } from "ipfs-unixfs";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";

const [dir, linkCount] = process.argv.slice(2);
const store = new FsBlockstore(dir);
await store.open();
const leaf = new Uint8Array(256 * 1024).fill(7);
const leafCid = CID.create(1, raw.code, await sha256.digest(leaf));
await store.put(leafCid, leaf);
const links = Number(linkCount);
const file = new UnixFS({ type: "file", blockSizes: Array(links).fill(BigInt(leaf.length)) });
const node = dagPb.encode(dagPb.prepare({ Data: file.marshal(), Links: Array(links).fill({ Hash: leafCid, Tsize: leaf.length }) }));
const root = CID.create(1, dagPb.code, await sha256.digest(node));
await store.put(root, node);
await store.close();
console.log(root.toString());
