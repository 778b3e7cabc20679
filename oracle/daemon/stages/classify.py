"""Classify: micro-batches of decoded images, one forward pass per model, each result written as
a salted document into a job that still waits for exactly that image (compare-and-set). A
super-resolution model's images take the image-to-image path of upscale.py."""

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, cast

from oracle.chain.reasons import FailureReason
from oracle.crypto.envelope import Binding, seal
from oracle.daemon.core import Core, gather_batch
from oracle.daemon.ports import Pinner
from oracle.daemon.stages.fetch import Decoded
from oracle.daemon.stages.outcome import Outcome, classified, job_fields
from oracle.daemon.stages.upscale import Upscaling
from oracle.daemon.writes import Classified
from oracle.document import UNCALIBRATED, ResultDocument
from oracle.errors import HistochainError
from oracle.ipfs.errors import PinningError
from oracle.ml.catalog import ModelCatalog
from oracle.ml.names import SUPER_RESOLUTION_TASK
from oracle.store.models import Job, JobState

if TYPE_CHECKING:
    from oracle.ml.inference import Predictor
    from oracle.ml.sr.infer import Upscaler

log = logging.getLogger(__name__)


class ClassifyStage:
    def __init__(
        self, core: Core, catalog: ModelCatalog, oracle_address: str, pinner: Pinner | None = None
    ) -> None:
        """`pinner`: where explanations for owners who named their key go; None makes none."""
        self.core, self.catalog, self.oracle_address, self.pinner = core, catalog, oracle_address, pinner
        # Inference gets a thread of its own: in the shared pool it would queue behind decoding.
        # Super-resolution has another, and a lane of its own (Lanes.upscale): an SR model reads
        # every pixel of every image, and classifications must not wait behind it.
        self.inference = ThreadPoolExecutor(1, thread_name_prefix="classify")
        self.upscaling = Upscaling(
            core, ThreadPoolExecutor(1, thread_name_prefix="upscale"), oracle_address, pinner
        )

    async def loop(self, stop: asyncio.Event) -> None:
        queue, tuning = self.core.lanes.classify, self.core.tuning
        while not stop.is_set():
            first = await queue.get()
            batch = await gather_batch(queue, first, tuning.classify_batch, tuning.classify_wait)
            handed = 0
            try:
                handed = await self.classify_batch(batch)
            finally:
                await self.core.lanes.budget.release(sum(decoded.nbytes for decoded in batch) - handed)

    async def upscale_loop(self, stop: asyncio.Event) -> None:
        """The SR lane: one model's images at a time, in the upscaling thread."""
        lane = self.core.lanes.upscale
        while not stop.is_set():
            model_id, items = await lane.get()
            try:
                await self._model_batch(model_id, items)
            finally:
                await self.core.lanes.budget.release(sum(decoded.nbytes for _, decoded in items))

    async def classify_batch(self, batch: list[Decoded]) -> int:
        """One forward pass per model over the images whose jobs still wait for exactly them; a
        super-resolution model's images go to the SR lane. Returns the bytes handed to it (their
        budget is released there)."""
        core = self.core
        jobs = {
            job.image_id: job for job in await core.jobs.load([d.image_id for d in batch], [JobState.QUEUED])
        }
        by_model: dict[str, list[tuple[Job, Decoded]]] = {}
        for decoded in batch:
            job = jobs.get(decoded.image_id)
            if job is not None and job.block_hash == decoded.block_hash:
                del jobs[decoded.image_id]  # a duplicate later in the batch is dropped
                by_model.setdefault(job.model_id, []).append((job, decoded))
        handed = 0
        for model_id, items in by_model.items():
            if self._upscales(model_id):
                self.core.lanes.upscale.put_nowait((model_id, items))
                handed += sum(decoded.nbytes for _, decoded in items)
            else:
                await self._model_batch(model_id, items)
        return handed

    def _upscales(self, model_id: str) -> bool:
        try:
            return self.catalog.card(model_id).task == SUPER_RESOLUTION_TASK
        except HistochainError:
            return False  # an unknown model fails in the classification path, with its reason

    async def _model_batch(self, model_id: str, items: list[tuple[Job, Decoded]]) -> None:
        try:
            await self._classify(model_id, items)
        except Exception as exc:  # noqa: BLE001 - re-fetch and retry, up to max_attempts
            await self._again([job for job, _ in items], exc)

    async def _again(self, jobs: list[Job], exc: Exception) -> None:
        """Trouble that is not the image's (a store, the pinning service): fetched and tried
        again, up to max_attempts, then failed."""
        core, attempts = self.core, self.core.tuning.max_attempts
        again = []
        for job in jobs:
            if core.tries["classify", job.image_id] + 1 < attempts:
                again.append(job.image_id)
                continue
            error = f"classified in vain {attempts} times: {type(exc).__name__}: {exc}"
            await core.fail(job, FailureReason.MODEL_ERROR, error)
        await core.later(core.lanes.fetch, again, "classify", exc)

    async def _classify(self, model_id: str, items: list[tuple[Job, Decoded]]) -> None:
        """Routes by the model's task; either way, results are written compare-and-set, then sent.
        What goes wrong while making one image's result is that image's verdict (MODEL_ERROR, at
        once: the same bytes would fail the same way), never its batch's; only a pinning failure
        is tried again."""
        core = self.core
        try:
            task = self.catalog.card(model_id).task
            thread = self.upscaling.inference if task == SUPER_RESOLUTION_TASK else self.inference
            model = await asyncio.get_running_loop().run_in_executor(thread, self.catalog.model, model_id)
        except (HistochainError, RuntimeError) as exc:
            for job, _ in items:
                await core.fail(job, FailureReason.MODEL_ERROR, f"{type(exc).__name__}: {exc}")
            return
        if task == SUPER_RESOLUTION_TASK:
            outcomes = await self.upscaling.results(model_id, cast("Upscaler", model), items)
        else:
            outcomes = await self._classifications(model_id, cast("Predictor", model), items)
        classified = []
        for job, outcome in outcomes:
            if isinstance(outcome, Classified):
                classified.append(outcome)
            elif isinstance(outcome, PinningError):
                await self._again([job], outcome)
            else:
                log.warning("image %s: no result: %s", job.image_id, type(outcome).__name__)
                await core.fail(job, FailureReason.MODEL_ERROR, f"{type(outcome).__name__}: {outcome}")
        written = await core.jobs.classified(classified)
        core.metrics.stale_writes.labels("classified").inc(len(classified) - len(written))
        for image_id in written:
            core.forget(image_id)
            core.lanes.submit.put(image_id)

    async def _classifications(
        self, model_id: str, predictor: "Predictor", items: list[tuple[Job, Decoded]]
    ) -> list[tuple[Job, Outcome]]:
        """One forward pass for the batch; if it raises, one per image, so that an image that
        breaks the pass fails alone."""
        core = self.core
        try:
            assessment = await asyncio.get_running_loop().run_in_executor(
                self.inference, predictor.assess, [d.image for _, d in items]
            )
        except Exception as exc:  # noqa: BLE001 - sorted out below, image by image
            if len(items) == 1:
                return [(items[0][0], exc)]
            alone = [await self._classifications(model_id, predictor, [item]) for item in items]
            return [outcome for outcomes in alone for outcome in outcomes]
        card = predictor.card
        kept = []
        for (job, decoded), p, refused in zip(items, assessment.p, assessment.refused, strict=True):
            if refused is None:
                kept.append((job, decoded, float(p)))
            else:
                await core.fail(job, FailureReason.NOT_TISSUE, f"not tissue (features): {refused}")
        explanations = await asyncio.gather(
            *(self._explain(predictor, job, decoded, p >= card.threshold) for job, decoded, p in kept)
        )
        outcomes: list[tuple[Job, Outcome]] = []
        for (job, decoded, positive), outputs in zip(kept, explanations, strict=True):
            try:
                outcomes.append((job, self._classified(model_id, predictor, job, decoded, positive, outputs)))
            except Exception as exc:  # noqa: BLE001 - this image's verdict
                outcomes.append((job, exc))
        return outcomes

    def _classified(
        self,
        model_id: str,
        predictor: "Predictor",
        job: Job,
        decoded: Decoded,
        positive: float,
        outputs: dict[str, str],
    ) -> Classified:
        card, deployment = predictor.card, self.core.chain.deployment
        label = card.labels[1] if positive >= card.threshold else card.labels[0]
        document = ResultDocument(
            **job_fields(job, decoded.content_sha256, model_id, self.oracle_address, deployment),
            model_name=card.name,
            label=label,
            probabilities={card.labels[0]: 1 - positive, card.labels[1]: positive},
            threshold=card.threshold,
            calibration=card.calibration.describe() if card.calibration else UNCALIBRATED,
            outputs=outputs,
        )
        return classified(job, document)

    async def _explain(
        self, predictor: "Predictor", job: Job, decoded: Decoded, positive: bool
    ) -> dict[str, str]:
        """The Grad-CAM map for the owner, sealed to the key their envelope named, pinned: its CID
        and the sha256 of the PNG inside. A pinning failure (after the client's retries) costs the
        explanation, not the result: the document says it is unavailable."""
        if self.pinner is None or decoded.reply_to is None:
            return {}
        deployment = self.core.chain.deployment
        try:
            png = await asyncio.get_running_loop().run_in_executor(
                self.inference, predictor.explain, decoded.image, positive
            )
            binding = Binding.of(job.owner, deployment.chain_id, deployment.address, "image/png", len(png))
            sealed = seal(png, binding, [decoded.reply_to])
            pin = await self.pinner.pin_file(sealed, f"{job.image_id}.grad-cam.age")
        except PinningError as exc:
            log.warning("image %s: explanation not pinned: %s", job.image_id, exc)
            return {"grad_cam_unavailable": f"pinning failed: {exc}"[:200]}
        except Exception as exc:  # one image's optional output never fails its batch
            log.exception("image %s: no explanation", job.image_id)
            return {"grad_cam_unavailable": f"not made: {type(exc).__name__}"}
        return {"grad_cam": pin.cid, "grad_cam_sha256": hashlib.sha256(png).hexdigest()}

    def close(self) -> None:
        self.inference.shutdown(cancel_futures=True)
        self.upscaling.inference.shutdown(cancel_futures=True)
