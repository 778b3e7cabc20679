"""Turning untrusted gateway answers into bytes that provably match a CID, in time and memory
linear in the answer.

A raw CID is checked against one block. A dag-pb (UnixFS file) CID is checked through a CARv1:
every block hashed once against its own CID, and at most one block per KiB of CAR (plus a few);
the root among the CAR's roots; then every distinct node reachable from the root is checked once,
children first: its declared `filesize` and `blocksizes` must be present and equal the sizes its
children were verified to have, and no child may be empty, so a node's size is known, and checked
against the byte cap, before a single byte is reassembled. A DAG that links one child many times
(legal: repeated chunks) therefore costs one check per distinct node, and its reassembly is capped
by the byte cap and a link-visit cap. No block may be left over (a foreign block).

Every error is typed: `WrongAnswer` when the answer is not the content (bytes that do not hash to
their CID, another root, a missing or a foreign block, broken framing), which blames the gateway;
`ContentMismatch` or `ContentTooLarge` when correctly hashed blocks make no acceptable file, which
blames the content.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import dag_cbor
from multiformats import CID

from oracle.ipfs.errors import ContentMismatch, ContentTooLarge, TooManyBlocks, WrongAnswer

UNIXFS_RAW, UNIXFS_FILE = 0, 2
RAW, DAG_PB, SHA2_256 = 0x55, 0x70, 0x12
MAX_DEPTH = 64
BLOCKS_PER_KIB = 1  # the smallest chunks importers make are 1 KiB
SPARE_BLOCKS = 64
MAX_HEADER = 1024  # an honest header names one root in about 60 bytes
Key = tuple[int, bytes]  # (codec, digest): one block, however its CID is spelled


@dataclass(frozen=True, slots=True)
class Link:
    """A CID as read from untrusted bytes. Parsed here rather than by `multiformats`, whose
    per-call type validation costs ~0.5 ms a CID: an attacker's CAR may hold 30k of them."""

    codec: int
    hash_code: int
    digest: bytes
    raw: bytes

    @classmethod
    def of(cls, cid: CID) -> "Link":
        return cls(cid.codec.code, cid.hashfun.code, bytes(cid.raw_digest), bytes(cid))

    @property
    def key(self) -> Key:
        return self.codec, self.digest

    def __str__(self) -> str:
        try:
            cid = CID.decode(self.raw)
            return str(cid if cid.version == 0 else cid.set(base="base32"))
        except Exception:  # noqa: BLE001 - a codec multiformats does not know still names a block
            return f"cid 0x{self.raw.hex()}"


def verify_block(link: Link, data: bytes) -> None:
    if link.hash_code != SHA2_256 or len(link.digest) != 32:
        raise ContentMismatch(f"{link}: unsupported hash 0x{link.hash_code:x}")
    if hashlib.sha256(data).digest() != link.digest:
        raise WrongAnswer(f"block does not hash to {link}")


def verify_raw(cid: CID, data: bytes) -> bytes:
    verify_block(Link.of(cid), data)
    return data


