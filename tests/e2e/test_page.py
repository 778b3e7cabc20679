"""A patient's path through the page, and its failures, in headless Chromium on the real stack."""

import hashlib
import io
import json
import os
import re
import signal
import sqlite3
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, expect

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import image_id_for
from oracle.dev.anvil import dev_patient_identity
from oracle.dev.site import page_config
from oracle.jcs import commitment
from oracle.settings import Settings
from tests.e2e.conftest import MAINNET, MAX_UPLOAD, PATIENT, PageStack, Session, open_page
from tests.support import png

ORACLE_WAIT = 90_000
VIEWER = 6


def image_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def jobs(stack: PageStack) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{stack.data_dir / 'oracle.db'}?mode=ro", uri=True)


def connect(session: Session, stack: PageStack) -> None:
    session.page.get_by_role("button", name="Connect wallet").click()
    expect(session.page.locator("#network")).to_have_text("histochain devnet")
    expect(session.page.locator("#model")).to_be_enabled()


def failure_reason(session: Session, stack: PageStack) -> int | None:
    """The oracle's stored reason for the image the page last uploaded."""
    cid = session.page.locator("#local-cid").text_content()
    with jobs(stack) as db:
        row = db.execute(
            "SELECT failure_reason FROM jobs WHERE image_id = ?",
            (image_id_for(dev_account(PATIENT).address, cid),),
        ).fetchone()
    return None if row is None else row[0]


def step_state(session: Session, step: str) -> str | None:
    return session.page.locator(f'#steps [data-step="{step}"]').get_attribute("data-state")


def test_upload_register_and_read_a_verified_result(session: Session, page_stack: PageStack, tmp_path: Path):
    page, shot = session.page, session.shot
    shot("opened")
    connect(session, page_stack)
    expect(page.locator("#model option")).to_have_count(len(page_stack.deployment.models))
    expect(page.locator("#fee")).to_have_text("free on this chain")
    shot("connected")

    data = png(np.random.default_rng(21), malignant=True)
    page.locator("#file").set_input_files(image_file(tmp_path, "slide.png", data))
    expect(page.locator('#steps [data-step="check"]')).to_have_attribute("data-state", "done")
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#key-note")).to_contain_text("costs no gas")  # said before the wallet asks
    assert "personal_sign" not in session.wallet["calls"]
    shot("chosen")

    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator('#steps [data-step="mined"]')).to_have_attribute("data-state", "done")
    shot("mined")
    assert session.wallet["calls"].count("personal_sign") == 1  # the key, unlocked once
    cid = page.locator("#local-cid").text_content()
    assert cid.startswith("bafy")
    with urllib.request.urlopen(f"{page_stack.ipfs_url}/ipfs/{cid}") as response:
        served = response.read()
    assert served.startswith(b"age-encryption.org/v1\n")
    assert not {data[i : i + 64] for i in range(len(data) - 63)} & {
        served[i : i + 64] for i in range(len(served) - 63)
    }
    expect(page.locator("#result-status")).to_have_attribute("data-status", "classified", timeout=ORACLE_WAIT)
    shot("classified")

    page.get_by_role("button", name="Sign in and read the result").click()
    expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
    shot("verified")

    image_id = image_id_for(dev_account(PATIENT).address, cid)
    with jobs(page_stack) as db:
        row = db.execute("SELECT document, result_hash FROM jobs WHERE image_id = ?", (image_id,)).fetchone()
    document = json.loads(row[0])
    assert "0x" + commitment(document).hex() == row[1]
    assert page.locator("#result-hash").text_content() == row[1]
    assert page.locator("#result-label").inner_text() == document["label"]
    assert document["content_sha256"] == hashlib.sha256(data).hexdigest()
    assert (
        float(page.locator("#result-probability").get_attribute("value") or "nan")
        == document["probabilities"]["malignant"]
    )
    expect(page.locator("#result-calibration")).to_contain_text(document["calibration"])
    # the heat map: sealed to the patient's key, opened here, checked against the signed document
    expect(page.locator("#heat-figure")).to_have_attribute(
        "data-sha256", document["outputs"]["grad_cam_sha256"]
    )
    assert page.locator("#heat-canvas canvas").evaluate("c => [c.width, c.height]") == [700, 460]
    page.locator("#card-details summary").click()
    expect(page.locator("#model-card")).to_contain_text("Not a diagnosis")
    expect(page.locator("#model-card")).to_contain_text("synthetic")
    row = page.locator(f'#mine li[data-image-id="{image_id}"]')
    expect(row).to_contain_text("classified")
    row.get_by_role("button", name="Show image").click()
    expect(page.locator("#viewer-figure")).to_have_attribute("data-sha256", hashlib.sha256(data).hexdigest())
    assert page.locator("#viewer-img").evaluate(
        "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
    ) == [
        700,
        460,
    ]
    assert session.wallet["calls"].count("personal_sign") == 2  # the key, then the API sign-in
    shot("my-image")

    viewer = dev_account(VIEWER).address
    page.get_by_label("Their Ethereum address").fill(viewer)
    page.get_by_role("button", name="Sign and share").click()
    expect(page.locator("#grants li")).to_contain_text("may read")
    expect(page.locator("#share-message")).to_contain_text("Shared")
    with jobs(page_stack) as db:
        grant = db.execute(
            "SELECT image_id, revoked_at FROM grants WHERE viewer = ? AND owner = ?",
            (viewer, dev_account(PATIENT).address),
        ).fetchone()
    assert grant == (image_id, None)
    page.locator("#grants").get_by_role("button", name="Revoke").click()
    expect(page.locator("#share-message")).to_contain_text("Revoked")
    expect(page.locator('#grants li[data-state="revoked"]')).to_have_count(1)
    with jobs(page_stack) as db:
        assert (
            db.execute("SELECT revoked_at FROM grants WHERE viewer = ?", (viewer,)).fetchone()[0] is not None
        )
    shot("shared")


