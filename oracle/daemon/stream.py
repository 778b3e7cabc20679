"""The distributed mode's work stream: Redis Streams through TaskIQ (`taskiq-redis`).

A coordinator sends queued imageIds in batches (`Dispatch`); any number of workers read them as
one consumer group (`Intake`), each message acknowledged only once every id in it has been
fetched, verified, opened and handed to the worker's classifier. A message its worker never
acknowledges (it died) is taken over by another worker after `redelivery_idle`. Delivery is
at least once; the work is idempotent by imageId, because every job write is a compare-and-set on
the job's state in PostgreSQL. What a worker loses after acknowledging (images in its memory
when it dies) the coordinator's lease (`Collect`) dispatches again."""

import asyncio
import logging
import os
import re
import socket

from taskiq import AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver

from oracle.daemon.core import Core, gather_batch
from oracle.daemon.stages.fetch import FetchStage
from oracle.settings import Tuning

log = logging.getLogger("histochain.oracle")

TASK = "histochain.fetch"
IMAGE_ID = re.compile(r"0x[0-9a-f]{64}")
MAX_MESSAGE_IDS = 1024
STREAM = "histochain:fetch"
GROUP = "histochain-workers"


def consumer_name() -> str:
    """This process's name in the consumer group, `host:pid`: what XINFO CONSUMERS and XPENDING
    show an operator for each message held, instead of TaskIQ's random UUID."""
    return f"{socket.gethostname()}:{os.getpid()}"


def make_broker(redis_url: str, tuning: Tuning) -> AsyncBroker:
    from taskiq_redis import RedisStreamBroker

    return RedisStreamBroker(
        redis_url,
        queue_name=STREAM,
        consumer_group_name=GROUP,
        consumer_name=consumer_name(),
        xread_count=1,  # one message per read: a busy worker leaves the rest to idle ones
        xread_block=1000,
        maxlen=tuning.stream_maxlen,
        idle_timeout=int(tuning.redelivery_idle * 1000),
        unacknowledged_lock_timeout=5.0,  # a worker killed while claiming does not block the others
    )


class Dispatch:
    """Coordinator: queued jobs (the fetch lane) go out as work messages of `dispatch_batch` ids."""

    def __init__(self, core: Core, broker: AsyncBroker) -> None:
        self.core = core
        self.kicker: AsyncKicker[[list[str]], None] = AsyncKicker(TASK, broker, {})

    async def loop(self, stop: asyncio.Event) -> None:
        lane, tuning = self.core.lanes.fetch, self.core.tuning
        while not stop.is_set():
            first = await lane.get()
            batch = list(dict.fromkeys(await gather_batch(lane, first, tuning.dispatch_batch, 0.01)))
            try:
                await self.kicker.kiq(batch)
            except Exception as exc:  # noqa: BLE001 - Redis away: the ids wait in the lane
                await self.core.later(lane, batch, "dispatch", exc)
                continue
            self.core.metrics.dispatched.inc(len(batch))


class Intake:
    """Worker: each message's ids through the fetch stage, at most `fetch_concurrency` at once."""

    def __init__(self, core: Core, fetch: FetchStage, broker: AsyncBroker) -> None:
        self.core, self.fetch, self.broker = core, fetch, broker
        self.slots = asyncio.Semaphore(core.tuning.fetch_concurrency)

        async def fetch_images(image_ids: list[str]) -> None:  # TaskIQ renames what it registers
            await self.handle(image_ids)

        broker.register_task(fetch_images, task_name=TASK)

    async def handle(self, image_ids: list[str]) -> None:
        """Redis is outside this process: a message that is not a short list of imageIds is
        refused (logged and acknowledged), never worked on."""
        wanted = [i for i in image_ids[:MAX_MESSAGE_IDS] if IMAGE_ID.fullmatch(i)]
        if len(wanted) < len(image_ids):
            log.warning("work message refused in part: %d of %d ids kept", len(wanted), len(image_ids))
        self.core.metrics.received.inc(len(wanted))
        await asyncio.gather(*(self._one(image_id) for image_id in wanted))

    async def _one(self, image_id: str) -> None:
        async with self.slots:
            try:
                await self.fetch.fetch(image_id)
            except Exception as exc:  # noqa: BLE001 - our own fault: the job tries again here
                await self.core.later(self.core.lane(image_id), [image_id], "fetch", exc)

    async def loop(self, stop: asyncio.Event) -> None:
        receiver = Receiver(
            self.broker,
            max_async_tasks=self.core.tuning.worker_messages,
            max_prefetch=0,
            run_startup=False,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            propagate_exceptions=False,
        )
        await receiver.listen(stop)


class Collect:
    """Coordinator: outcomes the workers wrote go to the submit lane, and jobs a dead worker took
    after acknowledging are dispatched again once their lease is over."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def loop(self, stop: asyncio.Event) -> None:
        core, tuning = self.core, self.core.tuning
        lease_every = max(tuning.ready_poll, tuning.dispatch_lease / 4)
        next_lease = asyncio.get_running_loop().time() + lease_every
        while not stop.is_set():
            # New outcomes join the lane whatever waits there (a retry in its backoff among them).
            lane = core.lanes.submit
            for image_id in await core.jobs.ready(4 * tuning.submit_batch + lane.qsize()):
                if image_id not in lane:
                    lane.put(image_id)
            if asyncio.get_running_loop().time() >= next_lease:
                next_lease += lease_every
                overdue = await core.jobs.overdue(tuning.dispatch_lease, 10 * tuning.dispatch_batch)
                if overdue:
                    log.warning("%d job(s) past their lease: dispatched again", len(overdue))
                    core.metrics.redispatched.inc(len(overdue))
                for image_id in overdue:
                    core.lanes.fetch.put(image_id)
            await asyncio.sleep(tuning.ready_poll)
