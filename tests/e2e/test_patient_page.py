"""The page as a patient and a clinician meet it (#17): each defect found by trying it has its test;
the viewer's journey; account switches and reloads; and every main state held to axe-core, a phone
viewport and the keyboard. Debian's Chromium against the real stack (conftest.py)."""

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, Route, expect
from web3 import HTTPProvider, Web3

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deploy import transact as send
from oracle.crypto.envelope import seal_image
from oracle.dev.anvil import dev_patient_identity
from oracle.settings import DEV_IPFS_TOKEN
from tests.e2e.conftest import MAINNET, PageStack, Session, open_page
from tests.e2e.test_page import ORACLE_WAIT, image_file, jobs, rpc, step_state
from tests.support import png

AXE = Path(__file__).parents[2] / "node_modules" / "axe-core" / "axe.min.js"
OWNER, CLINICIAN, OTHER, KEYBOARD = 7, 8, 9, 5
UNTRUSTING, SKIPPING = 3, 4  # accounts of the tests of a lying gateway and of a bad oracle key
ADMIN = 0
# An X25519 point of order 8 (RFC 7748's low-order list): age can wrap no file key to it.
LOW_ORDER_POINT = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
PHONE = {"width": 390, "height": 844}
TAP = 44


def connect(session: Session) -> None:
    session.page.get_by_role("button", name="Connect wallet").click()
    expect(session.page.locator("#network")).to_have_text("histochain devnet")
    expect(session.page.locator("#model")).to_be_enabled()


def register(session: Session, tmp_path: Path, seed: int, *, malignant: bool = True) -> str:
    """Chooses a synthetic slide, uploads and registers it, waits for the oracle; its CID."""
    page = session.page
    data = png(np.random.default_rng(seed), malignant=malignant)
    page.locator("#file").set_input_files(image_file(tmp_path, f"slide-{seed}.png", data))
    page.get_by_role("button", name="Upload and register").click()
    expect(page.locator("#result-status")).to_have_attribute("data-status", "classified", timeout=ORACLE_WAIT)
    return page.locator("#local-cid").text_content() or ""


def share(page: Page, viewer: str, *, everything: bool = False) -> None:
    """Fills "Share a result" for `viewer` (the result shown, or all of them) and signs."""
    page.get_by_label("Their Ethereum address").fill(viewer)
    if everything:
        page.get_by_label("What they may read").select_option("all")
    page.get_by_role("button", name="Sign and share").click()


def grants_of(stack: PageStack, owner: int) -> list[tuple[str, str | None]]:
    with jobs(stack) as db:
        return db.execute(
            "SELECT viewer, revoked_at FROM grants WHERE owner = ? ORDER BY created_at",
            (dev_account(owner).address,),
        ).fetchall()