def read_car(car: bytes) -> tuple[list[CID], dict[Key, tuple[Link, bytes]]]:
    """CARv1: a varint-prefixed DAG-CBOR header {version: 1, roots: [...]}, then varint-prefixed
    (CID bytes, block bytes) sections. Every block is hash-checked here, once. Any fault in the
    framing is the gateway's. Too many blocks may be either's (a DAG of tiny blocks, or a gateway
    padding the CAR), so it is a verdict only when every gateway answers so."""
    max_blocks = len(car) // 1024 * BLOCKS_PER_KIB + SPARE_BLOCKS
    blocks: dict[Key, tuple[Link, bytes]] = {}
    sections = 0
    try:
        length, offset = _uvarint(car, 0)
        if length > MAX_HEADER:  # decoding a header of many roots costs more than its bytes
            raise WrongAnswer(f"a CAR header of {length} bytes (at most {MAX_HEADER})")
        header = dag_cbor.decode(car[offset : offset + length])
        offset += length
        roots = header.get("roots") if isinstance(header, dict) else None
        if not isinstance(header, dict) or header.get("version") != 1 or not isinstance(roots, list):
            raise WrongAnswer("not a CARv1 header")
        if not all(isinstance(root, CID) for root in roots):
            raise WrongAnswer("CAR roots must be CIDs")
        while offset < len(car) and sections <= max_blocks:
            sections += 1
            length, offset = _uvarint(car, offset)
            section = car[offset : offset + length]
            if len(section) != length:
                raise WrongAnswer("truncated CAR: a section ends early")
            offset += length
            link, cid_length = read_cid(section, 0)
            data = section[cid_length:]
            verify_block(link, data)
            blocks[link.key] = (link, data)
    except WrongAnswer:
        raise
    except MemoryError:
        raise ContentTooLarge("the CAR does not fit in memory") from None
    except Exception as exc:  # noqa: BLE001 - every way hostile bytes break the framing is one fault
        raise WrongAnswer(f"malformed CAR: {type(exc).__name__}: {exc}") from None
    if sections > max_blocks:
        raise TooManyBlocks(f"more than {max_blocks} blocks in a CAR of {len(car)} bytes")
    return [root for root in roots if isinstance(root, CID)], blocks


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    """An unsigned varint at `offset` and the offset past it: at most 9 bytes, minimally encoded
    (the multiformats rule)."""
    value = shift = 0
    for at in range(offset, min(offset + 9, len(data))):
        byte = data[at]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and at > offset:
                raise ContentMismatch("malformed varint: not minimally encoded")
            return value, at + 1
        shift += 7
    raise ContentMismatch("truncated varint" if len(data) < offset + 9 else "malformed varint: over 9 bytes")


def read_cid(buf: bytes, offset: int) -> tuple[Link, int]:
    """The CID at `offset` (v0: a bare sha2-256 multihash; v1) and the offset past it."""
    if buf[offset : offset + 2] == b"\x12\x20":
        end = offset + 34
        if end > len(buf):
            raise ContentMismatch("truncated CIDv0")
        return Link(DAG_PB, SHA2_256, buf[offset + 2 : end], buf[offset:end]), end
    version, at = _uvarint(buf, offset)
    codec, at = _uvarint(buf, at)
    hash_code, at = _uvarint(buf, at)
    digest_length, at = _uvarint(buf, at)
    end = at + digest_length
    if version != 1 or end > len(buf):
        raise ContentMismatch(f"malformed CID (version {version}, codec 0x{codec:x})")
    return Link(codec, hash_code, buf[at:end], buf[offset:end]), end


@dataclass
class PBNode:
    links: list[Link]
    data: bytes


@dataclass
class UnixFS:
    kind: int
    payload: bytes
    filesize: int | None
    blocksizes: list[int]


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """Protobuf wire format: (field number, wire type, value) for varint and length-delimited fields."""
    offset = 0
    while offset < len(buf):
        key, offset = _uvarint(buf, offset)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = _uvarint(buf, offset)
            yield number, wire, value
        elif wire == 2:
            length, offset = _uvarint(buf, offset)
            if offset + length > len(buf):
                raise ContentMismatch("malformed protobuf: field runs past the block")
            yield number, wire, buf[offset : offset + length]
            offset += length
        else:
            raise ContentMismatch(f"malformed protobuf: wire type {wire}")


def decode_pb(block: bytes) -> PBNode:
    links, data = [], b""
    for number, _, value in _fields(block):
        if number == 2 and isinstance(value, bytes):
            link_hash = next((v for n, _, v in _fields(value) if n == 1 and isinstance(v, bytes)), None)
            if link_hash is None:
                raise ContentMismatch("dag-pb link without a hash")
            link, end = read_cid(link_hash, 0)
            if end != len(link_hash):
                raise ContentMismatch("dag-pb link hash is not one CID")
            links.append(link)
        elif number == 1 and isinstance(value, bytes):
            data = value
    return PBNode(links, data)


def decode_unixfs(data: bytes) -> UnixFS:
    """A UnixFS Data message: Type, Data, filesize, blocksizes (plain or packed)."""
    kind, payload, filesize, blocksizes = None, b"", None, []
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            payload = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif number == 4 and isinstance(value, bytes):
            offset = 0
            while offset < len(value):
                size, offset = _uvarint(value, offset)
                blocksizes.append(size)
    if kind is None:
        raise ContentMismatch("UnixFS node without a type")
    return UnixFS(kind, payload, filesize, blocksizes)


@dataclass
class _Node:
    payload: bytes
    children: list[Key]


