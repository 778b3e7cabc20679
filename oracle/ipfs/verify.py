"""Turning untrusted gateway answers into bytes that provably match a CID.

A raw CID is checked against one block. A dag-pb (UnixFS file) CID is checked through a CARv1:
every block's hash against its own CID, the root among the CAR's roots, the DAG walked from the
root in link order (a missing block means a truncated CAR), no block left over (a foreign block),
and the reassembled size against the UnixFS filesize.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import dag_cbor
from dag_cbor.decoding import DAGCBORDecodingError
from multiformats import CID, varint

from oracle.ipfs.errors import ContentMismatch, ContentTooLarge

UNIXFS_RAW, UNIXFS_FILE = 0, 2


def verify_block(cid: CID, data: bytes) -> None:
    if cid.hashfun.name != "sha2-256":
        raise ContentMismatch(f"{cid}: unsupported hash {cid.hashfun.name}")
    if hashlib.sha256(data).digest() != bytes(cid.raw_digest):
        raise ContentMismatch(f"block does not hash to {cid}")


def verify_raw(cid: CID, data: bytes) -> bytes:
    verify_block(cid, data)
    return data


def _key(cid: CID) -> tuple[str, bytes]:
    return (cid.codec.name, bytes(cid.digest))


def read_car(car: bytes) -> tuple[list[CID], dict[tuple[str, bytes], tuple[CID, bytes]]]:
    """CARv1: a varint-prefixed DAG-CBOR header {version: 1, roots: [...]}, then varint-prefixed
    (CID bytes, block bytes) sections. Every block is hash-checked here."""
    try:
        length, offset = _uvarint(car, 0)
        header = dag_cbor.decode(car[offset : offset + length])
        offset += length
        roots = header.get("roots") if isinstance(header, dict) else None
        if not isinstance(header, dict) or header.get("version") != 1 or not isinstance(roots, list):
            raise ContentMismatch("not a CARv1 header")
        if not all(isinstance(root, CID) for root in roots):
            raise ContentMismatch("CAR roots must be CIDs")
        blocks: dict[tuple[str, bytes], tuple[CID, bytes]] = {}
        while offset < len(car):
            length, offset = _uvarint(car, offset)
            section = car[offset : offset + length]
            if len(section) != length:
                raise ContentMismatch("truncated CAR: a section ends early")
            offset += length
            cid, cid_length = _read_cid(section)
            data = section[cid_length:]
            verify_block(cid, data)
            blocks[_key(cid)] = (cid, data)
    except (ValueError, KeyError, IndexError, DAGCBORDecodingError) as exc:
        raise ContentMismatch(f"malformed CAR: {exc}") from exc
    return [root for root in roots if isinstance(root, CID)], blocks


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value, length, _ = varint.decode_raw(data[offset : offset + 10])
    return value, offset + length


def _read_cid(section: bytes) -> tuple[CID, int]:
    if section[:2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash
        return CID.decode(section[:34]), 34
    version, offset = _uvarint(section, 0)
    codec, offset = _uvarint(section, offset)
    _, offset = _uvarint(section, offset)  # multihash code
    digest_length, offset = _uvarint(section, offset)
    end = offset + digest_length
    if version != 1 or end > len(section):
        raise ContentMismatch(f"malformed CID in CAR (version {version}, codec {codec})")
    return CID.decode(section[:end]), end


@dataclass
class PBNode:
    links: list[CID]
    data: bytes


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
            links.append(CID.decode(link_hash))
        elif number == 1 and isinstance(value, bytes):
            data = value
    return PBNode(links, data)


def decode_unixfs(data: bytes) -> tuple[int, bytes, int | None]:
    """(Type, Data, filesize) of a UnixFS Data message."""
    kind, payload, filesize = None, b"", None
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            payload = value
        elif number == 3 and isinstance(value, int):
            filesize = value
    if kind is None:
        raise ContentMismatch("UnixFS node without a type")
    return kind, payload, filesize


def verify_car(root: CID, car: bytes, max_bytes: int) -> bytes:
    """The file under `root`, reassembled from a CAR whose every block was verified."""
    roots, blocks = read_car(car)
    if _key(root) not in {_key(r) for r in roots}:
        raise ContentMismatch(f"the CAR's roots {[str(r) for r in roots]} do not include {root}")
    used: set[tuple[str, bytes]] = set()
    out = bytearray()

    def walk(cid: CID, depth: int) -> None:
        if depth > 64:
            raise ContentMismatch("DAG deeper than any UnixFS file")
        entry = blocks.get(_key(cid))
        if entry is None:
            raise ContentMismatch(f"truncated CAR: block {cid} is missing")
        used.add(_key(cid))
        data = entry[1]
        if cid.codec.name == "raw":
            out.extend(data)
        elif cid.codec.name == "dag-pb":
            node = decode_pb(data)
            kind, payload, filesize = decode_unixfs(node.data)
            if kind not in (UNIXFS_FILE, UNIXFS_RAW):
                raise ContentMismatch(f"{cid} is UnixFS type {kind}, not a file")
            start = len(out)
            out.extend(payload)
            for link in node.links:
                walk(link, depth + 1)
            if filesize is not None and len(out) - start != filesize:
                raise ContentMismatch(f"{cid}: reassembled {len(out) - start} bytes, UnixFS says {filesize}")
        else:
            raise ContentMismatch(f"{cid}: unexpected codec {cid.codec.name} in a file DAG")
        if len(out) > max_bytes:
            raise ContentTooLarge(f"{root}: more than {max_bytes} bytes")

    walk(root, 0)
    foreign = set(blocks) - used
    if foreign:
        raise ContentMismatch(f"the CAR holds {len(foreign)} block(s) that are not part of {root}")
    return bytes(out)