def serious_violations(page: Page) -> list[tuple[str, str, list[str]]]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=AXE)
    found = page.evaluate("window.axe.run(document, { resultTypes: ['violations'] })")
    return [
        (v["id"], v["impact"], [str(n["target"]) for n in v["nodes"]][:3])
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement?.id ?? ''"))


def test_try_again_after_a_rejected_revoke_revokes_and_never_grants(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=OWNER)
    page = session.page
    try:
        connect(session)
        register(session, tmp_path, 71)  # the API stores grants only of owners who registered
        share(page, dev_account(CLINICIAN).address, everything=True)
        mine = page.locator('#grants li[data-state="active"]').filter(has_text="all your results")
        expect(mine).to_have_count(1)
        before = grants_of(page_stack, OWNER)
        assert before[-1] == (dev_account(CLINICIAN).address, None)

        page.evaluate("window.__testWallet.rejectNext.add('eth_signTypedData_v4')")
        mine.get_by_role("button", name="Revoke").click()
        expect(page.locator("#share-message")).to_contain_text("You rejected the request")
        assert serious_violations(page) == [], "the error state"
        session.shot("revoke-rejected")
        page.locator("#share-message").get_by_role("button", name="Try again").click()
        expect(page.locator("#share-message")).to_contain_text("Revoked")
        expect(page.locator("#share-message")).not_to_contain_text("Shared")
        rows = grants_of(page_stack, OWNER)
        assert len(rows) == len(before), "the retry revoked; it did not sign a new grant"
        assert rows[-1][0] == dev_account(CLINICIAN).address
        assert rows[-1][1] is not None
        expect(
            page.locator('#grants li[data-state="revoked"]').filter(has_text="all your results")
        ).to_have_count(1)
        session.shot("sharing", "#share-section")
    finally:
        context.close()


def test_sharing_before_registering_anything_says_what_to_do_and_offers_no_retry(
    browser: Browser, page_stack: PageStack, request: pytest.FixtureRequest
) -> None:
    """The API keeps grants only of owners who registered with this oracle (a signature costs
    nothing, and a fresh key could fill any viewer's list): the page says so, and a retry, which
    cannot help, is not offered."""
    with jobs(page_stack) as db:
        owned = db.execute("SELECT count(*) FROM jobs WHERE owner = ?", (dev_account(CLINICIAN).address,))
        assert owned.fetchone() == (0,), "this test needs an account that registered nothing"
    context, session = open_page(browser, page_stack, request.node.name, account=CLINICIAN)
    page = session.page
    try:
        connect(session)
        share(page, dev_account(OTHER).address, everything=True)
        expect(page.locator("#share-message")).to_contain_text("Nothing was shared: register an image first")
        expect(page.locator("#share-message").get_by_role("button", name="Try again")).to_have_count(0)
        assert grants_of(page_stack, CLINICIAN) == []
    finally:
        context.close()


def test_a_reload_reconnects_silently_and_lists_grants_to_revoke(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=OWNER)
    page = session.page
    try:
        connect(session)
        register(session, tmp_path, 72)
        share(page, dev_account(OTHER).address, everything=True)
        expect(page.locator("#share-message")).to_contain_text("Shared")
        expect(page.locator("#grants li").first).to_be_visible()  # listed: signed in to the API

        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        expect(page.locator("#account")).to_have_text(
            dev_account(OWNER).address[:6] + "…" + dev_account(OWNER).address[-4:]
        )
        assert "eth_requestAccounts" not in session.wallet["calls"], "no wallet pop-up on reload"
        expect(page.locator("#wallet-name")).to_have_text("Test Wallet")
        viewer = dev_account(OTHER).address
        active = page.locator('#grants li[data-state="active"]').filter(has_text=viewer[:6])
        expect(active).to_contain_text("may read all your results")
        session.shot("reloaded")
        active.get_by_role("button", name="Revoke").click()
        expect(page.locator("#share-message")).to_contain_text("Revoked")
        assert all(
            revoked is not None
            for viewer, revoked in grants_of(page_stack, OWNER)
            if viewer == dev_account(OTHER).address
        )

        page.get_by_role("button", name="Test Wallet").click()
        page.get_by_role("button", name="Disconnect").click()
        expect(page.get_by_role("button", name="Connect wallet")).to_be_focused()
        expect(page.locator("#grants li")).to_have_count(0)
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        expect(page.get_by_role("button", name="Connect wallet")).to_be_visible()
        expect(page.locator("#account-menu")).to_be_hidden()
    finally:
        context.close()


def test_the_viewer_reads_what_was_shared_until_the_owner_revokes(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    owner_context, owner = open_page(browser, page_stack, request.node.name + "-owner", account=OWNER)
    viewer_context, viewer = open_page(browser, page_stack, request.node.name + "-viewer", account=CLINICIAN)
    try:
        connect(owner)
        cid = register(owner, tmp_path, 71)
        owner.page.get_by_role("button", name="Sign in and read the result").click()
        expect(owner.page.locator("#verified")).to_have_attribute("data-verified", "true")
        label = owner.page.locator("#result-label").inner_text()
        share(owner.page, dev_account(CLINICIAN).address)
        expect(owner.page.locator("#grants li").first).to_contain_text("may read the result of image")

        page = viewer.page
        connect(viewer)
        page.get_by_role("button", name="Sign in and list them").click()
        shared = page.locator("#shared li")
        expect(shared).to_have_count(1)
        expect(shared).to_contain_text(cid[-6:])
        shared.get_by_role("button", name="Read the result").click()
        expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
        expect(page.locator("#result-label")).to_have_text(label)
        expect(page.locator("#cancel")).to_be_hidden()
        steps = ("check", "key", "seal", "upload", "sign", "mined", "oracle", "result")
        assert {step_state(viewer, s) for s in steps} == {"todo"}, "opening an image is not registering one"
        assert serious_violations(page) == [], "the viewer's result"
        viewer.shot("viewer-reads")
        viewer.shot("shared-with-me", "#shared-section")

        owner.page.locator('#grants li[data-state="active"]').filter(has_text=cid[-6:]).get_by_role(
            "button", name="Revoke"
        ).click()
        expect(owner.page.locator("#share-message")).to_contain_text("Revoked")
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        expect(page.locator("#load-shared")).to_be_hidden()  # listed again after the reload
        expect(page.locator("#shared li").filter(has_text=cid[-6:])).to_have_count(0)
    finally:
        owner_context.close()
        viewer_context.close()


def test_a_refused_reader_is_told_why_and_offered_no_useless_retry(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    owner_context, owner = open_page(browser, page_stack, request.node.name + "-owner", account=OWNER)
    viewer_context, viewer = open_page(browser, page_stack, request.node.name + "-viewer", account=OTHER)
    try:
        connect(owner)
        register(owner, tmp_path, 72)
        share(owner.page, dev_account(OTHER).address)
        expect(owner.page.locator("#share-message")).to_contain_text("Shared")

        page = viewer.page
        connect(viewer)
        page.get_by_role("button", name="Sign in and list them").click()
        from_owner = page.locator("#shared li").filter(has_text=dev_account(OWNER).address[:6]).last
        from_owner.get_by_role("button", name="Read the result").click()
        expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
        owner.page.locator('#grants li[data-state="active"]').filter(
            has_text=dev_account(OTHER).address[:6]
        ).get_by_role("button", name="Revoke").click()
        expect(owner.page.locator("#share-message")).to_contain_text("Revoked")
        from_owner.get_by_role("button", name="Read the result").click()
        message = page.locator("#result-message")
        expect(message).to_contain_text("may not read that result")
        expect(message.get_by_role("button", name="Try again")).to_have_count(0)
        assert focused_id(page) == "result-message"
    finally:
        owner_context.close()
        viewer_context.close()


def test_switching_accounts_clears_the_previous_accounts_screen(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=OWNER)
    page = session.page
    try:
        connect(session)
        register(session, tmp_path, 73)
        page.get_by_role("button", name="Sign in and read the result").click()
        expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
        expect(page.locator("#mine li .label").first).to_contain_text("answer:")
        share(page, dev_account(CLINICIAN).address)
        expect(page.locator("#grants li").first).to_be_visible()

        other = dev_account(OTHER).address
        page.evaluate("(address) => window.__testWallet.switchAccount(address)", other)
        expect(page.locator("#account")).to_have_text(other[:6] + "…" + other[-4:])
        expect(page.locator("#result")).to_be_hidden()
        assert page.locator("#result-label").text_content() == ""
        assert page.locator("#result-probability-text").text_content() == ""
        expect(page.locator("#grants li")).to_have_count(0)
        expect(page.locator("#mine li")).to_have_count(0)
        expect(page.locator("#mine-empty")).to_contain_text("No images registered from this account yet")
        expect(page.locator("#key-status")).to_contain_text("Unlock your key")
        expect(page.locator("#load-grants")).to_be_visible()
        expect(page.locator("#live")).to_contain_text("Switched to account")
        session.shot("switched-account")
    finally:
        context.close()


def test_a_result_says_what_it_means_and_what_it_is_not(
    session: Session, page_stack: PageStack, tmp_path: Path
) -> None:
    page = session.page
    connect(session)
    register(session, tmp_path, 74)
    assert serious_violations(page) == [], "classified, before sign-in"
    page.get_by_role("button", name="Sign in and read the result").click()
    expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
    expect(page.locator("#verified")).to_contain_text(
        "Integrity verified: this document matches the commitment on chain"
    )
    expect(page.locator("#verified")).to_contain_text("not that it is right")
    label = page.locator("#result-label").inner_text()
    expect(page.locator("#result-explanation")).to_contain_text("pathologist")
    expect(page.locator("#result-explanation")).to_contain_text(label)
    text = page.locator("#result-probability-text").inner_text()
    assert "%" in text
    assert "threshold 0.5" not in text
    expect(page.locator("#result-probability-text")).to_contain_text(
        "The model answers “malignant” from 50.0 %"
    )
    expect(page.locator("#result-validation")).to_contain_text("held-out test patients")
    support = page.locator("#result #decision-support")
    expect(support).to_be_visible()
    expect(support).to_contain_text("Decision support for a clinician, not a diagnosis")
    assert serious_violations(page) == [], "the result"
    session.shot("result-explained")
    session.shot("result-card", "#result")
    session.shot("my-images", "#mine-section")


def test_feedback_appears_beside_its_action_and_takes_focus(
    session: Session, page_stack: PageStack, tmp_path: Path
) -> None:
    page = session.page
    connect(session)
    expect(page.locator("#account-button")).to_be_focused()  # focus follows Connect
    page.locator("#file").set_input_files(
        image_file(tmp_path, "f.png", png(np.random.default_rng(75), malignant=False))
    )
    page.evaluate("window.__testWallet.rejectNext.add('personal_sign')")
    page.get_by_role("button", name="Upload and register").click()
    message = page.locator("#register-message")
    expect(message).to_contain_text("You rejected the request in your wallet")
    assert focused_id(page) == "register-message"
    assert page.locator("#register-section #register-message").count() == 1
    expect(message).to_be_in_viewport()
    session.shot("error-beside-register", "#register-section")
    assert serious_violations(page) == [], "an error beside Register"


def test_an_image_this_browser_cannot_decode_is_refused_before_upload(
    session: Session, page_stack: PageStack, tmp_path: Path
) -> None:
    page = session.page
    connect(session)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    garbage = b"\x89PNG\r\n\x1a\n" + np.random.default_rng(76).bytes(4000)
    page.locator("#file").set_input_files(image_file(tmp_path, "broken.png", garbage))
    expect(page.locator("#register-message")).to_contain_text("cannot be decoded")
    expect(page.get_by_role("button", name="Upload and register")).to_be_disabled()
    assert step_state(session, "check") == "failed"
    assert [step_state(session, s) for s in ("key", "seal", "upload", "sign")] == ["todo"] * 4
    assert not [url for url in requests if url.startswith(page_stack.ipfs_url)]


def test_wrong_network_own_address_and_step_words_are_honest(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=OTHER, chain_id=MAINNET)
    page = session.page
    try:
        page.get_by_role("button", name="Connect wallet").click()
        expect(page.locator("#network")).to_have_text("Wrong network")
        expect(page.locator("#model")).to_contain_text("Switch to histochain devnet to list models")
        expect(page.locator("#model")).not_to_contain_text("Connect a wallet")
        page.get_by_role("button", name="Switch network").click()
        expect(page.locator("#network")).to_have_text("histochain devnet")

        page.locator("#file").set_input_files(image_file(tmp_path, "notes.png", b"plain text"))
        expect(page.locator('#steps [data-step="check"]')).to_have_attribute("data-state", "failed")
        assert {step_state(session, s) for s in ("key", "seal", "upload", "sign", "mined")} == {"todo"}

        share(page, dev_account(OTHER).address.lower(), everything=True)
        expect(page.locator("#share-message")).to_contain_text("your own address")
        assert "eth_signTypedData_v4" not in session.wallet["calls"]
        expect(page.get_by_label("Their Ethereum address")).to_have_attribute("aria-invalid", "true")
    finally:
        context.close()


def test_wallet_basics_name_icon_favicon_and_a_quiet_console(session: Session, page_stack: PageStack) -> None:
    page = session.page
    said: list[str] = []
    failed: list[str] = []
    page.on("console", lambda message: said.append(f"{message.type}: {message.text}"))
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_load_state("networkidle")
    assert failed == [], "nothing the page asks for is missing (the favicon included)"
    assert [line for line in said if line.startswith(("warning", "error"))] == []
    with urllib.request.urlopen(f"{page_stack.url}/favicon.svg") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/svg")
    assert page.locator('link[rel="icon"]').get_attribute("href") == "favicon.svg"
    assert serious_violations(page) == [], "cold"
    connect(session)
    button = page.locator("#account-button")
    expect(button).to_be_enabled()
    expect(page.locator("#wallet-name")).to_have_text("Test Wallet")
    expect(page.locator("#wallet-icon")).to_be_visible()
    assert page.locator("#wallet-icon").get_attribute("src", timeout=1000).startswith("data:image/svg+xml")
    button.click()
    expect(page.get_by_role("button", name="Copy address")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#account-options")).to_be_hidden()
    expect(button).to_be_focused()
    assert serious_violations(page) == [], "connected"
    page.screenshot(path=session.shot.folder / "connected-viewport.png")
    button.click()
    session.shot("wallet-menu", ".top")
    page.keyboard.press("Escape")
    assert not [line for line in said if "password" in line.lower()], said


def test_on_a_phone_nothing_overflows_and_every_control_is_big_enough(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=OWNER, viewport=PHONE)
    page = session.page
    try:
        connect(session)
        register(session, tmp_path, 77)
        page.get_by_role("button", name="Sign in and read the result").click()
        expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
        page.get_by_text("Advanced: where the encrypted image is stored").click()
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter((e) => e.offsetParent !== null && !e.closest('.skip')
                    && e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .map((e) => `${e.tagName}#${e.id}.${e.className}`)"""
        )
        assert wide == []
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
        small = page.evaluate(
            """(tap) => [...document.querySelectorAll('button, select, input, summary, a[href]')]
                .filter((e) => e.offsetParent !== null && !e.closest('.skip'))
                .map((e) => [e.id || e.textContent.trim().slice(0, 30), e.getBoundingClientRect()])
                .filter(([, r]) => r.width > 0 && (r.height < tap || r.width < tap))
                .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)""",
            TAP,
        )
        assert small == []
        assert serious_violations(page) == [], "my images and the result, on a phone"
        session.shot("phone-result")
        page.locator("#result").scroll_into_view_if_needed()
        page.screenshot(path=session.shot.folder / "phone-viewport.png")
    finally:
        context.close()


def test_the_whole_flow_works_from_the_keyboard_with_focus_always_visible(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=KEYBOARD)
    page = session.page

    def tab_to(selector: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement?.matches(s)", selector):
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"focus on {selector} is visible"
                return
        raise AssertionError(f"Tab never reached {selector}")

    try:
        tab_to("#connect")
        page.keyboard.press("Enter")
        expect(page.locator("#network")).to_have_text("histochain devnet")
        tab_to("#file")  # the file dialog itself is the system's; the page's part is reaching it
        data = png(np.random.default_rng(78), malignant=False)
        page.locator("#file").set_input_files(image_file(tmp_path, "keys.png", data))
        expect(page.get_by_role("button", name="Upload and register")).to_be_enabled()
        tab_to("#register")
        page.keyboard.press("Enter")
        expect(page.locator("#result-status")).to_have_attribute(
            "data-status", "classified", timeout=ORACLE_WAIT
        )
        tab_to("#read-result")
        page.keyboard.press("Enter")
        expect(page.locator("#verified")).to_have_attribute("data-verified", "true")
        tab_to("#viewer")
        page.keyboard.type(dev_account(CLINICIAN).address)
        tab_to("#share-submit")
        page.keyboard.press("Enter")
        expect(page.locator("#share-message")).to_contain_text("Shared")
        assert focused_id(page) == "share-message"
        session.shot("keyboard-shared")
    finally:
        context.close()


def registry_contract(stack: PageStack) -> Any:
    return Web3(HTTPProvider(stack.rpc)).eth.contract(
        address=stack.deployment.address, abi=stack.deployment.abi
    )


def transact(stack: PageStack, signer: LocalAccount, function: str, *args: Any) -> None:
    """The registry's `function(*args)`, signed by `signer` and mined."""
    send(stack.rpc, stack.deployment, signer, function, *args)


def oracle_keys(stack: PageStack) -> list[bytes]:
    return [bytes(k) for k in registry_contract(stack).functions.encryptionKeys().call()[1]]


def sealed_for(stack: PageStack, owner: int, seed: int, registry: str) -> bytes:
    """An envelope as the page makes it for dev account `owner` (its key is what the page derives),
    bound to `registry`, of a synthetic slide."""
    key = dev_patient_identity(owner, stack.chain_id, stack.deployment.address)
    data = png(np.random.default_rng(seed), malignant=False)
    address = dev_account(owner).address
    return seal_image(data, address, stack.chain_id, registry, [str(key.to_public())])


def test_an_invalid_oracle_key_is_skipped_and_the_image_still_registers(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Any oracle-role holder may publish a key the chain cannot judge; a low-order point, which
    age cannot encrypt to, once made every patient's seal fail."""
    admin, rogue = dev_account(ADMIN), Account.create()
    role = registry_contract(page_stack).functions.ORACLE_ROLE().call()
    before = oracle_keys(page_stack)
    rpc(page_stack, "anvil_setBalance", rogue.address, hex(10**18))
    transact(page_stack, admin, "grantRole", role, rogue.address)
    context, session = open_page(browser, page_stack, request.node.name, account=SKIPPING)
    page = session.page
    try:
        transact(page_stack, rogue, "setEncryptionKey", LOW_ORDER_POINT)  # the contract only refuses zero
        assert oracle_keys(page_stack) == [*before, LOW_ORDER_POINT]
        connect(session)
        register(session, tmp_path, 79)  # classified: the real oracle's key was kept
        expect(page.locator("#register-message")).to_contain_text(
            "1 oracle key published on this chain is invalid and was skipped"
        )
        expect(page.locator("#register-message")).to_have_attribute("data-tone", "info")
        assert len(before) == 1, "the stack's one oracle"
        expect(page.locator('#steps [data-step="seal"]')).to_have_attribute(
            "data-detail", "for you and 1 oracle key; 1 oracle key skipped as invalid"
        )
        session.shot("invalid-oracle-key-skipped", "#register-section")
    finally:
        context.close()
        transact(page_stack, admin, "revokeRole", role, rogue.address)  # which drops its key
    assert oracle_keys(page_stack) == before


def test_my_images_refuses_bytes_the_gateway_swapped_for_another_envelope(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The gateway answers, for this image's CID, another envelope sealed to the same account,
    chain and registry: it would open with the patient's key, but it is not what was registered."""
    context, session = open_page(browser, page_stack, request.node.name, account=UNTRUSTING)
    page = session.page
    try:
        connect(session)
        cid = register(session, tmp_path, 80)
        swapped = sealed_for(page_stack, UNTRUSTING, 81, page_stack.deployment.address)
        served: list[str] = []

        def lie(route: Route) -> None:
            served.append(route.request.url)
            route.fulfill(
                status=200,
                body=swapped,
                headers={"Content-Type": "application/octet-stream", "Access-Control-Allow-Origin": "*"},
            )

        page.route(f"{page_stack.ipfs_url}/ipfs/{cid}*", lie)
        row = page.locator("#mine li").filter(has_text=cid[-6:])
        row.get_by_role("button", name="Show image").click()
        message = page.locator("#mine-message")
        expect(message).to_contain_text(f"the IPFS gateway served bytes that do not match the CID {cid}")
        expect(page.locator("#viewer-figure")).to_be_hidden()
        expect(message).not_to_contain_text("undefined")  # a message with no action has no button
        assert served, "the page asked the gateway, and was lied to"
        assert focused_id(page) == "mine-message"
        session.shot("swapped-bytes-refused", "#mine-section")

        page.unroute(f"{page_stack.ipfs_url}/ipfs/{cid}*")
        row.get_by_role("button", name="Show image").click()
        expect(page.locator("#viewer-figure")).to_be_visible()  # the true bytes open
        expect(message).to_be_hidden()
    finally:
        context.close()


def test_my_images_refuses_an_envelope_bound_to_another_registry(
    browser: Browser, page_stack: PageStack, request: pytest.FixtureRequest
) -> None:
    """The bytes match the CID, but they were sealed for another registry: refused, not shown
    with a warning."""
    envelope = sealed_for(page_stack, UNTRUSTING, 82, "0x" + "11" * 20)
    answer = requests.post(
        f"{page_stack.ipfs_url}/pinning/pinFileToIPFS",
        headers={"Authorization": f"Bearer {DEV_IPFS_TOKEN}"},
        files={"file": ("elsewhere.age", envelope), "pinataOptions": (None, json.dumps({"cidVersion": 1}))},
        timeout=30,
    )
    answer.raise_for_status()
    cid = answer.json()["IpfsHash"]
    transact(page_stack, dev_account(UNTRUSTING), "registerImage", cid, b"\x00" * 32)
    context, session = open_page(browser, page_stack, request.node.name, account=UNTRUSTING)
    page = session.page
    try:
        connect(session)
        row = page.locator("#mine li").filter(has_text=cid[-6:])
        row.get_by_role("button", name="Show image").click()
        message = page.locator("#mine-message")
        expect(message).to_contain_text("it was sealed for another registry (0x1111")
        expect(message).to_contain_text("so it is not shown")
        expect(page.locator("#viewer-figure")).to_be_hidden()
    finally:
        context.close()
