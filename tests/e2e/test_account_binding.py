"""Every flow of the page stays with the account and chain it began under (#29). A key belongs to
the address that signed for it and is kept only while that account and chain are the wallet's; an
account or chain change while any prompt is open drops what the previous account began, with a
note, and nothing of it is shown, signed, sealed or sent afterwards. Besides: a refusal's words,
the refund as the chain's events say it, and EIP-55 checksums of a clinician's address.

The test wallet holds a prompt open (`hold`) while the test switches, then answers it as a real
wallet would: signed by the address the page asked for. Debian's Chromium, the real stack."""

import io
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from eth_utils import is_checksum_address
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from web3 import Web3

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.registry import image_id_for
from oracle.crypto.envelope import EnvelopeError, open_envelope
from oracle.dev.anvil import dev_patient_identity
from tests.e2e.conftest import MAINNET, PageStack, Session, open_page
from tests.e2e.test_page import ORACLE_WAIT, image_file
from tests.e2e.test_patient_page import connect, grants_of, register, registry_contract, share, transact
from tests.support import png

ADMIN = 0  # anvil unlocks accounts 0-9 only (the wallet relays to it); 1 is the oracle, so tests share 2-9
DROPPED = "what was begun here for the previous one stopped"
STEPS_AFTER_CHECK = ("key", "seal", "upload", "sign", "mined", "oracle", "result")


def hold(page: Page, method: str) -> None:
    """The wallet's next `method` request waits, its prompt open, until `release`."""
    page.evaluate("(m) => window.__testWallet.hold(m)", method)


def until_prompt(page: Page, method: str) -> None:
    page.wait_for_function("(m) => window.__testWallet.waiting.includes(m)", arg=method)


def release(page: Page, method: str) -> None:
    page.evaluate("(m) => window.__testWallet.release(m)", method)


def switch_account(page: Page, index: int) -> None:
    page.evaluate("(a) => window.__testWallet.switchAccount(a)", dev_account(index).address)


def switch_chain(page: Page, chain_id: int) -> None:
    page.evaluate("(id) => window.__testWallet.switchChainTo(id)", chain_id)


def choose(page: Page, tmp_path: Path, seed: int) -> None:
    data = png(np.random.default_rng(seed), malignant=False)
    page.locator("#file").set_input_files(image_file(tmp_path, f"slide-{seed}.png", data))


def choose_square(page: Page, tmp_path: Path, colour: tuple[int, int, int]) -> None:
    """A solid square: the oracle's input gate refuses it as not tissue."""
    square = io.BytesIO()
    Image.new("RGB", (300, 300), colour).save(square, format="PNG")
    page.locator("#file").set_input_files(image_file(tmp_path, f"square-{colour}.png", square.getvalue()))


def registered_by(stack: PageStack, index: int, since: int | None = None) -> list[str]:
    """The CIDs dev account `index` registered (from block `since` on), from the chain's events."""
    logs = (
        registry_contract(stack)
        .events.ImageRegistered()
        .get_logs(
            from_block=since or stack.deployment.block, argument_filters={"owner": dev_account(index).address}
        )
    )
    return [log["args"]["cid"] for log in logs]


def calls(session: Session, method: str) -> int:
    return list(session.wallet["calls"]).count(method)


def gateway_bytes(stack: PageStack, cid: str) -> bytes:
    with urllib.request.urlopen(f"{stack.ipfs_url}/ipfs/{cid}") as response:
        return bytes(response.read())


def assert_nothing_of_the_previous_flow(page: Page) -> None:
    """What the tests hold after any account or chain change during a flow."""
    expect(page.locator("#register-message")).to_contain_text(DROPPED)
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#local-cid")).to_have_text("—")
    for name in STEPS_AFTER_CHECK:
        expect(page.locator(f'#steps [data-step="{name}"]')).to_have_attribute("data-state", "todo")
    expect(page.locator("#key-status")).to_contain_text("Unlock your key")
    expect(page.locator("#save-key")).to_be_hidden()


