"""Fixtures for the ImageRegistry suites: roles, models, a fresh CID per call.

Ape snapshots the chain around every test, so session-scoped deployments stay clean.
"""

import os
from collections.abc import Callable
from typing import Any

import pytest
from eth_utils.crypto import keccak

from oracle.chain.registry import image_id_for
from oracle.ipfs.cid import raw_cid

TIMEOUT = 3600
FEE = 10**15
MODEL_A = keccak(b"histochain test model a")
MODEL_B = keccak(b"histochain test model b")


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def oracle(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def patient(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def other(accounts):
    return accounts[3]


def deploy(project, admin, oracle, fee: int):
    """Two models, both at `fee` and keeping nothing of it on failure."""
    registry = project.ImageRegistry.deploy(admin, TIMEOUT, sender=admin)
    registry.grantRole(registry.ORACLE_ROLE(), oracle, sender=admin)
    registry.registerModel(MODEL_A, "model-a", "ipfs://model-a", fee, 0, sender=admin)
    registry.registerModel(MODEL_B, "model-b", "ipfs://model-b", fee, 0, sender=admin)
    registry.setDefaultModel(MODEL_A, sender=admin)
    return registry


@pytest.fixture(scope="session")
def registry(project, admin, oracle):
    """Free requests, as on the dev chain."""
    return deploy(project, admin, oracle, 0)


@pytest.fixture(scope="session")
def paid_registry(project, admin, oracle):
    return deploy(project, admin, oracle, FEE)


@pytest.fixture
def new_cid() -> Callable[[], str]:
    """A real CIDv1 (raw, sha2-256, base32): 59 characters, like the page registers."""
    return lambda: raw_cid(os.urandom(64))


def image_id(owner: Any, cid: str) -> bytes:
    """The id `owner` (an account or an address) registers `cid` under."""
    return bytes.fromhex(image_id_for(str(getattr(owner, "address", owner)), cid)[2:])
