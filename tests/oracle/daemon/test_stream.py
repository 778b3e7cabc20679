"""The distributed mode's boundaries that need no Redis: a worker refuses work messages that are
not short lists of imageIds, and a worker's configured oracle address is checked at start."""

from typing import Any

import pytest
from pydantic import ValidationError
from taskiq import InMemoryBroker

from oracle.daemon.core import Core, Lanes
from oracle.daemon.stream import MAX_MESSAGE_IDS, Intake
from oracle.metrics import Metrics
from oracle.settings import Settings, Tuning
from tests.oracle.daemon.fakes import FakeChain


class RecordingFetch:
    """The fetch stage, as far as the intake sees it: what it was asked to fetch."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def fetch(self, image_id: str) -> None:
        self.fetched.append(image_id)


def intake() -> tuple[Intake, RecordingFetch, Metrics]:
    tuning = Tuning()
    metrics = Metrics({})
    jobs: Any = None  # never touched: the recording fetch does not fail
    core = Core(jobs, FakeChain(), tuning, metrics, Lanes(tuning.decoded_budget))
    fetch = RecordingFetch()
    return Intake(core, fetch, InMemoryBroker()), fetch, metrics  # type: ignore[arg-type]


async def test_a_message_of_image_ids_is_fetched_id_by_id() -> None:
    stage, fetch, metrics = intake()
    ids = ["0x" + f"{i:064x}" for i in range(3)]
    await stage.handle(ids)
    assert sorted(fetch.fetched) == ids
    assert metrics.registry.get_sample_value("histochain_received_total") == 3


async def test_malformed_or_oversized_messages_are_refused_before_any_work() -> None:
    stage, fetch, metrics = intake()
    good = "0x" + "ab" * 32
    await stage.handle([good, "0x" + "AB" * 32, "0x1234", "'; DROP TABLE jobs; --", good + "00"])
    assert fetch.fetched == [good]
    await stage.handle([good] * (MAX_MESSAGE_IDS + 5000))
    assert len(fetch.fetched) == 1 + MAX_MESSAGE_IDS
    assert metrics.registry.get_sample_value("histochain_received_total") == 1 + MAX_MESSAGE_IDS


def test_a_workers_oracle_address_is_checked_and_checksummed() -> None:
    address = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    assert Settings(oracle_address=address).oracle_address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(ValidationError, match="not an Ethereum address"):
        Settings(oracle_address="0x1234")
