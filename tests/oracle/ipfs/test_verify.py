"""The CAR/UnixFS verifier against hostile DAGs, and fuzzed: whatever the bytes, it ends in the file
or in a typed verdict, and its work follows the CAR's size, not the DAG's shape."""

import threading
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import varint

from oracle.ipfs.errors import ContentMismatch, ContentTooLarge, WrongAnswer
from oracle.ipfs.verify import verify_car, verify_raw
from tests.oracle.ipfs.dags import Dag, cid_of, pb_node, raw_sections, unixfs

MiB = 1 << 20


def finishes(work: Callable[[], object], seconds: float = 30) -> object:
    """The verdict of `work`, which must come at all: an exponential walk would never return."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # noqa: BLE001 - the exception is the outcome under test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, "the verifier did not finish"
    return outcome[0]


def honest_file(chunks: list[bytes], fanout: int = 174) -> Dag:
    dag = Dag()
    level = [dag.raw(chunk) for chunk in chunks]
    while len(level) > 1:
        level = [dag.node(level[i : i + fanout]) for i in range(0, len(level), fanout)]
    return dag


def test_an_honest_dag_reassembles_in_link_order() -> None:
    chunks = [i.to_bytes(2, "big") * 500 for i in range(400)]
    dag = honest_file(chunks)
    assert dag.root is not None
    assert verify_car(dag.root, dag.car(), MiB) == b"".join(chunks)


def test_a_file_of_repeated_chunks_is_legal_and_checked_once_per_distinct_node() -> None:
    dag = Dag()
    zeros = dag.raw(bytes(4096))
    root = dag.node([zeros] * 160)
    assert verify_car(root, dag.car(), MiB) == bytes(4096 * 160)


def test_a_dag_that_doubles_at_every_level_ends_in_a_verdict_not_a_hang() -> None:
    """The 5 kB attack: 30 levels, each node linking its child twice, sizes declared honestly:
    the file would be 2**30 bytes, which the checks see before reassembling any of it."""
    dag = Dag()
    child = dag.raw(b"x")
    for _ in range(30):
        child = dag.node([child, child])
    car = dag.car()
    assert len(car) < 6000
    verdict = finishes(lambda: verify_car(child, car, 32 * MiB))
    assert isinstance(verdict, ContentTooLarge)


@pytest.mark.parametrize(
    "lie",
    [
        "blocksizes too small",
        "blocksizes missing",
        "filesize too small",
        "an empty child",
        "more blocksizes than links",
    ],
)
def test_declared_sizes_that_lie_are_refused(lie: str) -> None:
    dag = Dag()
    leaf = dag.raw(b"y" * 100)
    if lie == "blocksizes too small":
        root = dag.node([leaf, leaf], blocksizes=(1, 1))
    elif lie == "blocksizes missing":
        root = dag.node([leaf, leaf], blocksizes=())
    elif lie == "filesize too small":
        root = dag.node([leaf, leaf], filesize=2)
    elif lie == "an empty child":
        empty = dag.raw(b"")
        root = dag.node([leaf, empty], blocksizes=(100, 0))
    else:
        root = dag.node([leaf], blocksizes=(100, 100))
    with pytest.raises(ContentMismatch):
        verify_car(root, dag.car(), MiB)


def test_a_deep_chain_that_lies_about_sizes_to_reach_a_huge_leaf_is_refused() -> None:
    dag = Dag()
    child = dag.raw(b"z" * 10)
    for _ in range(20):
        child = dag.node([child, child], blocksizes=(1, 1))
    verdict = finishes(lambda: verify_car(child, dag.car(), 32 * MiB))
    assert isinstance(verdict, ContentMismatch)


def test_a_car_of_100k_tiny_blocks_is_refused_before_they_are_all_hashed() -> None:
    dag = Dag()
    root = dag.node([dag.raw(b"\x00" * 4), dag.raw(b"\x01" * 4)])
    car = dag.car() + raw_sections(100_000)
    verdict = finishes(lambda: verify_car(root, car, 32 * MiB))
    assert isinstance(verdict, ContentMismatch)
    assert "blocks in a CAR of" in str(verdict)


def header_naming(root: object, count: int) -> bytes:
    """A CARv1 header {roots: [root] * count, version: 1}, as DAG-CBOR bytes written directly
    (encoding 100k CID objects would take the test longer than the refusal it checks)."""
    cid = b"\x00" + bytes(root)  # type: ignore[call-overload]  # tag 42: a multibase identity prefix
    entry = b"\xd8\x2a\x58" + bytes([len(cid)]) + cid
    roots = b"\x65roots\x9a" + count.to_bytes(4, "big") + entry * count
    header = b"\xa2" + roots + b"\x67version\x01"
    return varint.encode(len(header)) + header


def test_a_car_header_naming_100k_roots_is_refused_before_it_is_decoded() -> None:
    """Decoding a root costs far more than its 40 bytes: 100k of them took 41 s, past the
    sandbox's limit, which made a gateway's padding a strike against the image."""
    dag = Dag()
    root = dag.raw(b"r" * 100)
    honest = dag.car()
    length, size, _ = varint.decode_raw(honest[:10])
    car = header_naming(root, 100_000) + honest[size + length :]
    assert finishes(lambda: verify_car(root, honest, MiB)) == b"r" * 100
    verdict = finishes(lambda: verify_car(root, car, MiB), seconds=5)
    assert isinstance(verdict, WrongAnswer)
    assert "header" in str(verdict)


def test_a_truncated_varint_in_unixfs_data_is_a_verdict() -> None:
    dag = Dag()
    leaf = dag.raw(b"a" * 10)
    root = dag.node([leaf], data=unixfs(b"", 10, (10,)) + b"\x18\xff")  # field 3, then a cut varint
    with pytest.raises(ContentMismatch):
        verify_car(root, dag.car(), MiB)


def test_foreign_missing_and_unexpected_blocks_are_refused() -> None:
    dag = Dag()
    leaf = dag.raw(b"q" * 50)
    root = dag.node([leaf])
    stranger = cid_of("raw", b"stranger")
    with pytest.raises(ContentMismatch, match="not part of"):
        verify_car(root, dag.car(extra=((stranger, b"stranger"),)), MiB)
    del dag.blocks[leaf]
    with pytest.raises(ContentMismatch, match="missing"):
        verify_car(root, dag.car(), MiB)
    cbor = cid_of("dag-cbor", b"\xa0")
    odd = Dag()
    odd.blocks[cbor] = b"\xa0"
    pb = pb_node([cbor], unixfs(b"", 1, (1,)))
    odd_root = cid_of("dag-pb", pb)
    odd.blocks[odd_root], odd.root = pb, odd_root
    with pytest.raises(ContentMismatch, match="unexpected codec"):
        verify_car(odd_root, odd.car(), MiB)


def test_a_block_linked_by_its_v0_and_its_v1_cid_is_one_block() -> None:
    dag = Dag()
    leaf = dag.node([dag.raw(b"s" * 40)])
    v0 = bytes(leaf.set(version=0, base="base58btc"))
    block = pb_node([leaf, v0], unixfs(b"", 80, (40, 40)))
    root = cid_of("dag-pb", block)
    dag.blocks[root], dag.root = block, root
    assert verify_car(root, dag.car(), MiB) == b"s" * 80


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        (b"\x01\x55\x12\x20" + bytes(32) + b"\x00", "not one CID"),
        (b"\x01\x80\x00\x55\x12\x20" + bytes(32), "not minimally encoded"),
        (b"\x01\x55\x12\x20" + bytes(31), "malformed CID"),
        (b"\x12\x20" + bytes(31), "truncated CIDv0"),
        (b"\x01" + b"\xff" * 9, "over 9 bytes"),
    ],
)
def test_a_malformed_link_is_a_verdict(link: bytes, reason: str) -> None:
    block = pb_node([link], unixfs(b"", 1, (1,)))
    root = cid_of("dag-pb", block)
    dag = Dag(blocks={root: block}, root=root)
    with pytest.raises(ContentMismatch, match=reason):
        verify_car(root, dag.car(), MiB)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_any_bytes_as_a_car_end_in_a_typed_verdict(data: bytes) -> None:
    dag = Dag()
    root = dag.node([dag.raw(b"r" * 64)])
    with pytest.raises((ContentMismatch, ContentTooLarge)):
        verify_car(root, data, MiB)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_of_an_honest_car_ends_in_the_file_or_a_typed_verdict(data: st.DataObject) -> None:
    dag = honest_file([bytes([i]) * 300 for i in range(20)], fanout=4)
    assert dag.root is not None
    car = bytearray(dag.car())
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(car) - 1))
        if kind == "flip":
            car[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del car[at : at + data.draw(st.integers(1, 64))]
        else:
            car[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    try:
        out = verify_car(dag.root, bytes(car), MiB)
    except (ContentMismatch, ContentTooLarge):
        return
    assert out == b"".join(bytes([i]) * 300 for i in range(20))


@settings(max_examples=200, deadline=1000)
@given(st.binary(max_size=512))
def test_a_raw_block_is_the_bytes_that_hash_to_it_and_nothing_else(data: bytes) -> None:
    cid = cid_of("raw", b"the block")
    if data == b"the block":
        assert verify_raw(cid, data) == data
    else:
        with pytest.raises(ContentMismatch):
            verify_raw(cid, data)
