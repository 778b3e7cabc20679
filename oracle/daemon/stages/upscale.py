"""The image-to-image path of the classify stage (super-resolution): each image upscaled alone
(sizes differ), the output PNG sealed to the owner's key from the envelope, pinned, and named by
CID and sha256 in the result document. The output is the result, so a pinning failure is retried,
not dropped; any other error is that image's verdict alone."""

import asyncio
import hashlib
import io
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Final

from PIL import Image

from oracle.chain.reasons import FailureReason
from oracle.crypto.envelope import Binding, seal
from oracle.daemon.core import Core
from oracle.daemon.ports import Pinner
from oracle.daemon.stages.fetch import Decoded
from oracle.daemon.stages.outcome import Outcome, classified, job_fields
from oracle.daemon.writes import Classified
from oracle.document import ResultDocument
from oracle.store.models import Job

if TYPE_CHECKING:
    from oracle.ml.sr.infer import Upscaler

MEDIA_TYPE: Final = "image/png"
NO_REPLY_KEY = (
    "super-resolution seals its output to the owner: the envelope's binding must name reply_to "
    "(the owner's age recipient)"
)


def render(upscaler: "Upscaler", image: Image.Image) -> tuple[bytes, dict[str, int | float]]:
    """The output as PNG, and what the document says about it (run in the inference thread)."""
    import numpy as np

    from oracle.ml.sr.infer import consistency

    output = upscaler.upscale(image)
    buffer = io.BytesIO()
    output.save(buffer, format="PNG", compress_level=6)
    measures: dict[str, int | float] = {
        "scale": upscaler.card.input.scale,
        "input_width": image.width,
        "input_height": image.height,
        "output_width": output.width,
        "output_height": output.height,
        "consistency_psnr_db": round(consistency(np.asarray(image), np.asarray(output)), 3),
    }
    return buffer.getvalue(), measures


class Upscaling:
    def __init__(self, core: Core, inference: Executor, oracle_address: str, pinner: Pinner | None) -> None:
        self.core, self.inference, self.oracle_address, self.pinner = core, inference, oracle_address, pinner

    async def results(
        self, model_id: str, upscaler: "Upscaler", items: list[tuple[Job, Decoded]]
    ) -> list[tuple[Job, Outcome]]:
        """Each image's outcome, made alone (one image's exception is its own); the images without
        their owner's key fail here."""
        done: list[tuple[Job, Outcome]] = []
        pinner = self.pinner
        for job, decoded in items:
            key = decoded.reply_to
            if key is None:
                await self.core.fail(job, FailureReason.WRONG_BINDING, NO_REPLY_KEY)
                continue
            if pinner is None:
                await self.core.fail(job, FailureReason.MODEL_ERROR, "this oracle has nowhere to pin outputs")
                continue
            try:
                outcome: Outcome = await self._one(model_id, upscaler, job, decoded, key, pinner)
            except Exception as exc:  # noqa: BLE001 - this image's outcome
                outcome = exc
            done.append((job, outcome))
        return done

    async def _one(
        self, model_id: str, upscaler: "Upscaler", job: Job, decoded: Decoded, reply_to: str, pinner: Pinner
    ) -> Classified:
        """Rendered, then its document made and hashed with every field but the output's CID (so
        nothing is pinned for a result that cannot be written), then sealed, pinned and named."""
        deployment = self.core.chain.deployment
        loop = asyncio.get_running_loop()
        png, measures = await loop.run_in_executor(self.inference, render, upscaler, decoded.image)
        outputs = {"image": "", "image_sha256": hashlib.sha256(png).hexdigest(), "image_type": MEDIA_TYPE}
        draft = ResultDocument(
            **job_fields(job, decoded.content_sha256, model_id, self.oracle_address, deployment),
            model_name=upscaler.card.name,
            task="super-resolution",
            calibration=None,
            measures=measures,
            outputs=outputs,
        )
        classified(job, draft)
        binding = Binding.of(job.owner, deployment.chain_id, deployment.address, MEDIA_TYPE, len(png))
        pin = await pinner.pin_file(seal(png, binding, [reply_to]), f"{job.image_id}.x4.age")
        return classified(job, draft.model_copy(update={"outputs": outputs | {"image": pin.cid}}))
