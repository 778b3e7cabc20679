"""The dev chain: an anvil process with its state kept on disk between runs."""

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from eth_account.messages import encode_defunct
from pyrage import x25519
from web3 import HTTPProvider, Web3

from oracle.chain.anvil_accounts import ANVIL_TEST_MNEMONIC, dev_account
from oracle.crypto.keys import key_message, patient_identity
from oracle.dev.process import ManagedProcess, ProcessStartError
from oracle.errors import ToolchainError

RPC_METHOD = re.compile(r"^\s*(eth|net|web3|anvil|evm|debug|trace|txpool|ots)_\w+\s*$")


def dev_patient_identity(index: int, chain_id: int, registry: str) -> x25519.Identity:
    """The age identity the page derives for anvil's test account `index` (its wallet's signature
    of the key message): what the demo and the tests seal patients' images to."""
    message = key_message(chain_id, registry)
    return patient_identity(bytes(dev_account(index).sign_message(encode_defunct(text=message)).signature))


class Anvil(ManagedProcess):
    """Runs anvil until stopped; `state_file` keeps the chain across restarts (anvil dumps it on SIGTERM)."""

    name = "anvil"

    def __init__(self, host: str, port: int, chain_id: int, state_file: Path, log_file: Path) -> None:
        super().__init__(host, port, log_file)
        self.chain_id, self.state_file = chain_id, state_file

    def command(self) -> Sequence[str]:
        executable = shutil.which("anvil")
        if executable is None:
            raise ToolchainError("anvil is not on PATH; run scripts/setup")
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        return [
            executable,
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--mnemonic", ANVIL_TEST_MNEMONIC,
            "--state", str(self.state_file),
        ]  # fmt: skip

    def quiet(self, line: str) -> bool:
        """anvil prints the name of every JSON-RPC method it serves: the oracle's polling."""
        return super().quiet(line) or RPC_METHOD.match(line) is not None

    def probe(self) -> bool:
        answered = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 2})).eth.chain_id
        if answered != self.chain_id:
            raise ProcessStartError(f"{self.url} answers chain id {answered}, expected {self.chain_id}")
        return True
