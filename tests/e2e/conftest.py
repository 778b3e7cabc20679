"""The page in Debian's Chromium against the real stack: anvil with the registry deployed, the
local IPFS node, the oracle daemon and the query API as child processes, and the page served by
Python's plain static file server. A test wallet (wallet.js) stands in for MetaMask."""

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from oracle.chain.anvil_accounts import dev_account
from oracle.chain.deploy import deploy_on_devnet
from oracle.chain.deployment import Deployment
from oracle.crypto.keys import public_key, write_identity
from oracle.dev.anvil import Anvil
from oracle.dev.ipfs import IpfsNode
from oracle.dev.services import ApiProcess, OracleProcess, PageServer
from oracle.dev.site import build_site
from oracle.settings import DEV_IPFS_TOKEN, Settings
from tests.support import free_port, tiny_checkpoint, tiny_sr_checkpoint

HERE = Path(__file__).parent
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "e2e"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_UPLOAD = 1 << 20
PATIENT = 2
MAINNET = 1


@dataclass
class PageStack:
    url: str
    rpc: str
    chain_id: int
    deployment: Deployment
    site: Path
    data_dir: Path
    api_url: str
    ipfs_url: str
    oracle: OracleProcess
    sr_model_id: str  # a super-resolution model beside the default classifier


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    work = tmp_path_factory.mktemp("page-stack")
    logs = work / "logs"
    models = work / "models"
    card = tiny_checkpoint(work / "synth", models)
    sr_card = tiny_sr_checkpoint(models)
    host = "127.0.0.1"
    with contextlib.ExitStack() as stack:
        anvil = stack.enter_context(
            Anvil(host, free_port(), Settings().chain_id, work / "chain" / "state.json", logs / "anvil.log")
        )
        oracle_key = write_identity(work / "oracle-age.key")  # where the oracle process looks (data dir)
        deployment = deploy_on_devnet(
            anvil.url, work / "deployment.json", [card, sr_card], public_key(oracle_key)
        )
        node = stack.enter_context(
            IpfsNode(host, free_port(), work / "ipfs", DEV_IPFS_TOKEN, logs / "ipfs.log", MAX_UPLOAD)
        )
        page_port, api_port = free_port(), free_port()
        env = {
            "HISTOCHAIN_CONFIG": str(work / "histochain.toml"),
            "HISTOCHAIN_DATA_DIR": str(work),
            "HISTOCHAIN_CHAIN_PORT": str(anvil.port),
            "HISTOCHAIN_IPFS_PORT": str(node.port),
            "HISTOCHAIN_IPFS_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
            "HISTOCHAIN_GATEWAYS": json.dumps([node.url]),
            "HISTOCHAIN_MODEL_DIR": str(models),
            "HISTOCHAIN_TUNING__CONFIRMATIONS": "0",
            "HISTOCHAIN_TUNING__POLL_INTERVAL": "0.2",
            "HISTOCHAIN_TUNING__SUBMIT_WAIT": "0.2",
            "HISTOCHAIN_TUNING__UNREACHABLE_GRACE": "3",
            "HISTOCHAIN_TUNING__FETCH_TIMEOUT": "5",
            "HISTOCHAIN_DEVICE": "cpu",
            "HISTOCHAIN_API_PORT": str(api_port),
            "HISTOCHAIN_API_DOMAIN": f"{host}:{page_port}",
            "HISTOCHAIN_API_URI": f"http://{host}:{page_port}",
        }
        oracle = stack.enter_context(OracleProcess(host, free_port(), logs / "oracle.log", env))
        api = stack.enter_context(ApiProcess(host, api_port, logs / "api.log", env))
        with mock.patch.dict(os.environ, env):
            settings = Settings()
        site = build_site(work / "www", settings, deployment)
        page = stack.enter_context(PageServer(host, page_port, site, logs / "page.log"))
        yield PageStack(
            page.url,
            anvil.url,
            anvil.chain_id,
            deployment,
            site,
            work,
            api.url,
            node.url,
            oracle,
            "0x" + sr_card.model_id.hex(),
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would break later tests that start their own loop."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Shots:
    """Numbered screenshots of one test, kept under test-artifacts/e2e/<test>/."""

    def __init__(self, page: Page, name: str) -> None:
        self.page, self.count = page, 0
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)

    def __call__(self, step: str, selector: str | None = None) -> Path:
        """The whole page, or only the element `selector` finds (what docs/screenshots shows)."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        if selector is None:
            self.page.screenshot(path=path, full_page=True)
        else:
            self.page.locator(selector).screenshot(path=path)
        return path


@dataclass
class Session:
    page: Page
    shot: Shots

    @property
    def wallet(self) -> Any:
        return self.page.evaluate("window.__testWallet")


def open_page(
    browser: Browser,
    stack: PageStack,
    name: str,
    *,
    account: int = PATIENT,
    chain_id: int | None = None,
    viewport: dict[str, int] | None = None,
) -> tuple[BrowserContext, Session]:
    return wallet_page(
        browser, stack.url, stack.rpc, chain_id or stack.chain_id, name, account=account, viewport=viewport
    )


def wallet_page(
    browser: Browser,
    url: str,
    rpc: str,
    chain_id: int,
    name: str,
    *,
    account: int = PATIENT,
    viewport: dict[str, int] | None = None,
) -> tuple[BrowserContext, Session]:
    """The page at `url`, loaded, with the test wallet (dev account `account`, on `chain_id`,
    relaying to `rpc`); screenshots and the console go to test-artifacts/e2e/<name>/."""
    context = browser.new_context(viewport=viewport or {"width": 1200, "height": 900})
    config = {
        "rpcUrl": rpc,
        "account": dev_account(account).address,
        "chainId": chain_id,
        "knownChains": [chain_id],
    }
    context.add_init_script(f"window.__testWalletConfig = {json.dumps(config)};")
    context.add_init_script(path=HERE / "wallet.js")
    page = context.new_page()
    shots = Shots(page, name)
    console = (shots.folder / "console.log").open("a")
    page.on("console", lambda message: console.write(f"{message.type}: {message.text}\n"))
    page.on("pageerror", lambda error: console.write(f"pageerror: {error}\n"))
    context.on("close", lambda _: console.close())
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return context, Session(page, shots)


@pytest.fixture
def session(browser: Browser, page_stack: PageStack, request: pytest.FixtureRequest) -> Iterator[Session]:
    context, opened = open_page(browser, page_stack, request.node.name)
    yield opened
    context.close()
