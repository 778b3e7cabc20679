"""Super-resolution on real parts (anvil, the local IPFS node, the daemon): an encrypted LR image
registered with the SR model comes back as a 4x image sealed to its owner alone, named by CID and
sha256 in a document whose hash is on chain; inputs past the card's limits, and envelopes that
name no key to seal the output to, end in their reasons."""

import asyncio
import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from oracle.crypto.envelope import EnvelopeError, open_envelope
from oracle.crypto.keys import oracle_identity
from oracle.daemon.app import run_daemon
from oracle.daemon.stages import classify, upscale
from oracle.dev.anvil import dev_patient_identity
from oracle.dev.ipfs import IpfsNode
from oracle.document import ResultDocument, verify
from oracle.ipfs.errors import PinningError
from oracle.ipfs.pinata import PinataClient
from oracle.ml.card import ModelCard
from oracle.ml.cards import AnyCard
from oracle.ml.inference import Predictor
from oracle.ml.sr.card import SrCard
from oracle.ml.sr.data import bundled, load_rgb
from oracle.ml.sr.infer import CONSISTENCY_CEILING_DB
from tests.oracle.daemon_support import (
    DEFAULT_MODEL,
    Stack,
    envelope,
    register,
    send_registration,
    until_jobs_settled,
    until_settled,
    upload,
)
from tests.oracle.test_confidential import PATIENT, failure_reasons, gateway_bytes, settled_document
from tests.stores import job_rows
from tests.support import png, tiny_sr_checkpoint

OTHER_PATIENT = 3


@pytest.fixture(scope="module")
def sr_card(checkpoint: tuple[Path, ModelCard]) -> SrCard:
    return tiny_sr_checkpoint(checkpoint[0])  # beside the classifier: one catalog serves both


@pytest.fixture(scope="module")
def deployed_cards(checkpoint: tuple[Path, ModelCard], sr_card: SrCard) -> list[AnyCard]:
    return [checkpoint[1], sr_card]


def lr_png(width: int, height: int) -> bytes:
    """A real photograph at `width` x `height`, as PNG."""
    photo = Image.fromarray(load_rgb(bundled(["coffee.png"])[0]))
    buffer = io.BytesIO()
    photo.resize((width, height), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_an_encrypted_lr_image_comes_back_4x_larger_sealed_to_its_owner_alone(
    stack: Stack, ipfs_node: IpfsNode, sr_card: SrCard
) -> None:
    image = lr_png(60, 44)
    image_id, document = await settled_document(
        stack, stack.settings, lambda: register(stack, image, PATIENT, sr_card.model_id)
    )
    record = await stack.registry.image(image_id)
    assert record.status == Status.CLASSIFIED
    assert verify(document, bytes.fromhex(record.result_hash.removeprefix("0x")))
    assert document["task"] == "super-resolution"
    assert document["model_id"] == "0x" + sr_card.model_id.hex()
    assert "label" not in document
    assert "probabilities" not in document
    assert document["content_sha256"] == hashlib.sha256(image).hexdigest()
    measures = document["measures"]
    assert (measures["input_width"], measures["input_height"]) == (60, 44)
    assert (measures["output_width"], measures["output_height"]) == (240, 176)
    sealed = await gateway_bytes(ipfs_node, document["outputs"]["image"])
    deployment = stack.deployment
    owner_key = dev_patient_identity(PATIENT, deployment.chain_id, deployment.address)
    opened = open_envelope(sealed, [owner_key])
    assert hashlib.sha256(opened.image).hexdigest() == document["outputs"]["image_sha256"]
    assert opened.binding.owner == dev_account(PATIENT).address.lower()
    assert opened.binding.media_type == "image/png"
    with Image.open(io.BytesIO(opened.image)) as output:
        assert (output.mode, output.size) == ("RGB", (240, 176))
    assert stack.settings.oracle_age_key is not None
    strangers = [
        oracle_identity(stack.settings),
        dev_patient_identity(OTHER_PATIENT, deployment.chain_id, deployment.address),
    ]
    for stranger in strangers:
        with pytest.raises(EnvelopeError):
            open_envelope(sealed, [stranger])


async def test_inputs_past_the_cards_limits_and_envelopes_without_the_owners_key_fail_with_reasons(
    stack: Stack, sr_card: SrCard
) -> None:
    """A classifier would read a reduced copy of a large image; an SR model reads every pixel, so
    its card's limits refuse what would cost too much (pixels, or a side), before any inference."""
    side = int(sr_card.input.max_pixels**0.5) + 1
    model = sr_card.model_id
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(stack.settings, stop))
    try:
        too_many = await register(stack, lr_png(side, side), PATIENT, model)
        too_long = await register(stack, lr_png(sr_card.input.max_side + 1, 2), PATIENT, model)
        sealed = await envelope(stack, lr_png(32, 32), PATIENT, reply=False)
        no_key = await send_registration(stack, await upload(stack, sealed), PATIENT, model_id=model)
        ids = [too_many, too_long, no_key]
        await until_settled(stack, ids)
        await until_jobs_settled([stack.settings], ids)
    finally:
        stop.set()
        await daemon
    reasons = await failure_reasons(stack)
    assert [reasons[i] for i in ids] == [
        FailureReason.TOO_LARGE,
        FailureReason.TOO_LARGE,
        FailureReason.WRONG_BINDING,
    ]


