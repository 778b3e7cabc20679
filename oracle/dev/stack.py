"""The whole system on one machine: anvil, the registry, the local IPFS node, a model, the oracle,
the query API and the page, under one supervisor.

Children's warnings and errors (with `verbose`, every line) print through the supervisor with their
name in front; every line goes to data/logs/<name>.log. A
child that exits is restarted, at most MAX_RESTARTS times within RESTART_WINDOW seconds; past that,
or when anvil itself exits (the chain under everything), the stack stops with a message that says
which child and where its log is. data/dev/stack.json records the running stack for `dev status`
and `dev down`.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oracle.chain.anvil_accounts import DEV_ADMIN_ACCOUNT, DEV_ORACLE_ACCOUNT, dev_account
from oracle.chain.deploy import (
    deploy_on_devnet,
    deployment_on_chain,
    publish_encryption_key,
    published_key,
    register_model,
)
from oracle.chain.deployment import Deployment
from oracle.crypto.keys import oracle_identity, public_key, write_identity
from oracle.dev.anvil import Anvil
from oracle.dev.ipfs import IpfsNode
from oracle.dev.process import ManagedProcess, ensure_port_free, free_port
from oracle.dev.services import ApiProcess, OracleProcess, PageServer
from oracle.dev.site import build_site
from oracle.errors import HistochainError
from oracle.ml.card import CARD_FILE, ModelCard
from oracle.ml.cards import AnyCard
from oracle.ml.sr.card import SrCard
from oracle.settings import Settings

MAX_RESTARTS = 3
RESTART_WINDOW = 60.0
DEMO_MODEL = "basecnn-demo"
DEMO_SR_MODEL = "srresnet-demo"

Echo = Callable[[str], None]


class StackError(HistochainError):
    """The stack cannot start, or a child keeps dying."""


def stack_settings(settings: Settings) -> Settings:
    """What every part of the stack must agree on, derived from the ports unless set explicitly:
    the oracle reads the dev chain and the local node, and signs in users of the served page. anvil
    mines only when a transaction arrives, so the oracle takes registrations at depth 0 (a
    single-node dev chain does not reorganise) instead of waiting for a block that may never come."""
    given = settings.model_fields_set
    update: dict[str, Any] = {}
    if "rpc_urls" not in given:
        update["rpc_urls"] = [settings.rpc_url]
    if "gateways" not in given:
        update["gateways"] = [settings.ipfs_url]
    if "api_domain" not in given:
        update["api_domain"] = f"localhost:{settings.page_port}"
    if "api_uri" not in given:
        update["api_uri"] = f"http://localhost:{settings.page_port}"
    if "confirmations" not in settings.tuning.model_fields_set:
        update["tuning"] = settings.tuning.model_copy(update={"confirmations": 0})
    return settings.model_copy(update=update)


def child_environment(settings: Settings) -> dict[str, str]:
    """The derived settings, as the HISTOCHAIN_* variables children read."""
    return {
        "HISTOCHAIN_DATA_DIR": str(settings.data_dir),
        "HISTOCHAIN_RPC_URLS": json.dumps(settings.rpc_urls),
        "HISTOCHAIN_GATEWAYS": json.dumps(settings.gateways),
        "HISTOCHAIN_MODEL_DIR": str(settings.models_path),
        "HISTOCHAIN_DEPLOYMENT": str(settings.deployment_path),
        "HISTOCHAIN_API_DOMAIN": settings.api_domain,
        "HISTOCHAIN_API_URI": settings.api_uri,
        "HISTOCHAIN_TUNING__CONFIRMATIONS": str(settings.tuning.confirmations),
    }


def page_url(settings: Settings) -> str:
    return f"http://localhost:{settings.page_port}"


def ensure_demo_model(settings: Settings, echo: Echo) -> tuple[ModelCard, bool]:
    """The demo checkpoint under the model directory: trained once on a synthetic set (with
    progress bars), then reused. Returns (card, trained now)."""
    from oracle.ml.data.synth import synthesize
    from oracle.ml.train import TrainConfig, train

    out = settings.models_path / DEMO_MODEL
    if (out / CARD_FILE).is_file():
        return ModelCard.load(out / CARD_FILE), False
    data = settings.data_dir / "synth-demo"
    patients, each = settings.dev_train_patients, settings.dev_train_images_per_patient
    echo(
        f"no model yet: training a quick basecnn on a SYNTHETIC set ({patients} patients, {each} images "
        f"each, {settings.dev_train_epochs} epochs); later runs reuse it"
    )
    synthesize(data, patients, each, seed=1)
    card = train(
        TrainConfig(
            model="basecnn",
            data=data,
            out=out,
            name=DEMO_MODEL,
            epochs=settings.dev_train_epochs,
            image_size=settings.dev_train_image_size,
            device=settings.device,
        )
    )
    return card, True


def demo_sr_card(settings: Settings) -> SrCard | None:
    """The demo super-resolution model's card, once trained (a first run trains it after the demo)."""
    card = settings.models_path / DEMO_SR_MODEL / CARD_FILE
    return SrCard.load(card) if card.is_file() else None