def test_a_rejected_signature_is_explained_and_can_be_retried(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request
):
    phone = {"width": 390, "height": 844}
    context, session = open_page(browser, page_stack, request.node.name, account=3, viewport=phone)
    page = session.page
    try:
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Connect wallet")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#network")).to_have_text("histochain devnet")
        page.locator("#file").set_input_files(
            image_file(tmp_path, "b.png", png(np.random.default_rng(5), malignant=False))
        )
        expect(page.get_by_role("button", name="Upload and register")).to_be_enabled()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.evaluate("window.__testWallet.rejectNext.add('personal_sign')")
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#register-message")).to_contain_text(
            "You rejected the request in your wallet. Nothing was sent"
        )
        assert step_state(session, "key") == "failed"
        assert not [url for url in requests if url.startswith(page_stack.ipfs_url)], (
            "nothing is uploaded before the key"
        )

        page.evaluate("window.__testWallet.rejectNext.add('eth_sendTransaction')")
        page.get_by_role("button", name="Try again").click()
        expect(page.locator("#register-message")).to_contain_text("was uploaded to IPFS")
        expect(page.locator("#register-message")).to_contain_text("it is not registered")
        expect(page.locator("#register-message")).not_to_contain_text("Nothing was sent")
        assert step_state(session, "sign") == "failed"
        uploaded_cid = page.locator("#local-cid").text_content()
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
        session.shot("rejected-on-a-phone")

        page.get_by_role("button", name="Try again").click()
        expect(page.locator('#steps [data-step="mined"]')).to_have_attribute("data-state", "done")
        assert page.locator("#local-cid").text_content() == uploaded_cid  # the same envelope, not a new one
        session.shot("retried")
    finally:
        context.close()


