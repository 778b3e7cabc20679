"""The submitter on a real chain: what it signs, beyond what the node estimates."""

import numpy as np

from oracle.chain.anvil_accounts import DEV_ORACLE_ACCOUNT, dev_account
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from oracle.chain.submitter import Submitter
from tests.oracle.daemon_support import Stack, register
from tests.support import png


async def test_a_failure_report_carries_gas_for_every_refund_beyond_the_estimate(stack: Stack) -> None:
    """An owner's receive() can spend nothing while the node estimates and all its REFUND_GAS
    once mined; were that gas not in the limit, such owners would make the whole batch revert,
    again and again, at the oracle's cost."""
    rng = np.random.default_rng(53)
    images = [await register(stack, png(rng, malignant=False), patient) for patient in (2, 3, 4)]
    submitter = Submitter(stack.registry, dev_account(DEV_ORACLE_ACCOUNT))
    sent = await submitter.report_failures([(i, int(FailureReason.UNSUPPORTED_IMAGE)) for i in images])

    assert sent.status == 1
    assert sent.failed == set(images)
    assert [await stack.registry.status(i) for i in images] == [Status.FAILED] * 3
    refund_gas = await stack.registry.contract.functions.REFUND_GAS().call()
    tx = await stack.w3.eth.get_transaction(sent.tx_hash)  # type: ignore[arg-type]
    assert tx["gas"] - sent.gas_used >= 3 * refund_gas