def _check(root: Link, blocks: dict[Key, tuple[Link, bytes]], max_bytes: int) -> tuple[dict[Key, _Node], int]:
    """Every distinct node reachable from `root`, checked once, children first; returns them with
    the file's size. Depth-first with an explicit stack: no recursion for an attacker to exhaust."""
    nodes: dict[Key, _Node] = {}
    sizes: dict[Key, int] = {}
    declared: dict[Key, list[int]] = {}
    stack: list[tuple[Link, int, bool]] = [(root, 0, False)]
    while stack:
        cid, depth, expanded = stack.pop()
        key = cid.key
        if key in sizes:
            continue
        if depth > MAX_DEPTH:
            raise ContentMismatch(f"DAG deeper than {MAX_DEPTH}: no UnixFS file is")
        if expanded:
            children = nodes[key].children
            if [sizes[c] for c in children] != declared[key]:
                raise ContentMismatch(f"{cid}: its children's sizes are not the blocksizes it declares")
            sizes[key] = len(nodes[key].payload) + sum(declared[key])
            continue
        entry = blocks.get(key)
        if entry is None:
            raise WrongAnswer(f"truncated CAR: block {cid} is missing")
        data = entry[1]
        if cid.codec == RAW:
            nodes[key], sizes[key] = _Node(data, []), len(data)
            continue
        if cid.codec != DAG_PB:
            raise ContentMismatch(f"{cid}: unexpected codec 0x{cid.codec:x} in a file DAG")
        node = decode_pb(data)
        unixfs = decode_unixfs(node.data)
        if unixfs.kind not in (UNIXFS_FILE, UNIXFS_RAW):
            raise ContentMismatch(f"{cid} is UnixFS type {unixfs.kind}, not a file")
        if node.links and (len(unixfs.blocksizes) != len(node.links) or unixfs.filesize is None):
            raise ContentMismatch(f"{cid}: links without a filesize and one blocksize each")
        if any(size == 0 for size in unixfs.blocksizes):
            raise ContentMismatch(f"{cid}: links an empty child")
        size = len(unixfs.payload) + sum(unixfs.blocksizes)
        if unixfs.filesize is not None and unixfs.filesize != size:
            raise ContentMismatch(f"{cid}: filesize {unixfs.filesize}, its data and blocks {size} bytes")
        if size > max_bytes:
            raise ContentTooLarge(f"{root}: {cid} declares {size} bytes, more than {max_bytes}")
        nodes[key] = _Node(unixfs.payload, [link.key for link in node.links])
        declared[key] = unixfs.blocksizes
        stack.append((cid, depth, True))
        stack.extend((link, depth + 1, False) for link in reversed(node.links))
    return nodes, sizes[root.key]


def _assemble(root: Key, nodes: dict[Key, _Node], size: int, max_visits: int) -> bytes:
    """The file's bytes, in link order; every visit adds at least one byte, and at most
    `max_visits` happen."""
    out = bytearray()
    stack, visits = [root], 0
    while stack:
        visits += 1
        if visits > max_visits:
            raise ContentMismatch(f"more than {max_visits} links to follow for a file of {size} bytes")
        node = nodes[stack.pop()]
        out.extend(node.payload)
        stack.extend(reversed(node.children))
    if len(out) != size:  # pragma: no cover - the sizes were checked node by node
        raise ContentMismatch(f"reassembled {len(out)} bytes, the DAG declares {size}")
    return bytes(out)


def verify_car(root: CID, car: bytes, max_bytes: int) -> bytes:
    """The file under `root`, reassembled from a CAR whose every block was verified."""
    roots, blocks = read_car(car)
    top = Link.of(root)
    if top.key not in {Link.of(r).key for r in roots}:
        raise WrongAnswer(f"the CAR's roots {[str(r) for r in roots]} do not include {root}")
    try:
        nodes, size = _check(top, blocks, max_bytes)
        foreign = len(set(blocks) - set(nodes))
        if foreign:
            raise WrongAnswer(f"the CAR holds {foreign} block(s) that are not part of {root}")
        return _assemble(top.key, nodes, size, len(blocks) + max_bytes // 1024)
    except (ContentMismatch, ContentTooLarge):
        raise
    except MemoryError:
        raise ContentTooLarge(f"{root}: the file does not fit in memory") from None
    except Exception as exc:  # noqa: BLE001 - every way hostile bytes break a parser is one verdict
        raise ContentMismatch(f"malformed DAG: {type(exc).__name__}: {exc}") from None
