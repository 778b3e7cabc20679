"""The deployment file: written atomically, validated on load, clear when missing or wrong."""

import json
from pathlib import Path

import pytest

from oracle.chain.deployment import Deployment, DeploymentError

VALID = {
    "chain_id": 313370,
    "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "block": 1,
    "transaction": "0x" + "ab" * 32,
    "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "oracles": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
    "request_timeout": 3600,
    "models": [
        {
            "name": "m",
            "model_id": "0x" + "01" * 32,
            "metadata_uri": "ipfs://x",
            "fee": 10**15,
            "failure_fee": 0,
        }
    ],
    "default_model": "0x" + "01" * 32,
    "abi": [],
}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "deployment.json"
    Deployment.model_validate(VALID).save(path)
    assert Deployment.load(path) == Deployment.model_validate(VALID)
    assert not list(path.parent.glob("*.tmp"))


def test_missing_file_says_to_deploy(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="deploy first"):
        Deployment.load(tmp_path / "deployment.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"address": "0x5fbdb2315678afecb367f032d93f642f64180aa3"}, "checksummed"),
        ({"oracles": ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8"]}, "checksummed"),
        ({"chain_id": 0}, "chain_id"),
        ({"transaction": "0x12"}, "transaction"),
        ({"request_fee": 0}, "request_fee"),  # a file from before per-model fees
        ({"models": [VALID["models"][0] | {"fee": 2**96}]}, "fee"),
    ],
)
def test_invalid_files_fail_clearly(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(VALID | change))
    with pytest.raises(DeploymentError, match=message):
        Deployment.load(path)