def test_wrong_network_offers_to_add_and_switch(browser: Browser, page_stack: PageStack, request):
    context, session = open_page(browser, page_stack, request.node.name, account=4, chain_id=MAINNET)
    page = session.page
    try:
        page.get_by_role("button", name="Connect wallet").click()
        banner = page.locator("#network-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(f"chain {MAINNET}")
        expect(page.locator("#model")).to_be_disabled()
        session.shot("wrong-network")

        page.get_by_role("button", name="Switch network").click()
        expect(banner).to_be_hidden()
        expect(page.locator("#model")).to_be_enabled()
        wallet = session.wallet
        assert wallet["chainId"] == page_stack.chain_id
        assert wallet["added"]["chainId"] == hex(page_stack.chain_id)
        assert wallet["added"]["rpcUrls"] == [page_stack.rpc]
        session.shot("switched")
    finally:
        context.close()


def test_files_the_oracle_could_not_read_are_refused_before_upload(
    session: Session, page_stack: PageStack, tmp_path: Path
):
    page = session.page
    connect(session, page_stack)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    oversized = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD)
    page.locator("#file").set_input_files(image_file(tmp_path, "huge.png", oversized))
    expect(page.locator("#register-message")).to_contain_text("the limit is 1.0 MiB")
    expect(page.get_by_role("button", name="Upload and register")).to_be_disabled()
    session.shot("oversized")

    page.locator("#file").set_input_files(image_file(tmp_path, "notes.png", b"just some text, not an image"))
    expect(page.locator("#register-message")).to_contain_text("is not a PNG, JPEG, TIFF, WebP or BMP image")
    expect(page.get_by_role("button", name="Upload and register")).to_be_disabled()
    session.shot("not-an-image")
    assert not [url for url in requests if url.startswith(page_stack.ipfs_url)]


def test_an_oracle_failure_shows_its_reason(session: Session, page_stack: PageStack, tmp_path: Path):
    page = session.page
    connect(session, page_stack)
    bomb = io.BytesIO()
    Image.new("1", (10_000, 8_000)).save(bomb, format="PNG")
    assert len(bomb.getvalue()) < MAX_UPLOAD
    page.locator("#file").set_input_files(image_file(tmp_path, "bomb.png", bomb.getvalue()))
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#result-status")).to_have_attribute("data-status", "failed", timeout=ORACLE_WAIT)
    expect(page.locator("#result-status")).to_contain_text("too large")
    expect(page.get_by_role("button", name="Choose another image")).to_be_visible()
    assert failure_reason(session, page_stack) == FailureReason.TOO_LARGE
    session.shot("oracle-failed")


def test_an_image_that_is_not_tissue_is_refused_and_the_owner_reads_why(
    session: Session, page_stack: PageStack, tmp_path: Path
):
    page = session.page
    connect(session, page_stack)
    square = io.BytesIO()
    Image.new("RGB", (300, 300), (40, 60, 220)).save(square, format="PNG")
    page.locator("#file").set_input_files(image_file(tmp_path, "square.png", square.getvalue()))
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#result-status")).to_have_attribute("data-status", "failed", timeout=ORACLE_WAIT)
    expect(page.locator("#result-status")).to_contain_text("does not look like a tissue slide")
    page.get_by_role("button", name="Sign in and see why").click()
    expect(page.locator("#result-why")).to_contain_text("not tissue (flat)")
    expect(page.locator("#result-why")).to_contain_text("a drawing or a solid colour")
    assert failure_reason(session, page_stack) == FailureReason.NOT_TISSUE
    session.shot("not-tissue")


