"""anvil's well-known test accounts: public dev keys, never for real funds. The dev chain's
oracle signs with account 1 when no key is configured (see `oracle.signer`)."""

from eth_account import Account
from eth_account.signers.local import LocalAccount

ANVIL_TEST_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ADMIN_ACCOUNT = 0
DEV_ORACLE_ACCOUNT = 1


def dev_account(index: int) -> LocalAccount:
    """Anvil's test account `index` (0 administers the dev deployment, 1 is its oracle)."""
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(ANVIL_TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account