def sr_training_command(settings: Settings) -> list[str]:
    """`histochain sr train` for the demo super-resolution model: an SRResNet trained briefly (its
    held-out figures on its card). `histochain sr train` with more steps makes a real one, and any
    checkpoint under the model directory is served. A child process, so that stopping the stack
    stops the training at once."""
    return [
        sys.executable,
        *("-m", "oracle", "sr", "train", "--model", "srresnet", "--name", DEMO_SR_MODEL),
        *("--out", str(settings.models_path / DEMO_SR_MODEL), "--steps", str(settings.dev_sr_steps)),
        *("--batch-size", "8", "--crop", "64", "--lr", "2e-4", "--synthetic", "4"),
        *("--device", settings.device, "--no-resume"),
    ]


def ensure_oracle_key(settings: Settings, echo: Echo) -> bytes:
    """The oracle's age identity (<data dir>/oracle-age.key, made once, owner-only, never committed);
    returns its public key."""
    if settings.oracle_age_key is None and not settings.oracle_key_path.exists():
        write_identity(settings.oracle_key_path)
        echo(f"new oracle decryption key in {settings.oracle_key_path} (keep it; it opens every image)")
    return public_key(oracle_identity(settings))


def ensure_deployment(
    settings: Settings, rpc_url: str, cards: Sequence[AnyCard], oracle_key: bytes
) -> tuple[Deployment, bool]:
    """The saved deployment when the chain still holds it and it knows every model, else a new one
    (the first card its default); either way the dev oracle's encryption key is the one on chain.
    Returns (deployment, deployed now)."""
    deployment = deployment_on_chain(settings.deployment_path, rpc_url)
    known = set() if deployment is None else {m.model_id for m in deployment.models}
    if deployment is None or any("0x" + card.model_id.hex() not in known for card in cards):
        return deploy_on_devnet(rpc_url, settings.deployment_path, cards, oracle_key), True
    oracle = dev_account(DEV_ORACLE_ACCOUNT)
    if published_key(rpc_url, deployment, oracle.address) != oracle_key:
        publish_encryption_key(rpc_url, deployment, oracle, oracle_key)
    return deployment, False


@dataclass
class Child:
    process: ManagedProcess
    critical: bool = False
    restarts: deque[float] = field(default_factory=deque)