def test_the_page_is_static_and_carries_no_secret(page_stack: PageStack):
    served = {
        path.name: path.read_text()
        for path in page_stack.site.rglob("*")
        if path.is_file() and path.suffix in {".html", ".js", ".json", ".css"}
    }
    assert {"index.html", "app.js", "config.json", "style.css"} <= served.keys()
    for index in range(10):
        key = dev_account(index).key.hex()
        assert not any(key in text for text in served.values()), f"dev key {index} is in the page"
    config = json.loads(served["config.json"])
    assert config["registry"]["address"] == page_stack.deployment.address

    custom = Settings(ipfs_token="a-real-token-of-the-operator", pinata_jwt="eyJ-a-pinata-jwt")
    text = json.dumps(page_config(custom, page_stack.deployment))
    assert "a-real-token-of-the-operator" not in text
    assert "eyJ-a-pinata-jwt" not in text
    assert re.search(r'"provider": "pinata"', text)


def rpc(stack: PageStack, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(stack.rpc, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["result"]


def test_a_request_the_oracle_never_answered_can_be_cancelled(
    session: Session, page_stack: PageStack, tmp_path: Path
):
    page = session.page
    connect(session, page_stack)
    assert page_stack.oracle.pid is not None
    os.kill(page_stack.oracle.pid, signal.SIGSTOP)
    try:
        page.locator("#file").set_input_files(
            image_file(tmp_path, "late.png", png(np.random.default_rng(8), malignant=False))
        )
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#result-status")).to_have_attribute("data-status", "pending")
        rpc(page_stack, "evm_increaseTime", page_stack.deployment.request_timeout + 1)
        rpc(page_stack, "evm_mine")
        expect(page.locator("#result-status")).to_have_attribute("data-status", "timed-out")
        session.shot("timed-out")
        page.get_by_role("button", name="Cancel the request and get the fee back").click()
        expect(page.locator("#result-status")).to_have_attribute("data-status", "cancelled")
        session.shot("cancelled")
    finally:
        os.kill(page_stack.oracle.pid, signal.SIGCONT)


def test_a_dropped_file_is_taken_and_a_refused_upload_token_is_explained(
    session: Session, page_stack: PageStack
):
    page = session.page
    connect(session, page_stack)
    data = png(np.random.default_rng(34), malignant=False)
    page.evaluate(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "dropped.png", { type: "image/png" }));
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer }));
        }""",
        list(data),
    )
    expect(page.locator('#steps [data-step="check"]')).to_have_attribute("data-state", "done")
    expect(page.locator("#preview-caption")).to_contain_text("dropped.png, PNG")

    page.get_by_text("Advanced: where the encrypted image is stored").click()  # a developer's setting
    page.get_by_label("Upload token").fill("not-the-node-token")
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#register-message")).to_contain_text("refused the upload token")
    assert step_state(session, "upload") == "failed"
    assert "eth_sendTransaction" not in session.wallet["calls"]
    session.shot("token-refused")

    page.get_by_label("Upload to", exact=True).select_option("pinata")
    page.get_by_label("Upload token").fill("")
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#register-message")).to_contain_text("Enter the upload token")
    session.shot("pinata-needs-a-token")


def test_a_saved_key_opens_my_images_later_without_a_signature(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request
):
    """For wallets that do not sign deterministically: the key is saved to a file once, and a later
    tab opens the account's images from that file, with no key signature asked."""
    account = 5
    data = png(np.random.default_rng(43), malignant=False)
    context, session = open_page(browser, page_stack, request.node.name, account=account)
    page = session.page
    try:
        connect(session, page_stack)
        page.locator("#file").set_input_files(image_file(tmp_path, "kept.png", data))
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator('#steps [data-step="mined"]')).to_have_attribute("data-state", "done")
        cid = page.locator("#local-cid").text_content()
        with page.expect_download() as download:
            page.get_by_role("button", name="Save my key").click()
        saved = Path(download.value.path()).read_text()
    finally:
        context.close()
    deployment = page_stack.deployment
    assert str(dev_patient_identity(account, deployment.chain_id, deployment.address)) in saved.splitlines()
    assert dev_account(account).address in saved

    context, session = open_page(browser, page_stack, request.node.name + "-later", account=account)
    page = session.page
    try:
        connect(session, page_stack)
        page.locator("#key-file").set_input_files(image_file(tmp_path, "my-key.txt", saved.encode()))
        expect(page.locator("#key-status")).to_contain_text("unlocked")
        row = page.locator(f'#mine li[data-image-id="{image_id_for(dev_account(account).address, cid)}"]')
        row.get_by_role("button", name="Show image").click()
        expect(page.locator("#viewer-figure")).to_have_attribute(
            "data-sha256", hashlib.sha256(data).hexdigest()
        )
        assert "personal_sign" not in session.wallet["calls"]
        session.shot("opened-with-a-saved-key")

        page.locator("#key-file").set_input_files(image_file(tmp_path, "not-a-key.txt", b"hello"))
        expect(page.locator("#mine-message")).to_contain_text("holds no histochain key")
    finally:
        context.close()