def test_a_key_signed_during_an_account_switch_is_never_kept_for_the_new_account(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    first, second = 2, 3
    context, session = open_page(browser, page_stack, request.node.name, account=first)
    page = session.page
    try:
        connect(session)
        choose(page, tmp_path, 1)
        hold(page, "personal_sign")
        page.get_by_role("button", name="Upload and register").click()
        until_prompt(page, "personal_sign")
        switch_account(page, second)
        release(page, "personal_sign")  # approved: signed by the account the page asked, the first
        assert_nothing_of_the_previous_flow(page)
        session.shot("dropped-at-the-key-prompt")
        assert registered_by(page_stack, first) == []

        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#result-status")).to_have_attribute(
            "data-status", "classified", timeout=ORACLE_WAIT
        )
        assert calls(session, "personal_sign") == 2, "the second account was asked for its own key"
        cid = page.locator("#local-cid").text_content() or ""
        assert registered_by(page_stack, second) == [cid]

        deployment = page_stack.deployment
        mine, theirs = (
            dev_patient_identity(i, deployment.chain_id, deployment.address) for i in (second, first)
        )
        envelope = gateway_bytes(page_stack, cid)
        assert open_envelope(envelope, [mine]).binding.owner == dev_account(second).address.lower()
        with pytest.raises(EnvelopeError, match="cannot decrypt"):
            open_envelope(envelope, [theirs])

        with page.expect_download() as download:
            page.get_by_role("button", name="Save my key").click()
        assert download.value.suggested_filename == f"histochain-key-{dev_account(second).address}.txt"
        saved = Path(download.value.path()).read_text().splitlines()
        assert str(mine) in saved
        assert str(theirs) not in saved
    finally:
        context.close()


def test_a_key_signature_by_another_address_makes_no_key(
    browser: Browser, page_stack: PageStack, request: pytest.FixtureRequest
) -> None:
    """A wallet that signs with whichever account it shows, not the one asked for, gives no key."""
    owner, signer = 4, 5
    context, session = open_page(browser, page_stack, request.node.name, account=owner)
    page = session.page
    try:
        connect(session)
        page.evaluate(
            "(a) => window.__testWallet.signNextAs('personal_sign', a)", dev_account(signer).address
        )
        page.get_by_role("button", name="Unlock my images").click()
        expect(page.locator("#mine-message")).to_contain_text(
            f"signed the key message as {dev_account(signer).address}, not as {dev_account(owner).address}"
        )
        expect(page.locator("#key-status")).to_contain_text("Unlock your key")
        expect(page.locator("#save-key")).to_be_hidden()
        page.get_by_role("button", name="Unlock my images").click()
        expect(page.locator("#key-status")).to_contain_text("unlocked")
    finally:
        context.close()


FLOWS = [
    # (the wallet's prompt held open, what changes meanwhile, the accounts before and after)
    pytest.param("personal_sign", "chain", 6, 6, id="key-prompt-chain"),
    pytest.param("eth_sendTransaction", "account", 7, 8, id="transaction-prompt-account"),
    pytest.param("eth_sendTransaction", "chain", 9, 9, id="transaction-prompt-chain"),
    pytest.param("eth_getLogs", "account", 2, 3, id="after-mining-account"),
]


@pytest.mark.parametrize(("prompt", "change", "before", "after"), FLOWS)
def test_a_change_during_a_registration_drops_it_and_shows_nothing_of_it(
    browser: Browser,
    page_stack: PageStack,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    prompt: str,
    change: str,
    before: int,
    after: int,
) -> None:
    """The change comes while the wallet shows `prompt` (or, for eth_getLogs, once the registration
    is mined and the page reads the account's images), and the wallet then approves."""
    earlier = {i: len(registered_by(page_stack, i)) for i in {before, after}}
    context, session = open_page(browser, page_stack, request.node.name, account=before)
    page = session.page
    try:
        connect(session)
        choose(page, tmp_path, 10 * before + after)  # an image of its own per case
        if prompt == "eth_getLogs":
            hold(page, "eth_sendTransaction")
        else:
            hold(page, prompt)
        page.get_by_role("button", name="Upload and register").click()
        if prompt == "eth_getLogs":
            until_prompt(page, "eth_sendTransaction")
            hold(page, prompt)
            release(page, "eth_sendTransaction")
        until_prompt(page, prompt)
        if change == "account":
            switch_account(page, after)
        else:
            switch_chain(page, MAINNET)
        release(page, prompt)
        assert_nothing_of_the_previous_flow(page)
        session.shot("dropped")
        sent = prompt != "personal_sign"
        assert len(registered_by(page_stack, before)) == earlier[before] + sent, (
            "what the wallet approved, no more"
        )
        if change == "chain":
            expect(page.locator("#register")).to_be_disabled()
            switch_chain(page, page_stack.chain_id)
            expect(page.locator("#model")).to_be_enabled()
        expect(page.locator("#register")).to_be_enabled()
        if after != before:
            assert len(registered_by(page_stack, after)) == earlier[after]
    finally:
        context.close()


