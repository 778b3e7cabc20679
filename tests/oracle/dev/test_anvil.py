"""The dev chain: a real anvil process, its state kept on disk, clear errors when it cannot start."""

import socket
from pathlib import Path

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from oracle.chain.anvil_accounts import ANVIL_TEST_MNEMONIC
from oracle.dev.anvil import Anvil
from oracle.dev.process import PortInUseError
from tests.support import free_port

CHAIN_ID = 313370
pytestmark = pytest.mark.stack  # each test starts anvil itself


def make_anvil(tmp_path: Path, port: int) -> Anvil:
    return Anvil("127.0.0.1", port, CHAIN_ID, tmp_path / "state.json", tmp_path / "anvil.log")


def test_state_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    Account.enable_unaudited_hdwallet_features()
    sender = Account.from_mnemonic(ANVIL_TEST_MNEMONIC)
    recipient = Account.create().address
    with make_anvil(tmp_path, port) as anvil:
        w3 = Web3(HTTPProvider(anvil.url))
        assert w3.eth.chain_id == CHAIN_ID
        tx = {
            "to": recipient,
            "value": 12345,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "nonce": 0,
            "chainId": CHAIN_ID,
        }
        tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    assert (tmp_path / "state.json").stat().st_size > 0
    with make_anvil(tmp_path, port) as anvil:
        w3 = Web3(HTTPProvider(anvil.url))
        assert w3.eth.get_balance(recipient) == 12345
        assert w3.eth.get_transaction_count(sender.address) == 1


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            make_anvil(tmp_path, port).start()