def photo_png(width: int, height: int) -> bytes:
    """A real photograph (scikit-image's coffee) at `width` x `height`."""
    from oracle.ml.sr.data import bundled, load_rgb

    buffer = io.BytesIO()
    picture = Image.fromarray(load_rgb(bundled(["coffee.png"])[0]))
    picture.resize((width, height), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_low_resolution_image_comes_back_4x_larger_beside_it_with_a_slider_and_a_download(
    session: Session, page_stack: PageStack, tmp_path: Path
):
    page, shot = session.page, session.shot
    connect(session, page_stack)
    groups = page.locator("#model optgroup")
    expect(groups).to_have_count(2)
    assert sorted(groups.evaluate_all("gs => gs.map(g => g.label)")) == [
        "Classification (benign or malignant)",
        "Super-resolution (4\u00d7 larger image)",
    ]
    page.locator("#model").select_option(page_stack.sr_model_id)

    too_large = photo_png(300, 300)  # past the card's 65,536 pixels
    page.locator("#file").set_input_files(image_file(tmp_path, "large.png", too_large))
    expect(page.locator('#steps [data-step="check"]')).to_have_attribute("data-state", "done")
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#register-message")).to_contain_text("upscales images of at most 65,536 pixels")
    expect(page.locator('#steps [data-step="check"]')).to_have_attribute("data-state", "failed")
    assert "personal_sign" not in session.wallet["calls"]  # refused before the key, the seal, the upload
    assert page.locator("#local-cid").text_content() == "—"

    data = photo_png(48, 40)
    page.locator("#file").set_input_files(image_file(tmp_path, "small.png", data))
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#result-status")).to_have_attribute("data-status", "classified", timeout=ORACLE_WAIT)
    page.get_by_role("button", name="Sign in and read the result").click()
    expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
    cid = page.locator("#local-cid").text_content()
    with jobs(page_stack) as db:
        (stored,) = db.execute(
            "SELECT document FROM jobs WHERE image_id = ?", (image_id_for(dev_account(PATIENT).address, cid),)
        ).fetchone()
    document = json.loads(stored)
    assert document["task"] == "super-resolution"
    expect(page.locator("#sr-figure")).to_have_attribute("data-sha256", document["outputs"]["image_sha256"])
    expect(page.locator("#classification-body")).to_be_hidden()
    output = page.locator("#sr-compare img.compare-output")
    assert output.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])") == [
        192,
        160,
    ]
    slider = page.get_by_label("Compare: your image on the left, the 4\u00d7 image on the right")
    slider.fill("20")
    assert page.locator("#sr-compare img.compare-input").evaluate("img => img.style.clipPath") == (
        "inset(0px 80% 0px 0px)"
    )
    expect(page.locator("#sr-caption")).to_contain_text("48\u00d740 → 192\u00d7160")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the 4\u00d7 image").click()
    saved = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(saved).hexdigest() == document["outputs"]["image_sha256"]
    with Image.open(io.BytesIO(saved)) as image:
        assert image.size == (192, 160)
    shot("upscaled")