def test_a_revocation_rejected_after_an_account_switch_offers_no_retry_as_the_new_account(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    owner, viewer, other = 4, 5, 6
    theirs = grants_of(page_stack, other)
    context, session = open_page(browser, page_stack, request.node.name, account=owner)
    page = session.page
    try:
        connect(session)
        register(session, tmp_path, 73)  # the API stores grants only of owners who registered
        share(page, dev_account(viewer).address, everything=True)
        active = page.locator('#grants li[data-state="active"]')
        expect(active).to_have_count(1)
        granted = grants_of(page_stack, owner)
        assert granted[-1] == (dev_account(viewer).address, None)
        page.evaluate("window.__testWallet.rejectNext.add('eth_signTypedData_v4')")
        hold(page, "eth_signTypedData_v4")
        active.get_by_role("button", name="Revoke").click()
        until_prompt(page, "eth_signTypedData_v4")
        switch_account(page, other)
        release(page, "eth_signTypedData_v4")  # rejected, after the switch
        expect(page.locator("#share-message")).to_contain_text(DROPPED)
        expect(page.locator("#share-message").get_by_role("button", name="Try again")).to_have_count(0)
        assert grants_of(page_stack, owner) == granted, "still granted, nothing revoked"
        assert grants_of(page_stack, other) == theirs, "nothing signed as the new account"
    finally:
        context.close()


def test_a_signed_in_patient_refused_as_not_tissue_reads_the_refusal(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    context, session = open_page(browser, page_stack, request.node.name, account=7)
    page = session.page
    try:
        connect(session)
        choose(page, tmp_path, 15)
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#result-status")).to_have_attribute(
            "data-status", "classified", timeout=ORACLE_WAIT
        )
        page.get_by_role("button", name="Sign in and read the result").click()
        expect(page.locator("#verified")).to_have_attribute("data-verified", "true")

        choose_square(page, tmp_path, (40, 60, 220))
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#result-status")).to_have_attribute("data-status", "failed", timeout=ORACLE_WAIT)
        expect(page.locator("#result-why")).to_contain_text("not tissue (flat)")
        expect(page.locator("#result-message")).to_contain_text("does not look like a tissue slide")
        expect(page.locator("#result-message")).not_to_contain_text("is not a function")
        session.shot("refused-signed-in")
    finally:
        context.close()


def test_a_refusal_says_what_came_back_of_the_fee_from_the_chain(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    patient, admin = 8, dev_account(ADMIN)
    fee, kept = Web3.to_wei("0.002", "ether"), Web3.to_wei("0.0005", "ether")
    registry = registry_contract(page_stack)
    model = page_stack.deployment.default_model
    fees_before = registry.functions.modelFee(model).call()
    transact(page_stack, admin, "setModelFee", model, fee, kept)
    since = registry.w3.eth.block_number
    context, session = open_page(browser, page_stack, request.node.name, account=patient)
    page = session.page
    try:
        connect(session)
        choose_square(page, tmp_path, (220, 60, 40))
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#result-status")).to_have_attribute("data-status", "failed", timeout=ORACLE_WAIT)
        refunds = registry.events.Refunded().get_logs(
            from_block=since, argument_filters={"owner": dev_account(patient).address}
        )
        assert [log["args"]["amount"] for log in refunds] == [fee - kept]
        status = page.locator("#result-status")
        expect(status).to_contain_text("Of the fee (0.002 ETH), 0.0015 ETH came back to you")
        expect(status).to_contain_text("0.0005 ETH was kept as the failure fee")
        expect(status).not_to_contain_text("The fee (0.002 ETH) was refunded")
        session.shot("refund-from-events", "#result")
    finally:
        context.close()
        transact(page_stack, admin, "setModelFee", model, *fees_before)


def test_each_model_shows_its_own_fee_and_a_changed_fee_is_shown_before_it_is_paid(
    browser: Browser, page_stack: PageStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Upscaling costs the oracle more than a label: the super-resolution model has its own fee.
    The page shows the chosen model's; when the admin changes it after the page read it, the
    registration stops before the wallet is asked, shows the new fee, and pays it on the retry."""
    patient, admin, sr = 6, dev_account(ADMIN), page_stack.sr_model_id
    registry = registry_contract(page_stack)
    before = registry.functions.modelFee(sr).call()
    transact(
        page_stack, admin, "setModelFee", sr, Web3.to_wei("0.003", "ether"), Web3.to_wei("0.001", "ether")
    )
    since = registry.w3.eth.block_number
    context, session = open_page(browser, page_stack, request.node.name, account=patient)
    page = session.page
    try:
        connect(session)
        expect(page.locator("#fee")).to_have_text("free on this chain")  # the default classifier's
        page.locator("#model").select_option(sr)
        expect(page.locator("#fee")).to_have_text(
            "0.003 ETH; if the oracle cannot read your image, 0.002 ETH of it comes back"
        )
        expect(page.locator(".fee-echo").first).to_have_text("0.003 ETH")
        small = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 120, 160)).save(small, format="PNG")
        page.locator("#file").set_input_files(image_file(tmp_path, "small.png", small.getvalue()))
        transact(page_stack, admin, "setModelFee", sr, Web3.to_wei("0.004", "ether"), 0)
        page.get_by_role("button", name="Upload and register").click()
        expect(page.locator("#register-message")).to_contain_text(
            "The fee for this model changed to 0.004 ETH"
        )
        expect(page.locator("#fee")).to_have_text(
            "0.004 ETH; if the oracle cannot read your image, 0.004 ETH of it comes back"
        )
        assert registered_by(page_stack, patient, since) == []  # nothing sent at the old fee
        page.get_by_role("button", name="Register at the new fee").click()
        expect(page.locator('[data-step="mined"]')).to_have_attribute(
            "data-state", "done", timeout=ORACLE_WAIT
        )
        (cid,) = registered_by(page_stack, patient, since)
        record = registry.functions.getImage(image_id_for(dev_account(patient).address, cid)).call()
        assert (record[2], record[6]) == (bytes.fromhex(sr[2:]), Web3.to_wei("0.004", "ether"))
        session.shot("fee-per-model", "#register")
    finally:
        context.close()
        transact(page_stack, admin, "setModelFee", sr, *before)


def mistyped(address: str) -> str:
    """`address` with its first decimal digit changed: the case pattern no longer fits."""
    at = next(i for i, c in enumerate(address) if i > 1 and c.isdigit())
    return address[:at] + str((int(address[at]) + 1) % 10) + address[at + 1 :]


def test_a_mistyped_checksummed_address_is_refused_and_the_share_names_the_whole_address(
    browser: Browser, page_stack: PageStack, request: pytest.FixtureRequest
) -> None:
    owner, clinician = 9, dev_account(5).address
    wrong = mistyped(clinician)
    assert wrong != clinician
    assert not is_checksum_address(wrong)
    context, session = open_page(browser, page_stack, request.node.name, account=owner)
    page = session.page
    try:
        connect(session)
        share(page, wrong, everything=True)
        expect(page.locator("#share-message")).to_contain_text("fails its checksum")
        expect(page.locator("#viewer")).to_have_attribute("aria-invalid", "true")
        assert calls(session, "eth_signTypedData_v4") == 0, "nothing was signed"
        assert grants_of(page_stack, owner) == []

        share(page, clinician, everything=True)
        expect(page.locator("#share-message")).to_contain_text(
            f"Shared: {clinician} may read all your results"
        )
        assert grants_of(page_stack, owner) == [(clinician, None)]
        session.shot("shared-whole-address", "#share-section")
    finally:
        context.close()