class DevStack:
    def __init__(self, settings: Settings, echo: Echo, workers: int = 0, verbose: bool = False) -> None:
        """`workers` > 0: the distributed mode, PostgreSQL and redis-server under <data dir>/dev, a
        coordinator and `workers` workers in place of the one oracle process. `verbose`: every
        child's every line on the console, access lines and anvil's blocks included."""
        self.settings = stack_settings(settings)
        self.echo = echo
        self._lock = threading.Lock()
        s, logs = self.settings, self.settings.data_dir / "logs"
        env = child_environment(self.settings)
        stores: list[Child] = []
        if workers:
            from oracle.dev.datastores import Postgres, RedisServer

            postgres = Postgres(s.data_dir / "dev" / "postgres", free_port(), logs / "postgres.log")
            redis = RedisServer(s.data_dir / "dev" / "redis", free_port(), logs / "redis.log")
            env |= {"HISTOCHAIN_DATABASE_URL": postgres.url, "HISTOCHAIN_REDIS_URL": redis.url}
            stores = [Child(postgres, critical=True), Child(redis, critical=True)]
        self.anvil = Anvil(
            s.chain_host, s.chain_port, s.chain_id, s.data_dir / "chain" / "state.json", logs / "anvil.log"
        )
        self.ipfs = IpfsNode(
            s.ipfs_host,
            s.ipfs_port,
            s.data_dir / "ipfs",
            s.ipfs_token,
            logs / "ipfs.log",
            s.ipfs_max_upload_bytes,
        )
        role, log = ("coordinator", "coordinator.log") if workers else ("all", "oracle.log")
        self.oracle = OracleProcess(s.metrics_host, s.metrics_port, logs / log, env, role)
        self.workers = [
            OracleProcess(s.metrics_host, free_port(), logs / f"worker-{i + 1}.log", env, "worker")
            for i in range(workers)
        ]
        self.api = ApiProcess(s.api_host, s.api_port, logs / "api.log", env)
        self.page = PageServer(s.page_host, s.page_port, s.data_dir / "www", logs / "page.log")
        self.children = [
            Child(self.anvil, critical=True),
            *stores,
            Child(self.ipfs),
            Child(self.oracle),
            *(Child(worker) for worker in self.workers),
            Child(self.api),
            Child(self.page),
        ]
        for child in self.children:
            child.process.verbose = verbose
        self.deployment: Deployment | None = None
        self.card: ModelCard | None = None
        self.sr_card: SrCard | None = None
        self.deployed = self.trained = False
        self._trainer: subprocess.Popen[bytes] | None = None  # the demo SR model's training

    @property
    def record_path(self) -> Path:
        return self.settings.data_dir / "dev" / "stack.json"

    def _say(self, line: str) -> None:
        with self._lock:
            self.echo(line)

    def start(self) -> None:
        """Every port is checked before anything starts, so a taken one fails fast and clearly."""
        for child in self.children:
            ensure_port_free(child.process.host, child.process.port)
        try:
            self.anvil.start(echo=self._say)
            for child in self.children[1:]:
                if child.critical:  # the distributed mode's stores
                    child.process.start(timeout=60, echo=self._say)
            self.card, self.trained = ensure_demo_model(self.settings, self._say)
            self.sr_card = demo_sr_card(self.settings)
            oracle_key = ensure_oracle_key(self.settings, self._say)
            cards: list[AnyCard] = [self.card, *([self.sr_card] if self.sr_card else [])]
            self.deployment, self.deployed = ensure_deployment(
                self.settings, self.anvil.url, cards, oracle_key
            )
            self.ipfs.start(echo=self._say)
            self.oracle.start(timeout=120, echo=self._say)
            for worker in self.workers:
                worker.start(timeout=120, echo=self._say)
            self.api.start(echo=self._say)
            build_site(self.settings.data_dir / "www", self.settings, self.deployment)
            self.page.start(echo=self._say)
        except BaseException:
            self.stop()
            raise
        self._write_record()

    def add_sr_model(self) -> SrCard:
        """The demo super-resolution model, on a first run trained while the stack serves (after
        the demo, so it does not hold up the table), then registered on chain by the dev admin,
        added to the deployment file and the page's config; the oracle finds its checkpoint when
        the first request for it comes, and the page lists it on its next load."""
        assert self.deployment is not None
        log = self.settings.data_dir / "logs" / "sr-train.log"
        self._say(
            f"training the demo super-resolution model ({self.settings.dev_sr_steps} steps on "
            f"scikit-image's photographs and synthetic fields; progress in {log})"
        )
        with log.open("ab") as out:
            self._trainer = subprocess.Popen(
                sr_training_command(self.settings), stdout=out, stderr=subprocess.STDOUT
            )
        code = self._trainer.wait()
        if code != 0:
            raise StackError(f"the demo super-resolution training exited with code {code} (see {log})")
        card = SrCard.load(self.settings.models_path / DEMO_SR_MODEL / CARD_FILE)
        admin = dev_account(DEV_ADMIN_ACCOUNT)
        self.deployment = register_model(self.anvil.url, self.deployment, admin, card)
        self.deployment.save(self.settings.deployment_path)
        build_site(self.settings.data_dir / "www", self.settings, self.deployment)
        self.sr_card = card
        return card

    def supervise(self, stop: threading.Event, poll: float = 0.5) -> None:
        """Until `stop` is set: restart children that exit; raise StackError when one cannot be kept up."""
        while not stop.wait(poll):
            for child in self.children:
                code = child.process.exit_code
                if code is not None:
                    self._revive(child, code)

    def _revive(self, child: Child, code: int) -> None:
        name, log = child.process.name, child.process.log_file
        if child.critical:
            raise StackError(f"{name} exited with code {code}; the stack cannot run without it (see {log})")
        now = time.monotonic()
        while child.restarts and now - child.restarts[0] > RESTART_WINDOW:
            child.restarts.popleft()
        if len(child.restarts) >= MAX_RESTARTS:
            raise StackError(
                f"{name} exited {MAX_RESTARTS + 1} times within {RESTART_WINDOW:.0f}s "
                f"(last code {code}); stopping the stack (see {log})"
            )
        child.restarts.append(now)
        self._say(
            f"supervisor | {name} exited with code {code}; restarting ({len(child.restarts)}/{MAX_RESTARTS})"
        )
        try:
            child.process.start(timeout=120, echo=self._say)
        except HistochainError as exc:
            self._say(f"supervisor | {name} did not come back: {exc}")
            return
        self._write_record()
        self._say(f"supervisor | {name} is back (pid {child.process.pid})")

    def stop(self) -> None:
        if self._trainer is not None and self._trainer.poll() is None:
            self._trainer.kill()
            self._trainer.wait()
        for child in reversed(self.children):
            child.process.stop()
        self.record_path.unlink(missing_ok=True)

    def _write_record(self) -> None:
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "services": {c.process.name: {"url": c.process.url, "pid": c.process.pid} for c in self.children},
            "page": page_url(self.settings),
        }
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(self.record_path)


def read_record(settings: Settings) -> dict[str, Any] | None:
    path = settings.data_dir / "dev" / "stack.json"
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record


def alive(pid: int | None) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
