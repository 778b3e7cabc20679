"""The job repository's compare-and-set rules, on a real SQLite file: a write succeeds only on the
row its writer read (same registration block, an expected state, the same outcome)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oracle.chain.registry import Registration
from oracle.daemon.jobs import JobRepository
from oracle.daemon.writes import Classified, StaleJobs
from oracle.store.db import Database
from oracle.store.models import Job, JobState

IMAGE = "0x" + "11" * 32
OTHER = "0x" + "22" * 32


def registration(image_id: str, block: int, block_hash: str) -> Registration:
    return Registration(
        image_id=image_id,
        owner="0x" + "ab" * 20,
        model_id="0x" + "cd" * 32,
        cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        block_number=block,
        block_hash=block_hash,
        transaction="0x" + "ef" * 32,
        log_index=0,
    )


def classified(image_id: str, block_hash: str, salt: str) -> Classified:
    document = {"image_id": image_id, "salt": salt}
    return Classified(image_id, block_hash, "00" * 32, document, "0x" + salt * 32)


@pytest.fixture
async def jobs(tmp_path: Path) -> AsyncIterator[JobRepository]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await db.start()
    repository = JobRepository(db, "image-registered", start_block=10)
    await repository.checkpoint()
    yield repository
    await db.close()


async def one(jobs: JobRepository, image_id: str = IMAGE) -> Job:
    job = await jobs.get(image_id)
    assert job is not None
    return job


async def test_a_classification_lands_only_in_a_queued_job_for_its_own_registration(
    jobs: JobRepository,
) -> None:
    assert await jobs.record(
        [registration(IMAGE, 11, "0xa1"), registration(OTHER, 11, "0xa1")], 11, "0xa1"
    ) == [
        IMAGE,
        OTHER,
    ]
    written = await jobs.classified([classified(IMAGE, "0xa1", "aa"), classified(OTHER, "0xb2", "bb")])
    assert written == [IMAGE]  # OTHER's registration is in block 0xa1, not 0xb2
    assert await jobs.classified([classified(IMAGE, "0xa1", "cc")]) == []  # no longer queued
    assert (await one(jobs)).result_hash == "0x" + "aa" * 32


async def test_signing_is_all_or_nothing_and_keeps_every_signed_document(jobs: JobRepository) -> None:
    await jobs.record([registration(IMAGE, 11, "0xa1"), registration(OTHER, 11, "0xa1")], 11, "0xa1")
    await jobs.classified([classified(IMAGE, "0xa1", "aa"), classified(OTHER, "0xa1", "bb")])
    image, other = await one(jobs), await one(jobs, OTHER)
    await jobs.record([registration(OTHER, 12, "0xb2")], 12, "0xb2")  # a reorg moved OTHER's registration

    with pytest.raises(StaleJobs) as stale:
        await jobs.signing([image, other], "0x" + "01" * 32)
    assert stale.value.image_ids == [OTHER]
    assert (await one(jobs)).state == JobState.CLASSIFIED  # IMAGE's write was rolled back too
    assert await jobs.signed_document(IMAGE, "0x" + "aa" * 32) is None

    await jobs.signing([image], "0x" + "02" * 32)
    signed = await one(jobs)
    assert (signed.state, signed.submit_tx, signed.attempts) == (JobState.SUBMITTED, "0x" + "02" * 32, 1)
    assert await jobs.signed_document(IMAGE, "0x" + "aa" * 32) == {"image_id": IMAGE, "salt": "aa"}
    await jobs.signing([signed], "0x" + "03" * 32)  # a resend of the same document
    assert (await one(jobs)).attempts == 2


async def test_a_confirmation_for_a_row_a_reorg_replaced_changes_nothing(jobs: JobRepository) -> None:
    await jobs.record([registration(IMAGE, 11, "0xa1")], 11, "0xa1")
    await jobs.classified([classified(IMAGE, "0xa1", "aa")])
    await jobs.signing([await one(jobs)], "0x" + "01" * 32)
    first = await one(jobs)

    assert await jobs.record([registration(IMAGE, 12, "0xb2")], 12, "0xb2") == [IMAGE]
    again = await one(jobs)
    assert (again.state, again.block_hash, again.document, again.attempts) == (
        JobState.QUEUED,
        "0xb2",
        None,
        0,
    )
    assert await jobs.confirmed([first], 13, "0x" + "01" * 32) == []
    await jobs.classified([classified(IMAGE, "0xb2", "bb")])
    assert await jobs.confirmed([first], 13, "0x" + "01" * 32) == []  # same block hash, other result
    assert (await one(jobs)).state == JobState.CLASSIFIED

    # The first attempt's transaction landed after all: its document is adopted.
    document = await jobs.signed_document(IMAGE, "0x" + "aa" * 32)
    assert document is not None
    assert await jobs.adopt(await one(jobs), document, "0x" + "aa" * 32, 13)
    adopted = await one(jobs)
    assert (adopted.state, adopted.document, adopted.result_hash) == (
        JobState.CONFIRMED,
        document,
        "0x" + "aa" * 32,
    )


async def test_a_reorg_either_ends_an_attempt_or_sends_the_same_outcome_again(jobs: JobRepository) -> None:
    await jobs.record([registration(IMAGE, 11, "0xa1"), registration(OTHER, 11, "0xa1")], 11, "0xa1")
    await jobs.classified([classified(IMAGE, "0xa1", "aa")])
    await jobs.failed(await one(jobs, OTHER), 3, "not a supported image")
    for job in (await one(jobs), await one(jobs, OTHER)):
        await jobs.signing([job], "0x" + "01" * 32)
        assert await jobs.confirmed([await one(jobs, job.image_id)], 12, None) == [job.image_id]

    assert await jobs.unsettled(await one(jobs))  # registration stands, settlement erased
    resent = await one(jobs)
    assert (resent.state, resent.result_hash, resent.confirmed_block) == (
        JobState.SUBMITTED,
        "0x" + "aa" * 32,
        None,
    )
    assert not await jobs.unsettled(resent)  # only a confirmed job can be unsettled

    assert await jobs.erased(await one(jobs, OTHER))  # registration erased
    assert (await one(jobs, OTHER)).state == JobState.SUPERSEDED
    assert [j.image_id for j in await jobs.since(10)] == [IMAGE, OTHER]  # registered in block 11
    assert [j.image_id for j in await jobs.since(11)] == [OTHER]  # its settlement is in block 12
    assert await jobs.since(12) == []


async def test_the_head_is_kept_beside_the_checkpoint_and_a_rewind_clears_both(jobs: JobRepository) -> None:
    await jobs.record([], 20, "0xc3")
    await jobs.saw_head(22, "0xd4")
    checkpoint, head = await jobs.checkpoint(), await jobs.head()
    assert (checkpoint.block_number, checkpoint.block_hash, head.block_number, head.block_hash) == (
        20,
        "0xc3",
        22,
        "0xd4",
    )
    await jobs.rewind(15)
    checkpoint, head = await jobs.checkpoint(), await jobs.head()
    assert (checkpoint.block_number, checkpoint.block_hash, head.block_number, head.block_hash) == (
        15,
        "",
        15,
        "",
    )


async def test_one_chunk_naming_an_image_twice_keeps_the_last_registration(jobs: JobRepository) -> None:
    """Impossible on one chain, possible from a lying RPC: no integrity error loops the listener."""
    assert await jobs.record(
        [registration(IMAGE, 11, "0xa1"), registration(IMAGE, 12, "0xb2")], 12, "0xb2"
    ) == [
        IMAGE,
        IMAGE,
    ]
    assert ((await one(jobs)).block_hash, (await jobs.checkpoint()).block_number) == ("0xb2", 12)