def test_the_same_picture_goes_to_the_classifier_through_the_tissue_gate_only() -> None:
    """The input gate is the classifier's: a photograph is no tissue, but any picture may be upscaled."""
    from oracle.ml.cards import input_policy

    classifier = input_policy(ModelCard.model_construct(task="classification"), 10**6)
    upscaler = input_policy(SrCard.model_construct(), 10**6)
    assert classifier.tissue
    assert classifier.refuse_side is None
    assert not upscaler.tissue
    assert upscaler.max_pixels == min(10**6, SrCard.model_fields["input"].default.max_pixels)


def flat_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (180, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def settled_together(stack: Stack, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The daemon started after these registrations, so that one micro-batch takes them all (it
    waits up to 5 s for them), and run until each is settled: the job rows."""
    settings = stack.settings.tuned(
        classify_batch=len(ids), classify_wait=5.0, retry_delay=0.2, max_attempts=2
    )
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    try:
        await until_settled(stack, ids)
        await until_jobs_settled([settings], ids)
    finally:
        stop.set()
        await daemon
    return await job_rows(settings.database)


async def test_a_flat_one_pixel_high_image_is_upscaled_with_finite_measures_beside_an_honest_one(
    stack: Stack, sr_card: SrCard
) -> None:
    """Upscaled back down, a flat image is its input exactly: an infinite PSNR, which no result
    document can hold. The measure stops at its ceiling; neither image pays for the other."""
    model = sr_card.model_id
    ids = [
        await register(stack, flat_png(40, 1), PATIENT, model),
        await register(stack, lr_png(40, 30), PATIENT, model),
    ]
    jobs = await settled_together(stack, ids)
    assert [(await stack.registry.image(i)).status for i in ids] == [Status.CLASSIFIED] * 2
    flat, honest = (jobs[i]["document"]["measures"]["consistency_psnr_db"] for i in ids)
    assert flat == CONSISTENCY_CEILING_DB
    assert 0 < honest < CONSISTENCY_CEILING_DB


POISON_WIDTHS = (37, 370)  # the poisoned image's width (SR input, tissue), where a step sees pixels only


def poison(monkeypatch: pytest.MonkeyPatch, step: str, poisoned_id: str) -> None:
    """Makes `step` raise for the poisoned image alone (known by its imageId, or by its width
    where the step sees pixels only)."""

    def is_poisoned(thing: Any) -> bool:
        return thing.width in POISON_WIDTHS if isinstance(thing, Image.Image) else thing == poisoned_id

    def raising(original: Callable[..., Any], pick: Callable[..., Any], error: type[Exception]) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if is_poisoned(pick(*args, **kwargs)):
                raise error(f"{step} broke for this image")
            return original(*args, **kwargs)

        return wrapper

    if step == "forward":
        assess = Predictor.assess
        pick_any = lambda _, images: next((i for i in images if is_poisoned(i)), None)  # noqa: E731
        monkeypatch.setattr(Predictor, "assess", raising(assess, pick_any, ValueError))
    elif step in ("classification document", "super-resolution document"):
        module = classify if step.startswith("classification") else upscale
        pick_id = lambda **fields: fields["image_id"]  # noqa: E731
        monkeypatch.setattr(module, "ResultDocument", raising(ResultDocument, pick_id, ValueError))
    elif step == "render":
        monkeypatch.setattr(upscale, "render", raising(upscale.render, lambda _, image: image, ValueError))
    else:
        pick_name = lambda _, data, name: name.split(".")[0]  # noqa: E731
        monkeypatch.setattr(PinataClient, "pin_file", raising(PinataClient.pin_file, pick_name, PinningError))


def tissue_png(width: int) -> bytes:
    image = Image.open(io.BytesIO(png(np.random.default_rng(width), malignant=True)))
    buffer = io.BytesIO()
    image.crop((0, 0, width, image.height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "step", ["forward", "classification document", "render", "super-resolution document", "pin"]
)
async def test_a_step_that_throws_for_one_image_of_a_batch_costs_that_image_alone(
    stack: Stack, sr_card: SrCard, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Every exception while making one image's result is that image's verdict, at once (the
    same bytes would throw again); the pinning service's trouble alone is tried again, for that
    image, then fails it. The other image of the batch gets its result either way."""
    if step in ("render", "super-resolution document", "pin"):
        model, poisoned_image, honest_image = sr_card.model_id, lr_png(37, 30), lr_png(40, 30)
    else:
        model, poisoned_image, honest_image = DEFAULT_MODEL, tissue_png(370), tissue_png(400)
    poisoned = await register(stack, poisoned_image, PATIENT, model)
    honest = await register(stack, honest_image, PATIENT, model)
    poison(monkeypatch, step, poisoned)
    jobs = await settled_together(stack, [poisoned, honest])
    assert (await stack.registry.image(honest)).status == Status.CLASSIFIED
    assert jobs[honest]["outcome"] == "result"
    assert (await failure_reasons(stack))[poisoned] == FailureReason.MODEL_ERROR
    error = jobs[poisoned]["error"]
    if step == "pin":
        assert error.startswith("classified in vain 2 times: PinningError"), error
    else:
        assert error == f"ValueError: {step} broke for this image", error


async def test_upscaling_has_a_lane_of_its_own_and_classifications_never_wait_behind_it(
    stack: Stack, sr_card: SrCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three 256x256 upscaling jobs pushed an honest classification from 1.3 s to 118.6 s: both
    ran in the classify stage's one inference thread. Super-resolution has its own lane and
    thread now: while every upscaling is held (here until the classification is on chain), a
    classification registered after them goes through."""
    entered, release = threading.Event(), threading.Event()
    render = upscale.render

    def held(upscaler: Any, image: Image.Image) -> Any:
        entered.set()
        assert release.wait(120), "never released"
        return render(upscaler, image)

    monkeypatch.setattr(upscale, "render", held)
    upscaled = [await register(stack, lr_png(40, 30), PATIENT, sr_card.model_id) for _ in range(3)]
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(stack.settings, stop))
    try:
        assert await asyncio.to_thread(entered.wait, 60), "no upscaling began"
        classified = await register(stack, tissue_png(400), PATIENT)
        await until_settled(stack, [classified])
        assert {(await stack.registry.image(i)).status for i in upscaled} == {Status.PENDING}
        release.set()
        await until_settled(stack, upscaled)
        await until_jobs_settled([stack.settings], [classified, *upscaled])
    finally:
        release.set()
        stop.set()
        await daemon
    statuses = {(await stack.registry.image(i)).status for i in [classified, *upscaled]}
    assert statuses == {Status.CLASSIFIED}
