"""The oracle's signing key: from the environment, from an encrypted keystore, or on the dev
chain only, anvil's well-known test account 1 (never for real funds)."""

import json

from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.anvil_accounts import DEV_ORACLE_ACCOUNT, dev_account
from oracle.errors import ConfigError
from oracle.settings import Settings


def load_signer(settings: Settings, chain_id: int) -> LocalAccount:
    if settings.oracle_private_key is not None:
        try:
            account: LocalAccount = Account.from_key(settings.oracle_private_key.get_secret_value())
            return account
        except ValueError as exc:
            raise ConfigError("HISTOCHAIN_ORACLE_PRIVATE_KEY is not a valid private key") from exc
    if settings.oracle_keystore is not None:
        if settings.oracle_keystore_password is None:
            raise ConfigError("HISTOCHAIN_ORACLE_KEYSTORE_PASSWORD is needed to open the keystore")
        try:
            key = Account.decrypt(
                json.loads(settings.oracle_keystore.read_text()),
                settings.oracle_keystore_password.get_secret_value(),
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot open keystore {settings.oracle_keystore}: {exc}") from exc
        keystore_account: LocalAccount = Account.from_key(key)
        return keystore_account
    if chain_id == settings.chain_id:
        return dev_account(DEV_ORACLE_ACCOUNT)
    raise ConfigError(
        f"no signer for chain {chain_id}: set HISTOCHAIN_ORACLE_PRIVATE_KEY or HISTOCHAIN_ORACLE_KEYSTORE"
    )
