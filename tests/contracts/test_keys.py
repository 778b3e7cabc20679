"""Oracle encryption keys: published by oracle-role holders, listed for the page, dropped with the role."""

import ape
from eth_utils.crypto import keccak

KEY_1 = keccak(b"x25519 public key 1")
KEY_2 = keccak(b"x25519 public key 2")
KEY_3 = keccak(b"x25519 public key 3")


def keys(registry) -> dict[str, bytes]:
    oracles, published = registry.encryptionKeys()
    assert len(oracles) == len(published)
    return dict(zip(oracles, published, strict=True))


def test_an_oracle_publishes_its_key_and_may_replace_it(registry, oracle):
    assert keys(registry) == {}
    tx = registry.setEncryptionKey(KEY_1, sender=oracle)
    assert tx.events == [registry.EncryptionKeySet(oracle=oracle, key=KEY_1)]
    assert keys(registry) == {oracle.address: KEY_1}
    registry.setEncryptionKey(KEY_2, sender=oracle)
    assert keys(registry) == {oracle.address: KEY_2}


def test_only_oracles_publish_and_never_a_zero_key(registry, oracle, patient):
    with ape.reverts(
        registry.AccessControlUnauthorizedAccount, account=patient, neededRole=registry.ORACLE_ROLE()
    ):
        registry.setEncryptionKey(KEY_1, sender=patient)
    with ape.reverts(registry.InvalidEncryptionKey):
        registry.setEncryptionKey(b"\x00" * 32, sender=oracle)
    assert keys(registry) == {}


def test_revoking_or_renouncing_the_role_drops_the_key(registry, admin, oracle, patient, other):
    role = registry.ORACLE_ROLE()
    for account in (patient, other):
        registry.grantRole(role, account, sender=admin)
    for account, key in ((oracle, KEY_1), (patient, KEY_2), (other, KEY_3)):
        registry.setEncryptionKey(key, sender=account)

    tx = registry.revokeRole(role, oracle, sender=admin)  # the first of three: the last moves into its place
    assert registry.EncryptionKeySet(oracle=oracle, key=b"\x00" * 32) in tx.events
    assert keys(registry) == {patient.address: KEY_2, other.address: KEY_3}
    registry.renounceRole(role, other, sender=other)
    assert keys(registry) == {patient.address: KEY_2}

    registry.grantRole(role, oracle, sender=admin)  # a returning oracle publishes afresh
    assert keys(registry) == {patient.address: KEY_2}
    registry.setEncryptionKey(KEY_1, sender=oracle)
    assert keys(registry) == {patient.address: KEY_2, oracle.address: KEY_1}


def test_revoking_another_role_or_a_keyless_oracle_leaves_the_keys(registry, admin, oracle, patient):
    registry.setEncryptionKey(KEY_1, sender=oracle)
    registry.grantRole(registry.ORACLE_ROLE(), patient, sender=admin)
    tx = registry.revokeRole(registry.ORACLE_ROLE(), patient, sender=admin)
    assert not [e for e in tx.events if e.event_name == "EncryptionKeySet"]
    registry.grantRole(registry.DEFAULT_ADMIN_ROLE(), oracle, sender=admin)
    registry.revokeRole(registry.DEFAULT_ADMIN_ROLE(), oracle, sender=admin)
    assert keys(registry) == {oracle.address: KEY_1}
