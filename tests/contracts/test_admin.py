"""Models and their fees, timeout and roles: the admin's functions and who may call them."""

import ape
import pytest
from eth_utils.crypto import keccak

from tests.contracts.conftest import FEE, MODEL_A, MODEL_B, TIMEOUT, image_id

ZERO = b"\x00" * 32
MODEL_C = keccak(b"histochain test model c")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def test_constructor_sets_roles_timeout_and_emits(project, admin, chain):
    registry = project.ImageRegistry.deploy(admin, TIMEOUT, sender=admin)
    receipt = registry.creation_metadata.receipt
    events = registry.RequestTimeoutChanged.from_receipt(receipt)
    assert [(e.event_name, dict(e.event_arguments)) for e in events] == [
        ("RequestTimeoutChanged", {"previousTimeout": 0, "timeout": TIMEOUT}),
    ]
    assert registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), admin)
    assert registry.requestTimeout() == TIMEOUT
    assert registry.modelCount() == 0
    assert registry.defaultModel() == ZERO
    with ape.reverts(registry.NoDefaultModel):
        registry.modelFee(ZERO)


def test_constructor_rejects_zero_admin_and_zero_timeout(project, admin):
    with ape.reverts(project.ImageRegistry.ZeroAddress):
        project.ImageRegistry.deploy(ZERO_ADDRESS, TIMEOUT, sender=admin)
    with ape.reverts(project.ImageRegistry.InvalidTimeout, timeout=0):
        project.ImageRegistry.deploy(admin, 0, sender=admin)


def test_register_model_with_its_fee(registry, admin):
    tx = registry.registerModel(MODEL_C, "model-c", "ipfs://card", 3 * FEE, FEE, sender=admin)
    assert tx.events == [
        registry.ModelRegistered(modelId=MODEL_C, index=3, name="model-c", metadataURI="ipfs://card"),
        registry.ModelFeeChanged(modelId=MODEL_C, fee=3 * FEE, failureFee=FEE),
    ]
    assert registry.modelCount() == 3
    assert registry.modelAt(3) == MODEL_C
    assert registry.getModel(MODEL_C) == (3, True)
    assert registry.modelFee(MODEL_C) == (3 * FEE, FEE)
    assert registry.modelFee(MODEL_A) == (0, 0)
    assert registry.getModel(b"\x77" * 32) == (0, False)
    with ape.reverts(registry.UnknownModel, modelId=b"\x77" * 32):
        registry.modelFee(b"\x77" * 32)


def test_register_model_rejects_zero_duplicates_and_a_failure_fee_above_the_fee(registry, admin):
    with ape.reverts(registry.InvalidModelId):
        registry.registerModel(ZERO, "zero", "", 0, 0, sender=admin)
    with ape.reverts(registry.ModelAlreadyRegistered, modelId=MODEL_A):
        registry.registerModel(MODEL_A, "again", "", 0, 0, sender=admin)
    with ape.reverts(registry.FailureFeeAboveRequestFee, failureFee=FEE + 1, requestFee=FEE):
        registry.registerModel(MODEL_C, "c", "", FEE, FEE + 1, sender=admin)
    assert registry.getModel(MODEL_C) == (0, False)


def test_retire_model(registry, admin):
    tx = registry.retireModel(MODEL_B, sender=admin)
    assert tx.events == [registry.ModelRetired(modelId=MODEL_B)]
    assert registry.getModel(MODEL_B) == (2, False)
    with ape.reverts(registry.ModelNotActive, modelId=MODEL_B):
        registry.retireModel(MODEL_B, sender=admin)
    with ape.reverts(registry.UnknownModel, modelId=MODEL_C):
        registry.retireModel(MODEL_C, sender=admin)


def test_default_model_cannot_be_retired(registry, admin):
    with ape.reverts(registry.CannotRetireDefaultModel, modelId=MODEL_A):
        registry.retireModel(MODEL_A, sender=admin)


def test_set_default_model(registry, admin):
    tx = registry.setDefaultModel(MODEL_B, sender=admin)
    assert tx.events == [registry.DefaultModelChanged(previousModelId=MODEL_A, modelId=MODEL_B)]
    assert registry.defaultModel() == MODEL_B
    registry.retireModel(MODEL_A, sender=admin)
    with ape.reverts(registry.ModelNotActive, modelId=MODEL_A):
        registry.setDefaultModel(MODEL_A, sender=admin)
    with ape.reverts(registry.UnknownModel, modelId=MODEL_C):
        registry.setDefaultModel(MODEL_C, sender=admin)


def test_set_model_fee(registry, admin):
    tx = registry.setModelFee(MODEL_B, FEE, FEE // 4, sender=admin)
    assert tx.events == [registry.ModelFeeChanged(modelId=MODEL_B, fee=FEE, failureFee=FEE // 4)]
    assert registry.modelFee(MODEL_B) == (FEE, FEE // 4)
    assert registry.modelFee(MODEL_A) == (0, 0)  # each model its own terms
    assert registry.modelFee(ZERO) == (0, 0)  # zero reads the default model's
    registry.setDefaultModel(MODEL_B, sender=admin)
    assert registry.modelFee(ZERO) == (FEE, FEE // 4)
    registry.retireModel(MODEL_A, sender=admin)
    registry.setModelFee(MODEL_A, FEE, 0, sender=admin)  # a retired model may be priced for its return
    with ape.reverts(registry.UnknownModel, modelId=MODEL_C):
        registry.setModelFee(MODEL_C, FEE, 0, sender=admin)


def test_set_request_timeout(registry, admin):
    tx = registry.setRequestTimeout(120, sender=admin)
    assert tx.events == [registry.RequestTimeoutChanged(previousTimeout=TIMEOUT, timeout=120)]
    assert registry.requestTimeout() == 120
    with ape.reverts(registry.InvalidTimeout, timeout=0):
        registry.setRequestTimeout(0, sender=admin)


ADMIN_CALLS = [
    ("registerModel", (MODEL_C, "c", "", 0, 0)),
    ("retireModel", (MODEL_B,)),
    ("setDefaultModel", (MODEL_B,)),
    ("setModelFee", (MODEL_A, 1, 0)),
    ("setRequestTimeout", (1,)),
    ("withdrawFees", (ZERO_ADDRESS, 0)),
]


@pytest.mark.parametrize(("name", "args"), ADMIN_CALLS, ids=[c[0] for c in ADMIN_CALLS])
def test_admin_functions_refuse_others(registry, oracle, other, name, args):
    for caller in (oracle, other):
        with ape.reverts(
            registry.AccessControlUnauthorizedAccount,
            account=caller,
            neededRole=registry.DEFAULT_ADMIN_ROLE(),
        ):
            getattr(registry, name)(*args, sender=caller)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("postResult", (b"\x01" * 32, b"\x02" * 32)),
        ("postResults", ([], [])),
        ("reportFailure", (b"\x01" * 32, 1)),
    ],
)
def test_oracle_functions_refuse_non_oracles(registry, admin, patient, other, name, args):
    for caller in (admin, patient, other):
        with ape.reverts(
            registry.AccessControlUnauthorizedAccount, account=caller, neededRole=registry.ORACLE_ROLE()
        ):
            getattr(registry, name)(*args, sender=caller)


def test_grant_and_revoke_the_oracle_role(registry, admin, oracle, other, patient, new_cid):
    role = registry.ORACLE_ROLE()
    cid = new_cid()
    registry.registerImage(cid, MODEL_A, sender=patient)
    iid = image_id(patient, cid)
    tx = registry.grantRole(role, other, sender=admin)
    assert tx.events == [registry.RoleGranted(role=role, account=other, sender=admin)]
    registry.postResult(iid, b"\x01" * 32, sender=other)

    tx = registry.revokeRole(role, other, sender=admin)
    assert tx.events == [registry.RoleRevoked(role=role, account=other, sender=admin)]
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=other, neededRole=role):
        registry.postResults([], [], sender=other)
    assert registry.hasRole(role, oracle)


def test_only_admin_grants_roles(registry, oracle, other):
    role = registry.ORACLE_ROLE()
    with ape.reverts(
        registry.AccessControlUnauthorizedAccount, account=oracle, neededRole=registry.DEFAULT_ADMIN_ROLE()
    ):
        registry.grantRole(role, other, sender=oracle)


def test_timeout_is_capped(registry, admin, project):
    cap = registry.MAX_REQUEST_TIMEOUT()
    assert cap == 30 * 24 * 3600
    registry.setRequestTimeout(cap, sender=admin)
    with ape.reverts(registry.InvalidTimeout, timeout=cap + 1):
        registry.setRequestTimeout(cap + 1, sender=admin)
    with ape.reverts(project.ImageRegistry.InvalidTimeout, timeout=cap + 1):
        project.ImageRegistry.deploy(admin, cap + 1, sender=admin)
